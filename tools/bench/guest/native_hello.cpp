// The benchmark's native baseline: hello's HTTP behaviour (same request parser,
// same response bytes, keep-alive, pipelining) in a plain single-threaded Linux
// process on the kernel's TCP stack, so the guest's figures can be read as a
// ratio to "the same service without a VM".
//   native_hello <ipv4> <port>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

#include "wisp/http_parse.h"

namespace {

struct Conn {
    std::string in, out;
    bool close_after = false;
};

const char kGreeting[] = "hello from wisp\n";

// The head the guest's HTTP helper sends for GET / (Date cached per second).
std::string response_head(bool close) {
    static char date[64];
    static time_t cached = 0;
    time_t now = time(nullptr);
    if (now != cached) {
        cached = now;
        tm t{};
        gmtime_r(&now, &t);
        strftime(date, sizeof date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &t);
    }
    std::string head = "HTTP/1.1 200 OK\r\nServer: wisp\r\n";
    head += date;
    head += "Content-Length: 16\r\nContent-Type: text/plain\r\n";
    if (close) head += "Connection: close\r\n";
    return head + "\r\n";
}

// Answers every complete request in c.in; false if the connection must close now.
bool serve(Conn &c) {
    wisp_http_parse_limits limits{8192, 1 << 20, 64};
    wisp_http_header headers[64];
    while (!c.close_after) {
        wisp_http_request req;
        size_t head_len = 0;
        int status = 0;
        auto r = wisp_http_parse_head(c.in.data(), c.in.size(), &limits, headers, &req, &head_len, &status);
        if (r == WISP_HTTP_PARSE_INCOMPLETE) break;
        if (r == WISP_HTTP_PARSE_ERROR) return false;
        size_t total = head_len + req.content_length;
        if (c.in.size() < total) break;
        c.in.erase(0, total);
        c.close_after = !req.keep_alive;
        c.out += response_head(c.close_after);
        if (!wisp_http_method_is(&req, "HEAD")) c.out += kGreeting;
    }
    return true;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: native_hello <ipv4> <port>\n");
        return 2;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
    inet_pton(AF_INET, argv[1], &sa.sin_addr);
    if (bind(lfd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0 || listen(lfd, 1024) != 0) {
        std::perror("native_hello: bind/listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    std::printf("native_hello: listening on %s:%s\n", argv[1], argv[2]);
    std::fflush(stdout);
    std::unordered_map<int, Conn> conns;
    epoll_event events[256];
    char buf[65536];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                int cfd;
                while ((cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    epoll_event cev{};
                    cev.events = EPOLLIN | EPOLLRDHUP;
                    cev.data.fd = cfd;
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                    conns[cfd];
                }
                continue;
            }
            Conn &c = conns[fd];
            bool keep = true;
            for (;;) {
                ssize_t got = read(fd, buf, sizeof buf);
                if (got > 0) {
                    c.in.append(buf, static_cast<size_t>(got));
                    continue;
                }
                if (got == 0 || errno != EAGAIN) keep = false;
                break;
            }
            if (!serve(c)) keep = false;
            while (!c.out.empty()) {
                ssize_t w = write(fd, c.out.data(), c.out.size());
                if (w <= 0) break;  // a tiny response; a full socket buffer means a dead client
                c.out.erase(0, static_cast<size_t>(w));
            }
            if (!keep || (c.close_after && c.out.empty())) {
                close(fd);
                conns.erase(fd);
            }
        }
    }
}
