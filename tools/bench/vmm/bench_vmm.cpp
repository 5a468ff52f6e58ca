// wisp-vmm benchmark (not a test). Three figures, each next to a baseline
// measured in the same run:
//   (a) boot latency: a pre-forked `wisp-vmm serve` (VM, vCPU and sandbox ready,
//       waiting on its control socket) gets `boot` -> the guest's first hypercall,
//       and -> `ready`; p50/p99 over N boots. Baseline: the cheapest possible KVM
//       VM on this host (create VM + vCPU + one page, run to its first exit).
//   (b) hypercall round trip (clock hypercall under the monitor's loop) vs a bare
//       `out` exit loop (KVM_RUN with nothing done per exit) on the same guest.
//   (c) RSS of a monitor running the hello guest beyond the guest-touched pages,
//       next to the same monitor before boot.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "wisp/vmm/control.h"
#include "wisp/vmm/vmm.h"

using namespace wisp;
using namespace wisp::vmm;

namespace {

const std::string kBuild = WISP_BUILD_DIR;

[[noreturn]] void die(const std::string &what) {
    std::fprintf(stderr, "bench_vmm: %s\n", what.c_str());
    std::exit(1);
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

std::vector<uint8_t> read_all(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) die("cannot read " + path);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

UniqueFd make_tap() {
    UniqueFd fd(open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
    if (!fd) die("open /dev/net/tun");
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::snprintf(ifr.ifr_name, IFNAMSIZ, "wbench%d", getpid() % 100000);
    if (ioctl(fd.get(), TUNSETIFF, &ifr) != 0) die("TUNSETIFF");
    return fd;
}

struct Monitor {
    pid_t pid = -1;
    std::unique_ptr<control::ControlClient> client;
};

Monitor spawn_monitor() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
    Monitor m;
    m.pid = fork();
    if (m.pid == 0) {
        dup2(sv[1], 3);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO);
        std::string bin = kBuild + "/bin/wisp-vmm";
        execl(bin.c_str(), bin.c_str(), "serve", "--control-fd", "3", nullptr);
        _exit(127);
    }
    close(sv[1]);
    m.client = std::make_unique<control::ControlClient>(UniqueFd(sv[0]));
    auto hello = m.client->wait_for(WISP_CTL_EV_HELLO, 10000);
    if (!hello) die("monitor hello: " + hello.error().describe());
    return m;
}

void reap(Monitor &m) {
    (void)m.client->send(WISP_CTL_STOP);
    (void)m.client->wait_for(WISP_CTL_EV_EXITED, 10000);
    waitpid(m.pid, nullptr, 0);
}

wisp_ctl_boot boot_payload(const std::string &cmdline, uint64_t mem) {
    BootConfig c;
    c.mem_size = mem;
    c.cmdline = cmdline;
    c.identity.ip = {198, 18, 0, 2};
    c.identity.prefix_len = 24;
    return control::make_boot(c, 0);
}

// The floor: a real-mode VM with one page whose first instruction is an `out`.
double bare_kvm_boot_us() {
    uint64_t t0 = host_monotonic_ns();
    UniqueFd kvm(open("/dev/kvm", O_RDWR | O_CLOEXEC));
    UniqueFd vm(ioctl(kvm.get(), KVM_CREATE_VM, 0));
    void *mem = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static const uint8_t code[] = {0xe6, 0x10};  // out 0x10, al
    std::memcpy(mem, code, sizeof code);
    kvm_userspace_memory_region r{0, 0, 0, 4096, reinterpret_cast<uint64_t>(mem)};
    if (ioctl(vm.get(), KVM_SET_USER_MEMORY_REGION, &r) != 0) die("bare: set memory");
    UniqueFd vcpu(ioctl(vm.get(), KVM_CREATE_VCPU, 0));
    int size = ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    auto *run = static_cast<kvm_run *>(
        mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu.get(), 0));
    kvm_sregs s;
    ioctl(vcpu.get(), KVM_GET_SREGS, &s);
    s.cs.base = 0;
    s.cs.selector = 0;
    ioctl(vcpu.get(), KVM_SET_SREGS, &s);
    kvm_regs regs{};
    regs.rip = 0;
    regs.rflags = 2;
    ioctl(vcpu.get(), KVM_SET_REGS, &regs);
    if (ioctl(vcpu.get(), KVM_RUN, 0) != 0 || run->exit_reason != KVM_EXIT_IO) die("bare: run");
    uint64_t t1 = host_monotonic_ns();
    munmap(run, size);
    munmap(mem, 4096);
    return (t1 - t0) / 1e3;
}

void bench_boot(int boots) {
    UniqueFd tap = make_tap();
    std::string image = kBuild + "/images/vmtest_hello.elf";
    UniqueFd img(open(image.c_str(), O_RDONLY | O_CLOEXEC));
    if (!img) die("open " + image);
    std::vector<double> entry, first, ready, ready_seen, bare;
    Monitor next = spawn_monitor();  // the pool: always one monitor waiting
    for (int i = 0; i < boots; i++) {
        Monitor m = std::move(next);
        uint64_t t0 = host_monotonic_ns();
        auto st = m.client->boot(boot_payload("", 64ull << 20), tap.get(), img.get());
        if (!st) die("boot: " + st.error().describe());
        auto started = m.client->wait_for(WISP_CTL_EV_STARTED, 10000);
        if (!started) die("started: " + started.error().describe());
        auto r = m.client->wait_for(WISP_CTL_EV_READY, 10000);
        uint64_t t_seen = host_monotonic_ns();
        if (!r) die("ready: " + r.error().describe());
        auto rd = r->as<wisp_ctl_ready>();
        entry.push_back((started->as<wisp_ctl_started>().entry_ns - t0) / 1e3);
        first.push_back((rd.first_hypercall_ns - t0) / 1e3);
        ready.push_back((rd.ready_ns - t0) / 1e3);
        ready_seen.push_back((t_seen - t0) / 1e3);
        (void)m.client->wait_for(WISP_CTL_EV_EXITED, 10000);
        waitpid(m.pid, nullptr, 0);
        next = spawn_monitor();  // refill off the measured path
        bare.push_back(bare_kvm_boot_us());
    }
    reap(next);
    double base50 = percentile(bare, 0.5), base99 = percentile(bare, 0.99);
    std::printf("\n(a) boot of a pre-forked monitor, %d boots, 64 MiB guest (microseconds)\n", boots);
    std::printf("  %-44s %9s %9s %9s %9s\n", "", "p50", "p99", "p50/base", "goal");
    std::printf("  %-44s %9.0f %9.0f %9s\n", "baseline: bare KVM VM to its first exit", base50,
                base99, "1.00");
    auto row = [&](const char *what, const std::vector<double> &v, const char *goal) {
        std::printf("  %-44s %9.0f %9.0f %9.2f %9s\n", what, percentile(v, 0.5),
                    percentile(v, 0.99), percentile(v, 0.5) / base50, goal);
    };
    row("boot command -> guest entry", entry, "");
    row("boot command -> first hypercall", first, "<= 1500");
    row("boot command -> ready (in the monitor)", ready, "");
    row("boot command -> ready event at controller", ready_seen, "");
}

// Runs the bench guest for `n` clock hypercalls; returns ns per exit, either
// through the monitor's loop or through a bare KVM_RUN loop.
double hypercall_ns(const std::vector<uint8_t> &image, int tap_fd, uint64_t n, bool bare) {
    auto vmm = Vmm::create();
    if (!vmm) die("create: " + vmm.error().describe());
    BootConfig c;
    c.mem_size = 16ull << 20;
    c.cmdline = "count=" + std::to_string(n);
    auto st = (*vmm)->boot(c, image, Tap(UniqueFd(dup(tap_fd))), ConsoleLog());
    if (!st) die("boot: " + st.error().describe());
    uint64_t t0 = host_monotonic_ns();
    if (bare) {
        Vcpu &vcpu = (*vmm)->vcpu();
        for (uint64_t exits = 0; exits < n;) {
            if (vcpu.run() != 0) die("bare KVM_RUN failed");
            if (vcpu.run_state()->exit_reason != KVM_EXIT_IO) die("bare: unexpected exit");
            exits++;
        }
    } else {
        while ((*vmm)->run() != RunStop::kExited) {
        }
        if ((*vmm)->exit_info().reason != WISP_EXIT_HALT) die("bench guest: " + (*vmm)->exit_summary());
    }
    uint64_t t1 = host_monotonic_ns();
    return static_cast<double>(t1 - t0) / static_cast<double>(n);
}

void bench_hypercalls(uint64_t n) {
    auto image = read_all(kBuild + "/images/vmtest_bench.elf");
    UniqueFd tap = make_tap();
    std::vector<double> hc, bare;
    for (int round = 0; round < 5; round++) {  // interleaved: the host is shared
        bare.push_back(hypercall_ns(image, tap.get(), n, true));
        hc.push_back(hypercall_ns(image, tap.get(), n, false));
    }
    double b = percentile(bare, 0.5), h = percentile(hc, 0.5);
    std::printf("\n(b) hypercall round trip, %llu calls x 5 rounds, median of rounds (microseconds)\n",
                static_cast<unsigned long long>(n));
    std::printf("  %-44s %9s %9s %9s\n", "", "per call", "ratio", "goal");
    std::printf("  %-44s %9.2f %9s\n", "baseline: bare `out` exit loop", b / 1e3, "1.00");
    std::printf("  %-44s %9.2f %9.2f %9s\n", "clock hypercall through the monitor", h / 1e3, h / b,
                "<= 1.30");
}

struct Rss {
    double total_kib = 0, anon_kib = 0, file_kib = 0, guest_kib = 0, pss_kib = 0;
};

Rss read_rss(pid_t pid, uint64_t guest_size) {
    Rss r;
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        std::istringstream in(line);
        std::string key;
        double v;
        in >> key >> v;
        if (key == "VmRSS:") r.total_kib = v;
        if (key == "RssAnon:") r.anon_kib = v;
        if (key == "RssFile:") r.file_kib = v;
    }
    std::ifstream rollup("/proc/" + std::to_string(pid) + "/smaps_rollup");
    while (std::getline(rollup, line))
        if (line.rfind("Pss:", 0) == 0) r.pss_kib = std::stod(line.substr(4));
    // The guest memory is the anonymous mapping exactly guest_size long.
    std::ifstream smaps("/proc/" + std::to_string(pid) + "/smaps");
    bool in_guest = false;
    while (std::getline(smaps, line)) {
        unsigned long start, end;
        if (std::sscanf(line.c_str(), "%lx-%lx ", &start, &end) == 2) {
            in_guest = guest_size && (end - start) == guest_size;
            continue;
        }
        if (in_guest && line.rfind("Rss:", 0) == 0) r.guest_kib = std::stod(line.substr(4));
    }
    return r;
}

void bench_rss() {
    UniqueFd tap = make_tap();
    std::string image = kBuild + "/images/vmtest_hello.elf";
    UniqueFd img(open(image.c_str(), O_RDONLY | O_CLOEXEC));
    constexpr uint64_t kMem = 64ull << 20;
    Monitor m = spawn_monitor();
    Rss empty = read_rss(m.pid, 0);
    if (!m.client->boot(boot_payload("linger", kMem), tap.get(), img.get()).ok()) die("boot");
    if (!m.client->wait_for(WISP_CTL_EV_READY, 10000).ok()) die("ready");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    Rss running = read_rss(m.pid, kMem);
    reap(m);
    std::printf("\n(c) monitor memory, hello guest with 64 MiB (KiB)\n");
    std::printf("  %-44s %9s %9s %9s %9s %9s\n", "", "RSS", "PSS", "anon", "file", "guest");
    std::printf("  %-44s %9.0f %9.0f %9.0f %9.0f %9s\n", "baseline: pre-forked monitor, before boot",
                empty.total_kib, empty.pss_kib, empty.anon_kib, empty.file_kib, "-");
    std::printf("  %-44s %9.0f %9.0f %9.0f %9.0f %9.0f\n", "monitor running the hello guest",
                running.total_kib, running.pss_kib, running.anon_kib, running.file_kib,
                running.guest_kib);
    std::printf("  %-44s %9.0f %9.0f %9.0f   (goal <= 2048 KiB)\n",
                "beyond guest-touched pages", running.total_kib - running.guest_kib,
                running.pss_kib - running.guest_kib, running.anon_kib - running.guest_kib);
    std::printf("  (file pages are the binary and shared libraries: shared by every monitor)\n");
}

}  // namespace

int main(int argc, char **argv) {
    int boots = 200;
    uint64_t hypercalls = 20000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--boots")) boots = std::atoi(argv[i + 1]);
        if (!std::strcmp(argv[i], "--hypercalls")) hypercalls = std::strtoull(argv[i + 1], nullptr, 10);
    }
    if (geteuid() != 0) die("run as root (KVM, taps)");
    signal(SIGPIPE, SIG_IGN);
    spdlog::set_level(spdlog::level::warn);
    std::printf("wisp-vmm benchmark (host shared and noisy: compare ratios, not absolutes)\n");
    bench_boot(boots);
    bench_hypercalls(hypercalls);
    bench_rss();
    return 0;
}
