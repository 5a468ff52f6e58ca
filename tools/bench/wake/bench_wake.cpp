// Wake benchmark (not a test): what a client sees of a service at zero.
//
//   tools/bench/wake/run.sh [--wakes N] [--quick]
//
// The real wispd (its own state, runtime and bpffs directories) on a veth uplink;
// the client in a network namespace at the other end, timing itself: from just
// before connect() (its SYN) to the last byte of the HTTP response. In one run:
//
//   wake from zero   hello and slowstart (1 s init) at zero, N wakes each (>= 200):
//                    XDP captures the SYN, wispd restores the golden snapshot into
//                    a pre-forked monitor and replays the SYN
//   (a) warm         the same services with a replica running (new connection each)
//   (b) cold boot    the same image booted in a pre-forked monitor (no snapshot),
//                    the SYN counted from the boot command; slowstart runs its init
//   (c) socket       systemd-socket-activate --accept starting a native process
//       activation   per connection, with slowstart's init done natively
//
// plus where a wake's time goes (wispd's trace of each wake: data-plane, wispd and
// monitor stamps on one CLOCK_MONOTONIC), and the way back to zero: idle timeout
// expiry -> ZERO in the map -> monitor gone (memory released). Samples go to a
// JSON file for tools/bench/wake/plot.py.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "wisp/test/paths.h"
#include "wisp/test/process.h"
#include "wisp/test/wispd.h"
#include "wisp/vmm/control.h"
#include "wisp_abi.h"
#include "../common/bench_common.h"

using nlohmann::json;
using namespace wisp;
using namespace wisp::test;

namespace {

[[noreturn]] void die(const std::string &what) {
    std::fprintf(stderr, "bench_wake: %s\n", what.c_str());
    std::exit(1);
}

using wisp::bench::now_ns;
using wisp::bench::pct;

// ---- the client ---------------------------------------------------------------------

using wisp::bench::Timed;

// GET `path` on a fresh connection; the clock starts just before connect().
Timed timed_get(UniqueFd fd, const std::string &ip, uint16_t port, const std::string &path = "/") {
    if (!fd) die("client socket: " + std::string(strerror(errno)));
    return wisp::bench::timed_get(fd.get(), ip, port, path);
}

// ---- wispd through its API and its pinned maps ----------------------------------------

class Wispd {
public:
    Wispd(const ClientNetwork &net, const std::string &root, const std::string &bpffs)
        : process_({root, net.veth.host(), bpffs + "/wisp", {"--monitor-pool-size", "2"}, {}}),
          bpffs_(bpffs + "/wisp"),
          vip_(net.host_ip) {
        if (!process_.start()) die("wispd did not start:\n" + process_.log());
    }
    ~Wispd() {
        process_.stop(SIGTERM, 10);
        process_.kill_monitors();
    }

    json get(const std::string &path) {
        httplib::Client c(process_.socket());
        c.set_address_family(AF_UNIX);
        c.set_read_timeout(30);
        auto res = c.Get(path.c_str());
        if (!res) die("API " + path + ": " + httplib::to_string(res.error()));
        return json::parse(res->body);
    }

    void create(const std::string &name, const std::string &app, uint16_t port,
                const std::string &cmdline, const std::string &idle) {
        auto r = process_.cli({"service", "create", name, "--image", image_path(app), "-p",
                               std::to_string(port), "--cmdline",
                               "port=" + std::to_string(port) + " " + cmdline, "--idle-timeout", idle});
        if (r.exit_code != 0) die("create " + name + ": " + r.output);
        if (!wait_zero(name, 30'000)) die(name + " never reached standby");
    }

    json service(const std::string &name) { return get("/v1/services/" + name); }

    // At zero: standby, no replica left (its monitor has exited).
    bool wait_zero(const std::string &name, int timeout_ms) {
        uint64_t deadline = now_ns() + uint64_t(timeout_ms) * 1'000'000u;
        while (now_ns() < deadline) {
            json s = service(name);
            if (s["state"] == "standby" && s["replicas"].empty()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return false;
    }

    // The service's state in the pinned wisp_services map (read like XDP does).
    int map_state(uint16_t port) {
        if (!services_map_) {
            services_map_.reset(bpf_obj_get((bpffs_ + "/wisp_services").c_str()));
            if (!services_map_) die("open wisp_services: " + std::string(strerror(errno)));
        }
        wisp_service_key key{};
        key.vip[10] = key.vip[11] = 0xff;
        inet_pton(AF_INET, vip_.c_str(), key.vip + 12);
        key.port = htons(port);
        key.proto = IPPROTO_TCP;
        wisp_service value{};
        if (bpf_map_lookup_elem(services_map_.get(), &key, &value) != 0) return -1;
        return static_cast<int>(value.state);
    }

private:
    WispdProcess process_;
    std::string bpffs_;
    std::string vip_;
    UniqueFd services_map_;
};

// ---- measurements ---------------------------------------------------------------------

struct Series {
    std::vector<double> ms;
};

// Where one wake's time went, µs after XDP captured the SYN.
const std::vector<std::string> kSteps = {"consumed", "restore_sent", "monitor_command",
                                         "guest_entry", "ready", "replayed", "first_hypercall"};

struct WakeRun {
    Series wake;
    std::map<std::string, std::vector<double>> steps;  // also client_syn, syn_ack, response
    std::vector<double> idle_late_ms, released_ms;
};

int pidfd_open(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

WakeRun measure_wakes(Wispd &w, const ClientNetwork &net, const std::string &name, uint16_t port,
                      uint64_t idle_ms, int n, const std::function<bool(const Timed &)> &valid) {
    WakeRun run;
    for (int i = 0; i < n; ++i) {
        if (!w.wait_zero(name, 20'000)) die(name + ": not back at zero");
        Timed t = timed_get(net.tcp_socket(), net.host_ip, port);
        uint64_t closed_ns = now_ns();  // the socket is closed: the last packet is now
        if (!t.ok() || !valid(t)) die(name + ": bad answer: " + t.response);
        run.wake.ms.push_back(t.total_ms());

        json s = w.service(name);
        const json &trace = s["last_wake"];
        if (!trace.is_object()) die(name + ": no wake trace");
        for (auto &step : kSteps) {
            const json &v = trace["us_after_syn"][step];
            if (v.is_number()) run.steps[step].push_back(v.get<double>());
        }
        // The client's own stamps, on the same clock as the trace's.
        double syn = static_cast<double>(trace["syn_monotonic_ns"].get<uint64_t>());
        run.steps["client_connect"].push_back((static_cast<double>(t.start_ns) - syn) / 1e3);
        run.steps["client_syn_ack"].push_back((static_cast<double>(t.connected_ns) - syn) / 1e3);
        run.steps["client_response"].push_back((static_cast<double>(t.done_ns) - syn) / 1e3);
        pid_t monitor = s["replicas"].empty() ? 0 : s["replicas"][0]["monitor_pid"].get<pid_t>();
        UniqueFd pidfd(monitor > 0 ? pidfd_open(monitor) : -1);

        // Back to zero: poll the map the way XDP sees it, then wait for the monitor.
        uint64_t expiry = closed_ns + idle_ms * 1'000'000u;
        uint64_t flipped = 0;
        while (now_ns() < expiry + 5'000'000'000u) {
            if (w.map_state(port) == WISP_SERVICE_ZERO) {
                flipped = now_ns();
                break;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        if (!flipped) die(name + ": never went back to ZERO");
        run.idle_late_ms.push_back((static_cast<double>(flipped) - static_cast<double>(expiry)) / 1e6);
        if (pidfd) {
            pollfd p{pidfd.get(), POLLIN, 0};
            if (poll(&p, 1, 10'000) == 1) run.released_ms.push_back(static_cast<double>(now_ns() - flipped) / 1e6);
        }
    }
    return run;
}

Series measure_warm(Wispd &w, const ClientNetwork &net, const std::string &name, uint16_t port, int n) {
    Series s;
    if (!timed_get(net.tcp_socket(), net.host_ip, port).ok()) die(name + ": first request failed");
    for (int i = 0; i < n; ++i) {
        Timed t = timed_get(net.tcp_socket(), net.host_ip, port);
        if (!t.ok()) die(name + ": warm request failed");
        s.ms.push_back(t.total_ms());
    }
    if (w.service(name)["wakes"] != 1) die(name + ": went back to zero during the warm series");
    return s;
}

// (b) The same image booted (no snapshot) in a pre-forked monitor on a tap in the
// client's namespace; the client's SYN counts from the boot command, as if it had
// arrived then and been replayed once the app was ready.
class ColdBoots {
public:
    explicit ColdBoots(const ClientNetwork &net) : net_(net), tap_name_(unique_name("wbt")) {
        std::string ns = net.ns.name();
        run_or_throw({"ip", "-n", ns, "tuntap", "add", "dev", tap_name_, "mode", "tap"});
        run_or_throw({"ip", "-n", ns, "addr", "add", std::string(kGateway) + "/24", "dev", tap_name_});
        run_or_throw({"ip", "-n", ns, "link", "set", tap_name_, "up"});
        // The queue's fd, opened inside the namespace that owns the tap.
        std::thread t([&] {
            UniqueFd nsfd(open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
            if (!nsfd || setns(nsfd.get(), CLONE_NEWNET) != 0) return;
            tap_.reset(open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
            ifreq ifr{};
            ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
            std::strncpy(ifr.ifr_name, tap_name_.c_str(), IFNAMSIZ - 1);
            if (tap_ && ioctl(tap_.get(), TUNSETIFF, &ifr) != 0) tap_.reset();
            ifreq hw{};
            std::strncpy(hw.ifr_name, tap_name_.c_str(), IFNAMSIZ - 1);
            UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
            if (s && ioctl(s.get(), SIOCGIFHWADDR, &hw) == 0) std::memcpy(gw_mac_, hw.ifr_hwaddr.sa_data, 6);
        });
        t.join();
        if (!tap_) die("cold-boot tap");
    }
    ~ColdBoots() { run({"ip", "-n", net_.ns.name(), "link", "del", tap_name_}); }

    Series measure(const std::string &image, const std::string &cmdline, int n) {
        Series s;
        Monitor next = spawn();
        for (int i = 0; i < n; ++i) {
            Monitor m = std::move(next);
            drain();
            vmm::BootConfig config;
            config.mem_size = 64ull << 20;
            config.cmdline = "port=80 " + cmdline;
            config.identity.mac = {0x02, 0x62, 0x6f, 0x6f, 0x74, 0x01};
            std::memcpy(config.identity.gw_mac.data(), gw_mac_, 6);
            config.identity.ip_family = 4;
            config.identity.prefix_len = 24;
            inet_pton(AF_INET, kGuest, config.identity.ip.data());
            inet_pton(AF_INET, kGateway, config.identity.gw_ip.data());
            UniqueFd img(open(image_path(image).c_str(), O_RDONLY | O_CLOEXEC));
            uint64_t t0 = now_ns();
            if (!m.client->boot(vmm::control::make_boot(config, 0), tap_.get(), img.get()))
                die("boot " + image);
            if (!m.client->wait_for(WISP_CTL_EV_READY, 30'000)) die("boot " + image + ": no ready");
            Timed t = timed_get(net_.tcp_socket(), kGuest, 80);
            if (!t.ok()) die("boot " + image + ": no HTTP answer");
            s.ms.push_back(static_cast<double>(t.done_ns - t0) / 1e6);
            stop(m);
            next = spawn();
        }
        stop(next);
        return s;
    }

private:
    static constexpr const char *kGateway = "198.19.253.1";
    static constexpr const char *kGuest = "198.19.253.2";
    struct Monitor {
        pid_t pid = -1;
        std::unique_ptr<vmm::control::ControlClient> client;
    };

    // `wisp-vmm serve --mem 64M`, as wispd pre-forks it.
    Monitor spawn() {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
        Monitor m;
        std::string bin = binary_path("wisp-vmm");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        const char *argv[] = {bin.c_str(), "--log-level", "warn", "serve", "--control-fd", "3",
                              "--mem", "64M", nullptr};
        if (posix_spawn(&m.pid, bin.c_str(), &fa, nullptr, const_cast<char **>(argv), environ) != 0)
            die("spawn wisp-vmm");
        posix_spawn_file_actions_destroy(&fa);
        close(sv[1]);
        m.client = std::make_unique<vmm::control::ControlClient>(UniqueFd(sv[0]));
        if (!m.client->wait_for(WISP_CTL_EV_HELLO, 30'000)) die("monitor hello");
        return m;
    }
    void stop(Monitor &m) {
        (void)m.client->send(WISP_CTL_STOP);
        (void)m.client->wait_for(WISP_CTL_EV_EXITED, 30'000);
        waitpid(m.pid, nullptr, 0);
    }
    void drain() {
        uint8_t buf[2048];
        while (read(tap_.get(), buf, sizeof buf) > 0) {
        }
    }

    const ClientNetwork &net_;
    std::string tap_name_;
    UniqueFd tap_;
    uint8_t gw_mac_[6] = {};
};

// (c) systemd-socket-activate --accept: one native process per connection.
Series measure_socket_activation(const ClientNetwork &net, uint16_t port, uint64_t init_ms, int n) {
    std::string listen = net.host_ip + ":" + std::to_string(port);
    std::string native = binary_path("wisp-bench-native-cold");
    std::string init = "init_ms=" + std::to_string(init_ms);
    const char *argv[] = {"systemd-socket-activate", "--accept", "-l", listen.c_str(),
                          native.c_str(), init.c_str(), nullptr};
    pid_t pid = -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);  // a line per child
    if (posix_spawnp(&pid, "systemd-socket-activate", &fa, nullptr, const_cast<char **>(argv),
                     environ) != 0)
        die("systemd-socket-activate");
    posix_spawn_file_actions_destroy(&fa);
    Series s;
    // It listens once it has started: the first attempts may be refused.
    for (int tries = 0; tries < 200; ++tries) {
        if (timed_get(net.tcp_socket(), net.host_ip, port).ok()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (int i = 0; i < n; ++i) {
        Timed t = timed_get(net.tcp_socket(), net.host_ip, port);
        if (!t.ok()) die("socket activation: no answer");
        s.ms.push_back(t.total_ms());
    }
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    return s;
}

// ---- report -----------------------------------------------------------------------------

void row(const char *what, const Series &s, double base) {
    std::printf("  %-44s %5zu %8.2f %8.2f %8.2f %9.2f\n", what, s.ms.size(), pct(s.ms, 0.5),
                pct(s.ms, 0.9), pct(s.ms, 0.99), base > 0 ? pct(s.ms, 0.5) / base : 0.0);
}

const char *verdict(bool ok) { return ok ? "met" : "MISSED"; }

json series_json(const Series &s) { return s.ms; }

}  // namespace

int main(int argc, char **argv) {
    int wakes = 200, warm = 200, boots = 50, slow_boots = 10, activations = 200, slow_activations = 10;
    std::string samples_path = build_dir() + "/bench/wake-samples.json";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--wakes" && i + 1 < argc) wakes = std::max(1, std::atoi(argv[++i]));
        else if (a == "--quick") wakes = warm = activations = 20, boots = 5, slow_boots = slow_activations = 2;
        else if (a == "--samples" && i + 1 < argc) samples_path = argv[++i];
        else die("usage: bench_wake [--wakes N] [--quick] [--samples FILE]");
    }
    if (geteuid() != 0) die("run as root (namespaces, XDP, KVM)");
    signal(SIGPIPE, SIG_IGN);

    ScopedTempDir tmp("benchwake");
    MonitorReaper reaper{tmp.path() + "/run"};
    ScopedBpffsDir bpffs("bwake");
    ClientNetwork net("bw");
    Wispd w(net, tmp.path(), bpffs.path());

    constexpr uint64_t kIdleMs = 50;
    const std::string idle = std::to_string(kIdleMs) + "ms";
    std::printf("setting up: wispd on %s, services hello and slowstart (init 1 s) ...\n",
                net.veth.host().c_str());
    w.create("hello", "hello", 8080, "", idle);
    w.create("slowstart", "slowstart", 8081, "init_ms=1000", idle);
    w.create("hello-warm", "hello", 8082, "", "10m");
    w.create("slowstart-warm", "slowstart", 8083, "init_ms=1000", "10m");

    auto is_hello = [](const Timed &t) { return t.response.find("hello from wisp\n") != std::string::npos; };
    auto is_restored_slowstart = [](const Timed &t) {
        return t.response.find("\"init_runs\":1") != std::string::npos &&
               t.response.find("\"restored\":true") != std::string::npos;
    };
    std::printf("measuring %d wakes of each (idle timeout %s between them) ...\n", wakes, idle.c_str());
    WakeRun hello = measure_wakes(w, net, "hello", 8080, kIdleMs, wakes, is_hello);
    WakeRun slow = measure_wakes(w, net, "slowstart", 8081, kIdleMs, wakes, is_restored_slowstart);
    std::printf("measuring the baselines: warm, cold boot, systemd-socket-activate ...\n");
    Series hello_warm = measure_warm(w, net, "hello-warm", 8082, warm);
    Series slow_warm = measure_warm(w, net, "slowstart-warm", 8083, warm);
    ColdBoots cold(net);
    Series hello_boot = cold.measure("hello", "", boots);
    Series slow_boot = cold.measure("slowstart", "init_ms=1000", slow_boots);
    Series hello_act = measure_socket_activation(net, 9080, 0, activations);
    Series slow_act = measure_socket_activation(net, 9081, 1000, slow_activations);

    std::printf("\nwisp wake benchmark: client SYN -> full HTTP response (milliseconds)\n");
    std::printf("  %-44s %5s %8s %8s %8s %9s\n", "", "n", "p50", "p90", "p99", "p50/wake");
    double hb = pct(hello.wake.ms, 0.5), sb = pct(slow.wake.ms, 0.5);
    std::printf(" hello\n");
    row("wake from zero (restore golden + replay SYN)", hello.wake, hb);
    row("(a) warm: replica running", hello_warm, hb);
    row("(b) cold boot of the image, no snapshot", hello_boot, hb);
    row("(c) systemd-socket-activate, native process", hello_act, hb);
    std::printf(" slowstart (1 s init)\n");
    row("wake from zero (restore golden + replay SYN)", slow.wake, sb);
    row("(a) warm: replica running", slow_warm, sb);
    row("(b) cold boot of the image, no snapshot", slow_boot, sb);
    row("(c) systemd-socket-activate, native process", slow_act, sb);

    double h99 = pct(hello.wake.ms, 0.99);
    std::printf("\n goals on this machine\n");
    std::printf("  hello wake p50 <= 2 ms                      %8.2f ms   %s\n", hb, verdict(hb <= 2));
    std::printf("  hello wake p99 <= 5 ms                      %8.2f ms   %s\n", h99, verdict(h99 <= 5));
    std::printf("  slowstart wake p50 within 1 ms of hello     %+8.2f ms   %s\n", sb - hb,
                verdict(sb - hb <= 1));
    double late50 = pct(hello.idle_late_ms, 0.5), late99 = pct(hello.idle_late_ms, 0.99);
    std::printf("  idle detection <= 5 ms past the timeout     %8.2f ms p50, %.2f ms p99   %s\n",
                late50, late99, verdict(late99 <= 5));

    std::printf("\n where a wake's time goes (p50, microseconds after XDP captured the SYN)\n");
    std::printf("  %-52s %10s %10s\n", "", "hello", "slowstart");
    const std::map<std::string, std::string> step_names = {
        {"consumed", "wispd took the SYN from the ring buffer"},
        {"restore_sent", "restore command sent to a pre-forked monitor"},
        {"monitor_command", "the monitor read it"},
        {"guest_entry", "the monitor entered the restored guest"},
        {"ready", "replica and service READY in the maps"},
        {"replayed", "buffered SYN replayed into the tap"},
        {"first_hypercall", "the guest's first hypercall after the restore"}};
    auto line = [&](const char *what, const std::string &step) {
        std::printf("  %-52s %10.0f %10.0f\n", what, pct(hello.steps[step], 0.5), pct(slow.steps[step], 0.5));
    };
    line("the client calls connect() (its SYN leaves)", "client_connect");
    for (auto &step : kSteps) line(step_names.at(step).c_str(), step);
    line("the client has the SYN-ACK (connect() returns)", "client_syn_ack");
    line("the client has the whole response", "client_response");

    std::printf("\n back to zero (idle timeout %llu ms, %zu wakes of hello; ms)\n",
                static_cast<unsigned long long>(kIdleMs), hello.idle_late_ms.size());
    std::printf("  %-52s %8s %8s %8s\n", "", "p50", "p90", "p99");
    std::printf("  %-52s %8.2f %8.2f %8.2f\n", "timeout expiry -> ZERO in the map (idle detection)",
                late50, pct(hello.idle_late_ms, 0.9), late99);
    std::printf("  %-52s %8.2f %8.2f %8.2f\n", "ZERO in the map -> monitor exited, memory released",
                pct(hello.released_ms, 0.5), pct(hello.released_ms, 0.9), pct(hello.released_ms, 0.99));

    json samples = {
        {"hello", {{"wake", series_json(hello.wake)}, {"warm", series_json(hello_warm)},
                   {"boot", series_json(hello_boot)}, {"socket_activate", series_json(hello_act)}}},
        {"slowstart", {{"wake", series_json(slow.wake)}, {"warm", series_json(slow_warm)},
                       {"boot", series_json(slow_boot)}, {"socket_activate", series_json(slow_act)}}},
        {"steps_us", {{"hello", hello.steps}, {"slowstart", slow.steps}}},
        {"idle", {{"late_ms", hello.idle_late_ms}, {"released_ms", hello.released_ms}}}};
    std::string dir = samples_path.substr(0, samples_path.rfind('/'));
    run({"mkdir", "-p", dir});
    std::ofstream(samples_path) << samples.dump(1) << "\n";
    std::printf("\nsamples: %s\n", samples_path.c_str());
    return 0;
}
