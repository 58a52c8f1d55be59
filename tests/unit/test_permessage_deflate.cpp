// RFC 7692 permessage-deflate: negotiation (§5, §7.1), the codec (§7.2) with the
// RFC's examples (§7.2.3), round trips in every negotiated mode, the 8-bit window,
// and the inflated-size limit against a compression bomb.
#include <catch2/catch.hpp>

#include <duplex/extensions/permessage_deflate.hpp>

#include <zlib.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

using duplex::deflate_codec;
using duplex::deflate_options;
using duplex::deflate_params;
using duplex::errc;
using duplex::role;

namespace {

std::string bytes(std::initializer_list<int> list) {
    std::string s;
    for (int b : list) s += static_cast<char>(b);
    return s;
}

std::string hex(const std::string& s) {
    static const char* digits = "0123456789abcdef";
    std::string h;
    for (unsigned char c : s) {
        if (!h.empty()) h += ' ';
        h += digits[c >> 4];
        h += digits[c & 15];
    }
    return h;
}

std::vector<duplex::extension_offer> parse(const std::string& value) {
    std::error_code ec;
    auto offers = duplex::parse_extensions(value, ec);
    REQUIRE_FALSE(ec);
    return offers;
}

// Server side of the handshake on a header value.
bool server_negotiates(const std::string& value, const deflate_options& policy, deflate_params& out,
                       std::string& response) {
    return duplex::negotiate(parse(value), policy, out, response);
}

std::error_code client_accepts(const std::string& response, const deflate_options& offered, deflate_params& out) {
    return duplex::accept_response(parse(response), offered, out);
}

std::string compress(deflate_codec& c, const std::string& msg) {
    std::string out;
    REQUIRE_FALSE(c.compress(msg.data(), msg.size(), out));
    return out;
}

std::error_code decompress(deflate_codec& c, const std::string& payload, std::string& out,
                           std::size_t max_size = 1 << 30) {
    return c.decompress(payload.data(), payload.size(), true, out, max_size);
}

// Feeds `payload` in random-size pieces (some empty), `last` on the final one.
std::error_code decompress_pieces(deflate_codec& c, const std::string& payload, std::string& out, std::mt19937& rng,
                                  std::size_t max_size = 1 << 30) {
    std::size_t pos = 0;
    for (;;) {
        const std::size_t left = payload.size() - pos;
        std::size_t n = 0;
        switch (rng() % 4) {
        case 0: n = 0; break;
        case 1: n = rng() % 8; break;
        case 2: n = rng() % 1024; break;
        default: n = rng() % 70000; break;
        }
        if (n > left) n = left;
        const bool last = pos + n == payload.size() && rng() % 3 != 0;
        if (auto ec = c.decompress(payload.data() + pos, n, last, out, max_size)) return ec;
        pos += n;
        if (last) return {};
    }
}

std::string random_message(std::mt19937& rng, std::size_t size) {
    std::string s(size, '\0');
    switch (rng() % 4) {
    case 0: // random bytes: incompressible
        for (auto& ch : s) ch = static_cast<char>(rng());
        break;
    case 1: { // words: compressible text
        static const char* words[] = {"the ", "quick ", "brown ", "fox ", "jumps ", "over ", "lazy ", "dog ", "\n"};
        std::string t;
        while (t.size() < size) t += words[rng() % 9];
        s = t.substr(0, size);
        break;
    }
    case 2: // one byte repeated: highly compressible
        s.assign(size, static_cast<char>(rng()));
        break;
    default: { // a random block repeated at a random period (matches at all distances)
        const std::size_t period = 1 + rng() % 40000;
        std::string block(period, '\0');
        for (auto& ch : block) ch = static_cast<char>(rng());
        for (std::size_t i = 0; i < size; ++i) s[i] = block[i % period];
        break;
    }
    }
    return s;
}

std::size_t random_size(std::mt19937& rng) {
    switch (rng() % 4) {
    case 0: return rng() % 64;
    case 1: return rng() % 2048;
    case 2: return rng() % 40000;
    default: return rng() % (200 * 1024 + 1);
    }
}

// A raw zlib inflater with `window_bits` that keeps its window across feeds (context
// takeover) and works through a 7-byte output buffer, so every back-reference is
// resolved from the window and a distance beyond it fails.
class strict_inflater {
public:
    explicit strict_inflater(int window_bits) { ok_ = inflateInit2(&s_, -window_bits) == Z_OK; }
    ~strict_inflater() { inflateEnd(&s_); }
    strict_inflater(const strict_inflater&) = delete;
    strict_inflater& operator=(const strict_inflater&) = delete;

    bool feed(const std::string& stream, std::string& out) {
        if (!ok_) return false;
        s_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(stream.data()));
        s_.avail_in = static_cast<uInt>(stream.size());
        for (;;) {
            unsigned char buf[7];
            s_.next_out = buf;
            s_.avail_out = sizeof buf;
            const int rc = inflate(&s_, Z_SYNC_FLUSH);
            out.append(reinterpret_cast<char*>(buf), sizeof buf - s_.avail_out);
            if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) return ok_ = false;
            if (s_.avail_in == 0 && s_.avail_out != 0) return true;
        }
    }

private:
    z_stream s_{};
    bool ok_ = false;
};

const std::string sync_tail("\0\0\xff\xff", 4);

const std::string hello = "Hello";
const std::string hello_compressed = bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});

} // namespace

// ---------------------------------------------------------------------------
// §7.2.3 examples
// ---------------------------------------------------------------------------

TEST_CASE("'Hello' compresses to the RFC's bytes", "[rfc7692][7.2.3][7.2.3.1]") {
    deflate_codec server(role::server, deflate_params{true});
    CHECK(hex(compress(server, hello)) == hex(hello_compressed));

    deflate_codec client(role::client, deflate_params{true});
    std::string out;
    REQUIRE_FALSE(decompress(client, hello_compressed, out));
    CHECK(out == hello);
}

TEST_CASE("a compressed message in two fragments", "[rfc7692][7.2.3][7.2.3.1]") {
    deflate_codec client(role::client, deflate_params{true});
    std::string out;
    REQUIRE_FALSE(client.decompress(hello_compressed.data(), 3, false, out, 100)); // f2 48 cd
    REQUIRE_FALSE(client.decompress(hello_compressed.data() + 3, 4, true, out, 100)); // c9 c9 07 00
    CHECK(out == hello);
}

TEST_CASE("context takeover: the second 'Hello' refers to the first", "[rfc7692][7.2.3][7.2.3.2]") {
    deflate_codec server(role::server, deflate_params{true});
    CHECK(hex(compress(server, hello)) == hex(hello_compressed));
    const std::string second = compress(server, hello);
    CHECK(hex(second) == "f2 00 11 00 00");

    deflate_codec client(role::client, deflate_params{true});
    std::string a, b;
    REQUIRE_FALSE(decompress(client, hello_compressed, a));
    REQUIRE_FALSE(decompress(client, second, b));
    CHECK(a == hello);
    CHECK(b == hello);

    SECTION("without the first message the reference is invalid") {
        deflate_codec fresh(role::client, deflate_params{true});
        std::string c;
        CHECK(decompress(fresh, second, c) == errc::bad_compressed_data);
    }
}

TEST_CASE("no context takeover: every message compresses alone", "[rfc7692][7.2.3][7.2.3.2][7.1.1]") {
    deflate_params p{true};
    p.server_no_context_takeover = true;
    deflate_codec server(role::server, p);
    CHECK(server.compress_resets());
    CHECK(hex(compress(server, hello)) == hex(hello_compressed));
    CHECK(hex(compress(server, hello)) == hex(hello_compressed));

    deflate_codec client(role::client, p); // the server's flag resets the client's inflater
    CHECK(client.decompress_resets());
    CHECK_FALSE(client.compress_resets());
    std::string out;
    REQUIRE_FALSE(decompress(client, hello_compressed, out));
    REQUIRE_FALSE(decompress(client, hello_compressed, out));
    CHECK(out == hello + hello);
    // A reference into the previous message must now fail: the window was dropped.
    out.clear();
    CHECK(decompress(client, bytes({0xf2, 0x00, 0x11, 0x00, 0x00}), out) == errc::bad_compressed_data);
}

TEST_CASE("a DEFLATE block with no compression", "[rfc7692][7.2.3][7.2.3.3]") {
    const std::string payload = bytes({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00});
    deflate_codec c(role::server, deflate_params{true});
    std::string out;
    REQUIRE_FALSE(decompress(c, payload, out));
    CHECK(out == hello);

    SECTION("byte by byte") {
        std::string out2;
        for (std::size_t i = 0; i < payload.size(); ++i)
            REQUIRE_FALSE(c.decompress(&payload[i], 1, i + 1 == payload.size(), out2, 100));
        CHECK(out2 == hello);
    }
}

TEST_CASE("more than one DEFLATE block", "[rfc7692][7.2.3][7.2.3.4]") {
    const std::string payload =
        bytes({0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00});
    deflate_codec c(role::client, deflate_params{true});
    std::string out;
    SECTION("whole") { REQUIRE_FALSE(decompress(c, payload, out)); }
    SECTION("as two fragments split at the block boundary") {
        REQUIRE_FALSE(c.decompress(payload.data(), 8, false, out, 100));
        CHECK(out == "He");
        REQUIRE_FALSE(c.decompress(payload.data() + 8, payload.size() - 8, true, out, 100));
    }
    CHECK(out == hello);
}

TEST_CASE("a DEFLATE block with BFINAL set", "[rfc7692][7.2.3][7.2.3.5]") {
    const std::string payload = bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00});
    const std::string next = bytes({0xf2, 0x00, 0x11, 0x00, 0x00}); // "Hello" again, by reference

    SECTION("the next message may still refer to the window (context takeover)") {
        deflate_codec c(role::client, deflate_params{true});
        std::string out;
        REQUIRE_FALSE(decompress(c, payload, out));
        CHECK(out == hello);
        REQUIRE_FALSE(decompress(c, next, out));
        CHECK(out == hello + hello);
        REQUIRE_FALSE(decompress(c, hello_compressed, out)); // a fresh block still works
        CHECK(out == hello + hello + hello);
    }
    SECTION("without the trailing empty-block byte, too") {
        deflate_codec c(role::client, deflate_params{true});
        std::string out;
        REQUIRE_FALSE(decompress(c, payload.substr(0, 7), out));
        REQUIRE_FALSE(decompress(c, next, out));
        CHECK(out == hello + hello);
    }
    SECTION("with server_no_context_takeover the window is gone") {
        deflate_params p{true};
        p.server_no_context_takeover = true;
        deflate_codec c(role::client, p);
        std::string out;
        REQUIRE_FALSE(decompress(c, payload, out));
        CHECK(decompress(c, next, out) == errc::bad_compressed_data);
    }
}

TEST_CASE("empty messages", "[rfc7692][7.2.3][7.2.3.6]") {
    deflate_codec server(role::server, deflate_params{true});
    deflate_codec client(role::client, deflate_params{true});
    CHECK(hex(compress(server, "")) == "00");
    CHECK(hex(compress(server, "")) == "00"); // twice: no sync-flush marker is lost
    std::string out;
    REQUIRE_FALSE(decompress(client, bytes({0x00}), out));
    REQUIRE_FALSE(decompress(client, "", out)); // RSV1 with an empty payload
    REQUIRE_FALSE(client.decompress(nullptr, 0, false, out, 0));
    REQUIRE_FALSE(client.decompress(nullptr, 0, true, out, 0));
    CHECK(out.empty());
    // Context survives empty messages.
    const std::string a = compress(server, hello);
    const std::string b = compress(server, "");
    const std::string c = compress(server, hello);
    REQUIRE_FALSE(decompress(client, a, out));
    REQUIRE_FALSE(decompress(client, b, out));
    REQUIRE_FALSE(decompress(client, c, out));
    CHECK(out == hello + hello);
}

TEST_CASE("data that does not inflate fails with bad_compressed_data (1007)", "[rfc7692][7.2.2]") {
    deflate_codec c(role::server, deflate_params{true});
    std::string out;
    CHECK(decompress(c, bytes({0x07}), out) == errc::bad_compressed_data);         // BTYPE 11 (reserved)
    CHECK(decompress(c, bytes({0x00, 0x05, 0x00, 0x00, 0x00, 'H'}), out) == errc::bad_compressed_data); // LEN/NLEN
    CHECK(duplex::close_code_for(errc::bad_compressed_data) == 1007);

    SECTION("a truncated message is caught at its end, not in the next one") {
        deflate_codec s(role::server, deflate_params{true});
        std::string text;
        for (int i = 0; i < 200; ++i) text += "message number " + std::to_string(i * 7919) + "; ";
        const std::string full = compress(s, text);
        for (std::size_t cut = 1; cut <= 3; ++cut) {
            deflate_codec r(role::client, deflate_params{true});
            std::string got;
            CHECK(decompress(r, full.substr(0, full.size() - cut), got) == errc::bad_compressed_data);
        }
    }
    SECTION("random garbage never crashes and mostly fails") {
        std::mt19937 rng(7);
        int failures = 0;
        for (int i = 0; i < 500; ++i) {
            std::string junk(1 + rng() % 300, '\0');
            for (auto& ch : junk) ch = static_cast<char>(rng());
            deflate_codec r(role::client, deflate_params{true});
            std::string got;
            const auto ec = decompress_pieces(r, junk, got, rng, 4096);
            if (ec) {
                CHECK((ec == errc::bad_compressed_data || ec == errc::message_too_big));
                ++failures;
            }
            CHECK(got.size() <= 4096);
        }
        CHECK(failures > 450);
    }
    SECTION("the codec can be used again after an error") {
        deflate_codec r(role::client, deflate_params{true});
        std::string got;
        CHECK(decompress(r, bytes({0x07}), got) == errc::bad_compressed_data);
        got.clear();
        REQUIRE_FALSE(decompress(r, hello_compressed, got));
        CHECK(got == hello);
    }
}

// ---------------------------------------------------------------------------
// The inflated-size limit
// ---------------------------------------------------------------------------

TEST_CASE("max_size bounds the inflated message exactly", "[rfc7692][limit]") {
    deflate_codec s(role::server, deflate_params{true});
    const std::string msg(100000, 'a');
    const std::string payload = compress(s, msg);

    deflate_codec r2(role::client, deflate_params{true});
    std::string out;
    REQUIRE_FALSE(decompress(r2, payload, out, msg.size()));
    CHECK(out == msg);

    deflate_codec r3(role::client, deflate_params{true});
    out = "prefix";
    CHECK(decompress(r3, payload, out, msg.size() - 1) == errc::message_too_big);
    CHECK(out.size() <= 6 + msg.size() - 1); // never more than max_size of this message
    CHECK(duplex::close_code_for(errc::message_too_big) == 1009);

    SECTION("the limit counts the whole message across pieces, then starts over") {
        deflate_codec a(role::server, deflate_params{true});
        const std::string p1 = compress(a, std::string(3000, 'x'));
        deflate_codec b(role::client, deflate_params{true});
        std::string o;
        REQUIRE_FALSE(b.decompress(p1.data(), p1.size() / 2, false, o, 3000));
        REQUIRE_FALSE(b.decompress(p1.data() + p1.size() / 2, p1.size() - p1.size() / 2, true, o, 3000));
        CHECK(o.size() == 3000);
        const std::string p2 = compress(a, std::string(3000, 'x'));
        REQUIRE_FALSE(decompress(b, p2, o, 3000)); // a new message: a new budget
        CHECK(o.size() == 6000);
    }
}

TEST_CASE("a compression bomb stops at max_size, quickly", "[rfc7692][limit][bomb]") {
    // DEFLATE expands at most ~1032:1, so 1 GiB needs ~1 MiB of compressed data. Build
    // it from one ~1 KB unit that inflates to 1 MiB of zeros: with context takeover and
    // a full window of zeros, each further 1 MiB of zeros compresses to the same bytes.
    z_stream z{};
    REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) == Z_OK);
    const std::string zeros(1 << 20, '\0');
    std::vector<std::string> chunks;
    for (int i = 0; i < 4; ++i) {
        std::string buf(zeros.size(), '\0');
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zeros.data()));
        z.avail_in = static_cast<uInt>(zeros.size());
        z.next_out = reinterpret_cast<Bytef*>(&buf[0]);
        z.avail_out = static_cast<uInt>(buf.size());
        REQUIRE(deflate(&z, Z_SYNC_FLUSH) == Z_OK);
        REQUIRE(z.avail_in == 0);
        buf.resize(buf.size() - z.avail_out);
        chunks.push_back(buf);
    }
    deflateEnd(&z);
    const std::string& unit = chunks[2];
    REQUIRE(chunks[3] == unit);
    REQUIRE(unit.size() < 1200);
    std::string bomb = chunks[0] + chunks[1];
    while (bomb.size() < chunks[0].size() + 1100 * unit.size()) bomb += unit; // 1 + 1100 MiB > 1 GiB
    INFO("bomb: " << bomb.size() << " bytes, unit " << unit.size() << " bytes per MiB");
    bomb.resize(bomb.size() - 4); // the sender's tail removal (§7.2.1)
    REQUIRE(bomb.size() < 1500 * 1024);

    SECTION("the construction really inflates 1 MiB per unit") {
        std::string head = chunks[0] + chunks[1] + unit + unit;
        head.resize(head.size() - 4);
        deflate_codec c(role::client, deflate_params{true});
        std::string inflated;
        REQUIRE_FALSE(decompress(c, head, inflated, std::size_t(64) << 20));
        CHECK(inflated.size() == std::size_t(4) << 20);
    }
    // The receive buffer is warm, as a connection's reused message buffer is: the
    // timing then measures inflating, not the VM's page faults on fresh memory.
    const std::size_t max_size = 16 << 20;
    std::string out(max_size + deflate_codec::inflate_chunk, 'x');
    out.clear();
    const auto warm_capacity = out.capacity();

    SECTION("whole") {
        deflate_codec c(role::client, deflate_params{true});
        const auto t0 = std::chrono::steady_clock::now();
        const auto ec = decompress(c, bomb, out, max_size);
        const auto elapsed = std::chrono::steady_clock::now() - t0;
        CHECK(ec == errc::message_too_big);
        CHECK(out.size() <= max_size);
        CHECK(out.capacity() == warm_capacity); // never grew past max_size + one chunk
        CHECK(elapsed < std::chrono::seconds(1));
    }
    SECTION("in frame-size pieces, checking the output after every piece") {
        deflate_codec c(role::client, deflate_params{true});
        const auto t0 = std::chrono::steady_clock::now();
        std::error_code ec;
        std::size_t pos = 0;
        while (!ec && pos < bomb.size()) {
            const std::size_t n = std::min<std::size_t>(4096, bomb.size() - pos);
            ec = c.decompress(bomb.data() + pos, n, pos + n == bomb.size(), out, max_size);
            pos += n;
            REQUIRE(out.size() <= max_size + deflate_codec::inflate_chunk);
        }
        CHECK(ec == errc::message_too_big);
        CHECK(pos < 64 * 1024); // it stopped after ~16 units, not at the end
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
    }
}

// ---------------------------------------------------------------------------
// Negotiation
// ---------------------------------------------------------------------------

TEST_CASE("make_offer", "[rfc7692][7.1][negotiation]") {
    deflate_options o;
    CHECK(duplex::make_offer(o) == "permessage-deflate; client_max_window_bits");
    o.server_no_context_takeover = o.client_no_context_takeover = true;
    o.server_max_window_bits = 10;
    o.client_max_window_bits = 12;
    CHECK(duplex::make_offer(o) ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; "
          "client_max_window_bits=12");
    o.server_max_window_bits = 3; // clamped
    o.client_max_window_bits = 99;
    CHECK(duplex::make_offer(o) ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; "
          "client_max_window_bits");
    o.enabled = false;
    CHECK(duplex::make_offer(o).empty());
}

TEST_CASE("server negotiation: each parameter", "[rfc7692][7.1][negotiation]") {
    deflate_options policy;
    deflate_params p;
    std::string r;

    SECTION("bare offer") {
        REQUIRE(server_negotiates("permessage-deflate", policy, p, r));
        CHECK(r == "permessage-deflate");
        CHECK(p == deflate_params{true, false, false, 15, 15});
    }
    SECTION("server_no_context_takeover is honoured and echoed") {
        REQUIRE(server_negotiates("permessage-deflate; server_no_context_takeover", policy, p, r));
        CHECK(r == "permessage-deflate; server_no_context_takeover");
        CHECK(p.server_no_context_takeover);
    }
    SECTION("client_no_context_takeover is echoed") {
        REQUIRE(server_negotiates("permessage-deflate; client_no_context_takeover", policy, p, r));
        CHECK(r == "permessage-deflate; client_no_context_takeover");
        CHECK(p.client_no_context_takeover);
    }
    SECTION("the server's own no_context_takeover policy is added unasked") {
        policy.server_no_context_takeover = policy.client_no_context_takeover = true;
        REQUIRE(server_negotiates("permessage-deflate", policy, p, r));
        CHECK(r == "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    }
    SECTION("server_max_window_bits from the client") {
        REQUIRE(server_negotiates("permessage-deflate; server_max_window_bits=10", policy, p, r));
        CHECK(r == "permessage-deflate; server_max_window_bits=10");
        CHECK(p.server_max_window_bits == 10);
        policy.server_max_window_bits = 9; // the server may use a smaller window
        REQUIRE(server_negotiates("permessage-deflate; server_max_window_bits=10", policy, p, r));
        CHECK(r == "permessage-deflate; server_max_window_bits=9");
        CHECK(p.server_max_window_bits == 9);
    }
    SECTION("server_max_window_bits from the server's policy, unasked") {
        policy.server_max_window_bits = 12;
        REQUIRE(server_negotiates("permessage-deflate", policy, p, r));
        CHECK(r == "permessage-deflate; server_max_window_bits=12");
        CHECK(p.server_max_window_bits == 12);
    }
    SECTION("server_max_window_bits=8 is accepted (our deflater runs 9, see the header)") {
        REQUIRE(server_negotiates("permessage-deflate; server_max_window_bits=8", policy, p, r));
        CHECK(r == "permessage-deflate; server_max_window_bits=8");
        CHECK(p.server_max_window_bits == 8);
    }
    SECTION("client_max_window_bits without value: the server may limit the client") {
        REQUIRE(server_negotiates("permessage-deflate; client_max_window_bits", policy, p, r));
        CHECK(r == "permessage-deflate");
        CHECK(p.client_max_window_bits == 15);
        policy.client_max_window_bits = 10;
        REQUIRE(server_negotiates("permessage-deflate; client_max_window_bits", policy, p, r));
        CHECK(r == "permessage-deflate; client_max_window_bits=10");
        CHECK(p.client_max_window_bits == 10);
    }
    SECTION("client_max_window_bits with value: no more than the client's value") {
        REQUIRE(server_negotiates("permessage-deflate; client_max_window_bits=9", policy, p, r));
        CHECK(r == "permessage-deflate; client_max_window_bits=9");
        CHECK(p.client_max_window_bits == 9);
        policy.client_max_window_bits = 8;
        REQUIRE(server_negotiates("permessage-deflate; client_max_window_bits=9", policy, p, r));
        CHECK(r == "permessage-deflate; client_max_window_bits=8");
        CHECK(p.client_max_window_bits == 8);
    }
    SECTION("a client that did not offer client_max_window_bits cannot be limited (§7.1.2.2)") {
        policy.client_max_window_bits = 10;
        REQUIRE(server_negotiates("permessage-deflate", policy, p, r));
        CHECK(r == "permessage-deflate");
        CHECK(p.client_max_window_bits == 15);
    }
    SECTION("everything at once, quoted values, any case") {
        REQUIRE(server_negotiates("PerMessage-Deflate; Server_No_Context_Takeover; client_no_context_takeover; "
                                  "server_max_window_bits=\"11\"; client_max_window_bits=\"12\"",
                                  policy, p, r));
        CHECK(r == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                   "server_max_window_bits=11; client_max_window_bits=12");
        CHECK(p == deflate_params{true, true, true, 11, 12});
    }
    SECTION("policy disabled") {
        policy.enabled = false;
        CHECK_FALSE(server_negotiates("permessage-deflate", policy, p, r));
        CHECK(r.empty());
        CHECK_FALSE(p.enabled);
    }
}

TEST_CASE("server negotiation: invalid offers are declined, the next one tried", "[rfc7692][7.1][negotiation]") {
    const deflate_options policy;
    const char* invalid[] = {
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover", // duplicate
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; x_unknown",                                               // unknown
        "permessage-deflate; server_no_context_takeover=1",                            // value on a flag
        "permessage-deflate; client_no_context_takeover=\"x\"",
        "permessage-deflate; server_max_window_bits",                                  // value required
        "permessage-deflate; server_max_window_bits=7",                                // out of range
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",                               // leading zero
        "permessage-deflate; client_max_window_bits=010",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; client_max_window_bits=-9",
        "permessage-deflate; client_max_window_bits=4294967306", // 10 mod 2^32
    };
    for (const char* bad : invalid) {
        INFO(bad);
        deflate_params p;
        std::string r = "stale";
        CHECK_FALSE(server_negotiates(bad, policy, p, r));
        CHECK(r.empty());
        CHECK_FALSE(p.enabled);
        // Followed by a valid offer, that one is taken.
        REQUIRE(server_negotiates(std::string(bad) + ", permessage-deflate; client_max_window_bits=11", policy, p, r));
        CHECK(r == "permessage-deflate; client_max_window_bits=11");
    }

    SECTION("client preference order, other extensions skipped") {
        deflate_params p;
        std::string r;
        REQUIRE(server_negotiates("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=7, "
                                  "permessage-deflate; foo, permessage-deflate; server_max_window_bits=9, "
                                  "permessage-deflate",
                                  policy, p, r));
        CHECK(r == "permessage-deflate; server_max_window_bits=9");
        CHECK_FALSE(server_negotiates("x-webkit-deflate-frame, deflate-frame", policy, p, r));
        CHECK_FALSE(server_negotiates("", policy, p, r));
    }
}

TEST_CASE("client: accepting the server's response", "[rfc7692][7.1][negotiation]") {
    deflate_options offered;
    deflate_params p;

    SECTION("no extension: declined, not an error") {
        CHECK_FALSE(client_accepts("", offered, p));
        CHECK_FALSE(p.enabled);
    }
    SECTION("plain acceptance") {
        CHECK_FALSE(client_accepts("permessage-deflate", offered, p));
        CHECK(p == deflate_params{true, false, false, 15, 15});
    }
    SECTION("parameters the server may add unasked") {
        CHECK_FALSE(client_accepts("permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                                   "server_max_window_bits=10; client_max_window_bits=8",
                                   offered, p));
        CHECK(p == deflate_params{true, true, true, 10, 8});
    }
    SECTION("our own client_no_context_takeover binds us even when not echoed") {
        offered.client_no_context_takeover = true;
        CHECK_FALSE(client_accepts("permessage-deflate", offered, p));
        CHECK(p.client_no_context_takeover);
    }
    SECTION("client_max_window_bits: no larger than our value") {
        offered.client_max_window_bits = 10;
        CHECK_FALSE(client_accepts("permessage-deflate", offered, p));
        CHECK(p.client_max_window_bits == 10);
        CHECK_FALSE(client_accepts("permessage-deflate; client_max_window_bits=9", offered, p));
        CHECK(p.client_max_window_bits == 9);
        CHECK(client_accepts("permessage-deflate; client_max_window_bits=11", offered, p) == errc::bad_extension);
    }
    SECTION("server_max_window_bits we asked for") {
        offered.server_max_window_bits = 10;
        CHECK_FALSE(client_accepts("permessage-deflate; server_max_window_bits=10", offered, p));
        CHECK(p.server_max_window_bits == 10);
        CHECK_FALSE(client_accepts("permessage-deflate; server_max_window_bits=8", offered, p));
        CHECK(p.server_max_window_bits == 8);
        CHECK(client_accepts("permessage-deflate; server_max_window_bits=11", offered, p) == errc::bad_extension);
        CHECK(client_accepts("permessage-deflate", offered, p) == errc::bad_extension);
        CHECK_FALSE(p.enabled);
    }
    SECTION("server_no_context_takeover we asked for") {
        offered.server_no_context_takeover = true;
        CHECK_FALSE(client_accepts("permessage-deflate; server_no_context_takeover", offered, p));
        CHECK(p.server_no_context_takeover);
        CHECK(client_accepts("permessage-deflate", offered, p) == errc::bad_extension);
    }
    SECTION("malformed, duplicated, unknown, not offered") {
        const char* bad[] = {
            "permessage-deflate; client_max_window_bits", // a response must give the value
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover=true",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits=9; client_max_window_bits=9",
            "permessage-deflate; mystery",
            "permessage-deflate, permessage-deflate",      // accepted twice
            "x-custom",                                    // never offered
            "permessage-deflate, x-custom",
        };
        for (const char* b : bad) {
            INFO(b);
            CHECK(client_accepts(b, offered, p) == errc::bad_extension);
            CHECK_FALSE(p.enabled);
        }
        offered.enabled = false; // we offered nothing
        CHECK(client_accepts("permessage-deflate", offered, p) == errc::bad_extension);
    }
}

TEST_CASE("client offer and server answer agree", "[rfc7692][7.1][negotiation]") {
    std::mt19937 rng(42);
    for (int i = 0; i < 3000; ++i) {
        deflate_options c, s;
        c.server_no_context_takeover = rng() % 2;
        c.client_no_context_takeover = rng() % 2;
        c.server_max_window_bits = rng() % 3 ? 15 : 7 + static_cast<int>(rng() % 10);
        c.client_max_window_bits = rng() % 3 ? 15 : 7 + static_cast<int>(rng() % 10);
        s.server_no_context_takeover = rng() % 2;
        s.client_no_context_takeover = rng() % 2;
        s.server_max_window_bits = rng() % 3 ? 15 : 7 + static_cast<int>(rng() % 10);
        s.client_max_window_bits = rng() % 3 ? 15 : 7 + static_cast<int>(rng() % 10);
        const std::string offer = duplex::make_offer(c);
        deflate_params sp, cp;
        std::string response;
        REQUIRE(server_negotiates(offer, s, sp, response));
        INFO(offer << " -> " << response);
        REQUIRE_FALSE(client_accepts(response, c, cp));
        CHECK(sp == cp);
        // What each side compresses with stays within what the other inflates with.
        deflate_codec server(role::server, sp, s), client(role::client, cp, c);
        CHECK(server.compress_window_bits() <= client.decompress_window_bits());
        CHECK(client.compress_window_bits() <= server.decompress_window_bits());
        CHECK((!client.decompress_resets() || server.compress_resets()));
        CHECK((!server.decompress_resets() || client.compress_resets()));
    }
}

// ---------------------------------------------------------------------------
// Round trips in every mode
// ---------------------------------------------------------------------------

TEST_CASE("round trips in every negotiated mode", "[rfc7692][7.2][roundtrip]") {
    std::mt19937 rng(1234);
    int modes = 0;
    for (int snct = 0; snct < 2; ++snct)
        for (int cnct = 0; cnct < 2; ++cnct)
            for (int sbits = 8; sbits <= 15; ++sbits)
                for (int cbits = 8; cbits <= 15; ++cbits) {
                    if (sbits != cbits && sbits != 8 && cbits != 8 && rng() % 3 != 0) continue; // keep it quick
                    deflate_options c, s;
                    c.server_no_context_takeover = snct;
                    c.client_no_context_takeover = cnct;
                    c.server_max_window_bits = sbits;
                    c.client_max_window_bits = cbits;
                    s.compression_level = c.compression_level = static_cast<int>(rng() % 11) - 1;
                    s.mem_level = c.mem_level = 1 + static_cast<int>(rng() % 9);
                    deflate_params sp, cp;
                    std::string response;
                    REQUIRE(server_negotiates(duplex::make_offer(c), s, sp, response));
                    REQUIRE_FALSE(client_accepts(response, c, cp));
                    REQUIRE(sp == cp);
                    REQUIRE(sp.server_max_window_bits == sbits);
                    REQUIRE(sp.client_max_window_bits == cbits);
                    deflate_codec server(role::server, sp, s), client(role::client, cp, c);
                    ++modes;
                    for (int m = 0; m < 4; ++m) {
                        const bool to_server = rng() % 2;
                        deflate_codec& tx = to_server ? client : server;
                        deflate_codec& rx = to_server ? server : client;
                        const std::string msg = random_message(rng, random_size(rng));
                        std::string payload = "junk before"; // compress appends
                        REQUIRE_FALSE(tx.compress(msg.data(), msg.size(), payload));
                        payload.erase(0, 11);
                        std::string out;
                        INFO("mode snct=" << snct << " cnct=" << cnct << " sbits=" << sbits << " cbits=" << cbits
                                          << " size=" << msg.size());
                        REQUIRE_FALSE(decompress_pieces(rx, payload, out, rng));
                        REQUIRE(out == msg);
                    }
                }
    CHECK(modes > 64);
}

TEST_CASE("an 8-bit window: our 9-bit deflate never reaches past 256 bytes", "[rfc7692][window8]") {
    std::mt19937 rng(99);
    deflate_params p{true};
    p.server_max_window_bits = 8;
    for (int level = 1; level <= 9; level += 4) {
        for (int reset = 0; reset < 2; ++reset) {
            deflate_options o;
            o.compression_level = level;
            p.server_no_context_takeover = reset;
            deflate_codec server(role::server, p, o);
            deflate_codec client(role::client, p, o);
            REQUIRE(client.decompress_window_bits() == 8);
            strict_inflater strict(8); // one stream: with context takeover it spans messages
            for (int i = 0; i < 30; ++i) {
                // Repeats at distances just past 256 tempt a 512-byte window.
                const std::size_t period = 240 + rng() % 400;
                std::string block(period, '\0');
                for (auto& ch : block) ch = static_cast<char>('a' + rng() % 3);
                std::string msg;
                while (msg.size() < 20000) msg += block;
                const std::string payload = compress(server, msg);
                std::string by_strict, by_codec;
                INFO("level " << level << " reset " << reset << " message " << i << " period " << period);
                if (reset) {
                    strict_inflater alone(8); // no context takeover: each message inflates alone
                    REQUIRE(alone.feed(payload + sync_tail, by_strict));
                } else {
                    REQUIRE(strict.feed(payload + sync_tail, by_strict));
                }
                REQUIRE(by_strict == msg);
                REQUIRE_FALSE(client.decompress(payload.data(), payload.size(), true, by_codec, 1 << 20));
                REQUIRE(by_codec == msg);
            }
        }
    }
    SECTION("the strict harness does catch a larger window") {
        deflate_params p10{true};
        p10.server_max_window_bits = 10;
        deflate_codec server(role::server, p10);
        std::string block(300, '\0');
        for (auto& ch : block) ch = static_cast<char>(rng());
        std::string msg;
        for (int i = 0; i < 20; ++i) msg += block;
        std::string out;
        CHECK_FALSE(strict_inflater(8).feed(compress(server, msg) + sync_tail, out));
        CHECK(strict_inflater(10).feed(compress(server, msg) + sync_tail, out = {}) == false); // refers back
        deflate_codec fresh(role::server, p10);
        CHECK(strict_inflater(10).feed(compress(fresh, msg) + sync_tail, out = {}));
        CHECK(out == msg);
    }
}

// ---------------------------------------------------------------------------
// Odds and ends
// ---------------------------------------------------------------------------

TEST_CASE("threshold, buffer reuse, memory estimate", "[rfc7692][codec]") {
    deflate_options o;
    o.threshold = 32;
    deflate_codec c(role::server, deflate_params{true}, o);
    CHECK_FALSE(c.should_compress(31));
    CHECK(c.should_compress(32));

    std::string out;
    const std::string msg(5000, 'z');
    REQUIRE_FALSE(c.compress(msg.data(), msg.size(), out));
    out.clear();
    REQUIRE_FALSE(c.compress(msg.data(), msg.size(), out));
    const auto cap = out.capacity();
    const auto* data = out.data();
    for (int i = 0; i < 10; ++i) {
        out.clear();
        REQUIRE_FALSE(c.compress(msg.data(), msg.size(), out));
    }
    CHECK(out.capacity() == cap);
    CHECK(out.data() == data);

    // zlib's formula with the defaults: deflate 2^17 + 2^17, inflate 2^15, plus state.
    CHECK(c.memory_estimate() > 262144 + 32768);
    CHECK(c.memory_estimate() < 262144 + 32768 + 16 * 1024);
    deflate_params small{true, false, false, 9, 9};
    deflate_codec s(role::server, small);
    CHECK(s.memory_estimate() < c.memory_estimate() - 100000);

    SECTION("a moved codec keeps its streams") {
        deflate_codec a(role::server, deflate_params{true});
        const std::string first = compress(a, hello);
        deflate_codec b(std::move(a));
        CHECK(hex(compress(b, hello)) == "f2 00 11 00 00");
        (void)first;
    }
}
