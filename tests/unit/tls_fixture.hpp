// The TLS certificate fixture shared by test_client.cpp and test_server_tcp.cpp:
// self-signed certificates made at test time with the openssl command, once per
// run of the binary (inline functions: one static for every translation unit).
#pragma once
#ifdef DUPLEX_HAS_TLS

#include <catch2/catch.hpp>

#include <duplex/transport/tls.hpp>

#include <cstdlib>
#include <memory>
#include <string>

#include <cstdio>   // std::remove
#include <stdlib.h> // mkdtemp
#include <unistd.h> // rmdir

namespace duplex_test {

struct test_certs {
    std::string dir, cert, key, other_cert, other_key;
    test_certs() = default;
    test_certs(const test_certs&) = delete;
    test_certs& operator=(const test_certs&) = delete;
    // The run leaves nothing behind in /tmp (the static is destroyed at exit).
    ~test_certs() {
        if (dir.empty()) return;
        for (const std::string* f : {&cert, &key, &other_cert, &other_key}) std::remove(f->c_str());
        ::rmdir(dir.c_str());
    }
};

// Self-signed certificates made once per run: "localhost" (DNS:localhost,
// IP:127.0.0.1) and "other.example" (a name the tests never connect to).
inline const test_certs& certs() {
    static test_certs t; // made on first use, by the first test that needs it
    static const bool made = [] {
        char tmpl[] = "/tmp/duplex_tls_XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        t.dir = tmpl;
        t.cert = t.dir + "/cert.pem";
        t.key = t.dir + "/key.pem";
        t.other_cert = t.dir + "/other.pem";
        t.other_key = t.dir + "/other_key.pem";
        const auto make = [](const std::string& subject_alt, const std::string& cn, const std::string& key,
                             const std::string& cert) {
            const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=" + cn +
                                    " -addext subjectAltName=" + subject_alt + " -days 1 -keyout " + key +
                                    " -out " + cert + " >/dev/null 2>&1";
            return std::system(cmd.c_str());
        };
        REQUIRE(make("DNS:localhost,IP:127.0.0.1", "localhost", t.key, t.cert) == 0);
        REQUIRE(make("DNS:other.example", "other.example", t.other_key, t.other_cert) == 0);
        return true;
    }();
    (void)made;
    return t;
}

// A client context (TLS 1.2 or later, verification on) that trusts `ca_file`.
inline std::shared_ptr<asio::ssl::context> trusting(const std::string& ca_file) {
    auto ctx = std::make_shared<asio::ssl::context>(duplex::make_client_tls_context());
    ctx->load_verify_file(ca_file);
    return ctx;
}

} // namespace duplex_test

#endif // DUPLEX_HAS_TLS
