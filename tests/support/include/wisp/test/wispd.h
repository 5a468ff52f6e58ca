// Runs the real wispd binary for end-to-end tests and benchmarks: its own state directory,
// runtime directory, API socket and bpffs pin root under the test's temporary
// directories, an uplink the test created (a veth), and real options only — no
// test switches in the daemon.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "wisp/test/capabilities.h"
#include "wisp/test/net.h"

// wispd's preflight needs all of these.
#define WISP_REQUIRE_WISPD() \
    do {                     \
        WISP_REQUIRE_ROOT(); \
        WISP_REQUIRE_KVM();  \
        WISP_REQUIRE_BPF();  \
        WISP_REQUIRE_NETNS(); \
    } while (0)

namespace wisp::test {

class WispdProcess {
public:
    struct Config {
        std::string root;        // a temp dir: state/, run/, wispd.log go here
        std::string uplink;      // interface name
        std::string bpffs_root;  // under a ScopedBpffsDir
        std::vector<std::string> extra_args;
        std::vector<std::string> extra_env;  // "KEY=value"
        std::string log_level = "debug";     // benchmarks with many services: "warn"
    };

    explicit WispdProcess(Config config);
    ~WispdProcess();  // SIGKILL if still running
    WispdProcess(const WispdProcess &) = delete;
    WispdProcess &operator=(const WispdProcess &) = delete;

    // Starts wispd; true once its API answers (false if it exited or took > 20 s).
    bool start();
    // Starts wispd without waiting for anything.
    bool launch() { return spawn(); }
    // Starts wispd and waits for it to exit by itself (preflight failures).
    // Returns the exit status (-1 if it did not exit within `timeout_s`).
    int run_to_exit(int timeout_s = 20);
    // Sends `sig` and waits; returns the exit code, 128+signal if killed, -1 on
    // timeout.
    int stop(int sig, int timeout_s = 20);
    bool running();
    pid_t pid() const { return pid_; }

    std::string state_dir() const { return config_.root + "/state"; }
    std::string runtime_dir() const { return config_.root + "/run"; }
    std::string socket() const { return config_.root + "/run/wispd.sock"; }
    std::string log() const;  // everything wispd wrote to stdout/stderr
    std::vector<std::string> args() const;
    // Pids of the wisp-vmm monitors serving this wispd's runtime directory. They
    // outlive wispd by design (a new wispd adopts them): the test removes them
    // (kill_monitors(), or a MonitorReaper).
    std::vector<pid_t> monitors() const;
    void kill_monitors() const;

    // `wisp --socket <socket> args...`: exit code and output.
    struct Cli {
        int exit_code;
        std::string output;
    };
    Cli cli(const std::vector<std::string> &args) const;

private:
    bool spawn();
    Config config_;
    pid_t pid_ = -1;
    int status_ = 0;
};

// The wisp-vmm processes whose control sockets live under `runtime_dir`.
std::vector<pid_t> monitors_of(const std::string &runtime_dir);
void kill_monitors_of(const std::string &runtime_dir);

// Kills the monitors of a runtime directory when it goes out of scope.
struct MonitorReaper {
    std::string runtime_dir;
    ~MonitorReaper() { kill_monitors_of(runtime_dir); }
};

// What one wispd needs from the host, created for a test and removed after it: a
// temporary directory, a veth as uplink and a bpffs pin root. Callers check the
// capabilities first (WISP_REQUIRE_WISPD()).
struct WispdSandbox {
    explicit WispdSandbox(const std::string &tag) : tmp(tag), veth(tag), bpffs(tag) {}
    WispdProcess::Config config(std::vector<std::string> env = {}) const {
        return {tmp.path(), veth.host(), bpffs.path() + "/wisp", {}, std::move(env)};
    }
    ScopedTempDir tmp;
    ScopedVeth veth;
    ScopedBpffsDir bpffs;
    MonitorReaper reaper{tmp.path() + "/run"};
};

// Gives the host end of a veth an address from 198.19.0.0/16 unique to this test
// process (the default VIP of services); returns it.
std::string assign_test_address(const std::string &interface);

// A client behind the uplink, as the outside world: a namespace whose veth peer
// faces the uplink, a /30 of 198.18.128.0/17 unique to this process (host end =
// the VIP of services, client end = the client), and TX checksum offload off on
// the client's side (a veth hands partial checksums on; a real NIC never does).
struct ClientNetwork {
    explicit ClientNetwork(const std::string &tag);
    ScopedNetns ns;
    ScopedVeth veth;
    std::string host_ip, client_ip;

    // curl from the client namespace: the body, the status and curl's timings.
    struct Response {
        int exit_code = -1;
        int status = 0;
        std::string body;
        double connect_s = -1, total_s = -1;
    };
    Response curl(const std::string &url, const std::vector<std::string> &extra = {},
                  int timeout_s = 10) const;
    std::string url(uint16_t port, const std::string &path = "/") const;
    // A TCP socket that lives in the client namespace (for clients that time
    // themselves, e.g. benchmarks). Invalid on error (errno set).
    UniqueFd tcp_socket() const;
};

}  // namespace wisp::test
