// libFuzzer target: permessage-deflate decompression (RFC 7692 §7.2.2) of arbitrary
// bytes in arbitrary pieces. Invariants: no crash or sanitizer report, only the
// documented errors, and a message never inflates past max_size.
//
// Input: byte 0 picks the mode (inflater window bits, no_context_takeover, max_size);
// then a sequence of pieces, each a length byte L followed by up to L bytes; a length
// byte with the top bit set ends the message after its piece (several messages, so
// context takeover is exercised).
#include <duplex/extensions/permessage_deflate.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t mode = data[0];
    duplex::deflate_params p;
    p.enabled = true;
    p.server_max_window_bits = 8 + (mode & 7);
    p.server_no_context_takeover = (mode & 8) != 0;
    const std::size_t max_size = (mode & 16) ? 64 : 4096;
    duplex::deflate_codec codec(duplex::role::client, p);

    std::string out;
    std::size_t message_start = 0;
    std::size_t pos = 1;
    while (pos < size) {
        const std::uint8_t len_byte = data[pos++];
        const bool last = (len_byte & 0x80) != 0;
        std::size_t n = len_byte & 0x7f;
        if (n > size - pos) n = size - pos;
        const std::error_code ec = codec.decompress(data + pos, n, last || pos + n == size, out, max_size);
        pos += n;
        if (out.size() - message_start > max_size) std::abort();
        if (ec) {
            if (ec != duplex::errc::bad_compressed_data && ec != duplex::errc::message_too_big) std::abort();
            // The connection would fail here; the codec must still be usable.
            out.clear();
            message_start = 0;
            continue;
        }
        if (last) message_start = out.size();
    }
    // Everything it produced must be a round trip away: recompress and inflate again.
    duplex::deflate_codec server(duplex::role::server, p);
    duplex::deflate_codec client(duplex::role::client, p);
    std::string packed, again;
    if (server.compress(out.data(), out.size(), packed)) std::abort();
    if (client.decompress(packed.data(), packed.size(), true, again, out.size())) std::abort();
    if (again != out) std::abort();
    return 0;
}
