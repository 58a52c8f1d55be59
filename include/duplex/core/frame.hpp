// The WebSocket frame codec (RFC 6455 §5): header encoding, an incremental
// sans-I/O parser that validates every frame rule, and a frame writer.
#pragma once
#include "../detail/instantiate.hpp"
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <system_error>

#include "duplex/core/close.hpp"
#include "duplex/core/detail/endian.hpp"
#include "duplex/core/error.hpp"
#include "duplex/core/mask.hpp"
#include "duplex/core/opcode.hpp"
#include "duplex/core/random.hpp"
#include "duplex/core/utf8.hpp"

namespace duplex {

/// 2 bytes + 8-byte extended length + 4-byte masking key (§5.2).
constexpr std::size_t max_frame_header_size = 14;
/// Control frames carry at most 125 payload bytes (§5.5).
constexpr std::size_t max_control_payload_size = 125;

/// A decoded frame header (§5.2).
struct frame_header {
    opcode op = opcode::continuation;
    bool fin = false, rsv1 = false, rsv2 = false, rsv3 = false, masked = false;
    std::uint64_t payload_size = 0;
    mask_key key{};
};

/// Size of the shortest header for a frame of `payload_size` bytes (§5.2).
inline std::size_t frame_header_size(std::uint64_t payload_size, bool masked) noexcept {
    const std::size_t ext = payload_size < 126 ? 0 : payload_size <= 0xFFFF ? 2 : 8;
    return 2 + ext + (masked ? 4 : 0);
}

/// Writes the shortest header for the frame into out (>= 14 bytes) and
/// returns its size. A non-null `key` sets MASK and appends the key.
/// payload_size must be < 2^63 (§5.2: the top bit must be 0).
inline std::size_t write_frame_header(std::uint8_t* out, opcode op, bool fin, std::uint64_t payload_size,
                                      const mask_key* key = nullptr, bool rsv1 = false) noexcept {
    out[0] = static_cast<std::uint8_t>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | static_cast<std::uint8_t>(op));
    const std::uint8_t mask_bit = key ? 0x80 : 0;
    std::size_t n = 2;
    if (payload_size < 126) {
        out[1] = static_cast<std::uint8_t>(mask_bit | payload_size);
    } else if (payload_size <= 0xFFFF) {
        out[1] = static_cast<std::uint8_t>(mask_bit | 126);
        detail::store_be16(out + 2, static_cast<std::uint16_t>(payload_size));
        n = 4;
    } else {
        out[1] = static_cast<std::uint8_t>(mask_bit | 127);
        detail::store_be64(out + 2, payload_size);
        n = 10;
    }
    if (key) {
        std::memcpy(out + n, key->data(), 4);
        n += 4;
    }
    return n;
}

/// Parser settings; may be changed between messages through options().
struct frame_parser_options {
    std::uint64_t max_message_size = 16 * 1024 * 1024; ///< 1009 past it (sum of a message's frames)
    /// Largest payload of one data frame; errc::frame_too_big (1009) past it, from the
    /// header alone. Default: no per-frame limit (only max_message_size applies).
    std::uint64_t max_frame_size = ~std::uint64_t(0);
    bool allow_rsv1 = false;    ///< permessage-deflate negotiated: RSV1 on a message's first frame
    /// A compressed message (RSV1) may carry max_message_size / 32 + 1 KiB more on
    /// the wire: deflate can grow incompressible data a little, and the extension
    /// holds the inflated size to the limit itself. Uncompressed messages get none.
    bool compressed_slack = false;
    bool validate_utf8 = true;  ///< validate uncompressed text messages incrementally
};

/// What one parse() call found.
struct parse_event {
    // Scoped: an unscoped enumerator `data` would clash with the member `data`.
    enum class kind_t : std::uint8_t { need_more, data, control, error };
    kind_t kind = kind_t::need_more; ///< what happened; need_more: every byte given was consumed
    opcode op = opcode::continuation; ///< data: the message's opcode (text/binary), control: close/ping/pong
    bool message_begin = false;  ///< data: first piece of a message
    bool frame_end = false;      ///< data: last piece of the current frame
    bool message_end = false;    ///< data: last piece of the message (frame_end of a FIN frame)
    bool compressed = false;     ///< data: the message has RSV1 set (permessage-deflate)
    /// data: unmasked piece in the caller's buffer; control: the whole unmasked payload,
    /// in the caller's buffer or the parser's. Valid until the next parse call.
    const std::uint8_t* data = nullptr;
    std::size_t size = 0;        ///< bytes at `data`
    std::uint16_t close_code = 0; ///< control close: the code, or 1005 when the payload is empty
    std::string_view close_reason; ///< control close: validated UTF-8
    std::error_code ec;          ///< error: the broken rule (the parser stays failed)
};

/// Incremental, allocation-free frame parser for one direction of a
/// connection. R is the role of the endpoint that receives: a server parser
/// demands masked frames, a client parser refuses them (§5.1).
template <role R>
class basic_frame_parser {
public:
    /// A parser waiting for the first frame of a connection.
    explicit basic_frame_parser(frame_parser_options options = {}) noexcept : options_(options) {}

    /// Consumes bytes from [data, data+size) until it can report one event,
    /// and sets `consumed`. Payload is unmasked in place. A data frame is
    /// reported piece by piece as bytes arrive (a zero-length data frame
    /// yields one data event with size 0); control frames are reported whole,
    /// unmasked in place when the input holds all of one, else gathered in the
    /// parser. need_more means every byte given was consumed. Never reads past
    /// data+size; allocates only 125 bytes, once, on the first control frame
    /// that arrives split across calls.
    parse_event parse(std::uint8_t* data, std::size_t size, std::size_t& consumed) noexcept {
        parse_event ev;
        consumed = 0;
        if (ec_ != errc{}) return fail(ev, ec_);
        while (true) {
            switch (state_) {
            case state::header: {
                if (!read_header(data, size, consumed)) return ev; // need_more
                if (const errc e = check_header(); e != errc{}) return fail(ev, e);
                if (is_control(header_.op)) {
                    state_ = state::control_payload;
                    control_size_ = 0;
                } else {
                    begin_data_frame();
                    state_ = state::data_payload;
                    if (header_.payload_size == 0) return emit_data(ev, data + consumed, 0);
                }
                break;
            }
            case state::data_payload: {
                if (consumed == size) return ev; // need_more
                const std::size_t avail = size - consumed;
                const std::size_t n = frame_left_ < avail ? static_cast<std::size_t>(frame_left_) : avail;
                std::uint8_t* p = data + consumed;
                if (header_.masked) apply_mask(p, n, header_.key, mask_phase_);
                consumed += n;
                return emit_data(ev, p, n);
            }
            case state::control_payload: {
                const auto total = static_cast<std::size_t>(header_.payload_size);
                if (control_size_ == 0 && size - consumed >= total) {
                    // Whole in the input (the usual case): unmasked in place, no copy.
                    std::uint8_t* p = data + consumed;
                    if (header_.masked) apply_mask(p, total, header_.key, 0);
                    consumed += total;
                    return emit_control(ev, p, total);
                }
                // Split across calls: gathered in a buffer made on the first such frame,
                // so a connection that never sees one does not carry 125 bytes.
                if (!control_) {
                    control_.reset(new (std::nothrow) std::uint8_t[max_control_payload_size]);
                    if (!control_) return fail(ev, errc::internal_error);
                }
                const std::size_t want = total - control_size_;
                const std::size_t n = want < size - consumed ? want : size - consumed;
                if (n > 0) {
                    std::memcpy(control_.get() + control_size_, data + consumed, n);
                    if (header_.masked) apply_mask(control_.get() + control_size_, n, header_.key, control_size_);
                    control_size_ = static_cast<std::uint8_t>(control_size_ + n);
                    consumed += n;
                }
                if (control_size_ < total) return ev; // need_more
                control_size_ = 0;
                return emit_control(ev, control_.get(), total);
            }
            }
        }
    }

    /// The settings; changes apply from the next frame header.
    frame_parser_options& options() noexcept { return options_; }

    /// True while a fragmented message is unfinished.
    bool in_message() const noexcept { return in_message_; }

    /// Payload bytes still to come in the data frame being read (0 between
    /// frames and in control frames): a caller may read up to that many straight
    /// to where they belong and parse them there.
    std::uint64_t data_left() const noexcept { return state_ == state::data_payload ? frame_left_ : 0; }
    /// Whether the next data piece is the first of its message.
    bool message_starting() const noexcept { return message_begin_; }
    /// Whether the message being read has RSV1 set (permessage-deflate).
    bool message_compressed() const noexcept { return compressed_; }

    /// Back to the start of a stream; clears a failure. Options are kept.
    void reset() noexcept { *this = basic_frame_parser(options_); }

private:
    enum class state : std::uint8_t { header, data_payload, control_payload };

    // Reads a header. When it is all in the input it is decoded in place;
    // otherwise its bytes are gathered in header_bytes_ (at most 14) across calls.
    bool read_header(const std::uint8_t* data, std::size_t size, std::size_t& consumed) noexcept {
        const std::size_t avail = size - consumed;
        if (header_len_ == 0 && avail >= 2) {
            const std::size_t need = header_size_from(data[consumed + 1]);
            if (avail >= need) {
                decode_header(data + consumed);
                consumed += need;
                return true;
            }
        }
        while (true) {
            const std::size_t need = header_len_ < 2 ? 2 : header_size_from(header_bytes_[1]);
            if (header_len_ == need) break;
            const std::size_t left = size - consumed;
            if (left == 0) return false;
            const std::size_t n = need - header_len_ < left ? need - header_len_ : left;
            std::memcpy(header_bytes_ + header_len_, data + consumed, n);
            header_len_ = static_cast<std::uint8_t>(header_len_ + n);
            consumed += n;
        }
        decode_header(header_bytes_);
        header_len_ = 0;
        return true;
    }

    // Header size announced by the second byte (MASK bit, 7-bit length; §5.2).
    static std::size_t header_size_from(std::uint8_t second) noexcept {
        const std::uint8_t code = second & 0x7F;
        return std::size_t{2} + (code == 126 ? 2u : code == 127 ? 8u : 0u) + ((second & 0x80) ? 4u : 0u);
    }

    void decode_header(const std::uint8_t* h) noexcept {
        header_.fin = (h[0] & 0x80) != 0;
        header_.rsv1 = (h[0] & 0x40) != 0;
        header_.rsv2 = (h[0] & 0x20) != 0;
        header_.rsv3 = (h[0] & 0x10) != 0;
        header_.op = static_cast<opcode>(h[0] & 0x0F);
        header_.masked = (h[1] & 0x80) != 0;
        length_code_ = h[1] & 0x7F;
        std::size_t pos = 2;
        if (length_code_ == 126) {
            header_.payload_size = detail::load_be16(h + 2);
            pos = 4;
        } else if (length_code_ == 127) {
            header_.payload_size = detail::load_be64(h + 2);
            pos = 10;
        } else {
            header_.payload_size = length_code_;
        }
        if (header_.masked) std::memcpy(header_.key.data(), h + pos, 4);
    }

    // Every header rule, in the order RFC 6455 states them.
    // errc{} (0) when the header is valid: no error_code is built on the hot path.
    errc check_header() const noexcept {
        const frame_header& h = header_;
        const bool control = is_control(h.op);
        // §5.2 RSV1-3: must be 0 unless an extension gives them a meaning. The
        // only one we know, permessage-deflate (RFC 7692 §6), uses RSV1 on the
        // first frame of a data message only.
        if (h.rsv2 || h.rsv3) return errc::reserved_bits;
        if (h.rsv1 && (!options_.allow_rsv1 || control || h.op == opcode::continuation))
            return errc::reserved_bits;
        // §5.2 Opcode: 0x3-0x7 and 0xB-0xF are reserved.
        if (is_reserved(static_cast<std::uint8_t>(h.op))) return errc::reserved_opcode;
        // §5.1 / §5.3: clients mask every frame, servers never do.
        if (R == role::server && !h.masked) return errc::mask_required;
        if (R == role::client && h.masked) return errc::mask_forbidden;
        // §5.2 Payload length: the minimal number of bytes must be used, and
        // the most significant bit of the 64-bit form must be 0.
        if (length_code_ == 126 && h.payload_size < 126) return errc::bad_length;
        if (length_code_ == 127 && (h.payload_size <= 0xFFFF || (h.payload_size >> 63) != 0))
            return errc::bad_length;
        if (control) {
            // §5.5: control frames are not fragmented and carry <= 125 bytes.
            if (!h.fin) return errc::fragmented_control;
            if (h.payload_size > max_control_payload_size) return errc::control_too_long;
            return {};
        }
        // §5.4 Fragmentation: continuation frames continue an open message,
        // and a new message cannot start until the open one is finished.
        if (h.op == opcode::continuation && !in_message_) return errc::unexpected_continuation;
        if (h.op != opcode::continuation && in_message_) return errc::expected_continuation;
        // §10.4: limit the frame and the message size; refuse at the header, before any payload.
        if (h.payload_size > options_.max_frame_size) return errc::frame_too_big;
        const std::uint64_t so_far = h.op == opcode::continuation ? message_size_ : 0;
        const bool compressed = h.op == opcode::continuation ? compressed_ : h.rsv1;
        std::uint64_t max = options_.max_message_size;
        if (compressed && options_.compressed_slack) {
            const std::uint64_t slack = max / 32 + 1024;
            max = max + slack < max ? ~std::uint64_t(0) : max + slack; // saturating
        }
        if (h.payload_size > max - so_far) return errc::message_too_big;
        return {};
    }

    void begin_data_frame() noexcept {
        if (header_.op != opcode::continuation) {
            in_message_ = true;
            message_begin_ = true;
            message_op_ = header_.op;
            message_size_ = 0;
            compressed_ = header_.rsv1;
            check_utf8_ = message_op_ == opcode::text && !compressed_ && options_.validate_utf8;
            utf8_.reset();
        }
        message_size_ += header_.payload_size;
        frame_left_ = header_.payload_size;
        mask_phase_ = 0;
    }

    // Reports an unmasked piece of the current data frame (and checks its UTF-8
    // first: §8.1 fail fast, the piece with the bad byte is never reported).
    parse_event& emit_data(parse_event& ev, const std::uint8_t* p, std::size_t n) noexcept {
        frame_left_ -= n;
        mask_phase_ = static_cast<std::uint8_t>((mask_phase_ + n) & 3);
        const bool frame_end = frame_left_ == 0;
        const bool message_end = frame_end && header_.fin;
        if (check_utf8_) {
            if (!utf8_.feed(p, n)) return fail(ev, errc::invalid_utf8);
            if (message_end && !utf8_.complete()) return fail(ev, errc::invalid_utf8);
        }
        ev.kind = parse_event::kind_t::data;
        ev.op = message_op_;
        ev.message_begin = message_begin_;
        ev.frame_end = frame_end;
        ev.message_end = message_end;
        ev.compressed = compressed_;
        ev.data = p;
        ev.size = n;
        message_begin_ = false;
        if (frame_end) state_ = state::header;
        if (message_end) {
            in_message_ = false;
            message_size_ = 0;
        }
        return ev;
    }

    parse_event& emit_control(parse_event& ev, const std::uint8_t* p, std::size_t n) noexcept {
        if (header_.op == opcode::close) {
            // §5.5.1: optional 2-byte code, then a UTF-8 reason.
            if (const std::error_code ec = parse_close_payload(p, n, ev.close_code, ev.close_reason))
                return fail(ev, static_cast<errc>(ec.value())); // always one of ours
        }
        ev.kind = parse_event::kind_t::control;
        ev.op = header_.op;
        ev.data = p;
        ev.size = n;
        state_ = state::header;
        return ev;
    }

    parse_event& fail(parse_event& ev, errc e) noexcept {
        ec_ = e;
        ev = parse_event{};
        ev.kind = parse_event::kind_t::error;
        ev.ec = make_error_code(e);
        return ev;
    }

    // Ordered by size: a parser lives in every connection (about 100 bytes).
    frame_parser_options options_;
    frame_header header_;                     // the frame being read
    std::uint64_t frame_left_ = 0;            // data payload bytes still to come in this frame
    std::uint64_t message_size_ = 0;          // wire payload bytes of the open message so far
    std::unique_ptr<std::uint8_t[]> control_; // a split control frame's payload (made when first needed)
    errc ec_{};                               // sticky failure
    utf8_validator utf8_;
    std::uint8_t header_bytes_[max_frame_header_size] = {};
    std::uint8_t header_len_ = 0;
    std::uint8_t length_code_ = 0;            // the 7-bit length field, for the minimal-encoding rule
    std::uint8_t mask_phase_ = 0;             // data payload bytes seen in this frame, mod 4
    std::uint8_t control_size_ = 0;           // bytes gathered in control_
    state state_ = state::header;
    opcode message_op_ = opcode::continuation;
    bool in_message_ = false;
    bool message_begin_ = false;
    bool compressed_ = false;
    bool check_utf8_ = false;
};

/// Parser for frames a server receives (they must be masked).
using server_frame_parser = basic_frame_parser<role::server>;
/// Parser for frames a client receives (they must not be masked).
using client_frame_parser = basic_frame_parser<role::client>;

namespace detail {
// Only clients need a key source (§5.3); servers skip the entropy call.
template <bool Masks>
struct writer_key_source {
    const mask_key* next(mask_key&) noexcept { return nullptr; }
};
template <>
struct writer_key_source<true> {
    const mask_key* next(mask_key& k) noexcept {
        k = gen.next();
        return &k;
    }
    mask_generator gen;
};
} // namespace detail

/// Serializes frames for role R: clients mask every frame with a fresh key
/// (§5.3), servers never mask.
template <role R>
class basic_frame_writer {
public:
    /// Whether this writer masks its frames.
    static constexpr bool masks = R == role::client;

    /// Bytes a frame with this payload takes on the wire.
    static std::size_t frame_size(std::uint64_t payload_size) noexcept {
        return frame_header_size(payload_size, masks) + static_cast<std::size_t>(payload_size);
    }

    /// Writes header + (masked) payload into out (frame_size(size) bytes) and
    /// returns the bytes written. `payload` is not modified.
    std::size_t write(std::uint8_t* out, opcode op, const void* payload, std::size_t size, bool fin = true,
                      bool rsv1 = false) noexcept {
        mask_key k;
        const mask_key* key = keys_.next(k);
        const std::size_t n = write_frame_header(out, op, fin, size, key, rsv1);
        if (size == 0) return n;
        const auto* src = static_cast<const std::uint8_t*>(payload);
        if (key)
            copy_masked(out + n, src, size, *key);
        else
            std::memcpy(out + n, src, size);
        return n + size;
    }

private:
    detail::writer_key_source<masks> keys_;
};

/// Writer for a client (masks).
using client_frame_writer = basic_frame_writer<role::client>;
/// Writer for a server (does not mask).
using server_frame_writer = basic_frame_writer<role::server>;

} // namespace duplex

namespace duplex {
DUPLEX_INSTANTIATE(class basic_frame_parser<role::server>)
DUPLEX_INSTANTIATE(class basic_frame_parser<role::client>)
DUPLEX_INSTANTIATE(class basic_frame_writer<role::server>)
DUPLEX_INSTANTIATE(class basic_frame_writer<role::client>)
} // namespace duplex
