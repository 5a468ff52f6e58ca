// The guest HTTP helper's request parser (guest/http/src/http_parse.c),
// host-compiled: what is accepted, what is refused and with which status.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "wisp/http_parse.h"

namespace {

// Owns the text it parsed: the request points into it. Never copied or moved.
struct Parsed {
    Parsed(std::string input, size_t max_header_bytes, size_t max_body, size_t max_headers)
        : text(std::move(input)), headers(max_headers) {
        wisp_http_parse_limits limits{max_header_bytes, max_body, max_headers};
        result = wisp_http_parse_head(text.data(), text.size(), &limits, headers.data(), &req,
                                      &head_len, &status);
    }
    Parsed(const Parsed &) = delete;
    Parsed &operator=(const Parsed &) = delete;
    std::string text;
    std::vector<wisp_http_header> headers;
    wisp_http_parse_result result;
    int status = 0;
    size_t head_len = 0;
    wisp_http_request req{};
};

Parsed parse(std::string text, size_t max_header_bytes = 8192, size_t max_body = 1 << 20,
             size_t max_headers = 16) {
    return Parsed(std::move(text), max_header_bytes, max_body, max_headers);
}

std::string str(const char *s, size_t n) { return s ? std::string(s, n) : "<null>"; }

TEST(HttpParse, ParsesARequestWithHeadersQueryAndBodyLength) {
    std::string text =
        "PUT /kv/a%20b?x=1&y HTTP/1.1\r\nHost: example\r\nContent-Length:  12 \r\n"
        "X-Empty:\r\n\r\nhello world!";
    auto p = parse(text);
    ASSERT_EQ(p.result, WISP_HTTP_PARSE_DONE);
    EXPECT_EQ(p.head_len, text.size() - 12);
    EXPECT_EQ(str(p.req.method, p.req.method_len), "PUT");
    EXPECT_EQ(str(p.req.target, p.req.target_len), "/kv/a%20b?x=1&y");
    EXPECT_EQ(str(p.req.path, p.req.path_len), "/kv/a%20b");
    EXPECT_EQ(str(p.req.query, p.req.query_len), "x=1&y");
    EXPECT_EQ(p.req.version_minor, 1);
    EXPECT_EQ(p.req.content_length, 12u);
    EXPECT_TRUE(p.req.keep_alive);
    ASSERT_EQ(p.req.header_count, 3u);
    EXPECT_EQ(str(p.req.headers[1].value, p.req.headers[1].value_len), "12") << "OWS trimmed";
    EXPECT_EQ(p.req.headers[2].value_len, 0u);
    const wisp_http_header *h = wisp_http_find_header(&p.req, "content-LENGTH");
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(wisp_http_find_header(&p.req, "missing"), nullptr);
    EXPECT_TRUE(wisp_http_method_is(&p.req, "PUT"));
    const char *rest;
    size_t rest_len;
    EXPECT_TRUE(wisp_http_path_has_prefix(&p.req, "/kv/", &rest, &rest_len));
    EXPECT_EQ(str(rest, rest_len), "a%20b");
}

TEST(HttpParse, WaitsForTheWholeHead) {
    std::string full = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    for (size_t n = 0; n < full.size(); n++)
        EXPECT_EQ(parse(full.substr(0, n)).result, WISP_HTTP_PARSE_INCOMPLETE) << n << " bytes";
    EXPECT_EQ(parse(full).result, WISP_HTTP_PARSE_DONE);
}

TEST(HttpParse, KeepAliveFollowsVersionAndConnectionHeader) {
    EXPECT_TRUE(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n").req.keep_alive);
    EXPECT_FALSE(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").req.keep_alive);
    EXPECT_FALSE(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n").req.keep_alive);
    EXPECT_FALSE(parse("GET / HTTP/1.0\r\n\r\n").req.keep_alive);
    EXPECT_TRUE(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").req.keep_alive);
    EXPECT_FALSE(parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").req.keep_alive);
}

TEST(HttpParse, SkipsEmptyLinesBeforeTheRequestLine) {
    auto p = parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(p.result, WISP_HTTP_PARSE_DONE);
    EXPECT_EQ(p.head_len, 4u + 27u);
}

TEST(HttpParse, AbsoluteFormAndAsteriskTargets) {
    auto p = parse("GET http://example.com/a/b?q HTTP/1.1\r\nHost: example.com\r\n\r\n");
    ASSERT_EQ(p.result, WISP_HTTP_PARSE_DONE);
    EXPECT_EQ(str(p.req.path, p.req.path_len), "/a/b");
    EXPECT_EQ(str(p.req.query, p.req.query_len), "q");
    auto bare = parse("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    EXPECT_EQ(str(bare.req.path, bare.req.path_len), "/");
    EXPECT_EQ(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").result, WISP_HTTP_PARSE_DONE);
    EXPECT_EQ(parse("GET * HTTP/1.1\r\nHost: h\r\n\r\n").status, 400);
}

TEST(HttpParse, ExpectContinueIsReported) {
    EXPECT_TRUE(parse("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\n")
                    .req.expect_continue);
}

struct Refusal {
    const char *description;
    std::string text;
    int status;
};

TEST(HttpParse, RefusesMalformedRequestsWithTheRightStatus) {
    const std::string big(9000, 'a');
    const std::vector<Refusal> cases = {
        {"TLS client hello", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), 400},
        {"binary garbage, no line end yet", std::string("\x00\xff\x13garbage", 10), 400},
        {"no method", " / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"two spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"no version", "GET /\r\nHost: h\r\n\r\n", 400},
        {"lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
        {"bare LF line endings", "GET / HTTP/1.1\nHost: h\n\n", 400},
        {"bare LF in a header", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400},
        {"bare CR in the request line", "GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"leading LF", "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"relative target", "GET index.html HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"fragment", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"control byte in target", std::string("GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
        {"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
        {"header without colon", "GET / HTTP/1.1\r\nHost h\r\n\r\n", 400},
        {"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400},
        {"control byte in value", std::string("GET / HTTP/1.1\r\nHost: h\x7f\r\n\r\n"), 400},
        {"missing Host on 1.1", "GET / HTTP/1.1\r\n\r\n", 400},
        {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"non-numeric length", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 400},
        {"negative length", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
        {"conflicting lengths", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"length and chunked", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"chunked body", "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
        {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
        {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
        {"body above limit", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n", 413},
        {"huge length", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
        {"oversize header, complete", "GET / HTTP/1.1\r\nHost: h\r\nX: " + big + "\r\n\r\n", 431},
        {"oversize header, incomplete", "GET / HTTP/1.1\r\nHost: h\r\nX: " + big, 431},
        {"too many headers", [] {
             std::string t = "GET / HTTP/1.1\r\nHost: h\r\n";
             for (int i = 0; i < 16; i++) t += "X-" + std::to_string(i) + ": v\r\n";
             return t + "\r\n";
         }(), 431},
    };
    for (const auto &c : cases) {
        auto p = parse(c.text);
        EXPECT_EQ(p.result, WISP_HTTP_PARSE_ERROR) << c.description;
        EXPECT_EQ(p.status, c.status) << c.description;
    }
}

TEST(HttpParse, GetAndHeadCountAsReads) {
    auto is_get = [](const char *method) {
        Parsed p = parse(std::string(method) + " / HTTP/1.1\r\nHost: h\r\n\r\n");
        return wisp_http_is_get(&p.req) != 0;
    };
    EXPECT_TRUE(is_get("HEAD"));
    EXPECT_TRUE(is_get("GET"));
    EXPECT_FALSE(is_get("POST"));
}

}  // namespace
