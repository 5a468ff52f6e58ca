// `wisp-vmm serve` driven over its control socket exactly as wispd drives it:
// a pre-forked, sandboxed monitor boots a guest, reports events, obeys pause,
// resume, stop and stats, survives malformed messages, and can be re-adopted by
// a new controller.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "vm_helpers.h"
#include "wisp/test/capabilities.h"
#include "wisp/test/paths.h"

using wisp::UniqueFd;
using wisp::test::MonitorProcess;
using wisp::test::test_boot;
using wisp::vmm::control::ControlClient;

namespace {

constexpr int kTimeoutMs = 20000;

UniqueFd open_image(const std::string &name) {
    return UniqueFd(open(wisp::test::image_path(name).c_str(), O_RDONLY | O_CLOEXEC));
}

// Boots `image` with `cmdline` on a fresh tap; returns the started event.
wisp_ctl_started boot(ControlClient &c, const std::string &image, const std::string &cmdline,
                      uint32_t flags = 0, int log_fd = -1) {
    wisp::test::ScopedTap tap("mon");
    wisp::test::silence_tap(tap);
    UniqueFd img = open_image(image);
    EXPECT_TRUE(img.valid());
    auto st = c.boot(test_boot(cmdline, 32ull << 20, flags | (log_fd >= 0 ? WISP_BOOT_LOG_FD : 0)),
                     tap.fd(), img.get(), log_fd);
    EXPECT_TRUE(st.ok()) << st.error().describe();
    auto ev = c.wait_for(WISP_CTL_EV_STARTED, kTimeoutMs);
    EXPECT_TRUE(ev.ok()) << ev.error().describe();
    return ev.ok() ? ev->as<wisp_ctl_started>() : wisp_ctl_started{};
}

wisp_ctl_exited wait_exited(ControlClient &c) {
    auto ev = c.wait_for(WISP_CTL_EV_EXITED, kTimeoutMs);
    EXPECT_TRUE(ev.ok()) << ev.error().describe();
    return ev.ok() ? ev->as<wisp_ctl_exited>() : wisp_ctl_exited{};
}

wisp_ctl_hello expect_hello(ControlClient &c, wisp_vm_state state) {
    auto ev = c.receive(kTimeoutMs);
    EXPECT_TRUE(ev.ok()) << ev.error().describe();
    if (!ev.ok()) return {};
    EXPECT_EQ(ev->type, uint32_t{WISP_CTL_EV_HELLO});
    auto hello = ev->as<wisp_ctl_hello>();
    EXPECT_EQ(hello.control_version, uint32_t{WISP_CONTROL_VERSION});
    EXPECT_EQ(hello.abi_version, uint32_t{WISP_ABI_VERSION});
    EXPECT_EQ(hello.state, uint32_t{state});
    return hello;
}

std::string proc_status(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

TEST(Monitor, StartsEmptyAndReportsStartedReadyAndExited) {
    WISP_REQUIRE_KVM();
    MonitorProcess m;
    auto hello = expect_hello(m.client(), WISP_VM_EMPTY);
    EXPECT_EQ(static_cast<pid_t>(hello.pid), m.pid());
    auto started = boot(m.client(), "vmtest_hello", "status=5");
    EXPECT_GE(started.entry_ns, started.command_ns);
    EXPECT_EQ(started.mem_size, 32ull << 20);
    auto ready = m.client().wait_for(WISP_CTL_EV_READY, kTimeoutMs);
    ASSERT_TRUE(ready.ok()) << ready.error().describe() << m.log();
    auto r = ready->as<wisp_ctl_ready>();
    EXPECT_GE(r.first_hypercall_ns, started.entry_ns);
    EXPECT_GE(r.ready_ns, r.first_hypercall_ns);
    EXPECT_EQ(r.held, 0u);
    auto exited = wait_exited(m.client());
    EXPECT_EQ(exited.reason, uint32_t{WISP_EXIT_HALT});
    EXPECT_EQ(exited.status, 5);
    int status = m.wait_exit(kTimeoutMs);
    ASSERT_TRUE(WIFEXITED(status)) << m.log();
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Monitor, ConsoleGoesToTheLogFdPassedWithBoot) {
    WISP_REQUIRE_KVM();
    MonitorProcess m;
    expect_hello(m.client(), WISP_VM_EMPTY);
    char path[] = "/tmp/wisp-vmm-console-XXXXXX";
    UniqueFd log(mkstemp(path));
    ASSERT_TRUE(log.valid());
    unlink(path);
    boot(m.client(), "vmtest_hello", "", 0, log.get());
    wait_exited(m.client());
    char buf[256] = {};
    ASSERT_GT(pread(log.get(), buf, sizeof buf - 1, 0), 0);
    EXPECT_STREQ(buf, "hello from a wisp guest\n");
}

TEST(Monitor, HostileGuestEndsWithItsReasonAndTheMonitorExitsCleanly) {
    WISP_REQUIRE_KVM();
    MonitorProcess m;
    expect_hello(m.client(), WISP_VM_EMPTY);
    boot(m.client(), "vmtest_hostile", "wrmsr");
    auto exited = wait_exited(m.client());
    EXPECT_EQ(exited.reason, uint32_t{WISP_EXIT_PRIVILEGED_INSTRUCTION});
    EXPECT_NE(std::string(exited.detail).find("wrmsr"), std::string::npos) << exited.detail;
    EXPECT_NE(exited.rip, 0u);
    int status = m.wait_exit(kTimeoutMs);
    ASSERT_TRUE(WIFEXITED(status)) << "the monitor must not crash:\n" << m.log();
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_NE(m.log().find("privileged instruction"), std::string::npos) << m.log();
}

TEST(Monitor, StopEndsAnInfiniteLoopGuest) {
    WISP_REQUIRE_KVM();
    MonitorProcess m;
    expect_hello(m.client(), WISP_VM_EMPTY);
    boot(m.client(), "vmtest_hostile", "spin");
    ASSERT_TRUE(m.client().wait_for(WISP_CTL_EV_READY, kTimeoutMs).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let it spin
    ASSERT_TRUE(m.client().send(WISP_CTL_STATS).ok());
    auto stats = m.client().wait_for(WISP_CTL_EV_STATS, kTimeoutMs);
    ASSERT_TRUE(stats.ok()) << "stats must be answered while the guest spins";
    EXPECT_EQ(stats->as<wisp_ctl_stats>().state, uint32_t{WISP_VM_RUNNING});
    ASSERT_TRUE(m.client().send(WISP_CTL_STOP).ok());
    auto exited = wait_exited(m.client());
    EXPECT_EQ(exited.reason, uint32_t{WISP_EXIT_STOPPED});
    int status = m.wait_exit(kTimeoutMs);
    ASSERT_TRUE(WIFEXITED(status)) << m.log();
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Monitor, PauseStopsTheGuestUntilResume) {
    WISP_REQUIRE_KVM();
    MonitorProcess m;
    auto &c = m.client();
    expect_hello(c, WISP_VM_EMPTY);
    boot(c, "vmtest_hostile", "spin");
    ASSERT_TRUE(c.wait_for(WISP_CTL_EV_READY, kTimeoutMs).ok());
    ASSERT_TRUE(c.send(WISP_CTL_PAUSE).ok());
    auto state = c.wait_for(WISP_CTL_EV_STATE, kTimeoutMs);
    ASSERT_TRUE(state.ok());
    EXPECT_EQ(state->as<wisp_ctl_state>().state, uint32_t{WISP_VM_PAUSED});
    // While paused the vCPU does not run: its exit count stays put.
    ASSERT_TRUE(c.send(WISP_CTL_STATS).ok());
    auto before = c.wait_for(WISP_CTL_EV_STATS, kTimeoutMs)->as<wisp_ctl_stats>();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSERT_TRUE(c.send(WISP_CTL_STATS).ok());
    auto after = c.wait_for(WISP_CTL_EV_STATS, kTimeoutMs)->as<wisp_ctl_stats>();
    EXPECT_EQ(before.exits, after.exits);
    EXPECT_EQ(after.state, uint32_t{WISP_VM_PAUSED});
    ASSERT_TRUE(c.send(WISP_CTL_RESUME).ok());
    state = c.wait_for(WISP_CTL_EV_STATE, kTimeoutMs);
    ASSERT_TRUE(state.ok());
    EXPECT_EQ(state->as<wisp_ctl_state>().state, uint32_t{WISP_VM_RUNNING});
    ASSERT_TRUE(c.send(WISP_CTL_STOP).ok());
    EXPECT_EQ(wait_exited(c).reason, uint32_t{WISP_EXIT_STOPPED});
}

TEST(Monitor, HoldAtReadyKeepsTheGuestPausedInsideReady) {
    WISP_REQUIRE_KVM();
    MonitorProcess m;
    auto &c = m.client();
    expect_hello(c, WISP_VM_EMPTY);
    boot(c, "vmtest_hello", "status=9", WISP_BOOT_HOLD_AT_READY);
    auto ready = c.wait_for(WISP_CTL_EV_READY, kTimeoutMs);
    ASSERT_TRUE(ready.ok());
    EXPECT_EQ(ready->as<wisp_ctl_ready>().held, 1u);
    ASSERT_TRUE(c.send(WISP_CTL_STATUS).ok());
    auto state = c.wait_for(WISP_CTL_EV_STATE, kTimeoutMs);
    ASSERT_TRUE(state.ok());
    EXPECT_EQ(state->as<wisp_ctl_state>().state, uint32_t{WISP_VM_PAUSED});
    ASSERT_TRUE(c.send(WISP_CTL_RESUME).ok());
    auto exited = wait_exited(c);
    EXPECT_EQ(exited.reason, uint32_t{WISP_EXIT_HALT});
    EXPECT_EQ(exited.status, 9);
}

TEST(Monitor, MalformedMessagesAreRejectedWithoutCrashing) {
    WISP_REQUIRE_KVM();
    MonitorProcess m;
    auto &c = m.client();
    expect_hello(c, WISP_VM_EMPTY);
    auto expect_error = [&](const std::vector<uint8_t> &packet, std::vector<int> fds,
                            const char *what) {
        auto st = wisp::vmm::control::send_packet(c.fd(), packet, fds);
        ASSERT_TRUE(st.ok()) << what << ": " << st.error().describe();
        auto ev = c.receive(kTimeoutMs);
        ASSERT_TRUE(ev.ok()) << what << ": " << ev.error().describe() << "\n" << m.log();
        EXPECT_EQ(ev->type, uint32_t{WISP_CTL_EV_ERROR}) << what;
    };
    using wisp::vmm::control::encode;
    expect_error({1, 0, 0}, {}, "truncated header");
    auto wrong_length = encode(WISP_CTL_STATS);
    wrong_length[4] = 12;  // claims 12 payload bytes, carries none
    expect_error(wrong_length, {}, "length field mismatch");
    expect_error(std::vector<uint8_t>(WISP_CTL_MSG_MAX + 500, 0xab), {}, "oversized packet");
    expect_error(encode(99), {}, "unknown type");
    expect_error(encode(WISP_CTL_EV_READY, wisp_ctl_ready{}), {}, "an event sent as a command");
    expect_error(encode(WISP_CTL_PAUSE, std::vector<uint8_t>{1, 2, 3}), {}, "pause with payload");
    expect_error(encode(WISP_CTL_BOOT, std::vector<uint8_t>(100, 0)), {}, "short boot payload");
    expect_error(encode(WISP_CTL_BOOT, test_boot("")), {}, "boot without fds");
    UniqueFd img = open_image("vmtest_hello");
    int fds[2] = {img.get(), img.get()};
    expect_error(encode(WISP_CTL_BOOT, test_boot("", 3ull << 20)), {fds[0], fds[1]},
                 "boot with too little memory");
    expect_error(encode(WISP_CTL_BOOT, test_boot("")), {fds[0], fds[1]}, "boot with a file as tap");
    expect_error(encode(WISP_CTL_PAUSE), {img.get()}, "pause with an fd");
    expect_error(encode(WISP_CTL_PAUSE), {}, "pause before boot");
    expect_error(encode(WISP_CTL_SNAPSHOT), {}, "snapshot without its payload");
    expect_error(encode(WISP_CTL_SNAPSHOT, wisp_ctl_snapshot{}), {fds[0], fds[1]}, "snapshot before boot");
    expect_error(encode(WISP_CTL_RESTORE, wisp_ctl_restore{}), {fds[0]}, "restore with one fd");
    expect_error(encode(WISP_CTL_RESTORE, wisp_ctl_restore{}), {fds[0], fds[1], fds[1]},
                 "restore with a file as tap");
    // Still healthy: it boots and runs a guest.
    boot(c, "vmtest_hello", "status=1");
    EXPECT_EQ(wait_exited(c).status, 1);
}

TEST(Monitor, ANewControllerReadoptsARunningMonitor) {
    WISP_REQUIRE_KVM();
    wisp::test::ScopedTempDir dir("ctl");
    std::string path = dir.path() + "/vm.sock";
    MonitorProcess m({"--listen", path});
    expect_hello(m.client(), WISP_VM_EMPTY);
    boot(m.client(), "vmtest_hello", "linger");
    ASSERT_TRUE(m.client().wait_for(WISP_CTL_EV_READY, kTimeoutMs).ok());
    // The controller dies: the guest keeps running.
    shutdown(m.client().fd(), SHUT_RDWR);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(m.wait_exit(0), -1) << "the monitor must outlive its controller\n" << m.log();
    auto again = ControlClient::connect(path);
    ASSERT_TRUE(again.ok()) << again.error().describe();
    expect_hello(*again, WISP_VM_RUNNING);
    ASSERT_TRUE(again->send(WISP_CTL_STOP).ok());
    EXPECT_EQ(wait_exited(*again).reason, uint32_t{WISP_EXIT_STOPPED});
    int status = m.wait_exit(kTimeoutMs);
    ASSERT_TRUE(WIFEXITED(status)) << m.log();
    EXPECT_NE(access(path.c_str(), F_OK), 0) << "the control socket is removed at exit";
}

TEST(Monitor, WithoutAControlSocketLosingTheControllerStopsTheVm) {
    WISP_REQUIRE_KVM();
    MonitorProcess m;
    expect_hello(m.client(), WISP_VM_EMPTY);
    boot(m.client(), "vmtest_hello", "linger");
    ASSERT_TRUE(m.client().wait_for(WISP_CTL_EV_READY, kTimeoutMs).ok());
    shutdown(m.client().fd(), SHUT_RDWR);
    int status = m.wait_exit(kTimeoutMs);
    ASSERT_TRUE(WIFEXITED(status)) << m.log();
    EXPECT_NE(m.log().find("the controller went away"), std::string::npos) << m.log();
}

TEST(Monitor, SigtermStopsTheVmCleanly) {
    WISP_REQUIRE_KVM();
    MonitorProcess m;
    expect_hello(m.client(), WISP_VM_EMPTY);
    boot(m.client(), "vmtest_hostile", "spin");
    ASSERT_TRUE(m.client().wait_for(WISP_CTL_EV_READY, kTimeoutMs).ok());
    kill(m.pid(), SIGTERM);
    auto exited = wait_exited(m.client());
    EXPECT_EQ(exited.reason, uint32_t{WISP_EXIT_STOPPED});
    EXPECT_NE(std::string(exited.detail).find("signal"), std::string::npos);
}

TEST(Monitor, RunsSandboxed) {
    WISP_REQUIRE_KVM();
    MonitorProcess m;
    expect_hello(m.client(), WISP_VM_EMPTY);
    std::string status = proc_status(m.pid());
    EXPECT_NE(status.find("NoNewPrivs:\t1"), std::string::npos) << status;
    EXPECT_NE(status.find("Seccomp:\t2"), std::string::npos) << status;
    EXPECT_NE(status.find("CapEff:\t0000000000000000"), std::string::npos) << status;
    EXPECT_NE(status.find("CapBnd:\t0000000000000000"), std::string::npos) << status;
    // Its root is an empty, deleted directory.
    char root[256] = {};
    ASSERT_GT(readlink(("/proc/" + std::to_string(m.pid()) + "/root").c_str(), root,
                       sizeof root - 1), 0);
    EXPECT_NE(std::string(root).find("(deleted)"), std::string::npos) << root;
    // ... and still does its job.
    boot(m.client(), "vmtest_hello", "status=2");
    EXPECT_EQ(wait_exited(m.client()).status, 2);
}
