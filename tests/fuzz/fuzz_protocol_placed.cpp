// libFuzzer target: basic_protocol<server> reading large frames into place.
// The input describes frames (opcode, FIN, size class, mask key, payload bytes
// cycled from the input, text sometimes made valid UTF-8, sometimes not); they are
// fed to two protocols in the same chunks. One only calls receive(); the other
// reads like a connection over TCP does: into placed_read()'s target first, then a
// little spill, then the rest. Both must report the same messages, control
// frames, closes and errors (RFC 6455 §5.4 fragmentation, §8.1 UTF-8, §10.4 limits).
// Flags also turn on stream_messages (no placed reads then; pieces are joined
// before comparing) and permessage-deflate (RFC 7692): uncompressed frames are
// still read into place and held to max_message_size (compressed messages get
// some slack on the wire), and some messages come compressed, never placed.
#include <duplex/connection/protocol.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_check.hpp"

namespace {

struct recorder {
    bool stream = false; // stream_messages: pieces, split wherever the reads ended
    std::vector<std::string> events;
    std::string pieces;
    void on_message(duplex::opcode op, std::string_view data, bool last) {
        if (!stream) FUZZ_CHECK(last); // whole messages only
        pieces.append(data);
        if (!last) return;
        events.push_back("m" + std::to_string(static_cast<int>(op)) + ":" + pieces);
        pieces.clear();
    }
    void on_ping(std::string_view p) { events.push_back("ping:" + std::string(p)); }
    void on_pong(std::string_view p) { events.push_back("pong:" + std::string(p)); }
    void on_close_frame(std::uint16_t code, std::string_view reason) {
        events.push_back("close:" + std::to_string(code) + ":" + std::string(reason));
    }
    void on_protocol_error(std::error_code ec) { events.push_back("error:" + ec.message()); }
};

#if DUPLEX_HAS_DEFLATE
using compressor = duplex::deflate_codec;
#else
struct compressor { // built without zlib: nothing is ever compressed
    std::error_code compress(const void*, std::size_t, std::string&) { return {}; }
};
#endif

using reader = fuzz_input;

// Frames as a client would send them, from the input's description. With a
// compressor, whole text/binary messages may go compressed (RSV1).
std::string make_wire(reader& in, const std::uint8_t* pool, std::size_t pool_size, compressor* deflater) {
    std::string wire;
    static const duplex::opcode ops[] = {duplex::opcode::continuation, duplex::opcode::text, duplex::opcode::binary,
                                         duplex::opcode::ping,         duplex::opcode::pong, duplex::opcode::close};
    for (int frames = 0; in.n > 0 && frames < 24; ++frames) {
        const std::uint8_t spec = in.byte();
        if ((spec & 0x1F) == 0x1F) { // raw bytes: whatever the input says next
            const std::size_t k = in.byte();
            for (std::size_t i = 0; i < k && in.n > 0; ++i) wire += static_cast<char>(in.byte());
            continue;
        }
        const duplex::opcode op = ops[(spec & 7) % 6];
        const bool fin = (spec & 8) == 0;
        std::size_t size = in.byte();
        switch ((spec >> 4) & 3) {
        case 0: size %= 126; break;
        case 1: size = 126 + (size << 8 | in.byte()) % 65410; break;
        default: size = (size << 16 | in.byte() << 8 | in.byte()) % (600 * 1024); break;
        }
        if (duplex::is_control(op) && size > 125) size %= 126;
        std::string payload(size, '\0');
        const bool utf8 = op == duplex::opcode::text || op == duplex::opcode::continuation;
        for (std::size_t i = 0; i < size; ++i) {
            if (utf8 && (spec & 0x40)) payload[i] = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"[i % 10]; // valid runs
            else payload[i] = pool_size ? static_cast<char>(pool[(i * 31 + size) % pool_size]) : 'x';
        }
        if (utf8 && (spec & 0x40) && (spec & 0x80) && size > 0) payload[(size * 7) / 9] = '\xFF'; // §8.1
        bool rsv1 = false;
        if (deflater && fin && (op == duplex::opcode::text || op == duplex::opcode::binary) && (in.byte() & 1)) {
            std::string compressed;
            if (deflater->compress(payload.data(), payload.size(), compressed)) return wire;
            payload.swap(compressed);
            size = payload.size();
            rsv1 = true;
        }
        duplex::mask_key key{{in.byte(), in.byte(), in.byte(), in.byte()}};
        std::uint8_t header[duplex::max_frame_header_size];
        const std::size_t h = duplex::write_frame_header(header, op, fin, size, &key, rsv1);
        wire.append(reinterpret_cast<const char*>(header), h);
        const std::size_t at = wire.size();
        wire.append(payload);
        duplex::apply_mask(reinterpret_cast<std::uint8_t*>(&wire[at]), size, key, 0);
    }
    return wire;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 4) return 0;
    reader in{data, size};
    const std::uint8_t flags = in.byte();
    const std::size_t chunk_unit = 1 + in.byte();
    const std::size_t placed_min = (flags & 1) ? 1 : 4096;
    const std::uint8_t shape = in.byte();
    const std::size_t spill = 1 + (shape & 0x3F) * 16u;
    const std::size_t first = (flags & 0x40) ? 65536 : 1 + in.byte() * 64u; // the read buffer's size
    // Some reads skip the placed target (a connection that stopped being busy mid-frame).
    const unsigned skip_mask = (shape >> 6) == 0 ? 0 : (1u << (shape >> 6)) - 1;
    unsigned reads = 0;
    duplex::connection_options options;
    options.max_message_size = (flags & 0x80) ? 1024 * 1024 : 200 * 1024;
    options.stream_messages = (flags & 0x08) != 0;
#if DUPLEX_HAS_DEFLATE
    const bool deflate = (flags & 0x04) != 0;
    duplex::deflate_params params;
    params.enabled = true;
    compressor deflater(duplex::role::client, params);
#else
    const bool deflate = false;
    compressor deflater;
#endif
    const std::string wire = make_wire(in, data, size, deflate ? &deflater : nullptr);

    const auto t0 = std::chrono::steady_clock::now();
    duplex::server_protocol plain(options), placed(options);
#if DUPLEX_HAS_DEFLATE
    if (deflate) {
        plain.enable_deflate(params);
        placed.enable_deflate(params);
    }
#endif
    plain.open(t0);
    placed.open(t0);
    recorder a, b;
    a.stream = b.stream = options.stream_messages;
    std::string copy_a = wire, copy_b = wire;
    std::size_t at = 0, step = 0;
    while (at < wire.size()) {
        // Chunk sizes from 1 byte to ~300 KiB, varying from one chunk to the next.
        std::size_t chunk = chunk_unit * (1 + (step * 2654435761u >> 7) % 1200);
        ++step;
        if (chunk > wire.size() - at) chunk = wire.size() - at;
        plain.receive(reinterpret_cast<std::uint8_t*>(&copy_a[at]), chunk, a, t0);
        // The placed reader gets the same bytes, but as a connection reads them.
        std::size_t left = chunk;
        const char* src = &copy_b[at];
        while (left > 0) {
            const bool skip = (++reads & skip_mask) == 1; // 1 read in 2, 4 or 8, by shape
            const auto target = skip ? std::pair<std::uint8_t*, std::size_t>{} : placed.placed_read(placed_min, first);
            if (target.first) {
                FUZZ_CHECK(target.second > 0 && target.second <= duplex::server_protocol::placed_read_max);
                FUZZ_CHECK(target.second == placed.placed_read_size(first));
                FUZZ_CHECK(!options.stream_messages);                   // pieces go to the handler as they come
                FUZZ_CHECK(target.second <= options.max_message_size); // not the parser's deflate slack
                const std::size_t k = left < target.second ? left : target.second;
                std::memcpy(target.first, src, k);
                placed.receive_placed(k, b, t0);
                src += k;
                left -= k;
                const std::size_t s = left < spill ? left : spill;
                if (s > 0) {
                    std::vector<std::uint8_t> piece(src, src + s); // exactly sized: ASan sees overreads
                    placed.receive(piece.data(), s, b, t0);
                    src += s;
                    left -= s;
                }
            } else {
                // A plain read: the rest of the chunk, or (skipping) part of it.
                const std::size_t k = skip && left > 1 ? left / 2 : left;
                std::vector<std::uint8_t> piece(src, src + k);
                placed.receive(piece.data(), k, b, t0);
                src += k;
                left -= k;
            }
        }
        at += chunk;
    }
    FUZZ_CHECK(a.events == b.events);
    FUZZ_CHECK(plain.state() == placed.state());
    return 0;
}
