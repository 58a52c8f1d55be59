// C++20 coroutines over duplex connections (Asio's awaitable / use_awaitable),
// next to the callback API. Before C++20, or when Asio has no co_await support,
// this header declares nothing (DUPLEX_HAS_COROUTINES stays undefined) and says so in a
// compiler note.
//
// Server: one coroutine per connection.
//
//   duplex::serve(server, [](std::shared_ptr<duplex::server::connection> c) -> asio::awaitable<void> {
//       for (;;) {
//           duplex::owned_message m = co_await duplex::receive(*c); // throws duplex::error once closed
//           c->send(m);                                             // sending stays non-blocking
//       }
//   });
//
// Client:
//
//   duplex::client ws(io);
//   co_await duplex::connect(ws, "ws://127.0.0.1:9001/");   // throws on failure
//   ws.send_text("hello");
//   auto reply = co_await duplex::receive(ws);
//
// Sending with backpressure: co_await duplex::send(c, m) sends now and, when the send
// queue is past a threshold, waits for it to drain; co_await duplex::drain(c, low_water)
// waits until buffered_amount() <= low_water.
//
// How it works: serve() and connect() install the on_open / on_message / on_error /
// on_close handlers (replacing any set before) and give each connection an inbox,
// kept in its user_data(): on_message copies each message into it, receive() takes
// the oldest one, or waits. After the close, receive() hands out what is left in the
// inbox, then completes with the error that ended the connection (errc::closed for a
// clean close); close_info() tells the close code and reason.
#pragma once
#include <asio/detail/config.hpp>

#if defined(__cpp_impl_coroutine) && defined(ASIO_HAS_CO_AWAIT) && !defined(DUPLEX_NO_COROUTINES)
#define DUPLEX_HAS_COROUTINES 1

#include <any>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "client.hpp"
#include "detail/unique_function.hpp"
#include "server.hpp"

namespace duplex {

/// A received message that owns its bytes (duplex::message only views them).
struct owned_message {
    opcode op = opcode::text;
    std::string data;
    bool last = true; ///< false for all but the last piece of a streamed message

    bool is_text() const noexcept { return op == opcode::text; }
    bool is_binary() const noexcept { return op == opcode::binary; }
    std::string_view text() const noexcept { return data; }
    /// A view, e.g. for `connection.send(m)` (echoes with the same type).
    operator message() const noexcept { return message{op, data, last}; }
};

/// How a connection ended, as its on_error / on_close reported it.
struct close_status {
    std::uint16_t code = 0;  ///< 0 while not closed; 1006 when it dropped or failed
    std::string reason;
    std::error_code error;   ///< the failure (on_error), or empty for a clean close
};

/// Settings of the coroutine layer.
struct coro_options {
    /// Bytes of received messages that may wait in a connection's inbox for receive().
    /// Past it the connection is closed with 1008 (policy violation); a message is
    /// always accepted into an empty inbox.
    std::size_t inbox_limit = 16 * 1024 * 1024;
};

namespace detail {

// A connection's received messages and its end, with at most one waiting receive().
// Fed on the connection's executor, drained from any; guarded by a mutex.
class inbox {
public:
    // Called once: (error, message, immediate). `immediate` means from inside the
    // initiating function, where the handler must be posted, not dispatched.
    using waiter = unique_function<void(std::error_code, owned_message, bool)>;

    explicit inbox(std::size_t limit) : limit_(limit) {}

    // False when the message would go over the limit (the caller closes with 1008).
    bool push(const message& m) {
        waiter w;
        owned_message om{m.op, std::string(m.data), m.last};
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (closed_) return true;
            if (!waiter_) {
                if (!queue_.empty() && bytes_ + om.data.size() > limit_) return false;
                bytes_ += om.data.size();
                queue_.push_back(std::move(om));
                return true;
            }
            w = take_waiter_locked();
        }
        w({}, std::move(om), false);
        return true;
    }

    void opened() {
        waiter w;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            opened_ = true;
            w = std::move(open_waiter_);
        }
        if (w) w({}, {}, false);
    }

    void fail(std::error_code ec) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!status_.error) status_.error = ec;
    }

    void close(std::uint16_t code, std::string_view reason) {
        waiter w, ow;
        std::error_code ec;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            closed_ = true;
            status_.code = code;
            status_.reason.assign(reason);
            ec = end_error_locked();
            if (queue_.empty()) w = take_waiter_locked();
            ow = std::move(open_waiter_);
        }
        if (w) w(ec, {}, false);
        if (ow) ow(ec, {}, false);
    }

    // Completes w with the oldest message or the end, at once or later. Returns the id
    // to pass to cancel().
    std::uint64_t wait(waiter w) {
        owned_message m;
        std::error_code ec;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (queue_.empty() && !closed_) {
                if (waiter_) {
                    ec = std::make_error_code(std::errc::operation_in_progress); // one receive at a time
                } else {
                    waiter_ = std::move(w);
                    return ++waiter_id_;
                }
            } else if (!queue_.empty()) {
                m = std::move(queue_.front());
                queue_.pop_front();
                bytes_ -= m.data.size();
            } else {
                ec = end_error_locked();
            }
        }
        w(ec, std::move(m), true);
        return 0;
    }

    // Completes the waiter with `id`, if it still waits, with operation_aborted.
    void cancel(std::uint64_t id) {
        waiter w;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!waiter_ || id != waiter_id_) return;
            w = take_waiter_locked();
        }
        w(asio::error::operation_aborted, {}, true);
    }

    void wait_open(waiter w) {
        std::error_code ec;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!opened_ && !closed_) {
                open_waiter_ = std::move(w);
                return;
            }
            if (!opened_) ec = end_error_locked();
        }
        w(ec, {}, true);
    }

    close_status status() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return status_;
    }

private:
    std::error_code end_error_locked() const {
        return status_.error ? status_.error : make_error_code(errc::closed);
    }
    waiter take_waiter_locked() {
        waiter w = std::move(waiter_);
        waiter_ = waiter();
        return w;
    }

    mutable std::mutex mutex_;
    std::deque<owned_message> queue_;
    std::size_t bytes_ = 0;
    const std::size_t limit_;
    waiter waiter_;
    std::uint64_t waiter_id_ = 0;
    waiter open_waiter_;
    bool opened_ = false;
    bool closed_ = false;
    close_status status_;
};

using inbox_ptr = std::shared_ptr<inbox>;

template <class Connection>
inbox_ptr find_inbox(Connection& c) {
    if constexpr (std::is_same_v<Connection, client>) {
        auto p = c.connection_ptr();
        return p ? find_inbox(*p) : nullptr;
    } else {
        auto* box = std::any_cast<inbox_ptr>(&c.user_data());
        return box ? *box : nullptr;
    }
}

template <class Connection>
asio::any_io_executor executor_of(Connection& c) {
    if constexpr (std::is_same_v<Connection, client>) {
        auto p = c.connection_ptr();
        if (p) return p->get_executor();
        return asio::system_executor(); // not connected: the error is all there is to deliver
    } else {
        return c.get_executor();
    }
}

// Wraps a completion handler: keeps its executor busy until it runs, and runs it
// there (posted when completing inside the initiating function).
template <bool WithMessage = true, class Handler, class IoExecutor>
inbox::waiter make_waiter(Handler handler, const IoExecutor& io_ex) {
    auto work = asio::make_work_guard(asio::get_associated_executor(handler, io_ex));
    return [h = std::move(handler), work = std::move(work)](std::error_code ec, owned_message m, bool immediate) mutable {
        auto ex = work.get_executor();
        auto f = [h = std::move(h), ec, m = std::move(m)]() mutable {
            if constexpr (WithMessage) std::move(h)(ec, std::move(m));
            else std::move(h)(ec); // waiting for the open: void(std::error_code)
        };
        if (immediate) asio::post(ex, std::move(f));
        else asio::dispatch(ex, std::move(f));
        work.reset();
    };
}

// Messages, errors and the close of a connection go to its inbox.
template <class Connection>
void deliver(Connection& c, const message& m) {
    if (auto box = find_inbox(c); box && !box->push(m))
        c.close(close_code::policy_violation, "receive inbox full");
}

// The connection object behind c (a server connection, or a client's current one):
// null for a client that has none.
template <class Connection>
auto connection_of(Connection& c) {
    if constexpr (std::is_same_v<Connection, client>) return c.connection_ptr();
    else return c.shared_from_this();
}

// What a client without a connection object answers (like its send_text()).
template <class Connection>
std::error_code not_connected_error(Connection& c) {
    if constexpr (std::is_same_v<Connection, client>)
        if (c.ready_state() == ready_state::connecting) return make_error_code(errc::not_open);
    return make_error_code(errc::closed);
}

template <class CompletionToken>
auto async_wait_open(inbox_ptr box, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [](auto handler, inbox_ptr b) { b->wait_open(make_waiter<false>(std::move(handler), asio::system_executor())); },
        token, std::move(box));
}

} // namespace detail

/// Takes the next message of a connection set up by serve() or connect(), with any
/// Asio completion token. Completion signature void(std::error_code, owned_message).
/// Once the connection is closed and its inbox empty: the failure reported by
/// on_error, or errc::closed after a clean close. One receive at a time per
/// connection (another completes with std::errc::operation_in_progress).
/// Supports per-operation cancellation (e.g. `co_await (receive(c) || timer.async_wait(...))`
/// with asio/experimental/awaitable_operators.hpp): the message stays in the inbox.
template <class Connection, class CompletionToken>
auto async_receive(Connection& c, CompletionToken&& token) {
    auto box = detail::find_inbox(c);
    // A handler without an executor of its own runs on the connection's.
    asio::any_io_executor ex = detail::executor_of(c);
    return asio::async_initiate<CompletionToken, void(std::error_code, owned_message)>(
        [](auto handler, detail::inbox_ptr b, asio::any_io_executor io_ex) {
            auto slot = asio::get_associated_cancellation_slot(handler);
            auto w = detail::make_waiter(std::move(handler), io_ex);
            if (!b) return w(make_error_code(errc::closed), {}, true); // not set up (or not connected)
            const std::uint64_t id = b->wait(std::move(w));
            if (id != 0 && slot.is_connected())
                slot.assign([weak = std::weak_ptr<detail::inbox>(b), id](asio::cancellation_type) {
                    if (auto locked = weak.lock()) locked->cancel(id);
                });
        },
        token, std::move(box), std::move(ex));
}

/// co_await receive(c): the next message; throws duplex::error once the connection is
/// closed (errc::closed after a clean close, or the failure).
template <class Connection>
asio::awaitable<owned_message> receive(Connection& c) {
    std::error_code ec;
    owned_message m = co_await async_receive(c, asio::redirect_error(asio::use_awaitable, ec));
    throw_if(ec);
    co_return m;
}

/// co_await receive(c, ec): the same without exceptions; `ec` tells the end.
template <class Connection>
asio::awaitable<owned_message> receive(Connection& c, std::error_code& ec) {
    ec.clear();
    co_return co_await async_receive(c, asio::redirect_error(asio::use_awaitable, ec));
}

/// Completes once the send queue of `c` (a server connection or a duplex::client) holds
/// at most `low_water` bytes (buffered_amount() <= low_water), with any Asio completion
/// token; completion signature void(std::error_code). At once (never inside this call)
/// when it already does. Completes with the error that ended the connection if it closes
/// first or has closed (errc::closed after a clean close, else the failure on_error
/// reported), and for a client without a connection with errc::not_open while connecting,
/// errc::closed otherwise. Works on any connection, set up by serve()/connect() or not.
/// Several may wait at once. Supports per-operation cancellation (e.g.
/// `co_await (drain(c) || timer.async_wait(...))`): it then completes with
/// asio::error::operation_aborted. A peer that never reads keeps it waiting until the
/// connection ends (the heartbeat's pong_timeout, or close_timeout after a close).
template <class Connection, class CompletionToken>
auto async_drain(Connection& c, std::size_t low_water, CompletionToken&& token) {
    auto conn = detail::connection_of(c);
    const std::error_code early = conn ? std::error_code() : detail::not_connected_error(c);
    // A handler without an executor of its own runs on the connection's.
    asio::any_io_executor ex = detail::executor_of(c);
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [](auto handler, auto connection, std::size_t low, asio::any_io_executor io_ex, std::error_code ec) {
            auto slot = asio::get_associated_cancellation_slot(handler);
            auto w = detail::make_waiter<false>(std::move(handler), io_ex);
            if (!connection) return w(ec, {}, true);
            // The connection posts the completion to its executor; from there it is
            // dispatched to the handler's.
            const std::uint64_t id = connection->async_wait_drained(
                low, [w = std::move(w)](std::error_code e) mutable { w(e, {}, false); });
            using connection_type = typename decltype(connection)::element_type;
            if (id != 0 && slot.is_connected())
                slot.assign([weak = std::weak_ptr<connection_type>(connection), id](asio::cancellation_type) {
                    if (auto locked = weak.lock()) locked->cancel_wait_drained(id);
                });
        },
        token, std::move(conn), low_water, std::move(ex), early);
}

/// co_await drain(c, low_water): waits until buffered_amount() <= low_water (0: everything
/// written to the transport); throws duplex::error when the connection closes first or has
/// closed (see async_drain).
template <class Connection>
asio::awaitable<void> drain(Connection& c, std::size_t low_water = 0) {
    std::error_code ec;
    co_await async_drain(c, low_water, asio::redirect_error(asio::use_awaitable, ec));
    throw_if(ec);
}

/// co_await drain(c, low_water, ec): the same without exceptions.
template <class Connection>
asio::awaitable<void> drain(Connection& c, std::size_t low_water, std::error_code& ec) {
    ec.clear();
    co_await async_drain(c, low_water, asio::redirect_error(asio::use_awaitable, ec));
}

namespace detail {
template <class Connection>
std::size_t default_high_water(Connection& c) {
    if constexpr (std::is_same_v<Connection, client>) {
        auto p = c.connection_ptr();
        return p ? p->protocol().options().send_queue_limit / 2 : 0;
    } else {
        return c.protocol().options().send_queue_limit / 2;
    }
}

// The message is already queued (or refused with `sent`): no view of it is kept.
template <class Connection>
asio::awaitable<void> drain_after_send(Connection& c, std::error_code sent, std::size_t high_water) {
    throw_if(sent);
    if (c.buffered_amount() > high_water) co_await drain(c, high_water / 2);
}
} // namespace detail

/// co_await send(c, m, high_water): sends `m` (text or binary, as c.send(m)) at once, when
/// called; then, if more than `high_water` bytes are queued, waits until at most
/// high_water / 2 are. Throws duplex::error if the send fails (errc::not_open,
/// errc::closed, errc::send_queue_full: see the connection's send) or the connection
/// closes while waiting. The bytes of `m` are copied by the call: they need not outlive it.
/// A coroutine that sends only this way keeps its queue under about
/// high_water + one message.
template <class Connection>
asio::awaitable<void> send(Connection& c, const message& m, std::size_t high_water) {
    return detail::drain_after_send(c, c.send(m), high_water);
}

/// co_await send(c, m): the same with high_water = connection_options::send_queue_limit / 2
/// (8 MiB by default), so messages under half the limit never hit errc::send_queue_full.
template <class Connection>
asio::awaitable<void> send(Connection& c, const message& m) {
    return detail::drain_after_send(c, c.send(m), detail::default_high_water(c));
}

/// The close code, reason and failure of a connection set up by serve() or connect()
/// (code 0 while it is not closed).
template <class Connection>
close_status close_info(Connection& c) {
    auto box = detail::find_inbox(c);
    return box ? box->status() : close_status{};
}

/// Runs `session(std::shared_ptr<connection>) -> asio::awaitable<void>` once per
/// connection, on the connection's executor, from its on_open. Installs the server's
/// on_open, on_message, on_error and on_close (replacing them) and uses each
/// connection's user_data() for its inbox: keep per-connection state in the
/// coroutine's local variables instead.
///
/// When the coroutine returns, a connection still open is closed with 1000. A
/// duplex::error escaping it once the connection is no longer open (e.g. receive()
/// after the close) ends it quietly. Any other exception closes the connection with
/// 1011 and then goes to `on_exception`; without one it is rethrown out of
/// io_context::run(), as from a callback handler.
template <class Transport, class Session>
void serve(basic_server<Transport>& srv, Session session, coro_options options = {},
           std::function<void(std::exception_ptr)> on_exception = {}) {
    using connection = typename basic_server<Transport>::connection;
    srv.on_open([session = std::move(session), options, on_exception](connection& c) {
        c.user_data() = std::make_shared<detail::inbox>(options.inbox_limit);
        std::shared_ptr<connection> self = c.shared_from_this();
        asio::co_spawn(c.get_executor(), session(self), [self, on_exception](std::exception_ptr e) {
            const bool open = self->ready_state() == ready_state::open;
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const error&) {
                    if (!open) e = nullptr; // receive() or send after the close: the normal end
                } catch (...) {
                }
            }
            if (!e) {
                if (open) self->close(close_code::normal);
                return;
            }
            self->close(close_code::internal_error, "internal error");
            if (on_exception) on_exception(e);
            else std::rethrow_exception(e);
        });
    });
    srv.on_message([](connection& c, const message& m) { detail::deliver(c, m); });
    srv.on_error([](connection& c, std::error_code ec) {
        if (auto box = detail::find_inbox(c)) box->fail(ec);
    });
    srv.on_close([](connection& c, std::uint16_t code, std::string_view reason) {
        if (auto box = detail::find_inbox(c)) box->close(code, reason);
    });
}

namespace detail {
// No defaulted class-type parameters here or in the overloads below: with GCC 12 a
// default argument's temporary inside a `co_await f(...)` expression ends up copied
// bitwise (seen as a bad free under AddressSanitizer), so the overloads build them.
// Reports the result in *out, or throws it when out is null.
inline asio::awaitable<void> connect(client& ws, std::string url, std::error_code* out, client_options options,
                                     coro_options co) {
    std::error_code ec;
    auto box = std::make_shared<inbox>(co.inbox_limit);
    client* wsp = &ws;
    ws.on_open([box, wsp] {
        if (auto c = wsp->connection_ptr()) c->user_data() = box;
        box->opened();
    });
    ws.on_message([box, wsp](const message& m) {
        if (!box->push(m)) wsp->close(close_code::policy_violation, "receive inbox full");
    });
    ws.on_error([box](std::error_code e) { box->fail(e); });
    ws.on_close([box](std::uint16_t code, std::string_view reason) { box->close(code, reason); });
    ec = ws.connect(url, std::move(options));
    if (!ec) co_await async_wait_open(box, asio::redirect_error(asio::use_awaitable, ec));
    if (out) *out = ec;
    else if (ec) {
        // The status of a refused upgrade, or why a certificate was refused, before the code's message.
        const std::string why = box->status().reason;
        if (why.rfind("HTTP ", 0) == 0 || why.rfind("TLS: ", 0) == 0) throw error(ec, why); // "HTTP 401 Unauthorized: ..."
        throw error(ec);
    }
}
} // namespace detail

/// Connects `ws` to a ws:// (or wss://) URL and completes once it is OPEN, or with
/// the error that ended the attempt in `ec`. Installs ws's on_open, on_message,
/// on_error and on_close (replacing them); read with receive(ws), send with
/// ws.send_text() and the like.
inline asio::awaitable<void> connect(client& ws, std::string_view url, std::error_code& ec,
                                     const client_options& options, const coro_options& co) {
    return detail::connect(ws, std::string(url), &ec, options, co);
}
inline asio::awaitable<void> connect(client& ws, std::string_view url, std::error_code& ec,
                                     const client_options& options) {
    return detail::connect(ws, std::string(url), &ec, options, coro_options());
}
inline asio::awaitable<void> connect(client& ws, std::string_view url, std::error_code& ec) {
    return detail::connect(ws, std::string(url), &ec, client_options(), coro_options());
}

/// Throwing overloads: duplex::error (a std::system_error) when connecting fails.
inline asio::awaitable<void> connect(client& ws, std::string_view url, const client_options& options,
                                     const coro_options& co) {
    return detail::connect(ws, std::string(url), nullptr, options, co);
}
inline asio::awaitable<void> connect(client& ws, std::string_view url, const client_options& options) {
    return detail::connect(ws, std::string(url), nullptr, options, coro_options());
}
inline asio::awaitable<void> connect(client& ws, std::string_view url) {
    return detail::connect(ws, std::string(url), nullptr, client_options(), coro_options());
}

} // namespace duplex

#elif !defined(DUPLEX_NO_COROUTINES) && defined(__GNUC__) && !defined(__clang__)
// Said once here rather than as "asio::awaitable does not name a template" at the first use.
// GCC only: GCC prints it as a note, Clang as a warning (which -Werror would make fatal).
#pragma message("duplex/coro.hpp declares nothing: the coroutine API needs C++20 (-std=c++20) and an Asio with co_await (ASIO_HAS_CO_AWAIT); define DUPLEX_NO_COROUTINES to silence this")
#endif // coroutines
