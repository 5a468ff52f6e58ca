// Load, keep-alive and malformed input against hello in wisp-vmm, with real
// clients in the test namespace.
#include <gtest/gtest.h>

#include <iostream>
#include <regex>
#include <string>

#include "guest_fixture.h"
#include "wisp/test/capabilities.h"
#include "wisp/test/net.h"

namespace wisp::test {
namespace {

// One curl process fetching `count` URLs; -w prints how many new connections
// each transfer opened.
struct Sequential {
    int curl_exit;
    size_t greetings;
    size_t connects;
};

Sequential sequential_requests(const RunningGuest &guest, int count, bool keep_alive) {
    ScopedTempDir dir("seq");
    std::string config = dir.path() + "/urls";
    {
        std::FILE *f = std::fopen(config.c_str(), "w");
        for (int i = 0; i < count; i++) std::fprintf(f, "url = \"%s\"\n", guest.url("/").c_str());
        std::fclose(f);
    }
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "120", "-K", config,
                                     "-w", "\\n%{num_connects}\\n"};
    if (!keep_alive) {
        argv.push_back("-H");
        argv.push_back("Connection: close");
    }
    auto r = guest.run_in_ns(argv, 150);
    Sequential s{r.exit_code, count_occurrences(r.output, "hello from wisp\n"), 0};
    std::regex line("\\n([0-9]+)\\n");
    for (std::sregex_iterator it(r.output.begin(), r.output.end(), line), end; it != end; ++it)
        s.connects += std::stoul((*it)[1]);
    return s;
}

TEST(HelloTraffic, ThousandSequentialRequestsShareOneKeepAliveConnection) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    auto s = sequential_requests(guest, 1000, true);
    EXPECT_EQ(s.curl_exit, 0);
    EXPECT_EQ(s.greetings, 1000u);
    EXPECT_EQ(s.connects, 1u);
}

TEST(HelloTraffic, ThousandSequentialRequestsOnNewConnectionsAllSucceed) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    auto s = sequential_requests(guest, 1000, false);
    EXPECT_EQ(s.curl_exit, 0);
    EXPECT_EQ(s.greetings, 1000u);
    EXPECT_EQ(s.connects, 1000u);
    auto stats = curl(guest, "/_wisp/stats");
    EXPECT_EQ(json_number(stats.body, "closed_by_server"), 1000u) << stats.body;
    EXPECT_EQ(json_number(stats.body, "aborted"), 0u) << stats.body;
}

// The server closes first, so every connection leaves a TIME_WAIT pcb in the
// guest. With the client's ports narrowed to 6,000, a port comes back after a few
// thousand connections, seconds later: a guest TIME_WAIT longer than that (lwIP's
// default 2 x 60 s, or the 30 s wisp had) would make each reused port's SYN wait
// for a retransmission, stretching this run to minutes (lwipopts.h, TCP_MSL).
TEST(HelloTraffic, FiveThousandClosingConnectionsFromFewClientPortsAllSucceedWithoutStalls) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    auto ports = guest.run_in_ns({"sysctl", "-w", "net.ipv4.ip_local_port_range=40000 45999"});
    ASSERT_EQ(ports.exit_code, 0) << ports.output;
    double start = monotonic_seconds();
    auto s = sequential_requests(guest, 5000, false);
    double took = monotonic_seconds() - start;
    EXPECT_EQ(s.curl_exit, 0);
    EXPECT_EQ(s.greetings, 5000u);
    EXPECT_EQ(s.connects, 5000u);
    EXPECT_LT(took, 60.0) << "stalled on reused ports";
    std::cout << "5000 closing connections in " << took << " s\n";
}

TEST(HelloTraffic, WrkWith64ConnectionsSeesNoErrorsAndOnly2xx) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    auto r = guest.run_in_ns({"wrk", "-t2", "-c64", "-d4s", "--timeout", "10s", guest.url("/")}, 60);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.find("Socket errors"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("Non-2xx"), std::string::npos) << r.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, std::regex("([0-9]+) requests in"))) << r.output;
    EXPECT_GT(std::stoull(m[1]), 1000u) << r.output;
    auto stats = curl(guest, "/_wisp/stats");
    EXPECT_EQ(json_number(stats.body, "responses_4xx"), 0u) << stats.body;
    EXPECT_EQ(json_number(stats.body, "responses_5xx"), 0u) << stats.body;
}

struct Malformed {
    const char *description;
    std::string bytes;
    int status;  // expected status, or 0 for "closed without an answer is fine too"
};

// "HTTP/1.1 431 ..." -> 431
int status_of(const std::string &response) {
    std::smatch m;
    if (std::regex_search(response, m, std::regex("^HTTP/1\\.1 ([0-9]{3}) "))) return std::stoi(m[1]);
    return 0;
}

TEST(HelloTraffic, MalformedRequestsGetA4xxOrACloseAndTheAppKeepsServing) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    const std::vector<Malformed> cases = {
        {"binary garbage", std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11), 400},
        {"line endings without CR", "GET / HTTP/1.1\nHost: x\n\n", 400},
        {"oversize headers", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n", 431},
        {"huge Content-Length", "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\n", 413},
        {"chunked body", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
        {"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
        {"space in header name", "GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400},
    };
    for (const auto &c : cases) {
        run_in_netns(guest.netns(), [&] {
            TcpClient client(RunningGuest::kGuestIp, 80);
            ASSERT_TRUE(client.connected()) << c.description;
            client.send_all(c.bytes);
            bool closed = false;
            std::string response = client.read_until_close(15000, &closed);
            EXPECT_TRUE(closed) << c.description << ": the server must close after an error";
            int status = status_of(response);
            EXPECT_EQ(status, c.status) << c.description << ": " << response.substr(0, 200);
        });
        auto ok = curl(guest, "/");
        EXPECT_EQ(ok.status, 200) << "not serving after: " << c.description;
    }
    EXPECT_TRUE(guest.alive());
}

TEST(HelloTraffic, PipelinedRequestsAreAnsweredInOrder) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    run_in_netns(guest.netns(), [&] {
        TcpClient client(RunningGuest::kGuestIp, 80);
        ASSERT_TRUE(client.connected());
        std::string batch;
        for (int i = 0; i < 20; i++) batch += "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        batch += "GET /bytes/100000 HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        client.send_all(batch);
        bool closed = false;
        std::string all = client.read_until_close(30000, &closed);
        EXPECT_TRUE(closed);
        EXPECT_EQ(count_occurrences(all, "\r\n\r\nhello from wisp\n"), 20u);
        size_t big = all.find("Content-Length: 100000\r\n");
        ASSERT_NE(big, std::string::npos);
        size_t body = all.find("\r\n\r\n", big) + 4;
        EXPECT_TRUE(all.compare(body, 100000, pattern_bytes(100000)) == 0);
        EXPECT_NE(all.find("HTTP/1.1 404 Not Found", body + 100000), std::string::npos);
    });
}

TEST(HelloTraffic, AnIncompleteRequestDoesNotBlockOtherClients) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    run_in_netns(guest.netns(), [&] {
        TcpClient stalled(RunningGuest::kGuestIp, 80);
        ASSERT_TRUE(stalled.connected());
        stalled.send_all("GET / HTTP/1.1\r\nHost: x\r\n");  // the blank line never comes
        TcpClient other(RunningGuest::kGuestIp, 80);
        ASSERT_TRUE(other.connected());
        other.send_all("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        bool closed = false;
        std::string response = other.read_until_close(15000, &closed);
        EXPECT_EQ(status_of(response), 200) << response;
    });
}

TEST(HelloTraffic, AnIncompleteRequestGets408AfterTheRequestTimeout) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", "http_request_timeout_ms=1000"});
    run_in_netns(guest.netns(), [&] {
        TcpClient client(RunningGuest::kGuestIp, 80);
        ASSERT_TRUE(client.connected());
        double start = monotonic_seconds();
        client.send_all("GET / HTTP/1.1\r\nHost: x\r\n");  // the blank line never comes
        bool closed = false;
        std::string response = client.read_until_close(15000, &closed);
        EXPECT_TRUE(closed);
        EXPECT_EQ(status_of(response), 408) << response;
        EXPECT_GE(monotonic_seconds() - start, 0.9) << "not before the timeout";
    });
    EXPECT_EQ(curl(guest, "/").status, 200);
}

TEST(HelloTraffic, AnIdleKeepAliveConnectionIsClosedAfterTheIdleTimeout) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", "http_idle_timeout_ms=1000"});
    run_in_netns(guest.netns(), [&] {
        TcpClient client(RunningGuest::kGuestIp, 80);
        ASSERT_TRUE(client.connected());
        client.send_all("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        bool closed = false;
        std::string response = client.read_until_close(15000, &closed);
        EXPECT_TRUE(closed) << "the server closes the idle connection";
        EXPECT_EQ(status_of(response), 200) << response;
        EXPECT_EQ(count_occurrences(response, "hello from wisp"), 1u);
    });
}

}  // namespace
}  // namespace wisp::test
