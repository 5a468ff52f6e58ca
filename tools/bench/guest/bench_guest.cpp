// Guest SDK benchmark (not a test). Every figure is printed next to a baseline
// measured in the same run:
//   (a) hello under wrk - requests/s, p50 and p99 latency, with 64 connections
//       and with 1 - in wisp-vmm on a tap, next to native_hello (the same HTTP
//       behaviour on the kernel's TCP stack) in a namespace behind a veth. wrk
//       runs in one client namespace and reaches each server over one L2 hop.
//   (b) guest memory actually touched (resident pages of the guest-memory
//       mapping in wisp-vmm) after ready and after the load, next to the native
//       process's RSS.
//   (c) image sizes (file and loaded bytes) next to the runtime-only image.
// Run: tools/bench/guest/run.sh [--seconds N] [--rounds N]
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "wisp/test/process.h"

namespace {

const std::string kBuild = WISP_BUILD_DIR;
const char *kGuestIp = "198.18.0.2";
const char *kTapIp = "198.18.0.1";
const char *kNativeIp = "198.18.1.2";
const char *kVethClientIp = "198.18.1.1";
constexpr uint64_t kGuestMemMiB = 64;

std::string g_client_ns, g_native_ns, g_tap, g_veth_c, g_veth_n;
std::vector<pid_t> g_children;

void cleanup() {
    for (pid_t pid : g_children) {
        kill(-pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
    g_children.clear();
    for (const std::string &ns : {g_client_ns, g_native_ns})
        if (!ns.empty()) std::system(("ip netns del " + ns + " 2>/dev/null").c_str());
}

[[noreturn]] void die(const std::string &what) {
    std::fprintf(stderr, "bench_guest: %s\n", what.c_str());
    cleanup();
    std::exit(1);
}

std::string capture(const std::string &command) {
    std::string out;
    FILE *p = popen((command + " 2>&1").c_str(), "r");
    if (!p) die("popen " + command);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int status = pclose(p);
    if (status != 0) die("command failed: " + command + "\n" + out);
    return out;
}

std::string read_text(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

pid_t spawn(const std::vector<std::string> &argv, const std::string &log) {
    pid_t pid = wisp::test::spawn_logged(argv, log);
    g_children.push_back(pid);
    return pid;
}

void wait_for_text(const std::string &log, const std::string &text, double timeout_s) {
    double deadline = wisp::test::monotonic_seconds() + timeout_s;
    while (wisp::test::monotonic_seconds() < deadline) {
        if (read_text(log).find(text) != std::string::npos) return;
        usleep(20 * 1000);
    }
    die("timed out waiting for '" + text + "' in " + log + ":\n" + read_text(log));
}

// ---- measurements ------------------------------------------------------------

struct WrkResult {
    double rps = 0, p50_ms = 0, p99_ms = 0;
    std::string errors;  // wrk's error lines, if any
};

double to_ms(const std::string &value, const std::string &unit) {
    double v = std::stod(value);
    if (unit == "us") return v / 1000;
    if (unit == "s") return v * 1000;
    return v;
}

WrkResult run_wrk(const std::string &url, int threads, int connections, int seconds) {
    std::string out = capture("ip netns exec " + g_client_ns + " wrk --latency -t" +
                              std::to_string(threads) + " -c" + std::to_string(connections) + " -d" +
                              std::to_string(seconds) + "s --timeout 10s " + url);
    WrkResult r;
    std::smatch m;
    if (std::regex_search(out, m, std::regex("Requests/sec:\\s+([0-9.]+)"))) r.rps = std::stod(m[1]);
    if (std::regex_search(out, m, std::regex("\\s50%\\s+([0-9.]+)(us|ms|s)")))
        r.p50_ms = to_ms(m[1], m[2]);
    if (std::regex_search(out, m, std::regex("\\s99%\\s+([0-9.]+)(us|ms|s)")))
        r.p99_ms = to_ms(m[1], m[2]);
    for (const char *bad : {"Socket errors", "Non-2xx"}) {
        size_t at = out.find(bad);
        if (at != std::string::npos) r.errors += out.substr(at, out.find('\n', at) - at) + "; ";
    }
    return r;
}

// Resident KiB of the monitor's guest-memory mapping (the anonymous mapping of
// exactly the guest's size), i.e. the guest pages touched so far. The monitor
// was started as `ip netns exec ... wisp-vmm`; ip execs, so its pid is ours.
uint64_t guest_touched_kib(pid_t monitor) {
    std::ifstream smaps("/proc/" + std::to_string(monitor) + "/smaps");
    std::string line;
    uint64_t size = 0, best = UINT64_MAX;
    while (std::getline(smaps, line)) {
        unsigned long long v;
        if (std::sscanf(line.c_str(), "Size: %llu kB", &v) == 1) size = v;
        if (std::sscanf(line.c_str(), "Rss: %llu kB", &v) == 1 && size == kGuestMemMiB * 1024) best = v;
    }
    if (best == UINT64_MAX) die("guest memory mapping not found in smaps");
    return best;
}

uint64_t rss_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        unsigned long long v;
        if (std::sscanf(line.c_str(), "VmRSS: %llu kB", &v) == 1) return v;
    }
    die("no VmRSS for " + std::to_string(pid));
}

struct ImageSize {
    uint64_t file = 0;  // the ELF file, debug info included
    uint64_t code = 0;  // file-backed loaded bytes: text, rodata, data
    uint64_t bss = 0;   // zero-filled bytes: touched only when used
};

ImageSize image_size(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) die("cannot read " + path);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    ImageSize s;
    s.file = bytes.size();
    if (bytes.size() < sizeof(Elf64_Ehdr)) die("not an ELF: " + path);
    auto *eh = reinterpret_cast<const Elf64_Ehdr *>(bytes.data());
    for (int i = 0; i < eh->e_phnum; i++) {
        auto *ph = reinterpret_cast<const Elf64_Phdr *>(bytes.data() + eh->e_phoff + i * eh->e_phentsize);
        if (ph->p_type != PT_LOAD) continue;
        s.code += ph->p_filesz;
        s.bss += ph->p_memsz - ph->p_filesz;
    }
    return s;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

std::string ratio(double guest, double native) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2fx", native > 0 ? guest / native : 0.0);
    return buf;
}

}  // namespace

int main(int argc, char **argv) {
    int seconds = 5, rounds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        if (flag == "--seconds") seconds = std::atoi(argv[i + 1]);
        else if (flag == "--rounds") rounds = std::atoi(argv[i + 1]);
        else die("usage: bench_guest [--seconds N] [--rounds N]");
    }
    if (geteuid() != 0) die("needs root (namespaces, taps, KVM)");
    signal(SIGINT, [](int) { die("interrupted"); });
    std::string tag = std::to_string(getpid());
    g_client_ns = "wbgc" + tag;
    g_native_ns = "wbgn" + tag;
    g_tap = "wbgt" + tag;
    g_veth_c = "wbgvc" + tag;
    g_veth_n = "wbgvn" + tag;
    char dir_template[] = "/tmp/wisp-bench-guest-XXXXXX";
    std::string dir = mkdtemp(dir_template);

    // 1. namespaces: the client's holds the guest's tap and one end of a veth
    //    whose other end is in the native server's namespace.
    capture("ip netns add " + g_client_ns);
    capture("ip netns add " + g_native_ns);
    capture("ip -n " + g_client_ns + " link set lo up");
    capture("ip -n " + g_native_ns + " link set lo up");
    capture("ip -n " + g_client_ns + " tuntap add dev " + g_tap + " mode tap");
    capture("ip -n " + g_client_ns + " addr add " + kTapIp + "/24 dev " + g_tap);
    capture("ip -n " + g_client_ns + " link set " + g_tap + " up");
    capture("ip -n " + g_client_ns + " link add " + g_veth_c + " type veth peer name " + g_veth_n +
            " netns " + g_native_ns);
    capture("ip -n " + g_client_ns + " addr add " + kVethClientIp + "/24 dev " + g_veth_c);
    capture("ip -n " + g_native_ns + " addr add " + kNativeIp + "/24 dev " + g_veth_n);
    capture("ip -n " + g_client_ns + " link set " + g_veth_c + " up");
    capture("ip -n " + g_native_ns + " link set " + g_veth_n + " up");

    // 2. the two servers
    std::string vmm_log = dir + "/vmm.log", native_log = dir + "/native.log";
    pid_t monitor = spawn({"ip", "netns", "exec", g_client_ns, kBuild + "/bin/wisp-vmm", "run", "--image",
                           kBuild + "/images/hello.elf", "--tap", g_tap, "--mem",
                           std::to_string(kGuestMemMiB) + "M", "--ip", kGuestIp, "--prefix", "24",
                           "--gateway-ip", kTapIp},
                          vmm_log);
    wait_for_text(vmm_log, "guest is ready", 60);
    pid_t native = spawn({"ip", "netns", "exec", g_native_ns, kBuild + "/bin/native_hello", kNativeIp, "80"},
                         native_log);
    wait_for_text(native_log, "listening", 30);
    std::string guest_url = std::string("http://") + kGuestIp + "/";
    std::string native_url = std::string("http://") + kNativeIp + "/";
    capture("ip netns exec " + g_client_ns + " curl -sS --max-time 10 " + guest_url);
    capture("ip netns exec " + g_client_ns + " curl -sS --max-time 10 " + native_url);
    uint64_t guest_kib_ready = guest_touched_kib(monitor);
    uint64_t native_kib_ready = rss_kib(native);

    // 3. load, alternating guest and native each round; medians are reported
    run_wrk(guest_url, 2, 64, 1);
    run_wrk(native_url, 2, 64, 1);
    struct Series {
        std::vector<double> rps, p50, p99;
        std::string errors;
        void add(const WrkResult &r) {
            rps.push_back(r.rps);
            p50.push_back(r.p50_ms);
            p99.push_back(r.p99_ms);
            errors += r.errors;
        }
    } guest64, native64, guest1, native1;
    for (int round = 0; round < rounds; round++) {
        guest64.add(run_wrk(guest_url, 2, 64, seconds));
        native64.add(run_wrk(native_url, 2, 64, seconds));
        guest1.add(run_wrk(guest_url, 1, 1, seconds));
        native1.add(run_wrk(native_url, 1, 1, seconds));
    }
    uint64_t guest_kib_load = guest_touched_kib(monitor);
    uint64_t native_kib_load = rss_kib(native);
    std::string stats = capture("ip netns exec " + g_client_ns + " curl -sS --max-time 10 " + guest_url +
                                "_wisp/stats");
    std::smatch m;
    double polls = 0, requests = 0;
    if (std::regex_search(stats, m, std::regex("\"polls\":([0-9]+)"))) polls = std::stod(m[1]);
    if (std::regex_search(stats, m, std::regex("\"requests\":([0-9]+)"))) requests = std::stod(m[1]);

    // 4. report
    std::printf("\nwisp guest SDK benchmark: hello, wrk in a client namespace, %d round(s) of %d s "
                "(medians)\n",
                rounds, seconds);
    std::printf("guest: wisp-vmm on a tap (%llu MiB)   native: native_hello (same parser and bytes) "
                "behind a veth\n\n",
                static_cast<unsigned long long>(kGuestMemMiB));
    std::printf("%-28s %14s %14s %8s\n", "figure", "guest", "native", "ratio");
    auto row = [](const char *name, double g, double n, const char *fmt) {
        char gb[32], nb[32];
        std::snprintf(gb, sizeof gb, fmt, g);
        std::snprintf(nb, sizeof nb, fmt, n);
        std::printf("%-28s %14s %14s %8s\n", name, gb, nb, ratio(g, n).c_str());
    };
    row("64 conns: requests/s", median(guest64.rps), median(native64.rps), "%.0f");
    row("64 conns: p50 latency ms", median(guest64.p50), median(native64.p50), "%.3f");
    row("64 conns: p99 latency ms", median(guest64.p99), median(native64.p99), "%.3f");
    row("1 conn: requests/s", median(guest1.rps), median(native1.rps), "%.0f");
    row("1 conn: p50 latency ms", median(guest1.p50), median(native1.p50), "%.3f");
    row("1 conn: p99 latency ms", median(guest1.p99), median(native1.p99), "%.3f");
    row("memory after ready KiB", static_cast<double>(guest_kib_ready), static_cast<double>(native_kib_ready),
        "%.0f");
    row("memory after load KiB", static_cast<double>(guest_kib_load), static_cast<double>(native_kib_load),
        "%.0f");
    std::printf("  (guest: resident pages of its memory; native: process RSS incl. libc)\n");
    std::printf("guest VM exits (POLL) per request over the whole run: %.3f\n",
                requests > 0 ? polls / requests : 0.0);
    std::string errors = guest64.errors + native64.errors + guest1.errors + native1.errors;
    std::printf("wrk errors: %s\n\n", errors.empty() ? "none" : errors.c_str());

    ImageSize base = image_size(kBuild + "/images/toolchain_probe.elf");
    std::printf("%-28s %10s %14s %10s %8s\n", "image", "file KiB", "code+data KiB", "bss KiB", "vs rt");
    for (const char *name : {"toolchain_probe", "hello", "slowstart", "kv"}) {
        ImageSize s = image_size(kBuild + "/images/" + name + ".elf");
        std::printf("%-28s %10.1f %14.1f %10.1f %8s\n", name, s.file / 1024.0, s.code / 1024.0,
                    s.bss / 1024.0, ratio(static_cast<double>(s.code), static_cast<double>(base.code)).c_str());
    }
    std::printf("  (toolchain_probe = the runtime alone, baseline of the last column (code+data);\n"
                "   file sizes include debug info)\n");
    cleanup();
    return 0;
}
