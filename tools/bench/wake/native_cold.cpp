// Baseline (c) of the wake benchmark: the native Linux equivalent of a service
// started on demand. systemd-socket-activate --accept starts one process per
// connection and hands it the connection as fd 3 (LISTEN_FDS=1); the process does
// slowstart's initialisation natively (fill a table, re-hash it for init_ms), then
// answers the request with hello's response and exits.
//   systemd-socket-activate --accept -l ADDR:PORT native_cold [init_ms=N] [table_kb=N]
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// slowstart's init: a table of table_kb KiB, re-hashed round after round until
// init_ms have passed (guest/apps/slowstart/slowstart.c does the same work).
uint64_t initialise(uint64_t init_ms, uint64_t table_kb) {
    std::vector<uint64_t> table(table_kb * 1024 / sizeof(uint64_t));
    for (size_t i = 0; i < table.size(); ++i) table[i] = splitmix64(i);
    uint64_t deadline = now_ns() + init_ms * 1'000'000u, rounds = 0;
    while (init_ms && now_ns() < deadline) {
        for (size_t i = 0; i < table.size(); ++i)
            table[i] = splitmix64(table[i] ^ table[(i * 7 + 1) % table.size()] ^ rounds);
        ++rounds;
    }
    return table.empty() ? 0 : table[0];
}

uint64_t arg(int argc, char **argv, const char *name, uint64_t fallback) {
    size_t n = std::strlen(name);
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], name, n) == 0 && argv[i][n] == '=')
            return std::strtoull(argv[i] + n + 1, nullptr, 10);
    return fallback;
}

}  // namespace

int main(int argc, char **argv) {
    const char *fds = std::getenv("LISTEN_FDS");
    if (!fds || std::atoi(fds) < 1) {
        std::fprintf(stderr, "native_cold: start me with systemd-socket-activate --accept\n");
        return 2;
    }
    volatile uint64_t keep = initialise(arg(argc, argv, "init_ms", 0), arg(argc, argv, "table_kb", 4096));
    (void)keep;
    const int conn = 3;
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(conn, buf, sizeof buf);
        if (n <= 0) return 1;
        request.append(buf, static_cast<size_t>(n));
    }
    static const char response[] =
        "HTTP/1.1 200 OK\r\nServer: native\r\nContent-Length: 16\r\nContent-Type: text/plain\r\n"
        "Connection: close\r\n\r\nhello from wisp\n";
    if (write(conn, response, sizeof response - 1) != static_cast<ssize_t>(sizeof response - 1))
        return 1;
    shutdown(conn, SHUT_WR);
    return 0;
}
