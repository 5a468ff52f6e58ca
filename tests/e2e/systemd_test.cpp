// wispd under systemd's notify protocol, with a NOTIFY_SOCKET the test owns (there
// is no systemd PID 1 here), and the unit file checked by systemd-analyze.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "wisp/test/capabilities.h"
#include "wisp/test/net.h"
#include "wisp/test/paths.h"
#include "wisp/test/process.h"
#include "wisp/unique_fd.h"
#include "wisp/test/wispd.h"

namespace {

using namespace wisp::test;
using Clock = std::chrono::steady_clock;

// A datagram socket standing in for systemd's notify socket.
class NotifySocket {
public:
    explicit NotifySocket(const std::string &path) : path_(path) {
        fd_.reset(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        bound_ = bind(fd_.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0;
    }
    bool bound() const { return bound_; }
    // The next message, or "" after `timeout`.
    std::string next(std::chrono::milliseconds timeout) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return "";
        char buf[4096];
        ssize_t n = recv(fd_.get(), buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    }
    // Waits until a message containing `what` arrives; returns all seen meanwhile.
    bool wait_for(const std::string &what, std::chrono::seconds limit, std::string *seen) {
        auto deadline = Clock::now() + limit;
        while (Clock::now() < deadline) {
            std::string m = next(std::chrono::milliseconds(100));
            if (m.empty()) continue;
            *seen += m + "\n";
            if (m.find(what) != std::string::npos) return true;
        }
        return false;
    }

private:
    std::string path_;
    wisp::UniqueFd fd_;
    bool bound_ = false;
};

class WispdSystemd : public ::testing::Test {
protected:
    void SetUp() override { WISP_REQUIRE_WISPD(); }
};

TEST_F(WispdSystemd, NotifiesReadyOnceTheApiAnswersThenPingsTheWatchdog) {
    WispdSandbox box("notify");
    std::string path = box.tmp.path() + "/notify.sock";
    NotifySocket notify(path);
    ASSERT_TRUE(notify.bound());
    WispdProcess wispd(box.config({"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=400000"}));
    ASSERT_TRUE(wispd.launch());

    std::string seen;
    ASSERT_TRUE(notify.wait_for("READY=1", std::chrono::seconds(20), &seen))
        << "no READY=1; got:\n" << seen << "\nlog:\n" << wispd.log();
    // READY=1 comes after the API is listening: it must answer right away.
    auto status = wispd.cli({"status", "-o", "json"});
    EXPECT_EQ(status.exit_code, 0) << status.output;
    EXPECT_NE(seen.find("STATUS=serving the API on " + wispd.socket()), std::string::npos) << seen;

    // WATCHDOG_USEC=400ms: pings every 200 ms from the loop's timer.
    int pings = 0;
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (pings < 3 && Clock::now() < deadline)
        if (notify.next(std::chrono::milliseconds(500)).find("WATCHDOG=1") != std::string::npos)
            ++pings;
    EXPECT_GE(pings, 3) << wispd.log();

    kill(wispd.pid(), SIGTERM);
    std::string stopping;
    EXPECT_TRUE(notify.wait_for("STOPPING=1", std::chrono::seconds(10), &stopping)) << stopping;
    EXPECT_EQ(wispd.stop(SIGTERM, 10), 0);
}

TEST_F(WispdSystemd, NoWatchdogPingsWhenTheWatchdogIsOff) {
    WispdSandbox box("notify");
    std::string path = box.tmp.path() + "/notify.sock";
    NotifySocket notify(path);
    ASSERT_TRUE(notify.bound());
    WispdProcess wispd(box.config({"NOTIFY_SOCKET=" + path}));
    ASSERT_TRUE(wispd.launch());
    std::string seen;
    ASSERT_TRUE(notify.wait_for("READY=1", std::chrono::seconds(20), &seen)) << wispd.log();
    std::string after;
    notify.wait_for("WATCHDOG=1", std::chrono::seconds(1), &after);
    EXPECT_EQ(after.find("WATCHDOG=1"), std::string::npos) << after;
}

std::string read_file(const std::string &path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(WispdUnit, PassesSystemdAnalyzeVerify) {
    WISP_REQUIRE_ROOT();
    ScopedTempDir tmp("unit");
    // The unit names the installed binary; point it at this build's so that
    // verify can check it is executable.
    std::string unit = read_file(source_dir() + "/scripts/systemd/wispd.service");
    ASSERT_NE(unit.find("ExecStart=/usr/local/bin/wispd "), std::string::npos);
    unit = std::regex_replace(unit, std::regex("/usr/local/bin/wispd"), binary_path("wispd"));
    std::ofstream(tmp.path() + "/wispd.service") << unit;
    auto r = run({"systemd-analyze", "verify", tmp.path() + "/wispd.service"}, 60);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.find("wispd.service:"), std::string::npos) << "warnings:\n" << r.output;
}

TEST(WispdUnit, DeclaresNotifyWatchdogKillModeAndDirectories) {
    std::string unit = read_file(source_dir() + "/scripts/systemd/wispd.service");
    for (const char *line : {"Type=notify", "WatchdogSec=", "KillMode=process", "StateDirectory=wisp",
                             "RuntimeDirectory=wisp", "RuntimeDirectoryPreserve=yes",
                             "DeviceAllow=/dev/kvm rw", "DeviceAllow=/dev/net/tun rw",
                             "ReadWritePaths=/sys/fs/bpf", "ExecReload=/bin/kill -HUP $MAINPID"})
        EXPECT_NE(unit.find(std::string("\n") + line), std::string::npos) << line;
}

}  // namespace
