// wispd's MonitorPool port over real `wisp-vmm serve` processes: pre-forking in the
// background, their own sessions, exits seen through pidfds, and re-adoption by a
// pool of a later wispd. (Boots and restores through the pool are covered end to
// end by tests/e2e/wake_e2e_test.cpp.)
#include "wispd/monitor_pool.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>

#include "wisp/test/capabilities.h"
#include "wisp/test/net.h"
#include "wisp/test/paths.h"
#include "wisp/test/process.h"
#include "wisp/test/wispd.h"

namespace {

using namespace wisp::wispd;
using namespace wisp::test;

struct Recorder final : MonitorEventSink {
    std::vector<MonitorEvent> events;
    void on_monitor_event(const MonitorEvent &e) override { events.push_back(e); }
};

class MonitorPoolTest : public ::testing::Test {
protected:
    void SetUp() override {
        WISP_REQUIRE_KVM();
        WISP_REQUIRE_ROOT();
        auto l = EventLoop::create({});
        ASSERT_TRUE(l.ok());
        loop_ = std::move(l).value();
        run({"mkdir", "-p", tmp_.path() + "/run/monitors"});
    }

    std::unique_ptr<VmmMonitorPool> make_pool(size_t size) {
        VmmMonitorPool::Config c;
        c.binary = binary_path("wisp-vmm");
        c.sockets_dir = tmp_.path() + "/run/monitors";
        c.size = size;
        c.log_level = "warn";
        return std::make_unique<VmmMonitorPool>(c, *loop_, worker_, events_);
    }

    // Runs the loop until `done` or 10 s.
    bool run_until(const std::function<bool()> &done) {
        uint64_t deadline = loop_->now_ns() + 10'000'000'000ull;
        std::function<void()> check = [&] {
            if (done() || loop_->now_ns() > deadline) loop_->stop();
            else loop_->schedule_after_ms(5, check);
        };
        loop_->schedule_after_ms(0, check);
        EXPECT_TRUE(loop_->run().ok());
        return done();
    }

    void run_for(uint64_t ms) {
        loop_->schedule_after_ms(ms, [&] { loop_->stop(); });
        EXPECT_TRUE(loop_->run().ok());
    }

    static pid_t session_of(pid_t pid) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
        std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        // pid (comm) state ppid pgrp session ...
        std::istringstream rest(stat.substr(stat.rfind(')') + 2));
        std::string state;
        pid_t ppid = 0, pgrp = 0, session = 0;
        rest >> state >> ppid >> pgrp >> session;
        return session;
    }

    ScopedTempDir tmp_{"mpool"};
    MonitorReaper reaper_{tmp_.path() + "/run"};
    std::unique_ptr<EventLoop> loop_;
    BackgroundWorker worker_;
    Recorder events_;
};

TEST_F(MonitorPoolTest, FillsToItsSizeInTheBackgroundWithMonitorsInTheirOwnSessions) {
    auto pool = make_pool(2);
    pool->fill();
    EXPECT_EQ(pool->idle_monitors(), 0u) << "forked on the worker, not here";
    ASSERT_TRUE(run_until([&] { return pool->idle_monitors() == 2; }));
    auto pids = monitors_of(tmp_.path() + "/run");
    ASSERT_EQ(pids.size(), 2u);
    for (pid_t pid : pids)
        EXPECT_EQ(session_of(pid), pid) << "a signal to wispd's session must not reach it";
}

TEST_F(MonitorPoolTest, AnIdleMonitorThatDiesIsReplaced) {
    auto pool = make_pool(1);
    pool->fill();
    ASSERT_TRUE(run_until([&] { return pool->idle_monitors() == 1; }));
    pid_t first = monitors_of(tmp_.path() + "/run").at(0);
    kill(first, SIGKILL);
    ASSERT_TRUE(run_until([&] {
        auto pids = monitors_of(tmp_.path() + "/run");
        return pool->idle_monitors() == 1 && pids.size() == 1 && pids[0] != first;
    }));
    EXPECT_TRUE(events_.events.empty()) << "no replica was involved";
}

TEST_F(MonitorPoolTest, ALaterPoolAdoptsTheIdleMonitorsOfAnEarlierOne) {
    auto pool = make_pool(2);
    pool->fill();
    ASSERT_TRUE(run_until([&] { return pool->idle_monitors() == 2; }));
    auto before = monitors_of(tmp_.path() + "/run");
    pool.reset();  // wispd gone (kill -9): the monitors stay

    auto later = make_pool(2);
    EXPECT_TRUE(later->adopt({}).empty()) << "no replica to re-adopt";
    EXPECT_EQ(later->idle_monitors(), 2u);
    later->fill();
    run_for(300);  // nothing to spawn: give it a moment to prove it
    auto after = monitors_of(tmp_.path() + "/run");
    std::sort(before.begin(), before.end());
    std::sort(after.begin(), after.end());
    EXPECT_EQ(after, before) << "taken over, none leaked and none added";
}

TEST_F(MonitorPoolTest, StopIdleEndsTheIdleMonitors) {
    auto pool = make_pool(2);
    pool->fill();
    ASSERT_TRUE(run_until([&] { return pool->idle_monitors() == 2; }));
    pool->stop_idle();
    EXPECT_EQ(pool->idle_monitors(), 0u);
    EXPECT_TRUE(run_until([&] { return monitors_of(tmp_.path() + "/run").empty(); }));
}

TEST_F(MonitorPoolTest, ReplicasUnknownToThePoolCannotBeStoppedOrSnapshotted) {
    auto pool = make_pool(0);
    EXPECT_EQ(pool->stop(42).error().code, ESRCH);
    EXPECT_EQ(pool->snapshot(42, {SnapshotKind::kGolden, tmp_.path() + "/s", ""}).error().code, ESRCH);
}

}  // namespace
