// Small helpers the wisp benchmarks share: the monotonic clock, percentiles, and a
// timed HTTP GET on a fresh connection.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace wisp::bench {

inline uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// The p-quantile (0..1) of `v`, nearest rank; 0 for no samples.
inline double pct(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

// One request on a fresh connection, timed with the monotonic clock.
struct Timed {
    uint64_t start_ns = 0;      // just before connect(): the client's SYN
    uint64_t connected_ns = 0;  // connect() returned (0: it failed)
    uint64_t done_ns = 0;       // the server closed after its response (0: failed before)
    std::string response;
    bool ok() const { return response.rfind("HTTP/1.1 200", 0) == 0; }
    double total_ms() const { return static_cast<double>(done_ns - start_ns) / 1e6; }
};

// GET `path` with `Connection: close` over `fd`, a fresh TCP socket (10 s send and
// receive timeouts, no Nagle), reading until the server closes.
inline Timed timed_get(int fd, const std::string &ip, uint16_t port, const std::string &path = "/") {
    Timed t;
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    t.start_ns = now_ns();
    if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) return t;
    t.connected_ns = now_ns();
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return t;
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        t.response.append(buf, static_cast<size_t>(n));
    }
    t.done_ns = now_ns();
    return t;
}

}  // namespace wisp::bench
