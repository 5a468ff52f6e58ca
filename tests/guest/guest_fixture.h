// Fixtures for guest tests: a real guest image in `wisp-vmm run` on a tap inside
// a test network namespace, reached by real clients (curl, wrk, sockets) run in
// that namespace.
//
// Addressing (every instance has its own namespace, so these never collide):
//   tap (host side, the guest's gateway)  198.18.0.1/24   2001:2::1/64
//   guest (the service VIP)               198.18.0.2      2001:2::2 (GuestSpec::ipv6)
// (2001:2::/48 is IPv6's benchmarking range, the counterpart of 198.18.0.0/15.)
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "wisp/test/capabilities.h"
#include "wisp/test/net.h"
#include "wisp/test/process.h"

// Every guest test needs KVM (the monitor) and namespaces with taps.
#define WISP_REQUIRE_GUEST_ENVIRONMENT() \
    WISP_REQUIRE_KVM();                  \
    WISP_REQUIRE_NETNS()

namespace wisp::test {

struct GuestSpec {
    std::string image;    // name under build/images, e.g. "hello"
    std::string cmdline;  // the guest's command line
    std::string mem = "64M";
    bool ipv6 = false;  // give the guest its IPv6 address instead of the IPv4 one
};

// A test namespace with a tap whose host side is the guest's gateway.
class GuestNetwork {
public:
    static constexpr const char *kGuestIp = "198.18.0.2";
    static constexpr const char *kGatewayIp = "198.18.0.1";
    static constexpr const char *kGuestIp6 = "2001:2::2";
    static constexpr const char *kGatewayIp6 = "2001:2::1";

    GuestNetwork();
    const std::string &netns() const { return ns_.name(); }
    const std::string &tap() const { return tap_; }
    const ScopedNetns &ns() const { return ns_; }
    // `wisp-vmm run` for `spec` on this tap, as argv run inside the namespace.
    std::vector<std::string> monitor_argv(const GuestSpec &spec) const;

private:
    ScopedNetns ns_;
    std::string tap_;
};

struct GuestExit {
    int exit_code = -1;   // the monitor's exit code (the guest's halt status)
    std::string console;  // monitor log and guest console
};

// Boots `spec` and waits (up to timeout_s) for the VM to end.
GuestExit run_guest_to_exit(const GuestSpec &spec, int timeout_s = 60);

class RunningGuest {
public:
    static constexpr const char *kGuestIp = GuestNetwork::kGuestIp;
    static constexpr const char *kGatewayIp = GuestNetwork::kGatewayIp;

    // Starts the monitor and waits until the guest reported ready. Throws
    // std::runtime_error (with the console) if it does not get there.
    explicit RunningGuest(const GuestSpec &spec);
    ~RunningGuest();
    RunningGuest(const RunningGuest &) = delete;
    RunningGuest &operator=(const RunningGuest &) = delete;

    const std::string &netns() const { return net_.netns(); }
    const std::string &tap() const { return net_.tap(); }
    std::string url(const std::string &path) const;
    // Runs argv inside the namespace.
    CommandResult run_in_ns(const std::vector<std::string> &argv, int timeout_s = 60) const;
    // The monitor's output so far (its log and the guest's console).
    std::string console() const;
    // True while the monitor process is running.
    bool alive();

private:
    GuestNetwork net_;
    ScopedTempDir dir_;
    std::string log_path_;
    pid_t pid_ = -1;
    bool ipv6_ = false;
};

struct HttpResult {
    int curl_exit = -1;
    int status = 0;
    std::string body;
    std::string curl_output;  // curl's -w output and errors
};

// curl inside the guest's namespace: `extra` goes before the URL.
HttpResult curl(const RunningGuest &guest, const std::string &path,
                const std::vector<std::string> &extra = {}, int timeout_s = 60);

// Runs fn on a thread that has joined network namespace `netns` (sockets it
// opens live there); rethrows nothing, so use gtest assertions inside.
void run_in_netns(const std::string &netns, const std::function<void()> &fn);

// A TCP connection from inside the namespace (call from run_in_netns).
class TcpClient {
public:
    TcpClient(const char *ip, uint16_t port, int timeout_ms = 10000);
    ~TcpClient();
    TcpClient(const TcpClient &) = delete;
    TcpClient &operator=(const TcpClient &) = delete;
    bool connected() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    bool send_all(const std::string &bytes);
    // Reads until the peer closes or `timeout_ms` passes; *closed tells which.
    std::string read_until_close(int timeout_ms, bool *closed);
    // Reads until `n` bytes arrived (or close/timeout).
    std::string read_some(size_t n, int timeout_ms);
    void shutdown_write();

private:
    int fd_ = -1;
};

size_t count_occurrences(const std::string &haystack, const std::string &needle);

// The number after "key": in a flat JSON text, UINT64_MAX if absent.
uint64_t json_number(const std::string &json, const std::string &key);

// The bytes of hello's /bytes/<n> endpoint (guest/apps/common/wisp_pattern.h).
std::string pattern_bytes(size_t n);

}  // namespace wisp::test
