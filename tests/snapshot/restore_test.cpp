// Snapshots on the real KVM, driven the way wispd drives monitors: pre-forked,
// sandboxed `wisp-vmm serve` children get snapshot/restore commands with fds. The
// guest is tests/snapshot/guests/snaptest.c.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "snap_fixture.h"
#include "wisp/snapshot/store.h"
#include "wisp/snapshot/vmstate.h"
#include "wisp/test/capabilities.h"
#include "wisp/test/paths.h"
#include "wisp/vmm/clock.h"

using namespace wisp;
using namespace wisp::test;
using wisp::vmm::control::restore_from;
using wisp::vmm::control::RestoreSpec;
using wisp::vmm::control::snapshot_to;

namespace {

constexpr uint64_t kMem = 32ull << 20;

// A monitor with a guest held at ready and a tap; the console goes to `console`.
struct HeldGuest {
    ScopedTap tap{"sg"};
    ConsoleFile console;
    MonitorProcess monitor;
    HeldGuest(const std::string &cmdline, uint64_t mem = kMem) {
        silence_tap(tap);
        boot_held_at_ready(monitor, "snaptest", cmdline, mem, tap.fd(), console.fd());
    }
    void stop() {
        (void)monitor.client().send(WISP_CTL_STOP);
        (void)monitor.client().wait_for(WISP_CTL_EV_EXITED, kSnapTimeoutMs);
    }
};

struct SilencedTap {
    ScopedTap tap{"sr"};
    SilencedTap() { silence_tap(tap); }
};

// A fresh monitor that restored `dir` (and `base` for a diff) on a tap of its own.
struct RestoredGuest : SilencedTap, RestoredMonitor {
    explicit RestoredGuest(const std::string &dir, const std::string &base = "")
        : RestoredMonitor(tap.fd(), dir, base) {}
};

uint64_t number_after(const std::string &text, const std::string &key) {
    auto at = text.find(key);
    if (at == std::string::npos) return UINT64_MAX;
    return std::stoull(text.substr(at + key.size()));
}

snapshot::VmState read_state(const std::string &dir) {
    auto files = snapshot::open_snapshot(dir);
    EXPECT_TRUE(files.ok());
    auto s = snapshot::read_vmstate(files->vmstate.get());
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? *s : snapshot::VmState{};
}

void write_bytes(const std::string &path, const std::vector<uint8_t> &bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char *>(bytes.data()), static_cast<long>(bytes.size()));
}

std::vector<uint8_t> read_bytes(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// Copies snapshot `from` to `to` (memory sparse, via cp).
void copy_snapshot(const std::string &from, const std::string &to) {
    ASSERT_EQ(run({"cp", "-r", "--sparse=always", from, to}).exit_code, 0);
}

uint64_t status_kib(pid_t pid, const std::string &key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1));
    return UINT64_MAX;
}

}  // namespace

TEST(Restore, AGoldenSnapshotResumesInAFreshMonitorWithRestoredSetAndItsMemoryIntact) {
    WISP_REQUIRE_KVM();
    ScopedTempDir dir("snap");
    const std::string golden = dir.path() + "/golden";
    wisp_ctl_snapshotted snap{};
    {
        HeldGuest g("golden kb=512");
        auto s = snapshot_to(g.monitor.client(), golden, 0, kSnapTimeoutMs);
        ASSERT_TRUE(s.ok()) << s.error().describe() << "\n" << g.monitor.log();
        snap = *s;
        g.stop();
        // The held guest never ran past ready in its own monitor.
        EXPECT_EQ(g.console.text().find("after-ready"), std::string::npos);
    }
    EXPECT_EQ(snap.kind, 1u);
    EXPECT_GE(snap.data_bytes, 512u * 1024) << "the guest's table must be in the snapshot";
    RestoredGuest r(golden);
    ASSERT_TRUE(r.restored.ok()) << r.restored.error().describe() << "\n" << r.monitor.log();
    EXPECT_EQ(r.restored->restore_count, 1u);
    EXPECT_EQ(r.restored->kind, 1u);
    EXPECT_EQ(std::memcmp(r.restored->id, snap.id, 16), 0);
    auto running = r.monitor.client().wait_for(WISP_CTL_EV_RUNNING, kSnapTimeoutMs);
    ASSERT_TRUE(running.ok()) << running.error().describe();
    EXPECT_GE(running->as<wisp_ctl_running>().first_hypercall_ns, r.restored->entry_ns);
    auto exited = r.wait_exit();
    EXPECT_EQ(exited.reason, uint32_t{WISP_EXIT_HALT}) << r.console.text() << r.monitor.log();
    EXPECT_EQ(exited.status, 0) << r.console.text();
    std::string out = r.console.text();
    EXPECT_NE(out.find("after-ready restored=1 count=1 "), std::string::npos) << out;
    // The same pattern (seeded from the boot's TSC) before and after the restore.
    std::string sums = out.substr(out.find("sum=") + 4);
    EXPECT_EQ(sums.substr(0, sums.find('/')), sums.substr(sums.find('/') + 1, sums.find(' ') - sums.find('/') - 1));
}

TEST(Restore, AGoldenSnapshotGivesUpOnAGuestThatNeverBecomesReady) {
    WISP_REQUIRE_KVM();
    ScopedTempDir dir("snap");
    ScopedTap tap("snr");
    silence_tap(tap);
    MonitorProcess m;
    ASSERT_TRUE(m.client().wait_for(WISP_CTL_EV_HELLO, kSnapTimeoutMs).ok());
    UniqueFd img(open(image_path("snaptest").c_str(), O_RDONLY | O_CLOEXEC));
    vmm::control::GoldenSpec spec;
    spec.boot = test_boot("never-ready", kMem);
    spec.tap_fd = tap.fd();
    spec.image_fd = img.get();
    spec.dir = dir.path() + "/golden";
    spec.ready_timeout_ms = 500;
    auto golden = vmm::control::golden_snapshot_to(m.client(), spec);
    ASSERT_FALSE(golden.ok());
    EXPECT_NE(golden.error().message.find("did not call ready within 500 ms"), std::string::npos)
        << golden.error().message;
    EXPECT_FALSE(std::filesystem::exists(spec.dir));
    // The monitor still obeys: the controller stops the never-ready guest.
    ASSERT_TRUE(m.client().send(WISP_CTL_STOP).ok());
    auto exited = m.client().wait_for(WISP_CTL_EV_EXITED, kSnapTimeoutMs);
    ASSERT_TRUE(exited.ok());
    EXPECT_EQ(exited->as<wisp_ctl_exited>().reason, uint32_t{WISP_EXIT_STOPPED});
}

TEST(Restore, TheGuestSeesTrueWallTimeAndAMonotonicClockThatNeverWentBack) {
    WISP_REQUIRE_KVM();
    ScopedTempDir dir("snap");
    const std::string golden = dir.path() + "/golden";
    const uint64_t t_boot = vmm::host_monotonic_ns();
    {
        HeldGuest g("golden kb=16");
        ASSERT_TRUE(snapshot_to(g.monitor.client(), golden, 0, kSnapTimeoutMs).ok());
        g.stop();
    }
    const uint64_t t_saved = vmm::host_monotonic_ns();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // time spent stored
    const uint64_t t_restore = vmm::host_monotonic_ns();
    uint64_t wall_before = vmm::host_realtime_ns();
    RestoredGuest r(golden);
    ASSERT_TRUE(r.restored.ok()) << r.restored.error().describe();
    r.wait_exit();
    uint64_t wall_after = vmm::host_realtime_ns();
    const uint64_t t_end = vmm::host_monotonic_ns();
    std::string out = r.console.text();
    auto at = out.find("mono=");
    ASSERT_NE(at, std::string::npos) << out;
    uint64_t mono0 = 0, mono1 = 0, hmono = 0;
    ASSERT_EQ(std::sscanf(out.c_str() + at, "mono=%lu/%lu/%lu", &mono0, &mono1, &hmono), 3) << out;
    uint64_t wall = number_after(out, "wall=");
    // Wall time is the host's, now.
    EXPECT_GE(wall, wall_before) << out;
    EXPECT_LE(wall, wall_after) << out;
    // Monotonic time continued from the snapshot: never backwards, by either way
    // of reading it, and the time stored (>= 1.5 s) did not count.
    EXPECT_GE(mono1, mono0) << out;
    EXPECT_GE(hmono, mono0) << out;
    const uint64_t not_stored = (t_end - t_boot) - (t_restore - t_saved);
    EXPECT_LE(mono1 - mono0, not_stored + 50000000ull) << "monotonic time jumped over the time stored: " << out;
}

TEST(Restore, RestoreSnapshotRestoreCyclesKeepWhatEveryIncarnationWrote) {
    WISP_REQUIRE_KVM();
    ScopedTempDir dir("snap");
    const std::string state = dir.path() + "/state";
    {
        HeldGuest g("history init_kb=256 kb=64");
        ASSERT_TRUE(g.monitor.client().send(WISP_CTL_RESUME).ok());
        ASSERT_TRUE(g.console.wait_for("history: 0 init=")) << g.console.text();
        ASSERT_TRUE(snapshot_to(g.monitor.client(), state, 0, kSnapTimeoutMs).ok());
        g.stop();
    }
    std::string expected = "history: 0";
    std::string init;
    for (int cycle = 1; cycle <= 3; cycle++) {
        RestoredGuest r(state);
        ASSERT_TRUE(r.restored.ok()) << "cycle " << cycle << ": " << r.restored.error().describe();
        EXPECT_EQ(r.restored->restore_count, uint32_t(cycle));
        expected += " " + std::to_string(cycle);
        ASSERT_TRUE(r.console.wait_for(expected + " init=")) << "cycle " << cycle << ": " << r.console.text();
        std::string text = r.console.text();
        std::string sum = field_after(text, "init=");
        if (init.empty()) init = sum;
        EXPECT_EQ(sum, init) << "the first incarnation's table changed";
        // Replace the snapshot this guest runs from; the running guest is unaffected.
        auto s = snapshot_to(r.monitor.client(), state, 0, kSnapTimeoutMs);
        ASSERT_TRUE(s.ok()) << s.error().describe();
        r.stop();
    }
    RestoredGuest last(state);
    ASSERT_TRUE(last.restored.ok());
    EXPECT_TRUE(last.console.wait_for("history: 0 1 2 3 4 init=" + init)) << last.console.text();
    last.stop();
}

TEST(Restore, ADiffHoldsOnlyChangedPagesAndRestoresOverItsParentAlsoTwice) {
    WISP_REQUIRE_KVM();
    ScopedTempDir dir("snap");
    const std::string golden = dir.path() + "/golden", diff1 = dir.path() + "/diff1",
                      diff2 = dir.path() + "/diff2";
    wisp_ctl_snapshotted full{};
    {
        // Held at ready: the history starts with the first restore.
        HeldGuest g("history init_kb=4096 kb=32");
        auto s = snapshot_to(g.monitor.client(), golden, 0, kSnapTimeoutMs);
        ASSERT_TRUE(s.ok()) << s.error().describe();
        full = *s;
        // A VM that was not restored has nothing to diff against.
        auto refused = snapshot_to(g.monitor.client(), dir.path() + "/nodiff", WISP_SNAPSHOT_DIFF, kSnapTimeoutMs);
        ASSERT_FALSE(refused.ok());
        EXPECT_NE(refused.error().message.find("restored from a full snapshot"), std::string::npos)
            << refused.error().message;
        EXPECT_FALSE(std::filesystem::exists(dir.path() + "/nodiff"));
        g.stop();
    }
    EXPECT_GE(full.data_bytes, 4096u * 1024);
    std::string init;
    wisp_ctl_snapshotted d1{};
    {
        RestoredGuest r(golden);
        ASSERT_TRUE(r.restored.ok()) << r.restored.error().describe();
        ASSERT_TRUE(r.console.wait_for("history: 1 init=")) << r.console.text();
        init = field_after(r.console.text(), "init=");
        auto s = snapshot_to(r.monitor.client(), diff1, WISP_SNAPSHOT_DIFF, kSnapTimeoutMs);
        ASSERT_TRUE(s.ok()) << s.error().describe() << r.monitor.log();
        d1 = *s;
        r.stop();
    }
    EXPECT_EQ(d1.kind, 2u);
    EXPECT_EQ(std::memcmp(d1.parent_id, full.id, 16), 0);
    EXPECT_GE(d1.data_bytes, 32u * 1024) << "the rewritten table is in the diff";
    EXPECT_LT(d1.data_bytes, full.data_bytes / 4) << "a diff holds only what changed";
    {
        // golden + diff1 -> another diff, still relative to golden
        RestoredGuest r(diff1, golden);
        ASSERT_TRUE(r.restored.ok()) << r.restored.error().describe();
        EXPECT_EQ(r.restored->kind, 2u);
        ASSERT_TRUE(r.console.wait_for("history: 1 2 init=" + init)) << r.console.text();
        auto s = snapshot_to(r.monitor.client(), diff2, WISP_SNAPSHOT_DIFF, kSnapTimeoutMs);
        ASSERT_TRUE(s.ok()) << s.error().describe();
        EXPECT_EQ(std::memcmp(s->parent_id, full.id, 16), 0);
        r.stop();
    }
    RestoredGuest r(diff2, golden);
    ASSERT_TRUE(r.restored.ok()) << r.restored.error().describe();
    EXPECT_TRUE(r.console.wait_for("history: 1 2 3 init=" + init)) << r.console.text();
    r.stop();
}

TEST(Restore, ADiffIsRefusedWithoutItsParentOrWithAnotherOne) {
    WISP_REQUIRE_KVM();
    ScopedTempDir dir("snap");
    const std::string golden = dir.path() + "/golden", other = dir.path() + "/other",
                      diff = dir.path() + "/diff";
    for (const std::string &d : {golden, other}) {
        HeldGuest g("history");
        ASSERT_TRUE(snapshot_to(g.monitor.client(), d, 0, kSnapTimeoutMs).ok());
        g.stop();
    }
    {
        RestoredGuest r(golden);
        ASSERT_TRUE(r.restored.ok());
        ASSERT_TRUE(r.console.wait_for("history: 1 init="));
        ASSERT_TRUE(snapshot_to(r.monitor.client(), diff, WISP_SNAPSHOT_DIFF, kSnapTimeoutMs).ok());
        r.stop();
    }
    RestoredGuest alone(diff);
    ASSERT_FALSE(alone.restored.ok());
    EXPECT_NE(alone.restored.error().message.find("needs its full parent"), std::string::npos)
        << alone.restored.error().message;
    RestoredGuest wrong(diff, other);
    ASSERT_FALSE(wrong.restored.ok());
    EXPECT_NE(wrong.restored.error().message.find("not the full snapshot this diff was taken from"),
              std::string::npos)
        << wrong.restored.error().message;
}

TEST(Restore, ZeroPagesAreHolesAndA1GiBGuestIsRestoredWithoutLoadingItsMemory) {
    WISP_REQUIRE_KVM();
    ScopedTempDir dir("snap");
    const std::string golden = dir.path() + "/golden";
    {
        HeldGuest g("history init_kb=1024", 1ull << 30);
        auto s = snapshot_to(g.monitor.client(), golden, 0, kSnapTimeoutMs);
        ASSERT_TRUE(s.ok()) << s.error().describe();
        EXPECT_LT(s->data_bytes, 8ull << 20);
        g.stop();
    }
    struct stat st{};
    ASSERT_EQ(stat((golden + "/memory").c_str(), &st), 0);
    EXPECT_EQ(uint64_t(st.st_size), 1ull << 30);
    EXPECT_LT(uint64_t(st.st_blocks) * 512, 8ull << 20) << "zero pages must be holes";
    RestoredGuest r(golden);
    ASSERT_TRUE(r.restored.ok()) << r.restored.error().describe();
    ASSERT_TRUE(r.console.wait_for("history: 1 init=")) << r.console.text();
    // Memory comes in as the guest touches it: a few MiB resident, not 1 GiB.
    uint64_t rss = status_kib(r.monitor.pid(), "VmRSS");
    EXPECT_LT(rss, 64u * 1024) << "KiB resident after restoring a 1 GiB guest";
    r.stop();
}

TEST(Restore, APreparedMonitorRestoresAndBootsItsOwnSizeAndStillAnyOther) {
    WISP_REQUIRE_KVM();
    ScopedTempDir dir("snap");
    const std::string golden = dir.path() + "/golden";
    {
        HeldGuest g("golden kb=64");
        ASSERT_TRUE(snapshot_to(g.monitor.client(), golden, 0, kSnapTimeoutMs).ok());
        g.stop();
    }
    // `serve --mem`: memory of that size is registered with KVM before any command.
    for (const char *prepared : {"32M", "64M"}) {
        ScopedTap tap("sp");
        silence_tap(tap);
        ConsoleFile console;
        MonitorProcess m({"--mem", prepared});
        ASSERT_TRUE(m.client().wait_for(WISP_CTL_EV_HELLO, kSnapTimeoutMs).ok()) << m.log();
        RestoreSpec spec;
        spec.dir = golden;  // a 32 MiB guest
        spec.tap_fd = tap.fd();
        spec.log_fd = console.fd();
        auto r = restore_from(m.client(), spec, kSnapTimeoutMs);
        ASSERT_TRUE(r.ok()) << prepared << ": " << r.error().describe() << m.log();
        auto exited = m.client().wait_for(WISP_CTL_EV_EXITED, kSnapTimeoutMs);
        ASSERT_TRUE(exited.ok());
        EXPECT_EQ(exited->as<wisp_ctl_exited>().status, 0) << prepared << ": " << console.text();
        EXPECT_NE(console.text().find("after-ready restored=1"), std::string::npos) << console.text();
    }
    MonitorProcess booted({"--mem", "32M"});
    ASSERT_TRUE(booted.client().wait_for(WISP_CTL_EV_HELLO, kSnapTimeoutMs).ok());
    ScopedTap tap("spb");
    silence_tap(tap);
    UniqueFd img(open(image_path("vmtest_hello").c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(booted.client().boot(test_boot("status=5", kMem), tap.fd(), img.get()).ok());
    auto exited = booted.client().wait_for(WISP_CTL_EV_EXITED, kSnapTimeoutMs);
    ASSERT_TRUE(exited.ok()) << booted.log();
    EXPECT_EQ(exited->as<wisp_ctl_exited>().status, 5);
}

TEST(Restore, DamagedSnapshotsAreRejectedWithClearErrorsAndTheMonitorStaysUsable) {
    WISP_REQUIRE_KVM();
    ScopedTempDir dir("snap");
    const std::string golden = dir.path() + "/golden";
    {
        HeldGuest g("golden kb=16");
        ASSERT_TRUE(snapshot_to(g.monitor.client(), golden, 0, kSnapTimeoutMs).ok());
        g.stop();
    }
    const std::vector<uint8_t> good = read_bytes(golden + "/vmstate");
    auto reseal = [](std::vector<uint8_t> bytes) {  // a valid checksum over edited bytes
        uint64_t sum = XXH3_64bits(bytes.data(), bytes.size() - 8);
        std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
        return bytes;
    };
    auto decoded = snapshot::decode_vmstate(good);
    ASSERT_TRUE(decoded.ok());
    struct Case {
        const char *what;
        std::vector<uint8_t> vmstate;
        uint64_t memory_size;  // 0: keep
        const char *message;
    };
    std::vector<Case> cases;
    cases.push_back({"truncated vmstate", std::vector<uint8_t>(good.begin(), good.begin() + 100), 0, "truncated"});
    auto flipped = good;
    flipped[good.size() / 2] ^= 0x40;
    cases.push_back({"a flipped byte", flipped, 0, "checksum mismatch"});
    auto version = good;
    version[8] = 2;  // format_version
    cases.push_back({"a newer format version", reseal(version), 0, "format version 2"});
    auto abi = good;
    abi[12] = 9;  // abi_version
    cases.push_back({"another guest ABI", reseal(abi), 0, "guest ABI version 9"});
    cases.push_back({"not a snapshot", std::vector<uint8_t>(4096, 'x'), 0, "bad magic"});
    cases.push_back({"a truncated memory file", good, kMem / 2, "memory file holds"});
    auto ring0 = *decoded;
    ring0.vcpu.sregs.cs.dpl = 0;
    cases.push_back({"a forged ring-0 vCPU", snapshot::encode_vmstate(ring0), 0, "code segment"});
    auto oversized = good;
    oversized.resize(snapshot::kMaxVmstateSize + 1);
    cases.push_back({"an oversized vmstate", oversized, 0, "exceeds"});

    ScopedTap tap("sbad");
    silence_tap(tap);
    MonitorProcess m;
    ASSERT_TRUE(m.client().wait_for(WISP_CTL_EV_HELLO, kSnapTimeoutMs).ok());
    int n = 0;
    for (const Case &c : cases) {
        std::string bad = dir.path() + "/bad" + std::to_string(n++);
        copy_snapshot(golden, bad);
        write_bytes(bad + "/vmstate", c.vmstate);
        if (c.memory_size) ASSERT_EQ(truncate((bad + "/memory").c_str(), off_t(c.memory_size)), 0);
        RestoreSpec spec;
        spec.dir = bad;
        spec.tap_fd = tap.fd();
        auto r = restore_from(m.client(), spec, kSnapTimeoutMs);
        ASSERT_FALSE(r.ok()) << c.what;
        EXPECT_NE(r.error().message.find(c.message), std::string::npos) << c.what << ": " << r.error().message;
    }
    // Still EMPTY and usable: the good snapshot restores and runs to its halt.
    ConsoleFile console;
    RestoreSpec spec;
    spec.dir = golden;
    spec.tap_fd = tap.fd();
    spec.log_fd = console.fd();
    auto r = restore_from(m.client(), spec, kSnapTimeoutMs);
    ASSERT_TRUE(r.ok()) << r.error().describe() << m.log();
    auto exited = m.client().wait_for(WISP_CTL_EV_EXITED, kSnapTimeoutMs);
    ASSERT_TRUE(exited.ok());
    EXPECT_EQ(exited->as<wisp_ctl_exited>().status, 0) << console.text();
}

TEST(Restore, ACrashBetweenWritingAndRenamingLeavesThePreviousSnapshotUsable) {
    WISP_REQUIRE_KVM();
    ScopedTempDir dir("snap");
    const std::string state = dir.path() + "/state";
    wisp_ctl_snapshotted first{};
    {
        HeldGuest g("history kb=64");
        auto s = snapshot_to(g.monitor.client(), state, 0, kSnapTimeoutMs);
        ASSERT_TRUE(s.ok());
        first = *s;
        g.stop();
    }
    {
        RestoredGuest r(state);
        ASSERT_TRUE(r.restored.ok());
        ASSERT_TRUE(r.console.wait_for("history: 1 init="));
        // A controller that dies after the monitor wrote the new snapshot, before
        // its commit: it gets as far as a controller can get without renaming.
        pid_t child = fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            auto pending = snapshot::PendingSnapshot::create(state);
            if (!pending) _exit(2);
            if (!r.monitor.client().snapshot(0, pending->vmstate_fd(), pending->memory_fd())) _exit(3);
            if (!r.monitor.client().wait_for(WISP_CTL_EV_SNAPSHOT, kSnapTimeoutMs)) _exit(4);
            kill(getpid(), SIGKILL);
            _exit(5);
        }
        int status = 0;
        ASSERT_EQ(waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
        r.stop();
    }
    // The old snapshot is still the one in place, whole, and restores.
    snapshot::VmState s = read_state(state);
    EXPECT_EQ(std::memcmp(s.info.id, first.id, 16), 0);
    RestoredGuest again(state);
    ASSERT_TRUE(again.restored.ok()) << again.restored.error().describe();
    EXPECT_TRUE(again.console.wait_for("history: 1 init=")) << again.console.text();
    again.stop();
    // The dead writer's temporary directory is found and removed.
    auto removed = snapshot::remove_abandoned(dir.path());
    ASSERT_TRUE(removed.ok());
    EXPECT_EQ(*removed, 1);
    int entries = 0;
    for (const auto &e : std::filesystem::directory_iterator(dir.path())) {
        (void)e;
        entries++;
    }
    EXPECT_EQ(entries, 1) << "only the snapshot itself is left";
}

TEST(Restore, AFullDiskFailsTheSnapshotCleanlyAndKeepsThePreviousOneAndTheGuest) {
    WISP_REQUIRE_KVM();
    WISP_REQUIRE_ROOT();
    ScopedTempDir dir("snap");
    const std::string small = dir.path() + "/small";
    ASSERT_EQ(mkdir(small.c_str(), 0700), 0);
    ASSERT_EQ(mount("tmpfs", small.c_str(), "tmpfs", 0, "size=1m"), 0) << std::strerror(errno);
    struct Unmount {
        std::string path;
        ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
    } unmount{small};
    const std::string state = small + "/state";
    wisp_ctl_snapshotted first{};
    {
        HeldGuest g("history kb=16");
        auto s = snapshot_to(g.monitor.client(), state, 0, kSnapTimeoutMs);
        ASSERT_TRUE(s.ok()) << s.error().describe();
        first = *s;
        g.stop();
    }
    HeldGuest big("history init_kb=2048");
    auto failed = snapshot_to(big.monitor.client(), state, 0, kSnapTimeoutMs);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code, ENOSPC) << failed.error().describe();
    // The previous snapshot is intact and alone in its directory.
    EXPECT_EQ(std::memcmp(read_state(state).info.id, first.id, 16), 0);
    int entries = 0;
    for (const auto &e : std::filesystem::directory_iterator(small)) {
        (void)e;
        entries++;
    }
    EXPECT_EQ(entries, 1);
    // The guest was not harmed: it still snapshots where there is room.
    auto ok = snapshot_to(big.monitor.client(), dir.path() + "/roomy", 0, kSnapTimeoutMs);
    EXPECT_TRUE(ok.ok()) << ok.error().describe();
    big.stop();
}
