// Zero-copy HTTP/1.1 message-head parser (RFC 7230 §3), in the style of
// picohttpparser: every call looks at all the bytes received so far, returns the
// head size once the empty line has arrived, 0 while more bytes are needed, and
// sets an error as soon as the bytes cannot begin a valid head. Parsed strings
// are std::string_view into the caller's buffer, so they are valid as long as
// that buffer is neither freed nor moved.
//
// Deliberate strictness (each answered 400 / errc::bad_http_request):
// - line endings must be CRLF; a bare LF is rejected (RFC 7230 §3.5 allows
//   either, but every WebSocket client sends CRLF and accepting both invites
//   request-smuggling mismatches with proxies);
// - no empty lines before the request line;
// - obs-fold (a header line starting with SP/HTAB) is rejected (§3.2.4);
// - whitespace between a field name and ':' is rejected (§3.2.4);
// - field names must be tokens; control characters other than HTAB in values,
//   and SP/controls in the request target, are rejected;
// - only HTTP/1.x is accepted.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <initializer_list>
#include <string_view>
#include <system_error>
#include <vector>

#include "error.hpp"

namespace duplex {

/// Limits that bound the work and memory one peer can make the parser spend.
struct http_limits {
    std::size_t max_header_bytes = 8192; ///< whole head, request/status line and final CRLFCRLF included
    std::size_t max_header_count = 64;   ///< header fields (lines after the first)
};

/// One header field, both views into the parsed buffer. `value` is trimmed of
/// surrounding whitespace (OWS, RFC 7230 §3.2.3); `name` keeps the sender's case.
struct http_field {
    std::string_view name;
    std::string_view value;
};

namespace detail {

constexpr char ascii_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

/// ASCII case-insensitive equality (header names, tokens such as "websocket").
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

/// tchar (RFC 7230 §3.2.6): the characters a token (method, field name, ...) is made of.
constexpr bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

constexpr bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// field-vchar, SP, HTAB or obs-text: what may appear in a field value or reason phrase.
constexpr bool is_field_char(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7F);
}

/// What may appear in a request target: anything visible (obs-text tolerated), no SP.
constexpr bool is_target_char(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7F;
}

constexpr std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

/// Calls f(element) for each element of a comma-separated list (RFC 7230 §7),
/// trimmed of OWS; empty elements are skipped. Stops at the first f that returns
/// true, and then returns true.
template <class F>
bool find_list_element(std::string_view list, F&& f) {
    while (true) {
        const std::size_t comma = list.find(',');
        const std::string_view element = trim_ows(list.substr(0, comma));
        if (!element.empty() && f(element)) return true;
        if (comma == std::string_view::npos) return false;
        list.remove_prefix(comma + 1);
    }
}

/// Decodes one part of a query as browsers' URLSearchParams does (WHATWG URL,
/// application/x-www-form-urlencoded): "+" is a space, "%XX" the byte XX, and a "%"
/// not followed by two hex digits stays as it is.
inline std::string form_decode(std::string_view in) {
    const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        c = ascii_lower(c);
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size()) {
            const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        out += in[i] == '+' ? ' ' : in[i];
    }
    return out;
}

} // namespace detail

/// The authority ("host[:port]") of an absolute-form request target with the
/// http, https, ws or wss scheme: "example.com:8080" for
/// "http://example.com:8080/chat", which RFC 7230 §5.3.2 and RFC 6455 §4.2.1 allow
/// beside "/chat". Empty for any other target, and for one whose host is empty or
/// that carries userinfo (RFC 7230 §2.7.1: a recipient must reject those).
constexpr std::string_view absolute_target_authority(std::string_view t) noexcept {
    std::size_t start = 0;
    for (const std::string_view scheme : {std::string_view("http://"), std::string_view("https://"),
                                          std::string_view("ws://"), std::string_view("wss://")})
        if (t.size() > scheme.size() && detail::iequals(t.substr(0, scheme.size()), scheme)) start = scheme.size();
    if (start == 0) return {};
    const std::string_view authority = t.substr(start, t.find_first_of("/?#", start) - start);
    if (authority.empty() || authority[0] == ':' || authority.find('@') != std::string_view::npos) return {};
    return authority;
}

/// True for an absolute-form request target (see absolute_target_authority).
constexpr bool is_absolute_http_target(std::string_view t) noexcept { return !absolute_target_authority(t).empty(); }

/// Header fields of a parsed request or response, with case-insensitive lookup.
/// `fields` keeps its capacity across clear(), so a reused object stops allocating.
class http_headers {
public:
    std::vector<http_field> fields;

    /// Iterates the values of every field called `name` (case-insensitive), in order.
    class value_range {
    public:
        class iterator {
        public:
            using iterator_category = std::forward_iterator_tag;
            using value_type = std::string_view;
            using difference_type = std::ptrdiff_t;
            using pointer = const std::string_view*;
            using reference = std::string_view;

            iterator() = default;
            iterator(const http_field* it, const http_field* end, std::string_view name) noexcept
                : it_(it), end_(end), name_(name) { skip(); }
            std::string_view operator*() const noexcept { return it_->value; }
            iterator& operator++() noexcept { ++it_; skip(); return *this; }
            iterator operator++(int) noexcept { iterator tmp = *this; ++*this; return tmp; }
            bool operator==(const iterator& o) const noexcept { return it_ == o.it_; }
            bool operator!=(const iterator& o) const noexcept { return it_ != o.it_; }

        private:
            void skip() noexcept {
                while (it_ != end_ && !detail::iequals(it_->name, name_)) ++it_;
            }
            const http_field* it_ = nullptr;
            const http_field* end_ = nullptr;
            std::string_view name_;
        };

        value_range(const http_field* begin, const http_field* end, std::string_view name) noexcept
            : begin_(begin), end_(end), name_(name) {}
        iterator begin() const noexcept { return {begin_, end_, name_}; }
        iterator end() const noexcept { return {end_, end_, name_}; }

    private:
        const http_field* begin_;
        const http_field* end_;
        std::string_view name_;
    };

    /// Value of the first field called `name` (case-insensitive), or an empty view.
    std::string_view header(std::string_view name) const noexcept {
        for (const auto& f : fields)
            if (detail::iequals(f.name, name)) return f.value;
        return {};
    }

    /// Whether any field is called `name` (case-insensitive), even with an empty value.
    bool has_header(std::string_view name) const noexcept {
        for (const auto& f : fields)
            if (detail::iequals(f.name, name)) return true;
        return false;
    }

    /// Number of fields called `name` (case-insensitive).
    std::size_t header_count(std::string_view name) const noexcept {
        std::size_t n = 0;
        for (const auto& f : fields)
            if (detail::iequals(f.name, name)) ++n;
        return n;
    }

    /// Values of every field called `name`: `for (std::string_view v : msg.header_values("X"))`.
    value_range header_values(std::string_view name) const noexcept {
        const http_field* b = fields.data();
        return {b, b + fields.size(), name};
    }

    /// All values of `name` joined with ", " — equivalent to the separate lines for
    /// list-valued fields (RFC 7230 §3.2.2). Allocates; prefer header_values().
    std::string joined_header(std::string_view name) const {
        std::string out;
        for (std::string_view v : header_values(name)) {
            if (v.empty()) continue;
            if (!out.empty()) out += ", ";
            out.append(v.data(), v.size());
        }
        return out;
    }

    /// Whether a comma-separated list field (`Connection: keep-alive, Upgrade`) holds
    /// `token`, case-insensitively, across all fields called `name`.
    bool has_token(std::string_view name, std::string_view token) const noexcept {
        for (std::string_view v : header_values(name)) {
            if (detail::find_list_element(v, [&](std::string_view e) { return detail::iequals(e, token); }))
                return true;
        }
        return false;
    }

    std::vector<http_field>::const_iterator begin() const noexcept { return fields.begin(); }
    std::vector<http_field>::const_iterator end() const noexcept { return fields.end(); }
    std::size_t size() const noexcept { return fields.size(); }
    bool empty() const noexcept { return fields.empty(); }
};

/// A parsed request head (RFC 7230 §3.1.1).
class http_request : public http_headers {
public:
    std::string_view method;  ///< case-sensitive (RFC 7231 §4.1): "GET", not "get"
    std::string_view target;  ///< request-target as sent, e.g. "/chat?room=1"
    int version_minor = 0;    ///< the x of HTTP/1.x

    /// Forgets the previous request; keeps `fields`' capacity.
    void clear() noexcept {
        method = {};
        target = {};
        version_minor = 0;
        fields.clear();
    }

    /// The target's path ("/chat" for "/chat?room=1", and for the absolute form
    /// "http://example.com/chat?room=1"; "/" for "http://example.com").
    std::string_view path() const noexcept {
        const std::string_view t = origin_form();
        const std::string_view p = t.substr(0, t.find('?'));
        if (!p.empty() || !is_absolute_http_target(target)) return p;
        return target.substr(target.find("//") + 1, 1); // "/": like every view, one into target
    }

    /// The query without the '?', as sent ("room=1&token=a%2Bb" for
    /// "/chat?room=1&token=a%2Bb"); empty if none. query_param() decodes one parameter.
    std::string_view query() const noexcept {
        const std::string_view t = origin_form();
        const std::size_t q = t.find('?');
        return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
    }

    /// The value of the query parameter `name`, decoded as a browser's URLSearchParams
    /// does ("+" is a space, "%2B" a "+"): "a+b" for query_param("token") on
    /// "/chat?room=1&token=a%2Bb". Names are compared after decoding; the first
    /// parameter of that name counts. Empty when there is none (or its value is empty).
    std::string query_param(std::string_view name) const {
        std::string_view q = query();
        while (!q.empty()) {
            const std::size_t amp = q.find('&');
            const std::string_view pair = q.substr(0, amp);
            const std::size_t eq = pair.find('=');
            const std::string_view key = pair.substr(0, eq);
            if (key.size() >= name.size() && detail::form_decode(key) == name)
                return eq == std::string_view::npos ? std::string() : detail::form_decode(pair.substr(eq + 1));
            if (amp == std::string_view::npos) break;
            q.remove_prefix(amp + 1);
        }
        return {};
    }

    /// The target with an absolute form's "http://authority" taken off (RFC 7230
    /// §5.3.2): "/chat?room=1"; as is for the usual origin form.
    std::string_view origin_form() const noexcept {
        if (!is_absolute_http_target(target)) return target;
        const std::size_t authority = target.find("//") + 2;
        const std::size_t end = target.find_first_of("/?", authority);
        return end == std::string_view::npos ? std::string_view{} : target.substr(end);
    }

    /// The Origin field (RFC 6454), sent by browsers; empty if absent.
    std::string_view origin() const noexcept { return header("Origin"); }

    /// The value of cookie `name` from the Cookie fields (`Cookie: a=1; b=2`, RFC 6265
    /// §5.4), as sent (quotes kept). Cookie names are case-sensitive. Empty if absent.
    std::string_view cookie(std::string_view name) const noexcept {
        for (std::string_view v : header_values("Cookie")) {
            while (!v.empty()) {
                const std::size_t semi = v.find(';');
                const std::string_view pair = detail::trim_ows(v.substr(0, semi));
                const std::size_t eq = pair.find('=');
                if (eq != std::string_view::npos && detail::trim_ows(pair.substr(0, eq)) == name)
                    return detail::trim_ows(pair.substr(eq + 1));
                if (semi == std::string_view::npos) break;
                v.remove_prefix(semi + 1);
            }
        }
        return {};
    }
};

/// A parsed response head (RFC 7230 §3.1.2).
class http_response : public http_headers {
public:
    int status = 0;           ///< 100..999
    std::string_view reason;  ///< reason phrase, possibly empty
    int version_minor = 0;    ///< the x of HTTP/1.x

    /// Forgets the previous response; keeps `fields`' capacity.
    void clear() noexcept {
        status = 0;
        reason = {};
        version_minor = 0;
        fields.clear();
    }
};

/// Standard reason phrase for `status` (RFC 7231 §6.1, RFC 6585), or "" if unknown.
constexpr std::string_view http_reason_phrase(int status) noexcept {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return {};
    }
}

/// Searches `buf` for the CRLFCRLF that ends a head and returns the head size (the
/// index just past it), or 0 if it is not there yet. `from` is how many bytes were
/// already searched (the previous call's buf.size()): the search starts 3 bytes
/// before it, so a terminator split across arrivals is still found and a head that
/// arrives one byte at a time costs O(n) in total rather than O(n²).
inline std::size_t find_head_end(std::string_view buf, std::size_t from = 0) noexcept {
    std::size_t i = from > 3 ? from - 3 : 0;
    while (i < buf.size()) {
        const void* lf = std::memchr(buf.data() + i, '\n', buf.size() - i);
        if (lf == nullptr) return 0;
        const auto at = static_cast<std::size_t>(static_cast<const char*>(lf) - buf.data());
        if (at >= 3 && buf[at - 1] == '\r' && buf[at - 2] == '\n' && buf[at - 3] == '\r') return at + 1;
        i = at + 1;
    }
    return 0;
}

/// Cheap incremental gate in front of parse_request/parse_response for a buffer that
/// grows as bytes arrive: each byte is looked at once. Reports the head size once the
/// CRLFCRLF is there, and fails early on a bare LF (see the file comment), on more
/// bytes than max_header_bytes, or on more complete header lines than max_header_count
/// — so a peer dribbling bytes without ever ending the head is cut off at the limit.
class http_head_scanner {
public:
    /// `buf` holds every byte received so far (earlier calls saw a prefix of it).
    /// Returns the head size when complete, else 0; sets `ec` on error (then 0).
    std::size_t scan(std::string_view buf, std::error_code& ec, const http_limits& limits = {}) noexcept {
        ec.clear();
        std::size_t i = scanned_;
        while (i < buf.size()) {
            const void* lf = std::memchr(buf.data() + i, '\n', buf.size() - i);
            if (lf == nullptr) break;
            const auto at = static_cast<std::size_t>(static_cast<const char*>(lf) - buf.data());
            i = at + 1;
            if (at == 0 || buf[at - 1] != '\r') {
                ec = errc::bad_http_request;
                return 0;
            }
            if (at >= 3 && buf[at - 2] == '\n' && buf[at - 3] == '\r') {
                scanned_ = i;
                if (i > limits.max_header_bytes) {
                    ec = errc::header_too_large;
                    return 0;
                }
                return i;
            }
            ++lines_;
        }
        scanned_ = buf.size();
        if (buf.size() > limits.max_header_bytes) {
            ec = errc::header_too_large;
        } else if (lines_ > limits.max_header_count + 1) { // +1: the request/status line
            ec = errc::too_many_headers;
        }
        return 0;
    }

    /// Starts over for a new message.
    void reset() noexcept {
        scanned_ = 0;
        lines_ = 0;
    }

    /// Bytes examined so far.
    std::size_t scanned() const noexcept { return scanned_; }

private:
    std::size_t scanned_ = 0;
    std::size_t lines_ = 0;
};

namespace detail {

enum class head_state { complete, incomplete, error };

inline head_state parse_crlf(std::string_view buf, std::size_t& pos, std::error_code& ec) noexcept {
    if (pos >= buf.size()) return head_state::incomplete;
    if (buf[pos] != '\r') {
        ec = errc::bad_http_request;
        return head_state::error;
    }
    if (pos + 1 >= buf.size()) return head_state::incomplete;
    if (buf[pos + 1] != '\n') {
        ec = errc::bad_http_request;
        return head_state::error;
    }
    pos += 2;
    return head_state::complete;
}

// "HTTP/1." DIGIT (RFC 7230 §2.6: case-sensitive). Only HTTP/1.x exists in this syntax.
inline head_state parse_http_version(std::string_view buf, std::size_t& pos, int& minor,
                                     std::error_code& ec) noexcept {
    constexpr std::string_view prefix = "HTTP/1.";
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (pos + i >= buf.size()) return head_state::incomplete;
        if (buf[pos + i] != prefix[i]) {
            ec = errc::bad_http_request;
            return head_state::error;
        }
    }
    pos += prefix.size();
    if (pos >= buf.size()) return head_state::incomplete;
    if (!is_digit(buf[pos])) {
        ec = errc::bad_http_request;
        return head_state::error;
    }
    minor = buf[pos] - '0';
    ++pos;
    return head_state::complete;
}

// SP 3DIGIT (RFC 7230 §3.1.2), the first digit 1-9.
inline head_state parse_status_code(std::string_view buf, std::size_t& pos, int& status,
                                    std::error_code& ec) noexcept {
    status = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        if (pos >= buf.size()) return head_state::incomplete;
        const char c = buf[pos++];
        const bool ok = i == 0 ? c == ' ' : is_digit(c) && !(i == 1 && c == '0');
        if (!ok) {
            ec = errc::bad_http_request;
            return head_state::error;
        }
        if (i > 0) status = status * 10 + (c - '0');
    }
    return head_state::complete;
}

// Reads characters matching `pred` up to `stop`; the run must be non-empty.
template <class Pred>
head_state parse_run(std::string_view buf, std::size_t& pos, Pred pred, char stop, std::string_view& out,
                     std::error_code& ec) noexcept {
    const std::size_t begin = pos;
    while (pos < buf.size() && pred(buf[pos])) ++pos;
    if (pos >= buf.size()) return head_state::incomplete;
    if (buf[pos] != stop || pos == begin) {
        ec = errc::bad_http_request;
        return head_state::error;
    }
    out = buf.substr(begin, pos - begin);
    ++pos; // the stop character
    return head_state::complete;
}

// header-field lines up to and including the empty line (RFC 7230 §3.2).
inline head_state parse_fields(std::string_view buf, std::size_t& pos, std::vector<http_field>& fields,
                               const http_limits& limits, std::error_code& ec) {
    while (true) {
        if (pos >= buf.size()) return head_state::incomplete;
        const char c = buf[pos];
        if (c == '\r') return parse_crlf(buf, pos, ec); // the empty line: done
        if (is_ows(c)) {                                // obs-fold (§3.2.4)
            ec = errc::bad_http_request;
            return head_state::error;
        }
        http_field f;
        // Name: a token right up to ':' (no whitespace before the colon, §3.2.4).
        head_state s = parse_run(buf, pos, is_tchar, ':', f.name, ec);
        if (s != head_state::complete) return s;
        while (pos < buf.size() && is_ows(buf[pos])) ++pos;
        const std::size_t value_begin = pos;
        while (pos < buf.size() && is_field_char(buf[pos])) ++pos;
        const std::size_t value_end = pos;
        s = parse_crlf(buf, pos, ec); // anything but CR here is a control char or bare LF
        if (s != head_state::complete) return s;
        f.value = trim_ows(buf.substr(value_begin, value_end - value_begin));
        if (fields.size() >= limits.max_header_count) {
            ec = errc::too_many_headers;
            return head_state::error;
        }
        fields.push_back(f);
    }
}

// Shared tail of parse_request/parse_response: maps the state to the return value,
// applying the size limit to an incomplete head as well as to a complete one.
inline std::size_t finish_head(head_state s, std::size_t pos, std::size_t available,
                               const http_limits& limits, std::error_code& ec) noexcept {
    switch (s) {
    case head_state::complete: return pos;
    case head_state::error: return 0;
    case head_state::incomplete:
        // The parse only looked at the first max_header_bytes bytes; more than that
        // without an end can never become a head we accept.
        if (available > limits.max_header_bytes) ec = errc::header_too_large;
        return 0;
    }
    return 0;
}

} // namespace detail

/// Parses a request head from `buf` (all bytes received so far; bytes after the head,
/// such as a first WebSocket frame, are left alone). Returns the head size including
/// the final CRLFCRLF; 0 with `ec` clear when more bytes are needed; 0 with `ec` set to
/// bad_http_request, header_too_large or too_many_headers (the last two also for an
/// incomplete head that is already past the limit). `out` is cleared first and its
/// views point into `buf`; it is meaningful only when the return value is non-zero.
/// Each call rescans from the start: for byte-at-a-time arrival, gate it with
/// http_head_scanner or find_head_end.
inline std::size_t parse_request(std::string_view buf, http_request& out, std::error_code& ec,
                                 const http_limits& limits = {}) {
    ec.clear();
    out.clear();
    const std::string_view window = buf.substr(0, limits.max_header_bytes);
    std::size_t pos = 0;
    detail::head_state s = detail::parse_run(window, pos, detail::is_tchar, ' ', out.method, ec);
    if (s == detail::head_state::complete) s = detail::parse_run(window, pos, detail::is_target_char, ' ', out.target, ec);
    if (s == detail::head_state::complete) s = detail::parse_http_version(window, pos, out.version_minor, ec);
    if (s == detail::head_state::complete) s = detail::parse_crlf(window, pos, ec);
    if (s == detail::head_state::complete) s = detail::parse_fields(window, pos, out.fields, limits, ec);
    return detail::finish_head(s, pos, buf.size(), limits, ec);
}

/// A 1xx status other than 101 (Switching Protocols): an interim answer that a final
/// one follows on the same connection (RFC 9110 §15.2), e.g. 100 Continue or 103 Early
/// Hints. A client takes it and reads on.
constexpr bool is_interim_status(int status) noexcept { return status >= 100 && status < 200 && status != 101; }

/// Parses a response head; same contract as parse_request, except that a malformed
/// head is errc::bad_http_response. A missing reason phrase ("HTTP/1.1 101\r\n") is
/// tolerated.
inline std::size_t parse_response(std::string_view buf, http_response& out, std::error_code& ec,
                                  const http_limits& limits = {}) {
    ec.clear();
    out.clear();
    const std::string_view window = buf.substr(0, limits.max_header_bytes);
    std::size_t pos = 0;
    detail::head_state s = detail::parse_http_version(window, pos, out.version_minor, ec);
    if (s == detail::head_state::complete) s = detail::parse_status_code(window, pos, out.status, ec);
    if (s == detail::head_state::complete) {
        if (pos >= window.size()) {
            s = detail::head_state::incomplete;
        } else if (window[pos] == ' ') {
            const std::size_t begin = ++pos;
            while (pos < window.size() && detail::is_field_char(window[pos])) ++pos;
            out.reason = window.substr(begin, pos - begin);
        }
    }
    if (s == detail::head_state::complete) s = detail::parse_crlf(window, pos, ec);
    if (s == detail::head_state::complete) s = detail::parse_fields(window, pos, out.fields, limits, ec);
    const std::size_t n = detail::finish_head(s, pos, buf.size(), limits, ec);
    if (ec == errc::bad_http_request) ec = errc::bad_http_response; // what the client reports: the server's fault
    return n;
}

/// For a client reading an answer into `buf` as bytes come (`scanner` has seen a prefix
/// of it): once the final answer's head is complete, parses it into `out` and returns
/// its size; 0 while it is incomplete or on error. Interim 1xx answers before it are
/// parsed and erased from `buf` (RFC 9110 §15.2: a client must take them). Errors as
/// parse_response and the scanner's, a malformed head being errc::bad_http_response.
inline std::size_t scan_final_response(std::string& buf, http_head_scanner& scanner, http_response& out,
                                       std::error_code& ec, const http_limits& limits = {}) {
    for (;;) {
        std::size_t head = scanner.scan(buf, ec, limits);
        if (ec == errc::bad_http_request) ec = errc::bad_http_response; // the scanner's word: the server's fault
        if (ec || head == 0) return 0;
        head = parse_response(std::string_view(buf).substr(0, head), out, ec, limits);
        if (ec || !is_interim_status(out.status)) return head;
        buf.erase(0, head);
        scanner.reset();
    }
}

} // namespace duplex
