// permessage-deflate (RFC 7692), sans I/O: the Sec-WebSocket-Extensions
// negotiation (§5, §7.1) and a per-connection codec that compresses whole
// messages and inflates received ones piece by piece (§7.2), with the inflated
// size bounded while inflating. The only header in include/ that needs zlib.
//
// Window bits 8. zlib 1.2.9+ refuses windowBits 8 for raw deflate (deflateInit2
// returns Z_STREAM_ERROR; older versions silently used 9). When our compressor
// must keep to an 8-bit (256-byte) window, it runs with windowBits 9. That is
// correct, not just tolerated: zlib never emits a match farther back than
// MAX_DIST = window size - MIN_LOOKAHEAD (262), i.e. 250 bytes for windowBits 9,
// so every stream it produces is decodable with a 256-byte window. The unit test
// "[rfc7692][window8]" checks exactly that against an 8-bit zlib inflater fed
// through a tiny output buffer (so distances beyond the window fail), and checks
// that the same harness does catch a 10-bit stream. Inflating with an 8-bit window
// is plain zlib and needs no trick.
#pragma once
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "../core/error.hpp"
#include "../core/handshake.hpp"
#include "../core/opcode.hpp"
#include "../detail/owned.hpp"
#include "deflate_negotiation.hpp"

namespace duplex {

/// One connection's compressor and decompressor. Not thread-safe as a whole, but the
/// two halves share nothing: one thread may compress (e.g. under the send lock) while
/// another decompresses (the reader). zlib streams are created on first use and freed
/// with the codec; the codec may be moved.
///
/// Errors: decompress reports errc::bad_compressed_data (1007) for data that does not
/// inflate, errc::message_too_big (1009) past max_size; both mean _Fail the WebSocket
/// Connection_. zlib failing to allocate is reported as std::errc::not_enough_memory
/// (generic category) and a zlib usage error as std::errc::invalid_argument; duplex has
/// no errc for these yet. After an error the failed half is reset, so the codec stays
/// safe to use, but the connection should be failed.
class deflate_codec {
public:
    /// Bytes inflated per zlib call at most: decompress never holds more than this
    /// beyond the bytes it has accepted.
    static constexpr std::size_t inflate_chunk = 16 * 1024;

    deflate_codec(role r, const deflate_params& params, const deflate_options& options = {}) noexcept {
        const bool server = r == role::server;
        const int own_bits = detail::clamp_window_bits(server ? params.server_max_window_bits : params.client_max_window_bits);
        const int own_cap = detail::clamp_window_bits(server ? options.server_max_window_bits : options.client_max_window_bits);
        tx_window_bits_ = std::min(own_bits, own_cap);
        tx_reset_ = server ? params.server_no_context_takeover || options.server_no_context_takeover
                           : params.client_no_context_takeover || options.client_no_context_takeover;
        rx_window_bits_ = detail::clamp_window_bits(server ? params.client_max_window_bits : params.server_max_window_bits);
        rx_reset_ = server ? params.client_no_context_takeover : params.server_no_context_takeover;
        level_ = options.compression_level < -1 ? -1 : options.compression_level > 9 ? 9 : options.compression_level;
        mem_level_ = options.mem_level < 1 ? 1 : options.mem_level > 9 ? 9 : options.mem_level;
        threshold_ = options.threshold;
    }

    deflate_codec(deflate_codec&&) noexcept = default;
    deflate_codec& operator=(deflate_codec&&) noexcept = default;
    deflate_codec(const deflate_codec&) = delete;
    deflate_codec& operator=(const deflate_codec&) = delete;
    ~deflate_codec() = default;

    /// Whether a message of `size` bytes is worth compressing (size >= threshold).
    bool should_compress(std::size_t size) const noexcept { return size >= threshold_; }

    /// Compresses one whole message and appends the payload to send with RSV1 on its
    /// first frame to `out` (§7.2.1: DEFLATE, Z_SYNC_FLUSH, the trailing 00 00 ff ff
    /// removed). Resets the compressor afterwards when our side has no context
    /// takeover. Reuse `out`: once its capacity has grown, nothing is allocated.
    std::error_code compress(const void* data, std::size_t size, std::string& out) {
        if (size == 0) { // §7.2.3.6: an empty stored block's header; the window is unchanged
            out += '\0';
            return {};
        }
        if (!tx_)
            if (auto ec = init_deflater()) return ec;
        z_stream& s = tx_->s;
        const auto* in = static_cast<const Bytef*>(data);
        std::size_t remaining = size;
        std::size_t written = out.size();
        const std::size_t start = written;
        std::error_code ec;
        do {
            const uInt step = remaining > UINT_MAX ? UINT_MAX : static_cast<uInt>(remaining);
            s.next_in = const_cast<Bytef*>(in); // zlib's API is const-correct only with ZLIB_CONST
            s.avail_in = step;
            in += step;
            remaining -= step;
            const int flush = remaining == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
            do {
                // Room for the whole piece in one call, usually (deflateBound is exact for
                // Z_FINISH; a sync flush adds at most a few bytes, and the loop covers the rest).
                std::size_t room = static_cast<std::size_t>(deflateBound(&s, s.avail_in)) + 16;
                if (room > UINT_MAX) room = UINT_MAX;
                out.resize(written + room);
                s.next_out = reinterpret_cast<Bytef*>(&out[written]);
                s.avail_out = static_cast<uInt>(room);
                const int rc = deflate(&s, flush);
                written += room - s.avail_out;
                if (rc != Z_OK && rc != Z_BUF_ERROR) { // Z_BUF_ERROR: no progress possible, not fatal
                    ec = std::make_error_code(std::errc::invalid_argument);
                    break;
                }
            } while (s.avail_out == 0);
        } while (!ec && remaining > 0);
        static constexpr unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
        if (!ec && (written - start < 4 || std::char_traits<char>::compare(&out[written - 4],
                                                                           reinterpret_cast<const char*>(tail), 4) != 0))
            ec = std::make_error_code(std::errc::invalid_argument); // a sync flush always ends so
        if (ec) {
            out.resize(start);
            deflateReset(&s);
            return ec;
        }
        out.resize(written - 4);
        if (tx_reset_) deflateReset(&s);
        return {};
    }

    /// Inflates the next piece of a compressed message's payload (as the frames bring
    /// it) and appends the result to `out`; `last` marks the message's final piece, at
    /// which the removed 00 00 ff ff is fed back (§7.2.2) and, with the peer's
    /// no_context_takeover, the inflater is reset. `max_size` bounds the message's
    /// inflated size: it is enforced while inflating, at most inflate_chunk bytes at a
    /// time, and past it decompress fails with errc::message_too_big having appended at
    /// most max_size bytes of this message. Data that does not inflate, or a message
    /// that does not end on a DEFLATE block boundary, fails with
    /// errc::bad_compressed_data. A compressed message with an empty payload inflates
    /// to nothing. If a block with BFINAL set ends the DEFLATE stream (§7.2.3.5), the
    /// rest of that message is ignored and the next one starts a new stream, keeping the
    /// window unless the peer has no context takeover.
    /// `out` is a std::string or any buffer with size(), data() and resize().
    template <class Buffer>
    std::error_code decompress(const void* data, std::size_t size, bool last, Buffer& out, std::size_t max_size) {
        if (!rx_)
            if (auto ec = init_inflater()) return ec;
        std::error_code ec;
        if (size > 0) {
            rx_has_input_ = true;
            ec = inflate_some(static_cast<const Bytef*>(data), size, out, max_size);
        }
        if (!ec && last) {
            if (rx_has_input_ && !rx_stream_ended_) {
                static constexpr Bytef tail[4] = {0x00, 0x00, 0xff, 0xff};
                ec = inflate_some(tail, sizeof tail, out, max_size);
                // After the tail's empty stored block inflate waits for a block header
                // (data_type bit 128). Anything else is a truncated or malformed message.
                if (!ec && !rx_stream_ended_ && (rx_->s.data_type & 128) == 0)
                    ec = make_error_code(errc::bad_compressed_data);
            }
            if (!ec) ec = end_message();
        }
        if (ec) {
            inflateReset(&rx_->s);
            rx_produced_ = 0;
            rx_has_input_ = rx_stream_ended_ = false;
        }
        return ec;
    }

    /// zlib memory this codec holds once both directions have been used, from zlib's
    /// own formulas (zconf.h): deflate (1 << (windowBits + 2)) + (1 << (memLevel + 9))
    /// plus its ~5.9 KB state; inflate (1 << windowBits) plus its ~7.1 KB state. With the
    /// defaults (15/8 both ways) that is 262144 + 6 KB + 32768 + 7 KB, about 308 KB; the
    /// resident part is lower for short messages (untouched window pages). Add what
    /// the caller's buffers hold.
    std::size_t memory_estimate() const noexcept {
        const int tx_bits = tx_window_bits_ == 8 ? 9 : tx_window_bits_;
        const std::size_t deflate_bytes =
            (std::size_t{1} << (tx_bits + 2)) + (std::size_t{1} << (mem_level_ + 9)) + 5952 + sizeof(tx_state);
        const std::size_t inflate_bytes = (std::size_t{1} << rx_window_bits_) + 7160 + sizeof(rx_state);
        return deflate_bytes + inflate_bytes;
    }

    /// Window bits of our compressor (as negotiated; zlib runs 9 when this is 8) and
    /// of our inflater, and whether each is reset per message.
    int compress_window_bits() const noexcept { return tx_window_bits_; }
    int decompress_window_bits() const noexcept { return rx_window_bits_; }
    bool compress_resets() const noexcept { return tx_reset_; }
    bool decompress_resets() const noexcept { return rx_reset_; }

private:
    struct tx_state {
        z_stream s{};
        ~tx_state() { deflateEnd(&s); }
    };
    struct rx_state {
        z_stream s{};
        std::string dictionary; // only for a stream that ended with BFINAL (rare)
        ~rx_state() { inflateEnd(&s); }
    };

    static std::error_code zlib_init_error(int rc) noexcept {
        return std::make_error_code(rc == Z_MEM_ERROR ? std::errc::not_enough_memory : std::errc::invalid_argument);
    }

    // A failed init leaves the z_stream without state, which deflateEnd/inflateEnd ignore.
    std::error_code init_deflater() noexcept {
        tx_.reset(new (std::nothrow) tx_state{});
        if (!tx_) return std::make_error_code(std::errc::not_enough_memory);
        const int bits = tx_window_bits_ == 8 ? 9 : tx_window_bits_; // see the note at the top
        const int rc = deflateInit2(&tx_->s, level_, Z_DEFLATED, -bits, mem_level_, Z_DEFAULT_STRATEGY);
        if (rc != Z_OK) {
            tx_.reset();
            return zlib_init_error(rc);
        }
        return {};
    }

    std::error_code init_inflater() noexcept {
        rx_.reset(new (std::nothrow) rx_state{});
        if (!rx_) return std::make_error_code(std::errc::not_enough_memory);
        const int rc = inflateInit2(&rx_->s, -rx_window_bits_);
        if (rc != Z_OK) {
            rx_.reset();
            return zlib_init_error(rc);
        }
        return {};
    }

    // Inflates [in, in+size) into out in chunks of at most inflate_chunk bytes, never
    // letting this message's output pass max_size by more than one byte (which is then
    // taken back). Returns once all input is consumed and all output is out.
    template <class Buffer>
    std::error_code inflate_some(const Bytef* in, std::size_t size, Buffer& out, std::size_t max_size) {
        z_stream& s = rx_->s;
        s.avail_in = 0;
        // Output room per inflate call: about what this input inflates to (chat and
        // JSON: 3-5x), doubling while it fills. A std::string zero-fills what it grows
        // into, so a fixed 16 KiB step cost two 16 KiB memsets per small message.
        std::size_t out_step = size > inflate_chunk / 4 ? inflate_chunk : size * 4 < 256 ? 256 : size * 4;
        for (;;) {
            if (rx_stream_ended_) return {}; // the rest of the message follows a final block
            if (s.avail_in == 0) {
                if (size == 0) return {};
                const uInt step = size > UINT_MAX ? UINT_MAX : static_cast<uInt>(size);
                s.next_in = const_cast<Bytef*>(in);
                s.avail_in = step;
                in += step;
                size -= step;
            }
            // rx_produced_ <= max_size here; one byte past the room proves the overflow.
            const std::size_t room = max_size - rx_produced_;
            const std::size_t chunk = room < out_step ? room + 1 : out_step;
            const std::size_t before = out.size();
            out.resize(before + chunk);
            s.next_out = reinterpret_cast<Bytef*>(out.data()) + before;
            s.avail_out = static_cast<uInt>(chunk);
            const int rc = inflate(&s, Z_SYNC_FLUSH);
            const std::size_t got = chunk - s.avail_out;
            out.resize(before + got);
            if (s.avail_out == 0 && out_step < inflate_chunk) out_step *= 2;
            rx_produced_ += got;
            if (rx_produced_ > max_size) {
                out.resize(out.size() - (rx_produced_ - max_size));
                return make_error_code(errc::message_too_big);
            }
            switch (rc) {
            case Z_OK: break;
            case Z_BUF_ERROR: // no progress possible: fine when the input is exhausted
                if (s.avail_in != 0 && s.avail_out != 0) return make_error_code(errc::bad_compressed_data);
                break;
            case Z_STREAM_END: rx_stream_ended_ = true; break;
            case Z_MEM_ERROR: return std::make_error_code(std::errc::not_enough_memory);
            default: return make_error_code(errc::bad_compressed_data); // Z_DATA_ERROR, Z_NEED_DICT
            }
            if (s.avail_out != 0 && s.avail_in == 0 && size == 0) return {};
        }
    }

    std::error_code end_message() {
        z_stream& s = rx_->s;
        if (rx_stream_ended_) {
            // A new DEFLATE stream starts with the next message. With context takeover the
            // peer may still refer to this message's bytes: carry the window over.
            if (rx_reset_) {
                inflateReset(&s);
            } else {
                uInt n = 0;
                inflateGetDictionary(&s, nullptr, &n);
                rx_->dictionary.resize(n);
                if (n > 0) inflateGetDictionary(&s, reinterpret_cast<Bytef*>(&rx_->dictionary[0]), &n);
                inflateReset(&s);
                if (n > 0 && inflateSetDictionary(&s, reinterpret_cast<const Bytef*>(rx_->dictionary.data()), n) != Z_OK)
                    return make_error_code(errc::bad_compressed_data);
            }
        } else if (rx_reset_) {
            inflateReset(&s);
        }
        rx_produced_ = 0;
        rx_has_input_ = rx_stream_ended_ = false;
        return {};
    }

    detail::owned<tx_state> tx_; // not std::unique_ptr: fewer functions to compile at -O0
    detail::owned<rx_state> rx_;
    std::size_t rx_produced_ = 0; // inflated bytes of the current message
    bool rx_has_input_ = false;   // the current message had payload bytes
    bool rx_stream_ended_ = false;
    bool tx_reset_ = false;
    bool rx_reset_ = false;
    int tx_window_bits_ = 15;
    int rx_window_bits_ = 15;
    int level_ = Z_DEFAULT_COMPRESSION;
    int mem_level_ = 8;
    std::size_t threshold_ = 32;
};

} // namespace duplex
