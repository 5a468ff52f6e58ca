// Snapshot benchmark (not a test). Every figure stands next to a baseline measured
// in the same run, on the same shared host:
//   (a) restore of `hello` into a pre-forked monitor: command -> guest entry,
//       -> first hypercall (the guest ran), -> HTTP response; p50/p99 over N
//       restores, guest memory 64 MiB and 1 GiB. Baseline: a cold boot of the same
//       image in the same kind of monitor.
//   (b) `slowstart` with a 1 s init: cold boot -> HTTP response vs restore of its
//       golden snapshot -> HTTP response.
//   (c) snapshot creation, full (64 MiB, 1 GiB) and diff: the monitor's part and
//       the whole (with the controller's fsync + rename). Baseline: writing and
//       fsyncing the same bytes to a plain file in the same directory.
//   (d) total PSS of 100 restored `hello` replicas that each served a request.
//       Baseline: 100 cold-booted replicas.
// The benchmark runs in a network namespace of its own (unshare), so its taps,
// addresses and clients never touch the host's network.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "wisp/snapshot/store.h"
#include "wisp/vmm/clock.h"
#include "wisp/vmm/control.h"
#include "wisp/vmm/snapshot_control.h"

using namespace wisp;
using namespace wisp::vmm;

namespace {

const std::string kBuild = WISP_BUILD_DIR;
constexpr int kTimeoutMs = 60000;

[[noreturn]] void die(const std::string &what) {
    std::fprintf(stderr, "bench_snapshot: %s\n", what.c_str());
    std::exit(1);
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

double us_since(uint64_t t0, uint64_t t1) { return (static_cast<double>(t1) - static_cast<double>(t0)) / 1e3; }

void sh(const std::string &cmd) {
    if (std::system(cmd.c_str()) != 0) die("command failed: " + cmd);
}

// ---- network: one tap per port, in the benchmark's own namespace -------------------

struct Port {
    UniqueFd tap;
    std::string name, guest_ip;
    GuestIdentity identity;
};

Port make_port(int i) {
    Port p;
    p.name = "wb" + std::to_string(i);
    p.tap.reset(open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, p.name.c_str(), IFNAMSIZ - 1);
    if (!p.tap || ioctl(p.tap.get(), TUNSETIFF, &ifr) != 0) die("create tap " + p.name);
    std::string net = "198.18." + std::to_string(i) + ".";
    p.guest_ip = net + "2";
    p.identity.mac = {0x02, 0x62, 0x65, 0x6e, 0x00, static_cast<uint8_t>(i)};
    p.identity.ip = {198, 18, static_cast<uint8_t>(i), 2};
    p.identity.gw_ip = {198, 18, static_cast<uint8_t>(i), 1};
    p.identity.prefix_len = 24;
    char mac[18];
    std::snprintf(mac, sizeof mac, "02:62:65:6e:00:%02x", i);
    sh("ip addr add " + net + "1/24 dev " + p.name + " && ip link set " + p.name +
       " up && sysctl -qw net.ipv6.conf." + p.name + ".disable_ipv6=1 && ip neigh replace " + p.guest_ip +
       " lladdr " + mac + " nud permanent dev " + p.name);
    auto host = Tap::host_mac(p.name);
    if (!host) die("tap MAC");
    p.identity.gw_mac = *host;
    return p;
}

void drain(const Port &p) {
    uint8_t buf[2048];
    while (read(p.tap.get(), buf, sizeof buf) > 0) {
    }
}

// GET / until the server closes; true if the response is a 200.
bool http_get(const std::string &ip, std::string *body = nullptr) {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    timeval tv{10, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(80);
    inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
    if (connect(fd.get(), reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) return false;
    static const char req[] = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    if (send(fd.get(), req, sizeof req - 1, MSG_NOSIGNAL) != ssize_t(sizeof req - 1)) return false;
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    if (body) *body = out;
    return out.rfind("HTTP/1.1 200", 0) == 0;
}

// ---- monitors ----------------------------------------------------------------------

struct Monitor {
    pid_t pid = -1;
    std::unique_ptr<control::ControlClient> client;
};

// `wisp-vmm serve`, as wispd pre-forks it: VM, vCPU and (with `mem`) the memory
// slot for guests of that size are set up before any command.
Monitor spawn_monitor(uint64_t mem = 64ull << 20) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
    Monitor m;
    m.pid = fork();
    if (m.pid == 0) {
        dup2(sv[1], 3);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO);
        std::string bin = kBuild + "/bin/wisp-vmm";
        std::string size = std::to_string(mem);
        execl(bin.c_str(), bin.c_str(), "--log-level", "warn", "serve", "--control-fd", "3", "--mem", size.c_str(),
              nullptr);
        _exit(127);
    }
    close(sv[1]);
    m.client = std::make_unique<control::ControlClient>(UniqueFd(sv[0]));
    if (!m.client->wait_for(WISP_CTL_EV_HELLO, kTimeoutMs)) die("monitor hello");
    return m;
}

void stop(Monitor &m) {
    (void)m.client->send(WISP_CTL_STOP);
    (void)m.client->wait_for(WISP_CTL_EV_EXITED, kTimeoutMs);
    waitpid(m.pid, nullptr, 0);
    m.pid = -1;
}

UniqueFd open_image(const std::string &name) {
    UniqueFd fd(open((kBuild + "/images/" + name + ".elf").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) die("open image " + name);
    return fd;
}

BootConfig boot_config(const Port &p, uint64_t mem, const std::string &cmdline) {
    BootConfig c;
    c.mem_size = mem;
    c.cmdline = cmdline;
    c.identity = p.identity;
    return c;
}

// Boots `image` on `p`; returns the ready event (guest ran its init).
wisp_ctl_ready boot(Monitor &m, const Port &p, const std::string &image, uint64_t mem,
                    const std::string &cmdline, uint32_t flags = 0) {
    UniqueFd img = open_image(image);
    if (!m.client->boot(control::make_boot(boot_config(p, mem, cmdline), flags), p.tap.get(), img.get()))
        die("boot");
    auto ready = m.client->wait_for(WISP_CTL_EV_READY, kTimeoutMs);
    if (!ready) die("ready: " + ready.error().describe());
    return ready->as<wisp_ctl_ready>();
}

void make_golden(const Port &p, const std::string &image, uint64_t mem, const std::string &cmdline,
                 const std::string &dir) {
    Monitor m = spawn_monitor(mem);
    boot(m, p, image, mem, cmdline, WISP_BOOT_HOLD_AT_READY);
    auto s = control::snapshot_to(*m.client, dir, 0, kTimeoutMs);
    if (!s) die("golden snapshot: " + s.error().describe());
    stop(m);
    drain(p);
}

wisp_ctl_restored restore(Monitor &m, const Port &p, const std::string &dir, const std::string &base = "") {
    control::RestoreSpec spec;
    spec.dir = dir;
    spec.base_dir = base;
    spec.tap_fd = p.tap.get();
    spec.identity = p.identity;
    auto r = control::restore_from(*m.client, spec, kTimeoutMs);
    if (!r) die("restore: " + r.error().describe());
    return *r;
}

// ---- (a) restore latency --------------------------------------------------------------

struct Latency {
    std::vector<double> read, entry, first, http;
};

void row(const char *what, const std::vector<double> &v, double base, const char *goal = "") {
    std::printf("  %-50s %8.0f %8.0f %8.2f %10s\n", what, percentile(v, 0.5), percentile(v, 0.99),
                base > 0 ? percentile(v, 0.5) / base : 1.0, goal);
}

// `n` guests started by `start(monitor, t0, latency)` (a restore or a boot) in a
// pool of pre-forked monitors, each answering one HTTP request, then
// `after(monitor, t0, latency)`; the pool is refilled off the measured path.
template <class Start, class After>
Latency measure(const Port &p, uint64_t mem, int n, Start start, After after) {
    Latency l;
    Monitor next = spawn_monitor(mem);
    for (int i = 0; i < n; i++) {
        Monitor m = std::move(next);
        drain(p);
        uint64_t t0 = host_monotonic_ns();
        start(m, t0, l);
        if (!http_get(p.guest_ip)) die("no HTTP answer from hello");
        l.http.push_back(us_since(t0, host_monotonic_ns()));
        after(m, t0, l);
        stop(m);
        next = spawn_monitor(mem);
    }
    stop(next);
    return l;
}

Latency measure_restores(const Port &p, const std::string &golden, uint64_t mem, int n) {
    auto start = [&](Monitor &m, uint64_t t0, Latency &l) {
        wisp_ctl_restored r = restore(m, p, golden);
        l.read.push_back(us_since(t0, r.command_ns));
        l.entry.push_back(us_since(t0, r.entry_ns));
    };
    auto after = [](Monitor &m, uint64_t t0, Latency &l) {
        auto running = m.client->wait_for(WISP_CTL_EV_RUNNING, kTimeoutMs);
        if (!running) die("running event");
        l.first.push_back(us_since(t0, running->as<wisp_ctl_running>().first_hypercall_ns));
    };
    return measure(p, mem, n, start, after);
}

Latency measure_boots(const Port &p, uint64_t mem, int n) {
    auto start = [&](Monitor &m, uint64_t t0, Latency &l) {
        l.first.push_back(us_since(t0, boot(m, p, "hello", mem, "").first_hypercall_ns));
    };
    return measure(p, mem, n, start, [](Monitor &, uint64_t, Latency &) {});
}

void bench_restore(const std::string &work, int restores) {
    Port p = make_port(1);
    std::printf("\n(a) hello: restore of its golden snapshot vs cold boot, pre-forked monitors,\n"
                "    %d restores and %d boots per size (microseconds from the command)\n",
                restores, restores / 4);
    std::printf("  %-50s %8s %8s %8s %10s\n", "", "p50", "p99", "p50/base", "goal");
    double restore64_first = 0, restore64_http = 0;
    for (uint64_t mem : {64ull << 20, 1ull << 30}) {
        std::string golden = work + "/hello-" + std::to_string(mem >> 20);
        make_golden(p, "hello", mem, "", golden);
        Latency boot = measure_boots(p, mem, std::max(restores / 4, 10));
        Latency rest = measure_restores(p, golden, mem, restores);
        const char *size = mem == (64ull << 20) ? "64 MiB" : "1 GiB";
        double base_first = percentile(boot.first, 0.5), base_http = percentile(boot.http, 0.5);
        char what[96];
        std::snprintf(what, sizeof what, "%s baseline: boot -> first hypercall", size);
        row(what, boot.first, base_first);
        std::snprintf(what, sizeof what, "%s restore -> command read by the monitor", size);
        row(what, rest.read, base_first);
        std::snprintf(what, sizeof what, "%s restore -> guest entry", size);
        row(what, rest.entry, base_first);
        std::snprintf(what, sizeof what, "%s restore -> first guest instruction (hypercall)", size);
        row(what, rest.first, base_first, "<= 1000");
        std::snprintf(what, sizeof what, "%s baseline: boot -> HTTP response", size);
        row(what, boot.http, base_http);
        std::snprintf(what, sizeof what, "%s restore -> HTTP response", size);
        row(what, rest.http, base_http, "<= 2000");
        if (mem == (64ull << 20)) {
            restore64_first = percentile(rest.first, 0.5);
            restore64_http = percentile(rest.http, 0.5);
        } else {
            std::printf("  %-50s %8.2f %8s %8s %10s\n", "1 GiB / 64 MiB, restore -> first instruction",
                        percentile(rest.first, 0.5) / restore64_first, "", "", "<= 1.20");
            std::printf("  %-50s %8.2f %8s %8s %10s\n", "1 GiB / 64 MiB, restore -> HTTP response",
                        percentile(rest.http, 0.5) / restore64_http, "", "", "<= 1.20");
        }
    }
}

// ---- (b) slowstart ----------------------------------------------------------------------

void bench_slowstart(const std::string &work, int boots, int restores) {
    Port p = make_port(2);
    const std::string golden = work + "/slowstart";
    make_golden(p, "slowstart", 64ull << 20, "init_ms=1000", golden);
    std::vector<double> cold, warm;
    for (int i = 0; i < boots; i++) {
        Monitor m = spawn_monitor();
        drain(p);
        uint64_t t0 = host_monotonic_ns();
        boot(m, p, "slowstart", 64ull << 20, "init_ms=1000");
        if (!http_get(p.guest_ip)) die("slowstart boot: no answer");
        cold.push_back(us_since(t0, host_monotonic_ns()) / 1e3);
        stop(m);
    }
    for (int i = 0; i < restores; i++) {
        Monitor m = spawn_monitor();
        drain(p);
        uint64_t t0 = host_monotonic_ns();
        restore(m, p, golden);
        std::string body;
        if (!http_get(p.guest_ip, &body)) die("slowstart restore: no answer");
        warm.push_back(us_since(t0, host_monotonic_ns()) / 1e3);
        if (body.find("\"init_runs\":1,") == std::string::npos) die("slowstart ran its init again");
        stop(m);
    }
    std::printf("\n(b) slowstart (1 s init): command -> HTTP response (milliseconds)\n");
    std::printf("  %-50s %8s %8s %8s\n", "", "p50", "p99", "ratio");
    std::printf("  %-50s %8.1f %8.1f %8.2f\n", "baseline: cold boot (init runs)", percentile(cold, 0.5),
                percentile(cold, 0.99), 1.0);
    std::printf("  %-50s %8.2f %8.2f %8.4f\n", "restore of the golden snapshot", percentile(warm, 0.5),
                percentile(warm, 0.99), percentile(warm, 0.5) / percentile(cold, 0.5));
    std::printf("  (%d boots, %d restores; the restored instance reports init_runs = 1)\n", boots, restores);
}

// ---- (c) snapshot creation ----------------------------------------------------------------

// The I/O floor: write `bytes` of non-zero data to a fresh file and fsync it.
double write_fsync_us(const std::string &dir, uint64_t bytes) {
    std::string path = dir + "/baseline";
    std::vector<uint8_t> data(bytes, 0x5a);
    uint64_t t0 = host_monotonic_ns();
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd || write(fd.get(), data.data(), data.size()) != ssize_t(data.size()) || fsync(fd.get()) != 0)
        die("baseline write");
    double us = us_since(t0, host_monotonic_ns());
    unlink(path.c_str());
    return us;
}

struct Creation {
    std::vector<double> monitor, total, base;
    uint64_t data_bytes = 0;
};

Creation measure_snapshots(Monitor &m, const std::string &work, const std::string &name, uint32_t flags, int n) {
    Creation c;
    for (int i = 0; i < n; i++) {
        uint64_t t0 = host_monotonic_ns();
        auto s = control::snapshot_to(*m.client, work + "/" + name, flags, kTimeoutMs);
        uint64_t t1 = host_monotonic_ns();
        if (!s) die("snapshot: " + s.error().describe());
        c.monitor.push_back(us_since(s->command_ns, s->done_ns));
        c.total.push_back(us_since(t0, t1));
        c.data_bytes = s->data_bytes;
        c.base.push_back(write_fsync_us(work, s->data_bytes + s->vmstate_bytes));
    }
    return c;
}

void creation_rows(const char *what, const Creation &c) {
    double base = percentile(c.base, 0.5);
    std::printf("  %-34s %7llu KiB %9.0f %9.0f %9.0f %9.0f %7.2f\n", what,
                static_cast<unsigned long long>(c.data_bytes >> 10), base, percentile(c.monitor, 0.5),
                percentile(c.total, 0.5), percentile(c.total, 0.99), percentile(c.total, 0.5) / base);
}

void bench_creation(const std::string &work, int n) {
    Port p = make_port(3);
    std::printf("\n(c) snapshot creation, %d each (microseconds; total = monitor + controller fsync/rename)\n", n);
    std::printf("  %-34s %11s %9s %9s %9s %9s %7s\n", "", "data", "baseline", "monitor", "total p50",
                "total p99", "ratio");
    for (uint64_t mem : {64ull << 20, 1ull << 30}) {
        Monitor m = spawn_monitor(mem);
        boot(m, p, "hello", mem, "", WISP_BOOT_HOLD_AT_READY);
        Creation c = measure_snapshots(m, work, "full", 0, n);
        creation_rows(mem == (64ull << 20) ? "full, hello at ready, 64 MiB" : "full, hello at ready, 1 GiB", c);
        stop(m);
        drain(p);
    }
    // A stateful service: kv restored from its golden snapshot, 1 MiB of values put.
    const std::string golden = work + "/kv";
    make_golden(p, "kv", 64ull << 20, "", golden);
    Monitor m = spawn_monitor();
    restore(m, p, golden);
    std::string value(16384, 'v');
    for (int i = 0; i < 64; i++) {
        std::string cmd = "curl -s -o /dev/null -X PUT --data-binary " + value.substr(0, 100) + std::to_string(i) +
                          " http://" + p.guest_ip + "/kv/k" + std::to_string(i);
        sh(cmd);
    }
    Creation full = measure_snapshots(m, work, "kv-full", 0, n);
    Creation diff = measure_snapshots(m, work, "kv-diff", WISP_SNAPSHOT_DIFF, n);
    creation_rows("full, kv after 64 puts, 64 MiB", full);
    creation_rows("diff, kv after 64 puts, 64 MiB", diff);
    std::printf("  (baseline: write + fsync of the same bytes to a plain file in the same directory)\n");
    stop(m);
}

// ---- (d) memory of many replicas ----------------------------------------------------------

double pss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("Pss:", 0) == 0) return std::stod(line.substr(4));
    return 0;
}

double replicas_pss_mib(std::vector<Port> &ports, const std::string &golden) {
    std::vector<Monitor> ms;
    for (Port &p : ports) {
        drain(p);
        ms.push_back(spawn_monitor());
        if (golden.empty())
            boot(ms.back(), p, "hello", 64ull << 20, "");
        else
            restore(ms.back(), p, golden);
    }
    for (Port &p : ports)
        if (!http_get(p.guest_ip)) die("replica " + p.guest_ip + " did not answer");
    double total = 0;
    for (Monitor &m : ms) total += pss_kib(m.pid);
    for (Monitor &m : ms) stop(m);
    return total / 1024;
}

void bench_replicas(const std::string &work, int count) {
    std::vector<Port> ports;
    for (int i = 0; i < count; i++) ports.push_back(make_port(10 + i));
    const std::string golden = work + "/hello-replicas";
    make_golden(ports[0], "hello", 64ull << 20, "", golden);
    double booted = replicas_pss_mib(ports, "");
    double restored = replicas_pss_mib(ports, golden);
    std::printf("\n(d) memory of %d hello replicas (64 MiB guests), each after one request (MiB, PSS)\n", count);
    std::printf("  %-50s %9s %9s %9s %9s\n", "", "total", "each", "ratio", "goal");
    std::printf("  %-50s %9.1f %9.2f %9.2f\n", "baseline: cold-booted replicas", booted, booted / count, 1.0);
    std::printf("  %-50s %9.1f %9.2f %9.2f %9s\n", "restored from one golden snapshot", restored, restored / count,
                restored / booted, "<= 300");
}

}  // namespace

int main(int argc, char **argv) {
    int restores = 200, replicas = 100, creations = 20, slow_boots = 5, slow_restores = 50;
    std::string only;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--restores")) restores = std::atoi(argv[i + 1]);
        if (!std::strcmp(argv[i], "--replicas")) replicas = std::atoi(argv[i + 1]);
        if (!std::strcmp(argv[i], "--creations")) creations = std::atoi(argv[i + 1]);
        if (!std::strcmp(argv[i], "--only")) only = argv[i + 1];
    }
    if (geteuid() != 0) die("run as root (KVM, taps, a network namespace)");
    if (replicas < 1 || replicas > 200) die("--replicas must be 1..200");
    signal(SIGPIPE, SIG_IGN);
    spdlog::set_level(spdlog::level::warn);
    // A network namespace of our own: taps, addresses and clients stay in it and
    // vanish with the process.
    if (unshare(CLONE_NEWNET) != 0) die("unshare(CLONE_NEWNET)");
    sh("ip link set lo up");
    char work_template[] = "/tmp/wisp-bench-snapshot-XXXXXX";
    if (!mkdtemp(work_template)) die("mkdtemp");
    const std::string work = work_template;
    std::printf("snapshot benchmark (host shared and noisy: compare ratios, not absolutes)\n");
    if (only.empty() || only == "restore") bench_restore(work, restores);
    if (only.empty() || only == "slowstart") bench_slowstart(work, slow_boots, slow_restores);
    if (only.empty() || only == "create") bench_creation(work, creations);
    if (only.empty() || only == "replicas") bench_replicas(work, replicas);
    std::fflush(stdout);
    sh("rm -rf " + work);
    return 0;
}
