// The connection state machine, sans-I/O (RFC 6455 §5.4-5.5, §7): bytes in,
// events out, frames queued for whoever does the I/O. No sockets, no timers:
// time comes in through the `now` arguments, so every rule is testable.
#pragma once
#include "../detail/instantiate.hpp"
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "../core/close.hpp"
#include "../core/error.hpp"
#include "../core/frame.hpp"
#include "../detail/owned.hpp"
#include "../detail/rare_string.hpp"
#include "../detail/small_mutex.hpp"
#include "options.hpp"
#include "ready_state.hpp"
#include "send_queue.hpp"
#include "stats.hpp"

#if DUPLEX_HAS_DEFLATE
#include "../core/utf8.hpp"
#include "../extensions/permessage_deflate.hpp"
#endif

namespace duplex {

/// What `tick` found: a timeout error, and whether the transport must be cut now.
struct tick_result {
    std::error_code ec;
    bool abort = false;
};

/// The lock of a protocol's send queue (see basic_protocol::mutex()): as std::mutex,
/// in 4 bytes on Linux.
using send_mutex = detail::small_mutex;

/// One WebSocket connection's protocol state.
///
/// Receiving (`receive`, `tick`, `open`, `transport_closed`) happens on one
/// thread at a time: the connection's reader. Sending (`send*`, `ping`,
/// `close`, `buffered_amount`) is safe from any thread; frames of two messages
/// never interleave. The writer takes queued bytes from `queue()` holding `mutex()`.
///
/// The handler given to `receive` provides:
///   on_message(opcode, std::string_view data, bool last)  // last=false only when streaming
///   on_ping(std::string_view), on_pong(std::string_view)   // a pong is already queued
///   on_close_frame(std::uint16_t code, std::string_view reason) // the echo is already queued
///   on_protocol_error(std::error_code)                     // close frame with its code queued
template <role R>
class basic_protocol {
public:
    using clock = std::chrono::steady_clock;

    /// A protocol with its own copy of `options`.
    explicit basic_protocol(const connection_options& options = {})
        : basic_protocol(std::make_shared<const connection_options>(options)) {}
    /// A protocol sharing `options` with others (a server's connections share one
    /// copy instead of carrying 120 bytes each).
    explicit basic_protocol(std::shared_ptr<const connection_options> options)
        : options_(std::move(options)), parser_(parser_options(*options_)) {}

    const connection_options& options() const noexcept { return *options_; }
    ready_state state() const noexcept { return state_.load(std::memory_order_acquire); }

    /// The opening handshake succeeded: CONNECTING -> OPEN.
    void open(clock::time_point now) {
        std::lock_guard<send_mutex> lock(mutex_);
        last_rx_ = last_msg_rx_ = last_msg_tx_ = now;
        state_.store(ready_state::open, std::memory_order_release);
    }

    /// Lets permessage-deflate allow RSV1 once negotiated.
    frame_parser_options& parser_options() noexcept { return parser_.options(); }

#if DUPLEX_HAS_DEFLATE
    /// The handshake agreed on permessage-deflate (RFC 7692): from now on
    /// messages may be compressed both ways. Call before open().
    void enable_deflate(const deflate_params& params) {
        deflate_.emplace(params, options_->deflate);
        parser_.options().allow_rsv1 = true;
        // Incompressible data grows a little when deflated (5 bytes per stored
        // block; python-websockets' small memLevel gives +0.25%, measured), so the
        // wire may carry a bit more than max_message_size for a message that
        // inflates to exactly that: the parser gives compressed messages the
        // slack (uncompressed ones are refused at the header, as without deflate),
        // and inflate() holds the inflated size to the limit exactly.
        parser_.options().compressed_slack = true; // max_message_size / 32 + 1 KiB
    }
#endif
    /// Whether permessage-deflate is in use on this connection.
    bool deflate_enabled() const noexcept {
#if DUPLEX_HAS_DEFLATE
        return static_cast<bool>(deflate_);
#else
        return false;
#endif
    }
    /// The permessage-deflate parameters agreed in the handshake (RFC 7692 §7.1): window
    /// bits and context takeover of each direction. `enabled` is false when it is not in
    /// use (or duplex was built without zlib).
    deflate_params deflate_parameters() const noexcept {
#if DUPLEX_HAS_DEFLATE
        if (deflate_) return deflate_->params;
#endif
        return {};
    }

    // ---- receiving -------------------------------------------------------

    /// Parses `size` bytes (unmasking them in place) and reports what they
    /// complete to `h`. Bytes after a close frame or a protocol error are ignored.
    template <class Handler>
    void receive(std::uint8_t* data, std::size_t size, Handler& h, clock::time_point now) {
        last_rx_ = now;
        while (size > 0 && !stop_reading_) {
            std::size_t used = 0;
            const parse_event ev = parser_.parse(data, size, used);
            data += used;
            size -= used;
            switch (ev.kind) {
            case parse_event::kind_t::need_more: return;
            case parse_event::kind_t::data:
                if (auto ec = on_data(ev, h, now)) {
                    fail(ec, now);
                    h.on_protocol_error(ec);
                    return;
                }
                break;
            case parse_event::kind_t::control: on_control(ev, h, now); break;
            case parse_event::kind_t::error:
                fail(ev.ec, now);
                h.on_protocol_error(ev.ec);
                return;
            }
        }
    }

    /// Most bytes of a large data frame can be read straight into the message
    /// they belong to, not into a read buffer and then copied: while at least
    /// `min_size` bytes of an uncompressed frame are still to come and the message
    /// is being reassembled, where the next of them go, and how many. {nullptr, 0}
    /// otherwise. Bytes read there are then given to receive_placed(). The size
    /// grows with what came: at most `first_size` at the start of a message, then
    /// as much as the message holds already, never past placed_read_max or the
    /// message size limit. A header that announces a huge frame costs no more
    /// memory than the bytes that follow it. Reader's thread.
    std::pair<std::uint8_t*, std::size_t> placed_read(std::size_t min_size, std::size_t first_size) noexcept {
        const std::uint64_t left = parser_.data_left();
        if (left == 0 || left < min_size || stop_reading_ || parser_.message_compressed() || options_->stream_messages)
            return {nullptr, 0};
        const std::size_t want = placed_read_size(first_size);
        if (want == 0) return {nullptr, 0};
        const std::size_t at = placed_read_offset();
        try {
            message_.reserve(at + want); // written past the size, taken in by append_message
        } catch (const std::bad_alloc&) {
            return {nullptr, 0}; // read as usual: appending fails the connection (1011) if memory stays short
        }
        return {message_.data() + at, want};
    }
    static constexpr std::size_t placed_read_max = 256 * 1024;
    /// The size placed_read(…, first_size) gives; the same until the bytes read
    /// there are received.
    std::size_t placed_read_size(std::size_t first_size) const noexcept {
        const std::size_t at = placed_read_offset();
        std::uint64_t want = parser_.data_left();
        want = std::min<std::uint64_t>(want, std::max(first_size, at));
        want = std::min<std::uint64_t>(want, placed_read_max);
        const std::uint64_t max = options_->max_message_size; // the parser refuses larger frames at the header
        return static_cast<std::size_t>(at >= max ? 0 : std::min<std::uint64_t>(want, max - at));
    }
    /// receive() for `size` bytes read where placed_read() said.
    template <class Handler>
    void receive_placed(std::size_t size, Handler& h, clock::time_point now) {
        receive(message_.data() + placed_read_offset(), size, h, now);
    }

    // ---- sending (any thread) -------------------------------------------

    /// Queues a whole text or binary message.
    std::error_code send(opcode op, const void* data, std::size_t size) {
        std::lock_guard<send_mutex> lock(mutex_);
        if (auto ec = check_can_send(writer_.frame_size(size), true)) return ec;
        return write_message_locked(op, data, size);
    }
    std::error_code send_text(std::string_view text) { return send(opcode::text, text.data(), text.size()); }
    std::error_code send_binary(const void* data, std::size_t size) { return send(opcode::binary, data, size); }

    /// send() that writes at once: when nothing is queued or being written, a
    /// server's message goes out from the caller's bytes through
    /// `write(header, header_size, payload, size)`, which returns how many bytes
    /// the transport took (0 when none, or on an error the next write will see);
    /// only the rest is queued. Saves copying a large message into the queue.
    /// The caller must be the only writer of the transport while this runs. The
    /// send mutex is held during `write`: other threads' sends wait for that one
    /// non-blocking write.
    template <class Write>
    std::error_code send_through(opcode op, const void* data, std::size_t size, Write&& write) {
        static_assert(R == role::server, "clients mask each frame: it is copied anyway");
        std::lock_guard<send_mutex> lock(mutex_);
        if (auto ec = check_can_send(writer_.frame_size(size), true)) return ec;
#if DUPLEX_HAS_DEFLATE
        if (deflate_ && deflate_->codec.should_compress(size)) return write_message_locked(op, data, size);
#endif
        if (queue_.writing() || queue_.has_pending()) return write_message_locked(op, data, size);
        std::uint8_t header[max_frame_header_size];
        const std::size_t header_size = write_frame_header(header, op, true, size);
        std::size_t written = write(static_cast<const std::uint8_t*>(header), header_size, data, size);
        const auto counted = [&] {
            if (options_->idle_timeout.count() > 0) last_msg_tx_ = clock::now();
            count_out(size, true);
            return std::error_code{};
        };
        if (written >= header_size + size) return counted();
        const bool none_out = written == 0; // else the rest of a frame begun on the wire: never dropped
        std::uint8_t* out = nullptr;
        try {
            out = queue_.append(header_size + size - written);
        } catch (const std::bad_alloc&) {
            // Part of the frame is out and the rest cannot be kept: nothing may follow
            // it on the wire, not even a close frame. Nothing more is read either; the
            // transport is half-closed after the handler and cut at close_timeout unless
            // the peer (seeing half a frame) closes first. on_error gets internal_error.
            const auto now = clock::now();
            if (!failure_) failure_ = make_error_code(errc::internal_error);
            stop_reading_ = true; // the caller is the reader (a handler of this connection)
            close_sent_ = true;
            close_deadline_ = detail::later(now, options_->close_timeout);
            state_.store(ready_state::closing, std::memory_order_release);
            return make_error_code(errc::internal_error);
        }
        if (written < header_size) {
            std::memcpy(out, header + written, header_size - written);
            out += header_size - written;
            written = header_size;
        }
        std::memcpy(out, static_cast<const std::uint8_t*>(data) + (written - header_size), header_size + size - written);
        may_drop_last(header_size + size, none_out);
        return counted();
    }

    /// Queues one fragment: the first names text or binary, the others are
    /// continuations whatever `op` says; `fin` ends the message.
    std::error_code send_fragment(opcode op, const void* data, std::size_t size, bool fin) {
        std::lock_guard<send_mutex> lock(mutex_);
        if (auto ec = check_can_send(writer_.frame_size(size))) return ec;
        write_frame_locked(fragmenting_ ? opcode::continuation : op, data, size, fin);
        fragmenting_ = !fin;
        return {};
    }

    /// Queues a frame encoded once for many receivers (shared, not copied, by servers).
    /// A server sends its compressed copy instead where this connection can take it.
    std::error_code send(std::shared_ptr<const prepared_message> m) {
        std::lock_guard<send_mutex> lock(mutex_);
#if DUPLEX_HAS_DEFLATE
        // deflate_ is set before open(), which changes the state under this lock: once
        // the state is past CONNECTING here, deflate_ is settled.
        if constexpr (R == role::server)
            if (state() != ready_state::connecting && deflate_ && m->compressed() && deflate_->codec.compress_resets() &&
                deflate_->codec.compress_window_bits() >= m->compressed_window_bits())
                m = m->compressed();
#endif
        // What the queue will hold: the shared frame (server), or a masked copy (client).
        if (auto ec = check_can_send(R == role::server ? m->wire_size() : writer_.frame_size(m->payload_size()), true)) return ec;
        if constexpr (R == role::server) {
            count_out(m->payload_size(), true);
            const std::size_t frame = m->wire_size();
            queue_.append(std::move(m));
            may_drop_last(frame);
            if (options_->idle_timeout.count() > 0) last_msg_tx_ = clock::now();
        } else {
            write_frame_locked(m->op(), m->payload(), m->payload_size(), true); // clients mask each frame
            may_drop_last(writer_.frame_size(m->payload_size()));
        }
        return {};
    }

    std::error_code ping(std::string_view payload = {}) { return control(opcode::ping, payload); }
    std::error_code pong(std::string_view payload = {}) { return control(opcode::pong, payload); }

    /// Round-trip time of the last ping of ours that the peer answered: the heartbeat's
    /// (sent after ping_interval of silence) or measure_latency()'s. Zero before the first.
    std::chrono::microseconds latency() const noexcept {
        return std::chrono::microseconds(latency_us_.load(std::memory_order_relaxed));
    }
    /// Sends a ping now whose pong updates latency(): for a connection too busy for the
    /// heartbeat to ping it. Like the heartbeat's, the ping waits for its pong at most
    /// pong_timeout (when ping_interval is on), and a newer one supersedes it.
    std::error_code measure_latency(clock::time_point now = clock::now()) {
        std::lock_guard<send_mutex> lock(mutex_);
        if (state() == ready_state::connecting) return make_error_code(errc::not_open);
        if (close_sent_ || state() == ready_state::closed) return make_error_code(errc::closed);
        send_timed_ping_locked(now);
        return {};
    }

    /// Starts the closing handshake (§7.1.2). `code` must be sendable (§7.4);
    /// close_code::no_status sends a close frame without a code.
    std::error_code close(std::uint16_t code = close_code::normal, std::string_view reason = {},
                          clock::time_point now = clock::now()) {
        if (code != close_code::no_status && !is_valid_close_code(code))
            return make_error_code(errc::bad_close_code);
        std::lock_guard<send_mutex> lock(mutex_);
        if (state() == ready_state::connecting) return make_error_code(errc::not_open);
        if (close_sent_ || state() == ready_state::closed) return make_error_code(errc::closed);
        send_close_locked(code, reason, now);
        return {};
    }

    /// When bytes last came (receive()), or open()'s time before any did. Reader's thread.
    clock::time_point last_received() const noexcept { return last_rx_; }

    /// Bytes queued or being written, like the browser's bufferedAmount.
    std::size_t buffered_amount() const {
        std::lock_guard<send_mutex> lock(mutex_);
        return queue_.buffered_amount();
    }

    // ---- the writer's side ------------------------------------------------

    /// Memory the send queue holds (bytes queued, or kept for reuse between writes),
    /// e.g. to check that idle connections hold none. Any thread, but not while
    /// holding mutex() (it is not recursive); so for send_idle() below.
    std::size_t send_buffer_memory() const noexcept {
        std::lock_guard<send_mutex> lock(mutex_);
        return queue_.reserved_bytes();
    }
    /// True when nothing is queued or being written. Any thread.
    bool send_idle() const noexcept {
        std::lock_guard<send_mutex> lock(mutex_);
        return !queue_.writing() && !queue_.has_pending();
    }

    /// Guards queue(); hold it while taking a batch or finishing a write.
    send_mutex& mutex() const noexcept { return mutex_; }
    /// The writer's access, only with mutex() held: the writer's thread frees the
    /// queue's buffers while idle, so even reading it unlocked can touch freed memory.
    /// (There is deliberately no const overload: a connection hands out its protocol
    /// as const, and other threads read through send_buffer_memory() or send_idle().)
    send_queue& queue() noexcept { return queue_; }

    /// True once nothing more will be written or read: the close handshake is
    /// complete (a server closes TCP first, §7.1.1), or the connection failed.
    /// A client waits for the server to close TCP, up to close_timeout. Any thread
    /// (close() and a send that fails the connection change it from others).
    bool should_close_transport() const noexcept {
        std::lock_guard<send_mutex> lock(mutex_);
        return should_close_transport_locked();
    }
    /// should_close_transport() for the writer, with mutex() held.
    bool should_close_transport_locked() const noexcept {
        if (failure_) return true;
        return R == role::server && close_sent_ && close_received_;
    }
    /// should_close_transport(), and nothing is queued or being written: the
    /// transport may be closed now. One lock for both.
    bool may_close_transport() const noexcept {
        std::lock_guard<send_mutex> lock(mutex_);
        return should_close_transport_locked() && !queue_.writing() && !queue_.has_pending();
    }

    // ---- time ----------------------------------------------------------------

    /// When `tick` next has something to do; clock::time_point::max() if never.
    clock::time_point next_deadline() const {
        std::lock_guard<send_mutex> lock(mutex_);
        auto t = clock::time_point::max();
        const auto s = state();
        if (s == ready_state::closed) return t;
        if (close_sent_) t = close_deadline_;
        if (s != ready_state::open) return t;
        if (options_->idle_timeout.count() > 0)
            t = std::min(t, detail::later(std::max(last_msg_rx_, last_msg_tx_), options_->idle_timeout));
        if (options_->ping_interval.count() > 0) {
            // Waiting for an answer: give up at pong_timeout. A peer that answered (or
            // sent anything) is pinged again ping_interval after that, not pong_timeout
            // after our ping: with a long pong_timeout, pings would come too seldom to
            // keep proxies and NATs from dropping an idle connection.
            // With pong_timeout 0 a silent peer is never cut, only pinged again.
            const bool waiting = ping_sent_ != clock::time_point{} && last_rx_ <= ping_sent_;
            if (waiting && options_->pong_timeout.count() > 0) t = std::min(t, detail::later(ping_sent_, options_->pong_timeout));
            else t = std::min(t, detail::later(std::max(last_rx_, ping_sent_), options_->ping_interval));
        }
        return t;
    }

    /// Heartbeat and timeouts: may queue a ping or a close, or tell the caller
    /// to cut the transport (a silent peer, an unanswered close).
    tick_result tick(clock::time_point now) {
        std::lock_guard<send_mutex> lock(mutex_);
        const auto s = state();
        if (s == ready_state::closed || s == ready_state::connecting) return {};
        if (close_sent_) {
            if (now >= close_deadline_) return {fail_locked(errc::close_timeout, now), true};
            return {};
        }
        if (options_->idle_timeout.count() > 0 &&
            now >= detail::later(std::max(last_msg_rx_, last_msg_tx_), options_->idle_timeout)) {
            send_close_locked(close_code::going_away, "idle timeout", now);
            return {make_error_code(errc::idle_timeout), false};
        }
        if (options_->ping_interval.count() > 0) {
            if (ping_sent_ != clock::time_point{} && last_rx_ > ping_sent_) ping_sent_ = {}; // alive
            if (ping_sent_ != clock::time_point{} && options_->pong_timeout.count() > 0) {
                if (now >= detail::later(ping_sent_, options_->pong_timeout)) return {fail_locked(errc::ping_timeout, now), true};
            } else if (now >= detail::later(std::max(last_rx_, ping_sent_), options_->ping_interval)) {
                send_timed_ping_locked(now);
            }
        }
        return {};
    }

    // ---- the end ---------------------------------------------------------------

    /// The transport is gone (EOF, error or our own close): -> CLOSED.
    /// Returns the error to report, if the connection did not end cleanly.
    std::error_code transport_closed() {
        std::lock_guard<send_mutex> lock(mutex_);
        state_.store(ready_state::closed, std::memory_order_release);
        stop_reading_ = true;
        if (!failure_ && !close_received_) failure_ = make_error_code(errc::connection_lost);
        return failure_;
    }

    /// Fails the connection from outside the parser (e.g. out of memory while
    /// handling a message): close frame with the error's code, stop reading.
    void fail_connection(std::error_code ec, clock::time_point now = clock::now()) { fail(ec, now); }
    /// Records why the connection ends (if nothing did yet) when nothing more can be
    /// written, not even a close frame: the caller cuts the transport next.
    void record_failure(std::error_code ec) noexcept {
        std::lock_guard<send_mutex> lock(mutex_);
        if (!failure_) failure_ = ec;
        stop_reading_ = true;
    }

    /// The failure that ended (or is ending) the connection, if any.
    std::error_code failure() const {
        std::lock_guard<send_mutex> lock(mutex_);
        return failure_;
    }
    bool close_sent() const {
        std::lock_guard<send_mutex> lock(mutex_);
        return close_sent_;
    }
    bool close_received() const noexcept { return close_received_; }
    /// Both close frames went across: the browser's CloseEvent.wasClean.
    bool was_clean() const {
        std::lock_guard<send_mutex> lock(mutex_);
        return close_received_ && close_sent_;
    }

    /// Messages and payload bytes so far; callable from any thread.
    connection_stats stats() const noexcept {
        return {messages_in_.get(), bytes_in_.get(), messages_out_.get(), bytes_out_.get(), messages_dropped_.get()};
    }

    /// The code and reason user code sees in on_close: the peer's close frame
    /// if one came, the code we failed with, or 1006 when the connection dropped.
    std::uint16_t close_status_code() const {
        std::lock_guard<send_mutex> lock(mutex_);
        if (close_received_) return peer_code_;
        if (failure_) return close_code_for(failure_);
        return close_code::abnormal;
    }
    std::string close_status_reason() const {
        std::lock_guard<send_mutex> lock(mutex_);
        if (close_received_) return peer_reason_.get();
        if (failure_) return failure_.message();
        return "connection lost";
    }

private:
    static frame_parser_options parser_options(const connection_options& o) {
        frame_parser_options p;
        p.max_message_size = o.max_message_size;
        if (o.max_frame_size != 0) p.max_frame_size = o.max_frame_size;
        return p;
    }

    // Returns an error when the message must fail the connection (inflating).
    template <class Handler>
    std::error_code on_data(const parse_event& ev, Handler& h, clock::time_point now) {
        const auto view = [](const std::uint8_t* p, std::size_t n) {
            return std::string_view(reinterpret_cast<const char*>(p), n);
        };
        if (ev.message_end) {
            last_msg_rx_ = now;
            messages_in_.add(1);
        }
        bytes_in_.add(ev.size);
#if DUPLEX_HAS_DEFLATE
        if (ev.compressed) return inflate(ev, h);
#endif
        if (options_->stream_messages) {
            if (ev.size > 0 || ev.message_end) h.on_message(ev.op, view(ev.data, ev.size), ev.message_end);
            return {};
        }
        if (ev.message_begin && ev.message_end) { // whole message in this read: no copy
            h.on_message(ev.op, view(ev.data, ev.size), true);
            return {};
        }
        if (ev.message_begin) message_.clear();
        append_message(ev.data, ev.size);
        if (!ev.message_end) return {};
        deliver_message(ev.op, h);
        return {};
    }

#if DUPLEX_HAS_DEFLATE
    // A compressed message (RSV1, §7.2.2): inflate each piece as it comes, with
    // max_message_size applied to the inflated size while inflating (a small
    // frame that would inflate to gigabytes stops at the limit: 1009), and
    // UTF-8 checked on the inflated text (1007).
    template <class Handler>
    std::error_code inflate(const parse_event& ev, Handler& h) {
        if (ev.message_begin) {
            message_.clear();
            deflate_->inflated_utf8.reset();
        }
        const std::size_t before = message_.size();
        std::error_code ec = deflate_->codec.decompress(ev.data, ev.size, ev.message_end, message_, options_->max_message_size);
        if (ev.op == opcode::text) {
            // Even when decompress failed: what it inflated before the failure (up to the
            // limit, for message_too_big) comes first in the message, so a bad byte there
            // is the error, whatever pieces the frame arrived in.
            const auto* fresh = reinterpret_cast<const std::uint8_t*>(message_.data()) + before;
            auto& utf8 = deflate_->inflated_utf8;
            if (!utf8.feed(fresh, message_.size() - before) || (!ec && ev.message_end && !utf8.complete()))
                return make_error_code(errc::invalid_utf8);
        }
        if (ec) return ec.category() == error_category() ? ec : make_error_code(errc::internal_error);
        if (ev.message_end) deliver_message(ev.op, h);
        return {};
    }
#endif

    std::size_t placed_read_offset() const noexcept { return parser_.message_starting() ? 0 : message_.size(); }

    // Adds a piece to the message. A piece read into place (placed_read()) is
    // already there, within the room reserved: only the size moves.
    void append_message(const std::uint8_t* p, std::size_t n) {
        // Placed: p is the tail and [p, p+n) lies in the room (another buffer may start
        // right where ours ends, so the address alone does not say).
        const bool placed = n > 0 && p == message_.data() + message_.size() &&
                            message_.capacity() - message_.size() >= n;
        std::uint8_t* tail = message_.grow(n);
        if (!placed && n > 0) std::memcpy(tail, p, n);
    }

    template <class Handler>
    void deliver_message(opcode op, Handler& h) {
        const std::size_t size = message_.size();
        message_.clear();
        h.on_message(op, std::string_view(reinterpret_cast<const char*>(message_.data()), size), true);
        // Keep the buffer for the next message unless it grew huge (an idle
        // connection should not hold on to its largest message).
        if (message_.capacity() > placed_read_max) message_.release();
    }

    template <class Handler>
    void on_control(const parse_event& ev, Handler& h, clock::time_point now) {
        const std::string_view payload(reinterpret_cast<const char*>(ev.data), ev.size);
        switch (ev.op) {
        case opcode::ping:
            control(opcode::pong, payload); // §5.5.2: answer with the same payload
            h.on_ping(payload);
            break;
        case opcode::pong:
            note_pong(payload, now);
            h.on_pong(payload);
            break;
        case opcode::close: {
            {
                std::lock_guard<send_mutex> lock(mutex_);
                close_received_ = true;
                stop_reading_ = true; // §5.5.1: nothing may follow a close frame
                peer_code_ = ev.close_code;
                peer_reason_.assign(ev.close_reason);
                // §5.5.1: answer with a close frame, echoing the code.
                if (!close_sent_) send_close_locked(ev.close_code, {}, now);
            }
            h.on_close_frame(ev.close_code, ev.close_reason);
            break;
        }
        default: break;
        }
    }

    // Our pings carry the low 32 bits of their send time (steady clock ticks), so a pong
    // is matched to the last one sent: not to an older one, a user's ping, or a pong the
    // peer sent unasked (§5.5.3). The low bits tell nothing of the clock's origin.
    static void ping_token(clock::time_point sent, char (&out)[4]) noexcept {
        const auto t = static_cast<std::uint32_t>(sent.time_since_epoch().count());
        for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(t >> (24 - 8 * i));
    }
    void send_timed_ping_locked(clock::time_point now) {
        char token[4];
        ping_token(now, token);
        write_frame_locked(opcode::ping, token, sizeof token, true);
        ping_sent_ = now;
    }
    void note_pong(std::string_view payload, clock::time_point now) {
        if (payload.size() != 4) return;
        std::lock_guard<send_mutex> lock(mutex_);
        if (ping_sent_ == clock::time_point{} || now < ping_sent_) return;
        char token[4];
        ping_token(ping_sent_, token);
        if (std::memcmp(payload.data(), token, sizeof token) != 0) return;
        static_assert(std::is_same<clock::period, std::nano>::value, "the clock counts nanoseconds");
        const auto us = static_cast<std::uint64_t>((now - ping_sent_).count()) / 1000;
        latency_us_.store(static_cast<std::uint32_t>(std::min<std::uint64_t>(us, 0xffffffffu)), std::memory_order_relaxed);
        ping_sent_ = {}; // answered: a copy of the pong measures nothing
    }

    std::error_code control(opcode op, std::string_view payload) {
        if (payload.size() > 125) return make_error_code(errc::control_too_long);
        std::lock_guard<send_mutex> lock(mutex_);
        if (state() == ready_state::connecting) return make_error_code(errc::not_open);
        if (close_sent_ || state() == ready_state::closed) return make_error_code(errc::closed);
        write_frame_locked(op, payload.data(), payload.size(), true);
        return {};
    }

    // Callers hold mutex_. `size`: the bytes the frame will take in the queue, header
    // included. `whole`: a whole message, which may not come in the middle of a
    // fragmented one (checked before anything is dropped to make room for it).
    std::error_code check_can_send(std::size_t size, bool whole = false) {
        const auto s = state();
        if (s == ready_state::connecting) return make_error_code(errc::not_open);
        if (close_sent_ || s == ready_state::closed) return make_error_code(errc::closed);
        if (whole && fragmenting_) return make_error_code(errc::expected_continuation);
        const std::size_t queued = queue_.buffered_amount();
        const std::size_t limit = options_->send_queue_limit;
        if (queued > 0 && queued + size > limit) {
            if (options_->backpressure == backpressure_policy::drop_oldest) {
                // A quarter of the limit to spare: dropping rebuilds the waiting batch
                // (copying what stays), so it should not happen at every send.
                messages_dropped_.add(queue_.drop_oldest(queued + size - limit + limit / 4));
                const std::size_t left = queue_.buffered_amount();
                if (left == 0 || left + size <= limit) return {};
            }
            if (options_->backpressure == backpressure_policy::close) fail_locked(errc::send_queue_full, clock::now());
            return make_error_code(errc::send_queue_full);
        }
        return {};
    }

    // With drop_oldest: the frame just queued (`size` bytes) is a whole message that
    // may go unsent. Not for control frames, fragments, or compressed messages when the
    // peer's inflater keeps its window (it must see every one).
    void may_drop_last(std::size_t size, bool droppable = true) {
        if (droppable && options_->backpressure == backpressure_policy::drop_oldest) queue_.add_droppable(size);
    }

    // A whole data message: compressed when permessage-deflate is on and the
    // message is over the threshold (RSV1 marks it, per message, §6.1).
    std::error_code write_message_locked(opcode op, const void* data, std::size_t size) {
#if DUPLEX_HAS_DEFLATE
        if (deflate_ && deflate_->codec.should_compress(size)) {
            std::string& compressed = deflate_->compressed;
            compressed.clear();
            if (deflate_->codec.compress(data, size, compressed)) return fail_locked(errc::internal_error, clock::now());
            const std::size_t frame = writer_.frame_size(compressed.size());
            std::uint8_t* out = queue_.append(frame);
            writer_.write(out, op, compressed.data(), compressed.size(), true, true);
            may_drop_last(frame, R == role::server ? deflate_->params.server_no_context_takeover
                                                   : deflate_->params.client_no_context_takeover);
            if (options_->idle_timeout.count() > 0) last_msg_tx_ = clock::now();
            count_out(compressed.size(), true); // as on the wire, like bytes_in
            if (compressed.capacity() > 256 * 1024) std::string().swap(compressed);
            return {};
        }
#endif
        write_frame_locked(op, data, size, true);
        may_drop_last(writer_.frame_size(size));
        return {};
    }

    void write_frame_locked(opcode op, const void* data, std::size_t size, bool fin) {
        std::uint8_t* out = queue_.append(writer_.frame_size(size));
        writer_.write(out, op, data, size, fin);
        if (!is_control(op)) {
            if (options_->idle_timeout.count() > 0) last_msg_tx_ = clock::now(); // only idle needs it
            count_out(size, fin);
        }
    }

    void count_out(std::size_t size, bool fin) noexcept {
        bytes_out_.add(size);
        if (fin) messages_out_.add(1);
    }

    void send_close_locked(std::uint16_t code, std::string_view reason, clock::time_point now) {
        std::uint8_t payload[125];
        const std::size_t n = write_close_payload(payload, code, reason);
        write_frame_locked(opcode::close, payload, n, true);
        close_sent_ = true;
        close_deadline_ = detail::later(now, options_->close_timeout);
        state_.store(ready_state::closing, std::memory_order_release);
    }

    // _Fail the WebSocket Connection_ (§7.1.7): send a close frame with the
    // rule's code if we still may, then stop reading.
    std::error_code fail_locked(errc e, clock::time_point now) {
        const auto ec = make_error_code(e);
        if (!failure_) failure_ = ec;
        stop_reading_ = true;
        if (!close_sent_ && state() == ready_state::open) {
            const std::uint16_t code = close_code_for(e);
            if (is_valid_close_code(code)) send_close_locked(code, detail::errc_message(e), now);
        }
        if (state() != ready_state::closed) state_.store(ready_state::closing, std::memory_order_release);
        return ec;
    }
    void fail(const std::error_code& ec, clock::time_point now) {
        std::lock_guard<send_mutex> lock(mutex_);
        fail_locked(ec.category() == error_category() ? static_cast<errc>(ec.value()) : errc::internal_error, now);
    }

    std::shared_ptr<const connection_options> options_; // never null
    basic_frame_parser<R> parser_;
    // Reassembly of fragmented, split or inflated messages (kept for the next one
    // unless over placed_read_max). Not zero-filled when it grows: placed reads write
    // past its size into the room reserved, and append_message takes the bytes in.
    detail::byte_buffer message_;
#if DUPLEX_HAS_DEFLATE
    // Only on connections that negotiated permessage-deflate: the others do not
    // carry its buffers.
    struct deflate_state {
        deflate_state(const deflate_params& p, const deflate_options& options) : params(p), codec(R, p, options) {}
        deflate_params params;        // as agreed in the handshake
        deflate_codec codec;          // its two halves: the reader inflates, senders deflate under mutex_
        utf8_validator inflated_utf8; // reader
        std::string compressed;       // guarded by mutex_
    };
    detail::owned<deflate_state> deflate_;
#endif

    // Reader-only state.
    clock::time_point last_rx_{};
    clock::time_point last_msg_rx_{};
    bool stop_reading_ = false;
    bool close_received_ = false;
    std::uint16_t peer_code_ = close_code::no_status;
    std::atomic<std::uint32_t> latency_us_{0}; // microseconds, by the reader's note_pong; read anywhere
    detail::rare_string peer_reason_;

    detail::counter messages_in_, bytes_in_;   // written by the reader
    detail::counter messages_out_, bytes_out_, messages_dropped_; // written under mutex_

    // Guarded by mutex_.
    send_queue queue_;
    mutable send_mutex mutex_;
    basic_frame_writer<R> writer_;
    std::atomic<ready_state> state_{ready_state::connecting};
    bool close_sent_ = false;
    bool fragmenting_ = false;
    std::error_code failure_;
    clock::time_point last_msg_tx_{};
    clock::time_point ping_sent_{};
    clock::time_point close_deadline_{};
};

using server_protocol = basic_protocol<role::server>;
using client_protocol = basic_protocol<role::client>;

} // namespace duplex

namespace duplex {
DUPLEX_INSTANTIATE(class basic_protocol<role::server>)
DUPLEX_INSTANTIATE(class basic_protocol<role::client>)
} // namespace duplex
