// Density benchmark (not a test): how many services one host holds, and what each
// costs.
//
//   tools/bench/scale/density.sh [--standby N] [--running N] [--burst N] [--quick]
//
// The real wispd (its own state, runtime and bpffs directories) on a veth uplink;
// the client in a network namespace at the other end. Every service runs the
// `hello` image on port 8080 of its own VIP (198.18.0.0/18, routed to the uplink
// inside the client namespace only), so they share one golden snapshot. In one run:
//
//   (a) 10 services registered: wake p50 (client SYN -> full HTTP response from
//       zero), wispd RSS, data-plane memory                            = baseline
//   (b) N standby (default 10,000) registered through the API (create rate);
//       the same wakes, wispd RSS and data-plane memory again
//   (c) restores per second: B services at zero (default 300) woken by B
//       connections opened at once; B / (first connect -> last full response)
//   (d) M running at once (default 1,000), woken one after the other: wake
//       latency of the 1st next to the M-th; total PSS of their monitors + wispd
//       (/proc/PID/smaps_rollup); wispd's CPU over 10 s with all of them idle
//
// Everything (monitors, taps, namespace, pins) is removed at the end, also on
// failure and on Ctrl-C (SIGINT/SIGTERM unwind the run).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "wisp/test/paths.h"
#include "wisp/test/process.h"
#include "wisp/test/wispd.h"
#include "../common/bench_common.h"

using nlohmann::json;
using namespace wisp;
using namespace wisp::test;

namespace {

std::atomic<int> g_signal{0};

struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Bounded loops call this: Ctrl-C unwinds the run so every destructor cleans up.
void check_interrupt() {
    if (int s = g_signal.load()) throw Failure("interrupted by signal " + std::to_string(s));
}

using wisp::bench::now_ns;
using wisp::bench::pct;

constexpr uint16_t kPort = 8080;
constexpr int kProbes = 10;  // the "10 services" of the baseline

// Service i's VIP: 198.18.0.0/18, 250 per /24, never .0 or .255.
std::string vip_of(int i) {
    return "198.18." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250);
}

// ---- the client ---------------------------------------------------------------------

struct Timed {
    double ms = -1;  // SYN to the whole response; -1 if it failed
    std::string response;
    bool ok() const { return response.rfind("HTTP/1.1 200", 0) == 0; }
};

// GET / on a fresh connection; the clock starts just before connect().
Timed timed_get(UniqueFd fd, const std::string &ip) {
    if (!fd) throw Failure("client socket: " + std::string(strerror(errno)));
    auto r = wisp::bench::timed_get(fd.get(), ip, kPort);
    return {r.done_ns ? r.total_ms() : -1, std::move(r.response)};
}

// B connections opened at once (non-blocking), each sending its GET once connected.
// Returns each one's time to its full response (ms); throws if one fails.
std::vector<double> burst_get(const ClientNetwork &net, const std::vector<std::string> &ips,
                              double *span_ms) {
    struct Conn {
        UniqueFd fd;
        std::string response;
        bool sent = false, done = false;
        double ms = 0;
    };
    std::vector<Conn> conns(ips.size());
    for (auto &c : conns) {
        c.fd = net.tcp_socket();
        if (!c.fd) throw Failure("client socket: " + std::string(strerror(errno)));
        fcntl(c.fd.get(), F_SETFL, O_NONBLOCK);
    }
    UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
    static const std::string req = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    uint64_t start = now_ns();
    for (size_t i = 0; i < conns.size(); ++i) {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(kPort);
        inet_pton(AF_INET, ips[i].c_str(), &sa.sin_addr);
        if (connect(conns[i].fd.get(), reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0 &&
            errno != EINPROGRESS)
            throw Failure("connect " + ips[i] + ": " + strerror(errno));
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u64 = i;
        epoll_ctl(ep.get(), EPOLL_CTL_ADD, conns[i].fd.get(), &ev);
    }
    size_t left = conns.size();
    uint64_t deadline = start + 60'000'000'000ull;
    std::vector<epoll_event> events(256);
    while (left > 0) {
        check_interrupt();
        if (now_ns() > deadline) throw Failure(std::to_string(left) + " burst requests unanswered after 60 s");
        int n = epoll_wait(ep.get(), events.data(), static_cast<int>(events.size()), 100);
        for (int k = 0; k < n; ++k) {
            Conn &c = conns[events[k].data.u64];
            if (c.done) continue;
            if (!c.sent && (events[k].events & EPOLLOUT)) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) throw Failure("burst connect: " + std::string(strerror(err)));
                if (send(c.fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
                    throw Failure("burst send failed");
                c.sent = true;
                epoll_event ev{};
                ev.events = EPOLLIN;
                ev.data.u64 = events[k].data.u64;
                epoll_ctl(ep.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
            }
            if (c.sent && (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                char buf[2048];
                for (;;) {
                    ssize_t r = recv(c.fd.get(), buf, sizeof buf, 0);
                    if (r > 0) {
                        c.response.append(buf, static_cast<size_t>(r));
                        continue;
                    }
                    if (r < 0 && errno == EAGAIN) break;
                    c.done = true;
                    c.ms = static_cast<double>(now_ns() - start) / 1e6;
                    epoll_ctl(ep.get(), EPOLL_CTL_DEL, c.fd.get(), nullptr);
                    --left;
                    if (c.response.rfind("HTTP/1.1 200", 0) != 0)
                        throw Failure("burst: bad answer: " + c.response.substr(0, 80));
                    break;
                }
            }
        }
    }
    std::vector<double> out;
    for (auto &c : conns) out.push_back(c.ms);
    *span_ms = *std::max_element(out.begin(), out.end());
    return out;
}

// ---- /proc ------------------------------------------------------------------------------

// A field of /proc/PID/smaps_rollup or /proc/PID/status ("Pss:", "VmRSS:"), KiB.
double proc_kib(pid_t pid, const std::string &file, const std::string &field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(field, 0) == 0) return std::stod(line.substr(field.size()));
    return 0;
}

// utime + stime of a process, in seconds.
double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(in)), {});
    auto rp = all.rfind(')');
    if (rp == std::string::npos) return 0;
    std::istringstream rest(all.substr(rp + 2));
    std::string f;
    double ticks = 0;
    for (int i = 3; i <= 15 && rest >> f; ++i)
        if (i == 14 || i == 15) ticks += std::stod(f);
    return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double mem_available_mib() {
    std::ifstream in("/proc/meminfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("MemAvailable:", 0) == 0) return std::stod(line.substr(13)) / 1024;
    return 0;
}

// ---- wispd through its API -------------------------------------------------------------

class Wispd {
public:
    Wispd(const ClientNetwork &net, const std::string &root, const std::string &bpffs, int pool)
        : process_({root, net.veth.host(), bpffs + "/wisp",
                    {"--monitor-pool-size", std::to_string(pool), "--max-services", "16384"},
                    {},
                    "warn"}),
          pins_(bpffs + "/wisp"),
          api_(process_.socket()) {
        if (!process_.start()) throw Failure("wispd did not start:\n" + process_.log());
        api_.set_address_family(AF_UNIX);
        api_.set_read_timeout(60);
        api_.set_keep_alive(true);
    }
    ~Wispd() {
        if (std::uncaught_exceptions() > 0) {
            std::ofstream("/tmp/wisp-bench-density-wispd.log") << process_.log();
            std::fprintf(stderr, "density: wispd's log: /tmp/wisp-bench-density-wispd.log\n");
        }
        process_.stop(SIGTERM, 20);
        process_.kill_monitors();
    }
    pid_t pid() const { return process_.pid(); }
    std::vector<pid_t> monitors() const { return process_.monitors(); }

    json get(const std::string &path) {
        auto res = api_.Get(path.c_str());
        if (!res) throw Failure("API " + path + ": " + httplib::to_string(res.error()));
        return json::parse(res->body, nullptr, false);
    }

    // POST /v1/services; returns the request's wall time in ms.
    double create(const std::string &name, int vip_index, uint32_t idle_ms) {
        json body = {{"name", name},        {"image", image_path("hello")},
                     {"port", kPort},       {"vip", vip_of(vip_index)},
                     {"cmdline", "port=8080"}, {"idle_timeout_ms", idle_ms}};
        uint64_t t0 = now_ns();
        auto res = api_.Post("/v1/services", body.dump(), "application/json");
        double ms = static_cast<double>(now_ns() - t0) / 1e6;
        if (!res || res->status / 100 != 2)
            throw Failure("create " + name + ": " +
                          (res ? res->body : httplib::to_string(res.error())));
        return ms;
    }

    std::string state(const std::string &name) { return get("/v1/services/" + name).value("state", ""); }

    bool wait_zero(const std::string &name, double timeout_s) {
        double deadline = monotonic_seconds() + timeout_s;
        while (monotonic_seconds() < deadline) {
            check_interrupt();
            json s = get("/v1/services/" + name);
            if (s.value("state", "") == "standby" && s["replicas"].empty()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return false;
    }

    // Memory the kernel charges for the data plane's pinned maps, by map (bytes).
    std::map<std::string, double> map_memory() {
        std::map<std::string, double> out;
        auto ls = run({"ls", pins_});
        std::istringstream names(ls.output);
        for (std::string name; names >> name;) {
            auto r = run({"bpftool", "-j", "map", "show", "pinned", pins_ + "/" + name});
            json j = json::parse(r.output, nullptr, false);
            if (j.is_object() && j.contains("bytes_memlock"))
                out[name] = j["bytes_memlock"].get<double>();
        }
        return out;
    }

    // Waits (bounded) until the pre-forked pool is full again: phases start from the
    // same state, and the idle-CPU window does not count refill spawns.
    void wait_pool_full(int pool, double timeout_s) {
        double deadline = monotonic_seconds() + timeout_s;
        while (monotonic_seconds() < deadline) {
            check_interrupt();
            auto res = api_.Get("/metrics");
            if (res) {
                std::istringstream in(res->body);
                for (std::string line; std::getline(in, line);)
                    if (line.rfind("wisp_monitors_idle ", 0) == 0 &&
                        std::stod(line.substr(19)) >= pool)
                        return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        std::printf("    (the pool did not refill to %d within %.0f s)\n", pool, timeout_s);
    }

    std::vector<pid_t> replica_monitors() {
        std::vector<pid_t> out;
        json r = get("/v1/replicas");
        if (r.is_object()) r = r["replicas"];
        for (auto &rep : r) out.push_back(rep.value("monitor_pid", 0));
        return out;
    }

private:
    WispdProcess process_;
    std::string pins_;
    httplib::Client api_;
};

struct Footprint {
    double rss_mib = 0;
    double maps_mib = 0;
    double services_map_kib = 0;
};

Footprint footprint(Wispd &w) {
    Footprint f;
    f.rss_mib = proc_kib(w.pid(), "status", "VmRSS:") / 1024;
    for (auto &[name, bytes] : w.map_memory()) {
        f.maps_mib += bytes / (1 << 20);
        if (name == "wisp_services") f.services_map_kib = bytes / 1024;
    }
    return f;
}

// Wakes of the probe services from zero, round robin: client SYN -> full response.
std::vector<double> probe_wakes(Wispd &w, const ClientNetwork &net, int n) {
    std::vector<double> ms;
    for (int i = 0; i < n; ++i) {
        check_interrupt();
        std::string name = "p" + std::to_string(i % kProbes);
        if (!w.wait_zero(name, 20)) throw Failure(name + ": not back at zero");
        Timed t = timed_get(net.tcp_socket(), vip_of(i % kProbes));
        if (!t.ok() || t.response.find("hello from wisp") == std::string::npos)
            throw Failure(name + ": bad answer: " + t.response.substr(0, 80));
        ms.push_back(t.ms);
    }
    return ms;
}

const char *verdict(bool ok) { return ok ? "met" : "MISSED"; }

struct Args {
    int standby = 10'000, running = 1'000, burst = 300, wakes = 100, pool = 320;
};

int run_benchmark(const Args &a) {
    ScopedTempDir tmp("bdens");
    MonitorReaper reaper{tmp.path() + "/run"};
    ScopedBpffsDir bpffs("bdens");
    ClientNetwork net("bd");
    run_or_throw({"ip", "-n", net.ns.name(), "route", "add", "198.18.0.0/18", "via", net.host_ip});
    double avail_before = mem_available_mib();
    Wispd w(net, tmp.path(), bpffs.path(), a.pool);
    std::printf("wispd pid %d on %s; pool of %d pre-forked monitors\n", w.pid(),
                net.veth.host().c_str(), a.pool);

    // (a) 10 services.
    double boot_ms = w.create("p0", 0, 50);
    uint64_t t0 = now_ns();
    while (w.state("p0") != "standby") {
        check_interrupt();
        if (now_ns() - t0 > 120'000'000'000ull) throw Failure("p0 never reached standby");
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    double golden_ms = static_cast<double>(now_ns() - t0) / 1e6 + boot_ms;
    std::vector<double> shared_ms;
    for (int i = 1; i < kProbes; ++i) shared_ms.push_back(w.create("p" + std::to_string(i), i, 50));
    w.wait_pool_full(a.pool, 180);
    std::printf("(a) %d services; measuring %d wakes ...\n", kProbes, a.wakes);
    Footprint f10 = footprint(w);
    std::vector<double> wake10 = probe_wakes(w, net, a.wakes);

    // (b) N standby.
    const int extra = a.standby - kProbes;
    std::printf("(b) registering %d more services through the API ...\n", extra);
    std::vector<double> create_ms;
    uint64_t c0 = now_ns();
    for (int i = 0; i < extra; ++i) {
        check_interrupt();
        create_ms.push_back(w.create("s" + std::to_string(i), kProbes + i, 600'000));
        if ((i + 1) % 1000 == 0) std::printf("    %d\n", i + 1);
    }
    double create_s = static_cast<double>(now_ns() - c0) / 1e9;
    Footprint fN = footprint(w);  // before the list below (a 10,000-entry JSON answer)
    json services = w.get("/v1/services")["services"];
    size_t standby = 0;
    for (auto &s : services) standby += s.value("state", "") == "standby";
    if (standby != static_cast<size_t>(a.standby))
        throw Failure(std::to_string(standby) + " of " + std::to_string(a.standby) + " in standby");
    double rss_after_list = proc_kib(w.pid(), "status", "VmRSS:") / 1024;
    w.wait_pool_full(a.pool, 120);
    std::printf("    measuring %d wakes with %d registered ...\n", a.wakes, a.standby);
    std::vector<double> wakeN = probe_wakes(w, net, a.wakes);

    // (c) restores per second: B services at zero woken at once.
    std::printf("(c) %d wakes at once ...\n", a.burst);
    w.wait_pool_full(a.pool, 120);
    std::vector<std::string> burst_ips;
    for (int i = 0; i < a.burst; ++i) burst_ips.push_back(vip_of(kProbes + a.running + i));
    double span_ms = 0;
    std::vector<double> burst = burst_get(net, burst_ips, &span_ms);
    double restores_per_s = a.burst / (span_ms / 1000);

    // (d) M running at once, woken one after the other.
    w.wait_pool_full(a.pool, 120);
    std::printf("(d) waking %d services one after the other ...\n", a.running);
    std::vector<double> seq;
    // wispd's trace of the first 10 and the last 10 of these wakes (us after the SYN).
    const std::vector<std::string> steps = {"consumed", "restore_sent", "monitor_command",
                                            "guest_entry", "ready", "replayed"};
    std::map<std::string, std::vector<double>> early, late;
    for (int i = 0; i < a.running; ++i) {
        check_interrupt();
        Timed t = timed_get(net.tcp_socket(), vip_of(kProbes + i));
        if (!t.ok()) throw Failure("s" + std::to_string(i) + ": bad answer: " + t.response.substr(0, 80));
        seq.push_back(t.ms);
        if (i < 10 || i >= a.running - 10) {
            json trace = w.get("/v1/services/s" + std::to_string(i))["last_wake"];
            auto &into = i < 10 ? early : late;
            for (auto &s : steps)
                if (trace.is_object() && trace["us_after_syn"][s].is_number())
                    into[s].push_back(trace["us_after_syn"][s].get<double>());
        }
    }
    w.wait_pool_full(a.pool, 120);
    auto replicas = w.replica_monitors();
    double monitors_pss = 0, monitors_rss = 0;
    for (pid_t p : replicas) {
        monitors_pss += proc_kib(p, "smaps_rollup", "Pss:");
        monitors_rss += proc_kib(p, "smaps_rollup", "Rss:");
    }
    std::vector<pid_t> all = w.monitors();
    double idle_pss = 0;
    int idle_n = 0;
    for (pid_t p : all)
        if (std::find(replicas.begin(), replicas.end(), p) == replicas.end()) {
            idle_pss += proc_kib(p, "smaps_rollup", "Pss:");
            ++idle_n;
        }
    double wispd_pss = proc_kib(w.pid(), "smaps_rollup", "Pss:");
    double total_pss_mib = (monitors_pss + wispd_pss) / 1024;
    double avail_used = avail_before - mem_available_mib();
    std::printf("    %zu replicas running; wispd CPU over 10 s idle ...\n", replicas.size());
    double cpu0 = cpu_seconds(w.pid());
    double mcpu0 = 0;
    for (pid_t p : replicas) mcpu0 += cpu_seconds(p);
    for (int i = 0; i < 100; ++i) {
        check_interrupt();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    double wispd_cpu = (cpu_seconds(w.pid()) - cpu0) / 10 * 100;
    double mcpu1 = 0;
    for (pid_t p : replicas) mcpu1 += cpu_seconds(p);
    double monitors_cpu = (mcpu1 - mcpu0) / 10 * 100;
    size_t running = replicas.size();

    // ---- report ----
    auto first10 = std::vector<double>(seq.begin(), seq.begin() + std::min<size_t>(10, seq.size()));
    auto last10 = std::vector<double>(seq.end() - std::min<size_t>(10, seq.size()), seq.end());
    double w10 = pct(wake10, 0.5), wN = pct(wakeN, 0.5);
    std::printf("\nwisp density benchmark (hello, 64 MiB guests, 2 cores; ms unless noted)\n");
    std::printf("  %-58s %12s %12s %8s\n", "", "measured", "baseline", "ratio");
    auto row = [](const char *what, double v, double base) {
        std::printf("  %-58s %12.2f %12.2f %8.2f\n", what, v, base, base > 0 ? v / base : 0.0);
    };
    std::printf(" registering\n");
    row("create with a golden boot (first of its kind), ms", golden_ms, golden_ms);
    row("create sharing the golden snapshot, p50 ms", pct(create_ms, 0.5), golden_ms);
    row("create sharing the golden snapshot, p99 ms", pct(create_ms, 0.99), golden_ms);
    std::printf("  %-58s %12.0f\n", "creates per second through the API", extra / create_s);
    std::printf(" %d services in standby (baseline: %d services)\n", a.standby, kProbes);
    row("wispd RSS, MiB", fN.rss_mib, f10.rss_mib);
    std::printf("  %-58s %12.2f\n", "wispd RSS after listing all of them once (GET /v1/services)",
                rss_after_list);
    row("data-plane maps (memlock of every pinned map), MiB", fN.maps_mib, f10.maps_mib);
    row("wisp_services map, KiB", fN.services_map_kib, f10.services_map_kib);
    row("wake p50 (SYN -> full response from zero)", wN, w10);
    row("wake p90", pct(wakeN, 0.9), pct(wake10, 0.9));
    std::printf(" restores per second (%d services at zero woken at once)\n", a.burst);
    row("first connect -> last full response, ms", span_ms, span_ms);
    row("per-connection p50, ms", pct(burst, 0.5), pct(wake10, 0.5));
    row("per-connection p99, ms", pct(burst, 0.99), pct(wake10, 0.5));
    std::printf("  %-58s %12.0f\n", "restores per second", restores_per_s);
    std::printf(" %zu running at once (woken one after the other)\n", running);
    row("wake of the 1st", seq.front(), seq.front());
    row("wake of the last", seq.back(), seq.front());
    row("wake p50 of the first 10 / of the last 10", pct(last10, 0.5), pct(first10, 0.5));
    for (auto &s : steps) {
        std::string what = "  trace: " + s + ", us after the SYN, last 10 / first 10";
        row(what.c_str(), pct(late[s], 0.5), pct(early[s], 0.5));
    }
    row("total PSS: running monitors + wispd, MiB", total_pss_mib, 3072);
    row("PSS per running instance, KiB", monitors_pss / static_cast<double>(std::max<size_t>(1, running)),
        monitors_pss / static_cast<double>(std::max<size_t>(1, running)));
    row("RSS per running instance, KiB", monitors_rss / static_cast<double>(std::max<size_t>(1, running)),
        monitors_pss / static_cast<double>(std::max<size_t>(1, running)));
    if (idle_n > 0)
        std::printf("  %-58s %12.0f\n", "PSS of an idle pre-forked monitor, KiB", idle_pss / idle_n);
    std::printf("  %-58s %12.0f\n", "host MemAvailable drop since start, MiB (noisy: shared box)", avail_used);
    std::printf("  %-58s %12.2f\n", "wispd CPU over 10 s idle, % of one core", wispd_cpu);
    std::printf("  %-58s %12.2f\n", "all running monitors' CPU over the same 10 s, % of one core", monitors_cpu);

    std::printf("\n goals on this machine\n");
    std::printf("  %-50s %10.0f MiB  ratio %5.2f  %s\n", "1,000 running in <= 3 GiB PSS", total_pss_mib,
                total_pss_mib / 3072, verdict(total_pss_mib <= 3072 && running >= 1000));
    std::printf("  %-50s %10.1f MiB  ratio %5.2f  %s\n", "10,000 standby: wispd RSS <= 200 MiB", fN.rss_mib,
                fN.rss_mib / 200, verdict(fN.rss_mib <= 200 && a.standby >= 10'000));
    std::printf("  %-50s %10.2f ms   ratio %5.2f  %s\n", "wake p50 within 20 % of the 10-service case", wN,
                wN / w10, verdict(wN <= 1.2 * w10));
    std::printf("  %-50s %10.0f /s   ratio %5.2f  %s\n", ">= 300 restores/s", restores_per_s,
                restores_per_s / 300, verdict(restores_per_s >= 300));
    if (a.standby < 10'000 || a.running < 1'000)
        std::printf("  (reduced counts: goals need --standby 10000 --running 1000)\n");
    std::printf("\ncleaning up %zu monitors ...\n", w.monitors().size());
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string s = argv[i];
        auto next = [&]() { return i + 1 < argc ? std::max(1, std::atoi(argv[++i])) : 1; };
        if (s == "--standby") a.standby = next();
        else if (s == "--running") a.running = next();
        else if (s == "--burst") a.burst = next();
        else if (s == "--wakes") a.wakes = next();
        else if (s == "--pool") a.pool = next();
        else if (s == "--quick") a.standby = 1000, a.running = 100, a.burst = 50, a.wakes = 30;
        else {
            std::fprintf(stderr,
                         "usage: density [--standby N] [--running N] [--burst N] [--wakes N] "
                         "[--pool N] [--quick]\n");
            return 2;
        }
    }
    a.standby = std::max(a.standby, kProbes + a.running + a.burst);
    setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines show up in a log file too
    if (geteuid() != 0) {
        std::fprintf(stderr, "density: run as root (namespaces, XDP, KVM)\n");
        return 1;
    }
    // Like the systemd unit's LimitNOFILE: wispd inherits it and raises its soft limit.
    rlimit lim{1u << 20, 1u << 20};
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        getrlimit(RLIMIT_NOFILE, &lim);
        std::printf("hard RLIMIT_NOFILE stays at %llu (no CAP_SYS_RESOURCE)\n",
                    static_cast<unsigned long long>(lim.rlim_max));
    }
    signal(SIGPIPE, SIG_IGN);
    // Ctrl-C and SIGTERM are taken by a thread: the run unwinds and cleans up.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread([set] {
        int sig = 0;
        sigwait(&set, &sig);
        g_signal = sig;
    }).detach();
    try {
        return run_benchmark(a);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "density: %s\n", e.what());
        return 1;
    }
}
