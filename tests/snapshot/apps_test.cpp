// The example apps through snapshots, answering real curl in a test namespace:
// slowstart's golden snapshot skips its initialisation, kv's data survives
// stateful and diff snapshots onto another tap and MAC, 50 replicas restored from
// one golden snapshot serve at once, and the wisp-vmm CLI does all of it for a human.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>

#include "snap_fixture.h"
#include "wisp/test/capabilities.h"
#include "wisp/test/paths.h"
#include "wisp/vmm/clock.h"

using namespace wisp;
using namespace wisp::test;
using wisp::vmm::control::restore_from;
using wisp::vmm::control::RestoreSpec;
using wisp::vmm::control::snapshot_to;

namespace {

#define REQUIRE_SNAPSHOT_ENVIRONMENT() \
    WISP_REQUIRE_KVM();                \
    WISP_REQUIRE_NETNS()

constexpr uint64_t kMem = 64ull << 20;

// Boots `image` held at ready (on a throw-away tap: no traffic before the golden
// point), writes the golden snapshot to `dir`, stops. Returns the guest's console.
std::string make_golden(const std::string &image, const std::string &cmdline, const std::string &dir) {
    ScopedTap tap("sgo");
    silence_tap(tap);
    ConsoleFile console;
    MonitorProcess m;
    EXPECT_TRUE(m.client().wait_for(WISP_CTL_EV_HELLO, kSnapTimeoutMs).ok());
    UniqueFd img(open(image_path(image).c_str(), O_RDONLY | O_CLOEXEC));
    vmm::control::GoldenSpec spec;
    spec.boot = test_boot(cmdline, kMem);
    spec.tap_fd = tap.fd();
    spec.image_fd = img.get();
    spec.log_fd = console.fd();
    spec.dir = dir;
    spec.ready_timeout_ms = 120000;
    auto golden = vmm::control::golden_snapshot_to(m.client(), spec);
    EXPECT_TRUE(golden.ok()) << golden.error().describe() << "\n" << m.log();
    if (golden.ok()) EXPECT_EQ(golden->ready.held, 1u);
    (void)m.client().send(WISP_CTL_STOP);
    (void)m.client().wait_for(WISP_CTL_EV_EXITED, kSnapTimeoutMs);
    return console.text();
}

// A monitor restored from `dir` (+ `base`) onto `port`, as the port's guest.
struct Replica : RestoredMonitor {
    Replica(const TestNet::Port &port, const std::string &dir, const std::string &base = "")
        : RestoredMonitor(port.fd.get(), dir, base, port.identity) {
        EXPECT_TRUE(restored.ok()) << restored.error().describe() << "\n" << monitor.log();
    }
};

std::string url(const TestNet::Port &p, const std::string &path) { return "http://" + p.guest_ip + path; }

void put(const TestNet &net, const TestNet::Port &p, const std::string &key, const std::string &value) {
    auto r = parse_curl(net.curl(url(p, "/kv/" + key), {"-X", "PUT", "--data-binary", value}));
    EXPECT_TRUE(r.status == 201 || r.status == 204) << key << ": " << r.status << " " << r.body;
}

std::string get(const TestNet &net, const TestNet::Port &p, const std::string &key) {
    auto r = parse_curl(net.curl(url(p, "/kv/" + key)));
    return r.status == 200 ? r.body : "<" + std::to_string(r.status) + ">";
}

// The MAC the namespace learned for the port's guest address (ARP).
std::string neighbour_mac(const TestNet &net, const TestNet::Port &p) {
    auto r = net.run_in({"ip", "neigh", "show", p.guest_ip, "dev", p.tap});
    auto at = r.output.find("lladdr ");
    return at == std::string::npos ? r.output : r.output.substr(at + 7, 17);
}

std::string mac_text(const std::array<uint8_t, 6> &m) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

}  // namespace

TEST(SnapshotApps, SlowstartsGoldenSnapshotAnswersWithTheSameChecksumWithoutRerunningItsInit) {
    REQUIRE_SNAPSHOT_ENVIRONMENT();
    ScopedTempDir dir("app");
    const std::string golden = dir.path() + "/slowstart";
    std::string boot_console = make_golden("slowstart", "init_ms=2000 table_kb=1024", golden);
    // "slowstart: init took 2000 ms (... rounds over 1024 KiB), checksum <hex>"
    std::string checksum = field_after(boot_console, "checksum ");
    ASSERT_EQ(checksum.size(), 16u) << boot_console;

    TestNet net;
    auto port = net.port(1);
    Replica r(port, golden);
    ASSERT_TRUE(r.restored.ok());
    auto response = parse_curl(net.curl(url(port, "/"), {"-D", "-"}));
    uint64_t answered_ns = vmm::host_monotonic_ns();
    ASSERT_EQ(response.status, 200) << response.body << r.console.text();
    // The table computed before the snapshot, not a new one: a fresh init would
    // have run a different number of rounds and give another checksum.
    EXPECT_NE(response.body.find("\"checksum\":\"" + checksum + "\""), std::string::npos) << response.body;
    EXPECT_NE(response.body.find("\"init_runs\":1,"), std::string::npos) << response.body;
    EXPECT_NE(response.body.find("\"restore_count\":1,"), std::string::npos) << response.body;
    EXPECT_NE(response.body.find("\"restored\":true"), std::string::npos) << response.body;
    // And no 2 s of init between the restore command and the answer.
    EXPECT_LT(answered_ns - r.command_ns, 2000000000ull);
    EXPECT_EQ(r.console.text().find("init took"), std::string::npos) << "the init ran again";
    EXPECT_NE(r.console.text().find("restored from a snapshot, init skipped"), std::string::npos);
    auto verify = parse_curl(net.curl(url(port, "/verify")));
    EXPECT_NE(verify.body.find("\"intact\":true"), std::string::npos) << verify.body;
    r.stop();
}

namespace {

// kv restored from its golden snapshot on port 1 gets values, is snapshotted
// (`flags`: full or diff) and stopped; restored on port 2 - another tap, MAC and
// address - it still has them and answers as port 2's guest.
void expect_kv_values_survive(uint32_t flags) {
    ScopedTempDir dir("app");
    const std::string golden = dir.path() + "/kv", state = dir.path() + "/kv-state";
    make_golden("kv", "", golden);
    TestNet net;
    auto first = net.port(1);
    auto second = net.port(2);
    const std::string blob(100000, 'z');
    {
        Replica r(first, golden);
        ASSERT_TRUE(r.restored.ok());
        put(net, first, "alpha", "one");
        put(net, first, "blob", blob);
        EXPECT_EQ(neighbour_mac(net, first), mac_text(first.identity.mac));
        auto s = r.snapshot(state, flags);
        ASSERT_TRUE(s.ok()) << s.error().describe();
        EXPECT_EQ(s->kind, flags & WISP_SNAPSHOT_DIFF ? 2u : 1u);
        EXPECT_GE(s->data_bytes, blob.size());
        r.stop();
    }
    Replica r(second, state, flags & WISP_SNAPSHOT_DIFF ? golden : "");
    ASSERT_TRUE(r.restored.ok());
    EXPECT_EQ(r.restored->restore_count, 2u);
    EXPECT_EQ(get(net, second, "alpha"), "one");
    EXPECT_EQ(get(net, second, "blob"), blob);
    EXPECT_EQ(get(net, second, "gamma"), "<404>");
    EXPECT_EQ(neighbour_mac(net, second), mac_text(second.identity.mac));
    r.stop();
}

}  // namespace

TEST(SnapshotApps, KvValuesSurviveAStatefulSnapshotRestoredOnAnotherTapAndMac) {
    REQUIRE_SNAPSHOT_ENVIRONMENT();
    expect_kv_values_survive(0);
}

TEST(SnapshotApps, KvValuesSurviveADiffSnapshotRestoredOverTheGoldenOne) {
    REQUIRE_SNAPSHOT_ENVIRONMENT();
    expect_kv_values_survive(WISP_SNAPSHOT_DIFF);
}

TEST(SnapshotApps, ThreeRestoreSnapshotRestoreCyclesKeepEveryValue) {
    REQUIRE_SNAPSHOT_ENVIRONMENT();
    ScopedTempDir dir("app");
    const std::string golden = dir.path() + "/kv", state = dir.path() + "/kv-state";
    make_golden("kv", "", golden);
    TestNet net;
    std::vector<TestNet::Port> ports;
    for (int i = 1; i <= 4; i++) ports.push_back(net.port(i));
    // The way wispd keeps a stateful service: each wake restores golden + the last
    // diff, each return to zero writes a new diff against golden.
    for (int cycle = 0; cycle < 3; cycle++) {
        auto r = cycle == 0 ? std::make_unique<Replica>(ports[0], golden)
                            : std::make_unique<Replica>(ports[cycle], state, golden);
        ASSERT_TRUE(r->restored.ok()) << "cycle " << cycle;
        for (int k = 0; k < cycle; k++)
            EXPECT_EQ(get(net, ports[cycle], "k" + std::to_string(k)), "v" + std::to_string(k)) << "cycle " << cycle;
        put(net, ports[cycle], "k" + std::to_string(cycle), "v" + std::to_string(cycle));
        auto s = r->snapshot(state, WISP_SNAPSHOT_DIFF);
        ASSERT_TRUE(s.ok()) << "cycle " << cycle << ": " << s.error().describe();
        r->stop();
    }
    Replica last(ports[3], state, golden);
    ASSERT_TRUE(last.restored.ok());
    EXPECT_EQ(last.restored->restore_count, 4u);
    for (int k = 0; k < 3; k++) EXPECT_EQ(get(net, ports[3], "k" + std::to_string(k)), "v" + std::to_string(k));
    last.stop();
}

TEST(SnapshotApps, FiftyReplicasRestoredFromOneGoldenSnapshotServeAtOnce) {
    REQUIRE_SNAPSHOT_ENVIRONMENT();
    constexpr int kReplicas = 50;
    ScopedTempDir dir("app");
    const std::string golden = dir.path() + "/hello";
    make_golden("hello", "", golden);
    TestNet net;
    std::vector<TestNet::Port> ports;
    std::vector<std::unique_ptr<Replica>> replicas;
    for (int i = 1; i <= kReplicas; i++) ports.push_back(net.port(i));
    for (int i = 0; i < kReplicas; i++) {
        replicas.push_back(std::make_unique<Replica>(ports[i], golden));
        ASSERT_TRUE(replicas.back()->restored.ok()) << "replica " << i;
    }
    // Every replica at once: one curl with 50 parallel transfers.
    std::vector<std::string> argv = {"curl", "-sS", "--parallel", "--parallel-max", std::to_string(kReplicas),
                                     "--max-time", "60", "-w", "%{http_code} %{url_effective}\n"};
    for (const auto &p : ports) {
        argv.push_back("-o");
        argv.push_back("/dev/null");
        argv.push_back(url(p, "/"));
    }
    auto r = net.run_in(argv, 90);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    for (const auto &p : ports)
        EXPECT_NE(r.output.find("200 " + url(p, "/")), std::string::npos) << p.guest_ip << "\n" << r.output;
    // And each answers its own content, concurrently with the others running.
    for (int i = 0; i < kReplicas; i += 7) {
        auto one = parse_curl(net.curl(url(ports[i], "/")));
        EXPECT_EQ(one.body, "hello from wisp\n") << i;
    }
    for (auto &rep : replicas) rep->stop();
}

TEST(SnapshotCli, GoldenRestoreSnapshotAndRestoreAgainFromAShell) {
    REQUIRE_SNAPSHOT_ENVIRONMENT();
    ScopedTempDir dir("cli");
    const std::string golden = dir.path() + "/kv", state = dir.path() + "/kv-state";
    const std::string vmm = binary_path("wisp-vmm");
    auto g = run({vmm, "golden", "--image", image_path("kv"), "--out", golden, "--ip", "198.18.1.2",
                  "--gateway-ip", "198.18.1.1"},
                 120);
    ASSERT_EQ(g.exit_code, 0) << g.output;
    EXPECT_NE(g.output.find("golden snapshot " + golden), std::string::npos) << g.output;
    auto inspect = run({vmm, "inspect", golden});
    EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
    EXPECT_NE(inspect.output.find("yes (golden)"), std::string::npos) << inspect.output;

    TestNet net;
    // `restore` attaches to the tap by name inside the namespace.
    auto first = net.port(1, false);
    auto second = net.port(2, false);
    const std::string sock = dir.path() + "/kv.sock";
    auto spawn = [&](const std::vector<std::string> &args, const std::string &log) {
        pid_t pid = fork();
        if (pid == 0) {
            int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            dup2(fd, 1);
            dup2(fd, 2);
            std::vector<std::string> full = {"ip", "netns", "exec", net.netns(), vmm};
            full.insert(full.end(), args.begin(), args.end());
            std::vector<char *> argv;
            for (auto &a : full) argv.push_back(a.data());
            argv.push_back(nullptr);
            execvp(argv[0], argv.data());
            _exit(127);
        }
        return pid;
    };
    pid_t a = spawn({"restore", "--snapshot", golden, "--tap", first.tap, "--mac", "02:00:00:00:01:01",
                     "--listen", sock},
                    dir.path() + "/a.log");
    // Ready once it answers.
    Http r;
    for (int i = 0; i < 100 && r.status != 201; i++) {
        r = parse_curl(net.curl(url(first, "/kv/cli"), {"-X", "PUT", "--data-binary", "from a shell"}, 2));
        if (r.status != 201) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(r.status, 201) << r.body;
    auto snap = run({vmm, "snapshot", "--socket", sock, "--out", state, "--stop"}, 60);
    EXPECT_EQ(snap.exit_code, 0) << snap.output;
    EXPECT_NE(snap.output.find("full snapshot " + state), std::string::npos) << snap.output;
    int status = 0;
    EXPECT_EQ(waitpid(a, &status, 0), a);
    pid_t b = spawn({"restore", "--snapshot", state, "--tap", second.tap, "--ip", "198.18.2.2", "--gateway-ip",
                     "198.18.2.1", "--mac", "02:00:00:00:02:02"},
                    dir.path() + "/b.log");
    std::string value;
    for (int i = 0; i < 100 && value != "from a shell"; i++) {
        value = get(net, second, "cli");
        if (value != "from a shell") std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(value, "from a shell");
    EXPECT_EQ(neighbour_mac(net, second), "02:00:00:00:02:02");
    kill(b, SIGTERM);
    waitpid(b, &status, 0);
}
