// libFuzzer target: server_frame_parser (frames from a client, masked).
// Input: [flags][n][n chunk sizes][stream...]. The stream is fed in chunks of
// those sizes (cycling), each copied into an exactly-sized heap buffer so
// ASan catches any read past `size`, then fed again whole; both runs must
// agree on completed messages, control frames and the error.
#include <duplex/core/frame.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_check.hpp"

#ifndef DUPLEX_FUZZ_ROLE
#define DUPLEX_FUZZ_ROLE duplex::role::server
#endif

namespace {

using kind = duplex::parse_event::kind_t;

struct summary {
    std::vector<std::string> completed; // "m<op>:payload" or "c<op>:payload"
    std::error_code ec;
};

struct run_state {
    std::string message; // the open message so far
    bool open = false;
    bool check_text = false;
};

// Feeds [p, p+n) to the parser; returns false once it failed.
bool feed_chunk(duplex::basic_frame_parser<DUPLEX_FUZZ_ROLE>& parser, std::uint8_t* p, std::size_t n,
                const duplex::frame_parser_options& opt, run_state& st, summary& out) {
    std::size_t off = 0;
    while (off < n) {
        std::size_t consumed = ~std::size_t(0);
        const duplex::parse_event ev = parser.parse(p + off, n - off, consumed);
        FUZZ_CHECK(consumed <= n - off);
        if (ev.kind == kind::error) {
            FUZZ_CHECK(ev.ec);
            out.ec = ev.ec;
            std::size_t again = 7;
            const duplex::parse_event ev2 = parser.parse(p + off, n - off, again);
            FUZZ_CHECK(ev2.kind == kind::error && ev2.ec == ev.ec && again == 0);
            return false;
        }
        FUZZ_CHECK(consumed > 0);
        const std::uint8_t* const base = p + off;
        off += consumed;
        switch (ev.kind) {
        case kind::need_more: FUZZ_CHECK(off == n); break;
        case kind::data: {
            FUZZ_CHECK(duplex::is_data(ev.op));
            FUZZ_CHECK(ev.size <= consumed);
            // The piece is the tail of what was consumed, inside the input.
            FUZZ_CHECK(ev.size == 0 || (ev.data >= base && ev.data + ev.size == base + consumed));
            FUZZ_CHECK(ev.message_begin == !st.open);
            FUZZ_CHECK(!ev.message_end || ev.frame_end);
            FUZZ_CHECK(!ev.compressed || opt.allow_rsv1);
            if (ev.message_begin) {
                st.message.clear();
                st.check_text = ev.op == duplex::opcode::text && !ev.compressed && opt.validate_utf8;
            }
            st.message.append(reinterpret_cast<const char*>(ev.data), ev.size);
            FUZZ_CHECK(st.message.size() <= opt.max_message_size);
            st.open = !ev.message_end;
            FUZZ_CHECK(parser.in_message() == st.open);
            if (ev.message_end) {
                if (st.check_text) FUZZ_CHECK(duplex::is_valid_utf8(st.message.data(), st.message.size()));
                out.completed.push_back("m" + std::to_string(int(ev.op)) + ":" + st.message);
            }
            break;
        }
        case kind::control: {
            FUZZ_CHECK(duplex::is_control(ev.op));
            FUZZ_CHECK(ev.size <= 125);
            FUZZ_CHECK(ev.size == 0 || ev.data != nullptr);
            if (ev.op == duplex::opcode::close) {
                FUZZ_CHECK(ev.size != 1);
                FUZZ_CHECK(ev.close_code == 1005 ? ev.size == 0 : duplex::is_valid_close_code(ev.close_code));
                FUZZ_CHECK(duplex::is_valid_utf8(ev.close_reason.data(), ev.close_reason.size()));
                FUZZ_CHECK(ev.size == 0 || ev.close_reason.size() == ev.size - 2);
            }
            out.completed.push_back("c" + std::to_string(int(ev.op)) + ":" +
                                    std::string(reinterpret_cast<const char*>(ev.data), ev.size));
            break;
        }
        case kind::error: break;
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    duplex::frame_parser_options opt;
    opt.allow_rsv1 = (data[0] & 1) != 0;
    opt.validate_utf8 = (data[0] & 2) == 0;
    opt.max_message_size = (data[0] & 4) ? 64 : (1u << 20);
    const std::size_t n_sizes = data[1] % 16;
    if (size < 2 + n_sizes) return 0;
    const std::uint8_t* sizes = data + 2;
    const std::uint8_t* stream = data + 2 + n_sizes;
    const std::size_t stream_size = size - 2 - n_sizes;

    // Chunked run: every chunk in its own exactly-sized allocation.
    summary chunked;
    {
        duplex::basic_frame_parser<DUPLEX_FUZZ_ROLE> parser(opt);
        run_state st;
        std::size_t pos = 0, i = 0;
        while (pos < stream_size) {
            std::size_t len = n_sizes ? sizes[i++ % n_sizes] : stream_size;
            if (len == 0 || len > stream_size - pos) len = stream_size - pos;
            auto* chunk = static_cast<std::uint8_t*>(std::malloc(len));
            std::memcpy(chunk, stream + pos, len);
            const bool ok = feed_chunk(parser, chunk, len, opt, st, chunked);
            std::free(chunk);
            pos += len;
            if (!ok) break;
        }
    }
    // Whole-buffer run must agree.
    summary whole;
    {
        duplex::basic_frame_parser<DUPLEX_FUZZ_ROLE> parser(opt);
        run_state st;
        std::vector<std::uint8_t> buf(stream, stream + stream_size);
        if (!buf.empty()) feed_chunk(parser, buf.data(), buf.size(), opt, st, whole);
    }
    FUZZ_CHECK(chunked.ec == whole.ec);
    FUZZ_CHECK(chunked.completed == whole.completed);
    return 0;
}
