#include "guest_fixture.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "wisp/test/paths.h"
#include "wisp_pattern.h"

namespace wisp::test {

namespace {

std::string read_text(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

GuestNetwork::GuestNetwork() : ns_("gns"), tap_(unique_name("gt")) {
    run_or_throw({"ip", "-n", ns_.name(), "tuntap", "add", "dev", tap_, "mode", "tap"});
    run_or_throw({"ip", "-n", ns_.name(), "addr", "add", std::string(kGatewayIp) + "/24", "dev", tap_});
    run_or_throw({"ip", "-n", ns_.name(), "addr", "add", std::string(kGatewayIp6) + "/64", "dev", tap_, "nodad"});
    run_or_throw({"ip", "-n", ns_.name(), "link", "set", tap_, "up"});
}

std::vector<std::string> GuestNetwork::monitor_argv(const GuestSpec &spec) const {
    std::vector<std::string> argv = ns_.exec_prefix();
    for (const std::string &arg :
         {binary_path("wisp-vmm"), std::string("run"), std::string("--image"), image_path(spec.image),
          std::string("--tap"), tap_, std::string("--mem"), spec.mem, std::string("--ip"),
          std::string(spec.ipv6 ? kGuestIp6 : kGuestIp), std::string("--prefix"),
          std::string(spec.ipv6 ? "64" : "24"), std::string("--gateway-ip"),
          std::string(spec.ipv6 ? kGatewayIp6 : kGatewayIp), std::string("--cmdline"), spec.cmdline})
        argv.push_back(arg);
    return argv;
}


GuestExit run_guest_to_exit(const GuestSpec &spec, int timeout_s) {
    GuestNetwork net;
    ScopedTempDir dir("guest");
    std::string log_path = dir.path() + "/monitor.log";
    pid_t pid = spawn_logged(net.monitor_argv(spec), log_path);
    GuestExit result;
    double deadline = monotonic_seconds() + timeout_s;
    int status = 0;
    for (;;) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
            break;
        }
        if (monotonic_seconds() > deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, nullptr, 0);
            break;
        }
        usleep(10 * 1000);
    }
    result.console = read_text(log_path);
    return result;
}

RunningGuest::RunningGuest(const GuestSpec &spec) : dir_("guest"), ipv6_(spec.ipv6) {
    log_path_ = dir_.path() + "/monitor.log";
    pid_ = spawn_logged(net_.monitor_argv(spec), log_path_);
    // Boot plus the app's own initialisation; generous for a loaded CI machine.
    double deadline = monotonic_seconds() + 90;
    while (monotonic_seconds() < deadline) {
        if (console().find("guest is ready") != std::string::npos) return;
        if (!alive()) break;
        usleep(20 * 1000);
    }
    std::string log = console();
    if (alive()) {
        kill(-pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
    throw std::runtime_error("guest " + spec.image + " did not become ready; monitor output:\n" + log);
}

RunningGuest::~RunningGuest() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
        usleep(20 * 1000);
    }
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
}

bool RunningGuest::alive() {
    if (pid_ <= 0) return false;
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
    }
    return true;
}

std::string RunningGuest::url(const std::string &path) const {
    if (ipv6_) return std::string("http://[") + GuestNetwork::kGuestIp6 + "]" + path;
    return std::string("http://") + kGuestIp + path;
}

CommandResult RunningGuest::run_in_ns(const std::vector<std::string> &argv, int timeout_s) const {
    std::vector<std::string> full = net_.ns().exec_prefix();
    full.insert(full.end(), argv.begin(), argv.end());
    return run(full, timeout_s);
}

std::string RunningGuest::console() const { return read_text(log_path_); }

HttpResult curl(const RunningGuest &guest, const std::string &path,
                const std::vector<std::string> &extra, int timeout_s) {
    static int counter = 0;
    ScopedTempDir dir("curl");
    std::string body_path = dir.path() + "/body" + std::to_string(counter++);
    std::vector<std::string> argv = {"curl", "-sS", "-g", "--max-time", std::to_string(timeout_s),
                                     "-o", body_path, "-w", "%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(guest.url(path));
    auto r = guest.run_in_ns(argv, timeout_s + 10);
    HttpResult result;
    result.curl_exit = r.exit_code;
    result.curl_output = r.output;
    // -w prints the status last; errors (if any) come before it.
    size_t digits = r.output.size();
    while (digits > 0 && isdigit(static_cast<unsigned char>(r.output[digits - 1]))) digits--;
    if (digits < r.output.size()) result.status = std::stoi(r.output.substr(digits));
    result.body = read_text(body_path);
    return result;
}

void run_in_netns(const std::string &netns, const std::function<void()> &fn) {
    std::thread worker([&] {
        int fd = open(("/var/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
            ADD_FAILURE() << "cannot enter netns " << netns << ": " << strerror(errno);
            if (fd >= 0) close(fd);
            return;
        }
        close(fd);
        fn();
    });
    worker.join();
}

TcpClient::TcpClient(const char *ip, uint16_t port, int timeout_ms) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) {
        close(fd);
        return;
    }
    fd_ = fd;
}

TcpClient::~TcpClient() {
    if (fd_ >= 0) close(fd_);
}

bool TcpClient::send_all(const std::string &bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
        ssize_t n = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

std::string TcpClient::read_until_close(int timeout_ms, bool *closed) {
    std::string out;
    *closed = false;
    double deadline = monotonic_seconds() + timeout_ms / 1000.0;
    char buf[65536];
    while (monotonic_seconds() < deadline) {
        pollfd p{fd_, POLLIN, 0};
        int left = static_cast<int>((deadline - monotonic_seconds()) * 1000) + 1;
        if (poll(&p, 1, left) <= 0) continue;
        ssize_t n = recv(fd_, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            *closed = true;
            break;
        }
        if (n < 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

std::string TcpClient::read_some(size_t want, int timeout_ms) {
    std::string out;
    double deadline = monotonic_seconds() + timeout_ms / 1000.0;
    char buf[65536];
    while (out.size() < want && monotonic_seconds() < deadline) {
        pollfd p{fd_, POLLIN, 0};
        int left = static_cast<int>((deadline - monotonic_seconds()) * 1000) + 1;
        if (poll(&p, 1, left) <= 0) continue;
        ssize_t n = recv(fd_, buf, std::min(sizeof buf, want - out.size()), 0);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

void TcpClient::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

size_t count_occurrences(const std::string &haystack, const std::string &needle) {
    size_t count = 0;
    for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1))
        count++;
    return count;
}

uint64_t json_number(const std::string &json, const std::string &key) {
    std::smatch m;
    std::regex re("\"" + key + "\":([0-9]+)");
    if (!std::regex_search(json, m, re)) return UINT64_MAX;
    return std::stoull(m[1]);
}

std::string pattern_bytes(size_t n) {
    std::string s(n, '\0');
    wisp_pattern_fill(0, s.data(), n);
    return s;
}

}  // namespace wisp::test
