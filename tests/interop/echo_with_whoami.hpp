// What the interop test servers (proxied_server.cpp, unix_echo_server.cpp) answer:
// every message echoed, except the texts
//   "whoami"   remote_address() (the client a PROXY header names, or "unix:");
//   "stats"    "accepted N open M bad-proxy-header K" from server.stats();
//   "measure"  "measuring", after measure_latency() sent its ping;
//   "latency"  latency() in microseconds.
#pragma once
#include <duplex/server.hpp>

#include <string>

template <class Server>
void echo_with_whoami(Server& server) {
    server.on_message([&server](auto& conn, const duplex::message& msg) {
        if (msg.is_text() && msg.data == "whoami") {
            conn.send_text(conn.remote_address());
        } else if (msg.is_text() && msg.data == "measure") {
            conn.send_text(conn.measure_latency() ? "cannot measure" : "measuring");
        } else if (msg.is_text() && msg.data == "latency") {
            conn.send_text(std::to_string(conn.latency().count()));
        } else if (msg.is_text() && msg.data == "stats") {
            duplex::server_stats s = server.stats();
            const auto bad = s.handshake_failures[make_error_code(duplex::errc::bad_proxy_header).message()];
            conn.send_text("accepted " + std::to_string(s.accepted) + " open " + std::to_string(s.open_connections) +
                           " bad-proxy-header " + std::to_string(bad));
        } else {
            conn.send(msg);
        }
    });
}
