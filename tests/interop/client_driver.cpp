// duplex::client against a foreign echo server (Node's ws, Python's websockets).
//
//   client_driver ws://127.0.0.1:PORT/
//
// Connects, then runs a script one step at a time: text and binary messages of
// every payload length encoding up to 16 MiB, each echo checked for type and
// bytes; a message sent in fragments; a ping with a payload; then close(1000)
// and the close code the server answers with. Then connects again and asks the
// server (text "!close 4002 server says bye", which both echo servers of
// tests/interop understand) to close first: on_close must see 4002 and the
// reason. Then the server misbehaves, once per connection ("!bad CASE", which
// both echo servers understand): each case is a rule of RFC 6455 the server breaks,
// for which the client must fail the connection (§7.1.7) with the rule's close
// code. on_error must report the rule's errc, on_close its code, and the server
// must have got a close frame with that code back (it tells, on one more
// connection: "!closecode CASE" is answered with "CASE CODE"; 1006 there means no
// close frame came, as it must be when TCP dropped). Prints one line per step and
// exits 0 only when every step passed. A watchdog ends the run after 80 s
// (before run_client_driver.sh's 90 s, so the step it hung at is printed); each
// case of phase 3 has 10 s, then its connection is closed and the next case runs.
//
// Subprotocols (RFC 6455 §4.1, §4.2.2): the first connection offers none and must get
// none; the second offers "superchat, chat" and must get what DUPLEX_EXPECT_SUBPROTOCOL
// says: "chat" against node_echo_server.mjs, nothing (unset) against
// python_echo_server.py, which chooses none (a server may answer without one).
// DUPLEX_DEFLATE set: every connection offers permessage-deflate and must get it.
// DUPLEX_PROXY=http://[user:password@]host:port: every connection goes through that HTTP
// proxy; with DUPLEX_EXPECT_PROXY_AUTH_REQUIRED set too, the driver only checks that
// the proxy refuses it with 407 (errc::proxy_auth_required, then on_close 1006).
#include <duplex/client.hpp>

#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

struct step {
    std::string name;
    std::function<void()> run;               // sends something
    std::function<bool(const duplex::message&)> on_message; // null: a message is a failure
    std::function<bool(std::string_view)> on_pong;          // null: a pong is a failure
};

std::string utf8_bytes(std::size_t n) {
    // 1- to 4-byte code points; a code point cut off at the end is replaced by ASCII.
    static const std::string pattern = "duplex \xc3\xa9 \xe2\x86\x92 \xe2\x9c\x93 \xf0\x9d\x84\x9e \xe6\x97\xa5 ";
    std::string s;
    s.reserve(n);
    while (s.size() < n) s += pattern;
    s.resize(n);
    std::size_t i = n;
    while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xc0) == 0x80) --i;
    if (i > 0) {
        const auto lead = static_cast<unsigned char>(s[i - 1]);
        const std::size_t len = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
        if (i - 1 + len > n) s.replace(i - 1, n - (i - 1), n - (i - 1), 'a');
    }
    return s;
}

std::string random_bytes(std::size_t n, std::mt19937& rng) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: client_driver ws://127.0.0.1:PORT/\n");
        return 2;
    }
    const std::string url = argv[1];
    const bool deflate = std::getenv("DUPLEX_DEFLATE") != nullptr; // offer permessage-deflate
    duplex::client_options options;
    options.connection.deflate.enabled = deflate;
    // DUPLEX_PROXY: every connection goes through this HTTP proxy (CONNECT tunnels).
    if (const char* proxy = std::getenv("DUPLEX_PROXY")) options.proxy = proxy;
    if (std::getenv("DUPLEX_EXPECT_PROXY_AUTH_REQUIRED") != nullptr) {
        // The proxy must refuse the tunnel with 407: on_error says so, on_close 1006.
        asio::io_context io;
        duplex::client ws(io);
        std::error_code error;
        int closes = 0;
        std::uint16_t code = 0;
        ws.on_error([&](std::error_code ec) { error = ec; });
        ws.on_open([&] { ws.close(); });
        ws.on_close([&](std::uint16_t c, std::string_view) { ++closes, code = c; });
        if (auto ec = ws.connect(url, options)) {
            std::fprintf(stderr, "FAIL connect(%s): %s\n", url.c_str(), ec.message().c_str());
            return 1;
        }
        io.run_for(std::chrono::seconds(20));
        const bool ok = error == duplex::errc::proxy_auth_required && closes == 1 && code == 1006;
        std::printf("%s: without credentials: on_error \"%s\", on_close %u (want errc::proxy_auth_required, 1006)\n",
                    ok ? "PASSED" : "FAILED", error.message().c_str(), unsigned(code));
        return ok ? 0 : 1;
    }
    // The second connection: the same, offering two subprotocols in preference order.
    duplex::client_options options_with_protocols = options;
    options_with_protocols.subprotocols = {"superchat", "chat"};
    const char* expect_env = std::getenv("DUPLEX_EXPECT_SUBPROTOCOL");
    const std::string expected_subprotocol = expect_env ? expect_env : "";
    asio::io_context io;
    duplex::client ws(io);
    std::mt19937 rng(6455);

    int failures = 0;
    int phase = 1;       // 1: the script, then our close; 2: the server closes; 3: it misbehaves
    bool closed = false;
    std::size_t current = 0;
    std::vector<step> script;

    // Phase 3: the server breaks a rule; the client must fail the connection.
    struct failure_case {
        std::string name;            // "!bad NAME" makes the server do it
        std::string rule;            // what it breaks
        std::uint16_t code;          // on_close must report this...
        duplex::errc error;          // ...after on_error reported this
        int server_code;             // the close code the server must get (1006: none)
        std::size_t max_message_size = 0; // the client's limit for this case; 0: the default
    };
    const std::vector<failure_case> cases = {
        {"bad-utf8", "text message that is not UTF-8 (§8.1)", 1007, duplex::errc::invalid_utf8, 1007},
        {"reserved-opcode", "frame with reserved opcode 0x3 (§5.2)", 1002, duplex::errc::reserved_opcode, 1002},
        {"masked-frame", "masked frame from the server (§5.1)", 1002, duplex::errc::mask_forbidden, 1002},
        {"too-big", "2 MiB message over max_message_size 1 MiB (§7.4.1)", 1009, duplex::errc::message_too_big, 1009,
         1024 * 1024},
        {"close-1005", "close frame with code 1005 on the wire (§7.4.1)", 1002, duplex::errc::bad_close_code, 1002},
        {"close-999", "close frame with code 999 (§7.4.2)", 1002, duplex::errc::bad_close_code, 1002},
        {"close-1-byte", "close frame with a 1-byte payload (§5.5.1)", 1002, duplex::errc::bad_close_size, 1002},
        {"close-bad-reason", "close frame whose reason is not UTF-8 (§5.5.1)", 1007, duplex::errc::invalid_close_reason,
         1007},
        {"drop-tcp", "TCP closed (FIN) without a close frame (§7.1.5)", 1006, duplex::errc::connection_lost, 1006},
        {"reset-tcp", "TCP reset (RST) without a close frame (§7.1.5)", 1006, duplex::errc::connection_lost, 1006},
    };
    std::size_t case_index = 0;
    bool querying = false;                 // false: the misbehaving connection; true: asking the server
    std::vector<std::error_code> errors;   // what on_error reported on the misbehaving connection
    auto t0 = std::chrono::steady_clock::now();
    const auto fail = [&](const std::string& what) {
        ++failures;
        std::printf("FAIL %s\n", what.c_str());
        std::fflush(stdout);
    };
    std::function<void()> next;
    std::function<void()> start_case;

    // §5.2: payload lengths at each length encoding's edges; 16 MiB is the
    // client's default max_message_size, so its echo must still be accepted.
    const std::size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 16u * 1024 * 1024};
    for (std::size_t n : sizes) {
        for (bool binary : {false, true}) {
            auto payload = std::make_shared<std::string>(binary ? random_bytes(n, rng) : utf8_bytes(n));
            const auto op = binary ? duplex::opcode::binary : duplex::opcode::text;
            script.push_back({std::string(binary ? "binary " : "text ") + std::to_string(n) + " B echoed",
                [&ws, payload, op, &fail] {
                    if (auto ec = ws.send(op, *payload)) fail("send: " + ec.message());
                },
                [payload, op, &fail](const duplex::message& m) {
                    if (m.op != op) return fail("echo has the other type (§5.6)"), false;
                    if (m.data.size() != payload->size())
                        return fail("echo has " + std::to_string(m.data.size()) + " bytes"), false;
                    if (m.data != *payload) return fail("echo bytes differ"), false;
                    return true;
                },
                nullptr});
        }
    }
    // §5.4: one message in three fragments (text, continuation, continuation+FIN).
    script.push_back({"text in 3 fragments echoed whole (§5.4)",
        [&] {
            std::error_code ec;
            if (!ec) ec = ws.send_fragment(duplex::opcode::text, "frag-one ", false);
            if (!ec) ec = ws.send_fragment(duplex::opcode::text, "fr\xc3\xa4g-two ", false);
            if (!ec) ec = ws.send_fragment(duplex::opcode::text, "frag-three", true);
            if (ec) fail("send_fragment: " + ec.message());
        },
        [&](const duplex::message& m) {
            if (!m.is_text() || m.data != "frag-one fr\xc3\xa4g-two frag-three")
                return fail("reassembled: '" + m.str() + "'"), false;
            return true;
        },
        nullptr});
    // §5.5.2/§5.5.3: the pong carries the ping's payload.
    script.push_back({"ping with payload answered by a pong with the same payload (§5.5.2)",
        [&] {
            if (auto ec = ws.ping("duplex ping \x01\x02\xff")) fail("ping: " + ec.message());
        },
        nullptr,
        [&](std::string_view p) {
            if (p != "duplex ping \x01\x02\xff") return fail("pong payload '" + std::string(p) + "'"), false;
            return true;
        }});

    const auto pass = [&] {
        const auto now = std::chrono::steady_clock::now();
        std::printf("ok   %s (%lld ms)\n", script[current].name.c_str(),
                    static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(now - t0).count()));
        std::fflush(stdout);
        ++current;
        next();
    };
    next = [&] {
        t0 = std::chrono::steady_clock::now();
        if (current < script.size()) return script[current].run();
        // §7.1.2: start the closing handshake; the server echoes 1000 (§5.5.1).
        if (auto ec = ws.close(1000, "done")) fail("close: " + ec.message());
    };

    asio::steady_timer watchdog(io);
    asio::steady_timer case_timer(io); // phase 3: each connection must end within 10 s
    watchdog.expires_after(std::chrono::seconds(80));
    watchdog.async_wait([&](std::error_code ec) {
        if (ec) return;
        fail(current < script.size() ? "timed out at step: " + script[current].name
               : phase == 1 ? "timed out waiting for the close"
               : phase == 2 ? "timed out waiting for the server's close"
                            : "timed out in case " + cases[case_index].name + (querying ? " (asking the server)" : ""));
        io.stop();
    });

    ws.on_open([&] {
        // §4.1: nothing offered, nothing chosen; §4.2.2: the server picks one of those offered.
        // Phase 3 connects with `options` (nothing offered) and says less.
        const bool quiet = phase == 3;
        const std::string want = phase == 2 ? expected_subprotocol : std::string();
        const char* offered = phase == 2 ? "[superchat, chat]" : "nothing";
        if (!quiet)
            std::printf("ok   open %s (subprotocol '%s')%s\n", url.c_str(), ws.subprotocol().c_str(),
                        phase == 2 ? " again, after a clean close" : "");
        if (ws.subprotocol() != want)
            fail(std::string("subprotocol '") + ws.subprotocol() + "' after offering " + offered + ", expected '" + want + "'");
        else if (!quiet)
            std::printf("ok   subprotocol '%s' after offering %s\n", want.c_str(), offered);
        // RFC 7692 §5: with DUPLEX_DEFLATE=1 the server must have accepted our offer.
        if (deflate && !ws.connection_ptr()->protocol().deflate_enabled()) fail("permessage-deflate was not negotiated");
        else if (deflate && !quiet) std::printf("ok   permessage-deflate negotiated\n");
        if (phase == 1) return next();
        if (phase == 3) {
            // "!bad CASE": the server breaks the rule; "!closecode CASE": what it got back.
            const auto& c = cases[case_index];
            if (auto ec = ws.send_text((querying ? "!closecode " : "!bad ") + c.name)) fail("send: " + ec.message());
            return;
        }
        // §7.1.2: the server starts the closing handshake; the client answers with the
        // same code and waits for the server to close TCP (§7.1.1).
        if (auto ec = ws.send_text("!close 4002 server says bye")) fail("send: " + ec.message());
    });
    ws.on_message([&](const duplex::message& m) {
        if (phase == 2) return fail("unexpected message in phase 2: '" + m.str().substr(0, 80) + "'");
        if (phase == 3) {
            const auto& c = cases[case_index];
            if (!querying) {
                // The server did not break the rule (or the client did not notice): end this
                // case's connection so the other cases still run.
                fail(c.name + ": unexpected message of " + std::to_string(m.data.size()) + " bytes: '" +
                     m.str().substr(0, 80) + "'");
                ws.close(1000, "unexpected message");
                return;
            }
            // §7.1.7: the client's close frame carried the rule's code (1006: none came).
            const std::string want = c.name + " " + std::to_string(c.server_code);
            if (m.str() != want) fail(c.name + ": the server reports '" + m.str() + "', expected '" + want + "'");
            else if (c.server_code == 1006) std::printf("ok   %s: the server got no close frame\n", c.name.c_str());
            else std::printf("ok   %s: the server got close code %d back\n", c.name.c_str(), c.server_code);
            if (auto ec = ws.close(1000, "done")) fail("close: " + ec.message());
            return;
        }
        if (current >= script.size() || !script[current].on_message) {
            fail("unexpected message of " + std::to_string(m.data.size()) + " bytes");
            return;
        }
        if (script[current].on_message(m)) pass();
        else { ++current; next(); }
    });
    ws.on_pong([&](std::string_view p) {
        if (current >= script.size() || !script[current].on_pong) return; // unsolicited pongs are allowed (§5.5.3)
        if (script[current].on_pong(p)) pass();
        else { ++current; next(); }
    });
    ws.on_error([&](std::error_code ec) {
        if (phase == 3 && !querying) return errors.push_back(ec);
        fail("on_error: " + ec.message());
    });
    ws.on_close([&](std::uint16_t code, std::string_view reason) {
        if (phase == 1) {
            if (current < script.size()) fail("closed early at step: " + script[current].name);
            // §7.1.5/§7.4.1: the code of the server's close frame.
            if (code != 1000) fail("on_close code " + std::to_string(code) + " (" + std::string(reason) + "), expected 1000");
            else std::printf("ok   on_close 1000 after close(1000)\n");
            phase = 2;
            asio::post(io, [&] {
                if (auto ec = ws.connect(url, options_with_protocols)) fail("second connect(): " + ec.message());
            });
            return;
        }
        if (phase == 2) {
            // §7.1.5/§7.1.6: the server's code and reason.
            if (code != 4002 || reason != "server says bye")
                fail("server-initiated close: on_close " + std::to_string(code) + " '" + std::string(reason) +
                     "', expected 4002 'server says bye'");
            else std::printf("ok   on_close 4002 'server says bye' when the server closed first\n");
            phase = 3;
            return start_case();
        }
        const auto& c = cases[case_index];
        if (!querying) {
            // §7.1.7: the client failed the connection with the rule's code, and says why.
            const auto now = std::chrono::steady_clock::now();
            const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - t0).count();
            const auto want = duplex::make_error_code(c.error);
            if (errors.size() != 1 || errors[0] != want) {
                std::string got;
                for (const auto& e : errors) got += (got.empty() ? "'" : ", '") + e.message() + "'";
                fail(c.name + ": on_error " + (got.empty() ? "never called" : got) + ", expected '" + want.message() + "'");
            }
            if (code != c.code)
                fail(c.name + ": on_close " + std::to_string(code) + " '" + std::string(reason) + "', expected " +
                     std::to_string(c.code));
            else
                std::printf("ok   %s: %s -> on_error '%s', on_close %d '%s' (%lld ms)\n", c.name.c_str(),
                            c.rule.c_str(), want.message().c_str(), static_cast<int>(code), std::string(reason).c_str(), ms);
            std::fflush(stdout);
            querying = true;
            asio::post(io, [&, name = c.name] {
                if (auto ec = ws.connect(url, options)) fail(name + ": connect() to ask the server: " + ec.message());
            });
            return;
        }
        if (code != 1000) fail(c.name + ": asking the server: on_close " + std::to_string(code) + ", expected 1000");
        if (++case_index < cases.size()) return start_case();
        closed = true;
        watchdog.cancel();
        case_timer.cancel();
    });
    start_case = [&] {
        const auto& c = cases[case_index];
        querying = false;
        errors.clear();
        t0 = std::chrono::steady_clock::now();
        case_timer.expires_after(std::chrono::seconds(10));
        case_timer.async_wait([&, index = case_index](std::error_code ec) {
            if (ec || index != case_index || closed) return;
            fail(cases[index].name + ": not over after 10 s" + (querying ? " (asking the server)" : ""));
            ws.close(1000, "case timed out"); // on_close follows, and the next case
        });
        duplex::client_options o = options;
        if (c.max_message_size != 0) o.connection.max_message_size = c.max_message_size;
        asio::post(io, [&, o, name = c.name] {
            if (auto ec = ws.connect(url, o)) fail(name + ": connect(): " + ec.message());
        });
    };

    if (auto ec = ws.connect(url, options)) {
        std::fprintf(stderr, "FAIL connect(%s): %s\n", url.c_str(), ec.message().c_str());
        return 1;
    }
    io.run();
    if (!closed) fail("on_close never called");
    std::printf("\n%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
