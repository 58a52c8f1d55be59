// The transport policy: what a connection needs from the bytes below it.
//
// A transport T is a movable type with:
//
//   using executor_type = ...;               // where its handlers run
//   executor_type get_executor();
//   void async_start(duplex::role, H&& h);   // h(std::error_code): ready for bytes
//                                            // (TLS: after its handshake; TCP: at once)
//   void async_read_some(asio::mutable_buffer, H&& h);       // h(std::error_code, std::size_t)
//   void async_write_some(const ConstBufferSequence&, H&& h); // h(std::error_code, std::size_t)
//   void shutdown_send() noexcept;           // half-close: the peer reads EOF after what
//                                            // was written; reading still works
//   void close() noexcept;                   // cut: pending operations complete with an error
//   std::string remote_address() const;      // for logs: "address:port" or a name
//
// Optional, used when present:
//   void abort() noexcept;                   // cut with a reset (a peer that stopped reading)
//   std::size_t try_write_some(const ConstBufferSequence&, std::error_code&);
//                                            // write what fits now, never wait: would_block
//                                            // when nothing fits. Saves a completion
//                                            // handler per write; without it every write
//                                            // goes through async_write_some.
//   void async_wait_readable(H&& h);         // h(std::error_code) once bytes or EOF can be read,
//   std::size_t read_some_now(asio::mutable_buffer, std::error_code&);
//                                            // then read without waiting (would_block if
//                                            // nothing). With both, the connection reads
//                                            // into its thread's buffer and owns none while
//                                            // it waits; without, it owns one.
//   bool can_wait_readable() const noexcept; // false: not now (TLS under a run-time choice)
//   static constexpr bool waits_every_read = true;
//                                            // a busy connection waits and reads that way
//                                            // too (but for large frames read into place);
//                                            // once woken it reads until a read comes back
//                                            // short (TCP on Linux: one recv per batch)
//   socket_type& socket();                  // the socket under it (TCP, Unix, TLS): a server
//                                            // with server_options::proxy_protocol reads
//                                            // the PROXY header there, before async_start
//   static constexpr bool reads_buffer_pairs = true;
//                                            // async_read_some also takes a
//                                            // std::array<asio::mutable_buffer, 2> (filled in
//                                            // order): a large frame's payload is then read
//                                            // into its message, what follows into the read
//                                            // buffer (TCP, TLS). Opt-in: a template
//                                            // async_read_some may not expect a sequence.
//
// The connection promises at most one read and one write in flight at a time,
// all started from handlers running on get_executor() (a strand when the
// io_context runs on several threads). A handler is called exactly once.
#pragma once
#include <cstddef>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <asio/buffer.hpp>

#include "../core/opcode.hpp"

namespace duplex {

namespace detail {
// Stand-ins for completion handlers (lambdas may not appear in decltype before C++20).
struct io_handler_archetype { void operator()(std::error_code, std::size_t) {} };
struct start_handler_archetype { void operator()(std::error_code) {} };

template <class T, class = void>
struct is_transport : std::false_type {};
template <class T>
struct is_transport<T, std::void_t<
    decltype(std::declval<T&>().get_executor()),
    decltype(std::declval<T&>().close()),
    decltype(std::declval<T&>().shutdown_send()),
    decltype(std::declval<const T&>().remote_address()),
    decltype(std::declval<T&>().async_read_some(std::declval<asio::mutable_buffer>(),
                                                io_handler_archetype{})),
    decltype(std::declval<T&>().async_write_some(std::declval<asio::const_buffer>(),
                                                 io_handler_archetype{})),
    decltype(std::declval<T&>().async_start(role::server, start_handler_archetype{}))>> : std::true_type {};
template <class T, class = void>
struct has_try_write : std::false_type {};
template <class T>
struct has_try_write<T, std::void_t<decltype(std::declval<T&>().try_write_some(
    std::declval<asio::const_buffer>(), std::declval<std::error_code&>()))>> : std::true_type {};
template <class T, class = void>
struct has_wait_readable : std::false_type {};
template <class T>
struct has_wait_readable<T, std::void_t<
    decltype(std::declval<T&>().async_wait_readable(start_handler_archetype{})),
    decltype(std::declval<T&>().read_some_now(std::declval<asio::mutable_buffer>(),
                                              std::declval<std::error_code&>()))>> : std::true_type {};
template <class T, class = void>
struct has_scatter_read : std::false_type {};
template <class T>
struct has_scatter_read<T, std::enable_if_t<T::reads_buffer_pairs>> : std::true_type {};
template <class T, class = void>
struct has_abort : std::false_type {};
template <class T>
struct has_abort<T, std::void_t<decltype(std::declval<T&>().abort())>> : std::true_type {};
// A transport with async_wait_readable may say at run time that it cannot use it
// now (can_wait_readable(), e.g. a TLS-or-TCP transport that is TLS).
template <class T, class = void>
struct has_can_wait_readable : std::false_type {};
template <class T>
struct has_can_wait_readable<T, std::void_t<decltype(std::declval<const T&>().can_wait_readable())>> : std::true_type {};
template <class T>
bool can_wait_readable(const T& t) noexcept {
    if constexpr (has_can_wait_readable<T>::value) return t.can_wait_readable();
    else return has_wait_readable<T>::value;
}
// socket(): the TCP socket under the transport, whatever its type (checked where used).
template <class T, class = void>
struct has_socket : std::false_type {};
template <class T>
struct has_socket<T, std::void_t<decltype(std::declval<T&>().socket())>> : std::true_type {};
template <class T, class = void>
struct has_verify_error : std::false_type {}; // TLS: why the peer's certificate was refused
template <class T>
struct has_verify_error<T, std::void_t<decltype(std::declval<const T&>().verify_error())>> : std::true_type {};
template <class T, class = void>
struct waits_every_read : std::false_type {};
template <class T>
struct waits_every_read<T, std::enable_if_t<T::waits_every_read>> : std::true_type {};
} // namespace detail

/// True when T meets the transport contract above.
template <class T>
inline constexpr bool is_transport_v = detail::is_transport<T>::value;

} // namespace duplex
