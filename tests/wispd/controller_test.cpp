// The lifecycle controller driven through fakes of its ports and a manual clock,
// with a real SQLite store in a temporary directory. These are logic tests: the
// e2e label covers the real daemon.
#include "wispd/controller.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "fakes.h"
#include "wisp/test/net.h"

namespace {

using namespace wisp::wispd;
using namespace wisp::wispd::test;
using wisp::test::ScopedTempDir;
using Type = MonitorEvent::Type;

class ControllerTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto s = Store::open(dir.path() + "/wisp.db");
        ASSERT_TRUE(s.ok()) << s.error().describe();
        store = std::move(s).value();
        ctl = make_controller();
        ASSERT_TRUE(ctl->recover().ok());
    }
    void TearDown() override {
        EXPECT_EQ(metrics.counter("wisp_internal_errors_total", "").value(), 0u)
            << "the controller attempted an illegal state transition";
    }

    std::unique_ptr<Controller> make_controller() {
        ControllerConfig config;
        config.layout = {dir.path() + "/state", dir.path() + "/run"};
        config.backoff = {100, 1600, 3};
        config.restore_timeout_ms = 5000;
        config.golden_boot_timeout_ms = 20000;
        config.bookkeeping_delay_ms = 0;  // written on the next loop turn (run_due)
        return std::make_unique<Controller>(*store, fakes.ports(), metrics, config);
    }

    static ServiceSpec spec(const std::string &name, bool stateful = false, uint16_t port = 80) {
        ServiceSpec s;
        s.name = name;
        s.image = "/images/" + name + ".elf";
        s.port = port;
        s.vip = "198.18.0.1";
        s.cmdline = "hello";
        s.memory_mib = 32;
        s.stateful = stateful;
        s.idle_timeout_ms = 1000;
        return s;
    }

    ServiceState state(const std::string &name) { return ctl->service(name)->record.state; }

    void event(Type type, ReplicaId replica, const std::string &dir = "",
               SnapshotKind kind = SnapshotKind::kGolden) {
        MonitorEvent ev;
        ev.type = type;
        ev.replica = replica;
        ev.snapshot_dir = dir;
        ev.snapshot_kind = kind;
        ev.detail = type == Type::kExited ? "test says so" : "";
        ctl->on_monitor_event(ev);
        clock.run_due();  // what the loop does next: the deferred bookkeeping
    }

    // The monitor writes the requested snapshot (a directory on disk).
    void snapshot_written(ReplicaId replica, SnapshotKind kind) {
        auto &req = pool.snapshots.back();
        EXPECT_EQ(req.first, replica);
        std::filesystem::create_directories(req.second.dir);
        event(Type::kSnapshotWritten, replica, req.second.dir, kind);
    }

    // create -> boot -> ready -> golden snapshot -> standby, boot monitor exited.
    ServiceId create_standby(const ServiceSpec &s) {
        auto created = ctl->create_service(s);
        EXPECT_TRUE(created.ok()) << created.error().describe();
        ReplicaId boot = pool.launches.back().replica;
        event(Type::kGuestReady, boot);
        snapshot_written(boot, SnapshotKind::kGolden);
        event(Type::kExited, boot);
        EXPECT_EQ(state(s.name), ServiceState::kStandby);
        return created->id;
    }

    void syn(ServiceId id, DpEvent::Type type = DpEvent::Type::kWake, uint8_t tag = 0) {
        DpEvent ev;
        ev.type = type;
        ev.service = id;
        ev.timestamp_ns = clock.now_ns();
        ev.packet = {0x45, 0xad, tag};
        ctl->on_dataplane_event(ev);
    }

    // Standby -> one SYN -> restore launched -> running.
    ReplicaId wake_to_running(ServiceId id) {
        size_t before = pool.launches.size();
        syn(id);
        EXPECT_EQ(pool.launches.size(), before + 1);
        ReplicaId r = pool.launches.back().replica;
        clock.advance_ms(2);
        event(Type::kRunning, r);
        return r;
    }

    ScopedTempDir dir{"ctl"};
    std::unique_ptr<Store> store;
    FakePorts fakes;
    ManualScheduler &clock = fakes.clock;
    FakeDataPlane &dp = fakes.dp;
    FakeMonitorPool &pool = fakes.pool;
    FakeTaps &taps = fakes.taps;
    FakeInjector &injector = fakes.injector;
    MetricsRegistry &metrics = fakes.metrics;
    std::unique_ptr<Controller> ctl;
};

TEST_F(ControllerTest, CreateBootsTheImageForItsGoldenSnapshot) {
    auto created = ctl->create_service(spec("hello"));
    ASSERT_TRUE(created.ok()) << created.error().describe();
    ASSERT_EQ(pool.launches.size(), 1u);
    auto &l = pool.launches[0];
    EXPECT_EQ(l.mode, LaunchRequest::Mode::kBoot);
    EXPECT_EQ(l.image, "/images/hello.elf");
    EXPECT_EQ(l.memory_mib, 32u);
    EXPECT_EQ(l.cmdline, "hello");
    EXPECT_EQ(l.vip, "198.18.0.1");
    EXPECT_EQ(l.mac, MacAddress::for_replica(l.replica));
    EXPECT_EQ(l.console_log.rfind(dir.path() + "/state/logs/hello/", 0), 0u) << l.console_log;
    EXPECT_EQ(state("hello"), ServiceState::kBooting);
    // Not in the data plane until there is a snapshot to wake from.
    EXPECT_TRUE(dp.services.empty());
    auto rows = store->list_replicas();
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ(rows->front().state, ReplicaState::kBooting);
    EXPECT_EQ(rows->front().monitor_pid, static_cast<pid_t>(1000 + l.replica));
}

TEST_F(ControllerTest, GuestReadyLeadsToAGoldenSnapshotAndStandbyAtZero) {
    auto created = ctl->create_service(spec("hello"));
    ReplicaId boot = pool.launches.back().replica;
    event(Type::kGuestReady, boot);
    EXPECT_EQ(state("hello"), ServiceState::kSnapshotting);
    ASSERT_EQ(pool.snapshots.size(), 1u);
    EXPECT_EQ(pool.snapshots[0].second.kind, SnapshotKind::kGolden);
    EXPECT_EQ(pool.snapshots[0].second.dir.rfind(dir.path() + "/state/snapshots/hello/golden-", 0),
              0u);

    snapshot_written(boot, SnapshotKind::kGolden);
    EXPECT_EQ(state("hello"), ServiceState::kStandby);
    EXPECT_EQ(pool.stops, std::vector<ReplicaId>{boot});
    ASSERT_EQ(dp.services.count(created->id), 1u);
    EXPECT_EQ(dp.state_of(created->id), DpServiceState::kZero);
    EXPECT_EQ(dp.services[created->id].port, 80);
    auto snaps = store->list_snapshots(created->id);
    ASSERT_EQ(snaps->size(), 1u);
    EXPECT_EQ(snaps->front().kind, SnapshotKind::kGolden);

    event(Type::kExited, boot);
    EXPECT_TRUE(store->list_replicas()->empty());
    EXPECT_EQ(state("hello"), ServiceState::kStandby);
}

TEST_F(ControllerTest, FirstSynRestoresOneReplicaAndLaterSynsAreBufferedNotWoken) {
    ServiceId id = create_standby(spec("hello"));
    size_t launches = pool.launches.size();
    syn(id, DpEvent::Type::kWake, 1);
    ASSERT_EQ(pool.launches.size(), launches + 1);
    auto &l = pool.launches.back();
    EXPECT_EQ(l.mode, LaunchRequest::Mode::kRestore);
    ASSERT_EQ(l.snapshots.size(), 1u);
    EXPECT_NE(l.snapshots[0].find("/golden-"), std::string::npos);
    EXPECT_EQ(dp.attached.at(l.replica), 100 + taps.created);
    EXPECT_EQ(state("hello"), ServiceState::kWaking);
    EXPECT_EQ(dp.state_of(id), DpServiceState::kWaking);

    for (uint8_t i = 2; i <= 20; ++i) syn(id, DpEvent::Type::kBuffered, i);
    EXPECT_EQ(pool.launches.size(), launches + 1) << "one restore in flight per service";
    EXPECT_EQ(ctl->service("hello")->buffered_frames, 20u);
}

TEST_F(ControllerTest, RunningReplicaIsReadyInTheMapsBeforeBufferedSynsAreReplayedInOrder) {
    ServiceId id = create_standby(spec("hello"));
    syn(id, DpEvent::Type::kWake, 1);
    syn(id, DpEvent::Type::kBuffered, 2);
    syn(id, DpEvent::Type::kBuffered, 3);
    ReplicaId r = pool.launches.back().replica;
    clock.advance_ms(3);
    event(Type::kRunning, r);

    EXPECT_EQ(state("hello"), ServiceState::kRunning);
    EXPECT_EQ(dp.state_of(id), DpServiceState::kReady);
    EXPECT_EQ(dp.ready_of(id), std::vector<ReplicaId>{r});
    ASSERT_EQ(injector.calls.size(), 1u);
    int tap_ifindex = store->list_replicas()->front().tap_ifindex;
    EXPECT_EQ(injector.calls[0].first.tap_ifindex, tap_ifindex);
    ASSERT_EQ(injector.calls[0].second.size(), 3u);
    for (uint8_t i = 0; i < 3; ++i) EXPECT_EQ(injector.calls[0].second[i][2], i + 1);
    auto view = ctl->service("hello");
    EXPECT_EQ(view->buffered_frames, 0u);
    EXPECT_EQ(view->wakes, 1u);
    EXPECT_NEAR(view->last_wake_latency_ms, 3.0, 0.001);
    EXPECT_NE(metrics.render().find("wisp_wake_latency_seconds_count 1"), std::string::npos);
    EXPECT_EQ(store->list_replicas()->front().state, ReplicaState::kReady);
}

TEST_F(ControllerTest, NothingIsWrittenToTheStoreBetweenTheSynAndItsReplay) {
    // With the real delay: the rows come a few milliseconds after the replay.
    ctl.reset();
    ControllerConfig config;
    config.layout = {dir.path() + "/state", dir.path() + "/run"};
    config.bookkeeping_delay_ms = 5;
    ctl = std::make_unique<Controller>(*store, fakes.ports(), metrics, config);
    ASSERT_TRUE(ctl->recover().ok());
    ServiceId id = create_standby(spec("hello"));
    auto events_before = store->recent_events(1000)->size();
    auto state_before = store->find_service("hello")->value().updated_ms;
    syn(id);
    ReplicaId r = pool.launches.back().replica;
    // The restore is on its way: no replica row, no journal line, no state write.
    EXPECT_TRUE(store->list_replicas()->empty());
    EXPECT_EQ(store->recent_events(1000)->size(), events_before);
    EXPECT_EQ(store->find_service("hello")->value().updated_ms, state_before);
    EXPECT_EQ(store->find_service("hello")->value().state, ServiceState::kStandby);

    clock.advance_ms(2);
    event(Type::kRunning, r);
    EXPECT_EQ(injector.calls.size(), 1u) << "replayed";
    EXPECT_TRUE(store->list_replicas()->empty()) << "the guest has the cores first";
    // Then the bookkeeping catches up.
    clock.advance_ms(5);
    auto rows = store->list_replicas();
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ(rows->front().id, r);
    EXPECT_EQ(rows->front().state, ReplicaState::kReady);
    EXPECT_EQ(rows->front().monitor_pid, static_cast<pid_t>(1000 + r));
    EXPECT_EQ(store->find_service("hello")->value().state, ServiceState::kRunning);
    EXPECT_GT(store->recent_events(1000)->size(), events_before);
}

TEST_F(ControllerTest, SynsStillInTheRingBufferAtTheReadyFlipAreReplayedWithTheOthers) {
    ServiceId id = create_standby(spec("hello"));
    syn(id, DpEvent::Type::kWake, 1);
    ReplicaId r = pool.launches.back().replica;
    // Captured before the flip, not yet read by the loop.
    DpEvent late;
    late.type = DpEvent::Type::kBuffered;
    late.service = id;
    late.timestamp_ns = clock.now_ns();
    late.packet = {0x45, 0xad, 2};
    dp.pending.push_back(late);
    event(Type::kRunning, r);
    ASSERT_EQ(injector.calls.size(), 1u) << "one replay, with both";
    ASSERT_EQ(injector.calls[0].second.size(), 2u);
    EXPECT_EQ(injector.calls[0].second[1][2], 2);
    EXPECT_TRUE(dp.pending.empty());
}

TEST_F(ControllerTest, ReplayIsAddressedFromTheTapToTheReplicasMac) {
    ServiceId id = create_standby(spec("hello"));
    ReplicaId r = wake_to_running(id);
    ASSERT_EQ(injector.calls.size(), 1u);
    const ReplayTarget &to = injector.calls[0].first;
    EXPECT_EQ(to.guest_mac, MacAddress::for_replica(r));
    EXPECT_EQ(to.tap_mac.bytes[0], 0x02) << "the fake tap's MAC";
    EXPECT_EQ(to.tap_mac, dp.replicas[id][0].tap_mac);
}

TEST_F(ControllerTest, SnapshotsToRestoreAreKeptOpenAndReleasedWhenDeleted) {
    ServiceId id = create_standby(spec("kv", true));
    std::string golden = store->list_snapshots(id)->front().path;
    EXPECT_EQ(pool.kept, std::vector<std::string>{golden});
    ReplicaId r = wake_to_running(id);
    clock.advance_ms(1001);
    snapshot_written(r, SnapshotKind::kDiff);
    std::string diff = pool.snapshots.back().second.dir;
    EXPECT_EQ(pool.kept.back(), diff);
    event(Type::kExited, r);
    r = wake_to_running(id);
    clock.advance_ms(1001);
    snapshot_written(r, SnapshotKind::kDiff);
    EXPECT_EQ(pool.released, std::vector<std::string>{diff}) << "the older diff is gone";
    ASSERT_TRUE(ctl->delete_service("kv").ok());
    EXPECT_NE(std::find(pool.released.begin(), pool.released.end(), golden), pool.released.end());
}

TEST_F(ControllerTest, ReplicaIdsAreReusedSmallestFirst) {
    ServiceId a = create_standby(spec("a", false, 80));
    ServiceId b = create_standby(spec("b", false, 81));
    ReplicaId ra = wake_to_running(a);
    ReplicaId rb = wake_to_running(b);
    EXPECT_NE(ra, rb);
    clock.advance_ms(1001);
    event(Type::kExited, ra);
    event(Type::kExited, rb);
    ReplicaId again = wake_to_running(b);
    EXPECT_EQ(again, std::min(ra, rb));
}

TEST_F(ControllerTest, SynThatRacesTheReadyFlipGoesStraightToTheReplica) {
    ServiceId id = create_standby(spec("hello"));
    ReplicaId r = wake_to_running(id);
    injector.calls.clear();
    syn(id, DpEvent::Type::kBuffered, 9);
    ASSERT_EQ(injector.calls.size(), 1u);
    EXPECT_EQ(injector.calls[0].first.tap_ifindex, dp.replicas[id][0].tap_ifindex);
    EXPECT_EQ(injector.calls[0].second[0][2], 9);
    EXPECT_EQ(dp.replicas[id][0].id, r);
}

TEST_F(ControllerTest, IdleReplicaIsTakenOutOfTheMapsAndStoppedThenStandby) {
    ServiceId id = create_standby(spec("hello"));
    ReplicaId r = wake_to_running(id);
    pool.stops.clear();
    clock.advance_ms(999);
    EXPECT_TRUE(pool.stops.empty());
    clock.advance_ms(2);
    EXPECT_EQ(pool.stops, std::vector<ReplicaId>{r});
    EXPECT_EQ(state("hello"), ServiceState::kDraining);
    EXPECT_EQ(dp.state_of(id), DpServiceState::kZero) << "next SYN must wake it again";
    EXPECT_TRUE(dp.ready_of(id).empty());
    event(Type::kExited, r);
    EXPECT_EQ(state("hello"), ServiceState::kStandby);
    EXPECT_TRUE(store->list_replicas()->empty());
    // And the next SYN wakes it again.
    ReplicaId again = wake_to_running(id);
    EXPECT_EQ(state("hello"), ServiceState::kRunning);
    EXPECT_EQ(dp.ready_of(id), std::vector<ReplicaId>{again});
}

TEST_F(ControllerTest, TrafficPostponesIdleUntilTheDataPlaneGoesQuiet) {
    ServiceId id = create_standby(spec("hello"));
    ReplicaId r = wake_to_running(id);
    pool.stops.clear();
    for (int i = 0; i < 5; ++i) {
        clock.advance_ms(600);
        dp.activity[r] = clock.now_ns();  // a packet just went through
    }
    EXPECT_TRUE(pool.stops.empty());
    EXPECT_EQ(state("hello"), ServiceState::kRunning);
    clock.advance_ms(999);
    EXPECT_TRUE(pool.stops.empty());
    clock.advance_ms(1);
    EXPECT_EQ(pool.stops, std::vector<ReplicaId>{r}) << "exactly one timeout after the last packet";
}

TEST_F(ControllerTest, NewIdleTimeoutAppliesToRunningReplicas) {
    ServiceId id = create_standby(spec("hello"));
    ReplicaId r = wake_to_running(id);
    pool.stops.clear();
    auto updated = ctl->update_settings("hello", {5000, 0, 1, 0});
    ASSERT_TRUE(updated.ok());
    EXPECT_EQ(store->find_service("hello")->value().spec.idle_timeout_ms, 5000u);
    clock.advance_ms(4000);
    EXPECT_TRUE(pool.stops.empty());
    clock.advance_ms(1500);
    EXPECT_EQ(pool.stops, std::vector<ReplicaId>{r});
}

TEST_F(ControllerTest, StatefulServiceSnapshotsBeforeStoppingAndWakesFromThatState) {
    ServiceId id = create_standby(spec("kv", true));
    std::string golden = store->list_snapshots(id)->front().path;
    ReplicaId r = wake_to_running(id);
    pool.stops.clear();
    clock.advance_ms(1001);
    ASSERT_EQ(pool.snapshots.size(), 2u);
    auto &req = pool.snapshots.back().second;
    EXPECT_EQ(req.kind, SnapshotKind::kDiff);
    EXPECT_EQ(req.base_dir, golden);
    EXPECT_TRUE(pool.stops.empty()) << "must not stop before the state is saved";
    EXPECT_EQ(store->list_replicas()->front().state, ReplicaState::kSnapshotting);

    snapshot_written(r, SnapshotKind::kDiff);
    EXPECT_EQ(pool.stops, std::vector<ReplicaId>{r});
    event(Type::kExited, r);
    EXPECT_EQ(state("kv"), ServiceState::kStandby);

    syn(id);
    auto &l = pool.launches.back();
    ASSERT_EQ(l.snapshots.size(), 2u);
    EXPECT_EQ(l.snapshots[0], golden);
    EXPECT_NE(l.snapshots[1].find("/diff-"), std::string::npos);
    auto snaps = store->list_snapshots(id);
    ASSERT_EQ(snaps->size(), 2u);
    EXPECT_EQ(snaps->back().parent, snaps->front().id);
}

TEST_F(ControllerTest, OnlyTheNewestStatefulSnapshotIsKept) {
    ServiceId id = create_standby(spec("kv", true));
    std::vector<std::string> diffs;
    for (int round = 0; round < 3; ++round) {
        ReplicaId r = wake_to_running(id);
        clock.advance_ms(1001);
        snapshot_written(r, SnapshotKind::kDiff);
        diffs.push_back(pool.snapshots.back().second.dir);
        event(Type::kExited, r);
    }
    auto snaps = store->list_snapshots(id);
    ASSERT_EQ(snaps->size(), 2u);
    EXPECT_EQ(snaps->back().path, diffs.back());
    EXPECT_FALSE(std::filesystem::exists(diffs[0]));
    EXPECT_TRUE(std::filesystem::exists(diffs[2]));
}

TEST_F(ControllerTest, WakeDuringAStatefulDrainWaitsForTheSnapshotThenRestoresIt) {
    ServiceId id = create_standby(spec("kv", true));
    ReplicaId r = wake_to_running(id);
    clock.advance_ms(1001);
    size_t launches = pool.launches.size();
    syn(id, DpEvent::Type::kWake, 7);
    EXPECT_EQ(pool.launches.size(), launches) << "restoring now would lose the state being saved";
    snapshot_written(r, SnapshotKind::kDiff);
    EXPECT_EQ(pool.launches.size(), launches);
    event(Type::kExited, r);
    ASSERT_EQ(pool.launches.size(), launches + 1);
    EXPECT_EQ(pool.launches.back().snapshots.size(), 2u);
    event(Type::kRunning, pool.launches.back().replica);
    ASSERT_FALSE(injector.calls.empty());
    EXPECT_EQ(injector.calls.back().second.at(0)[2], 7);
}

TEST_F(ControllerTest, FailedRestoreBacksOffExponentiallyAndShowsTheReason) {
    ServiceId id = create_standby(spec("hello"));
    pool.launch_failures_left = 3;
    syn(id);
    auto v = ctl->service("hello");
    EXPECT_EQ(v->record.state, ServiceState::kFailed);
    EXPECT_EQ(v->record.failure.reason, "restore: monitor: no monitor available: No space left on device");
    EXPECT_EQ(v->record.failure.consecutive_failures, 1u);
    EXPECT_EQ(v->record.failure.next_attempt_ms, clock.wall_ms() + 100);
    EXPECT_FALSE(v->record.failure.crash_loop);
    EXPECT_EQ(dp.state_of(id), DpServiceState::kWaking) << "keeps capturing SYNs while failed";
    // SYNs during the backoff are kept for the retry.
    syn(id, DpEvent::Type::kBuffered, 5);

    uint64_t t0 = clock.now_ns();
    clock.advance_ms(100);  // retry 1 fails -> 200 ms
    EXPECT_EQ(ctl->service("hello")->record.failure.consecutive_failures, 2u);
    clock.advance_ms(199);
    EXPECT_EQ(ctl->service("hello")->record.failure.consecutive_failures, 2u);
    clock.advance_ms(1);  // retry 2 fails -> 400 ms, crash loop
    auto v3 = ctl->service("hello");
    EXPECT_EQ(v3->record.failure.consecutive_failures, 3u);
    EXPECT_TRUE(v3->record.failure.crash_loop);
    EXPECT_EQ(clock.next_deadline_ns() - clock.now_ns(), 400'000'000u);
    EXPECT_EQ(clock.now_ns() - t0, 300'000'000u);
    auto persisted = store->find_service("hello")->value();
    EXPECT_TRUE(persisted.failure.crash_loop);
    EXPECT_EQ(persisted.state, ServiceState::kFailed);

    size_t launches = pool.launches.size();
    clock.advance_ms(400);  // retry 3 succeeds
    ASSERT_EQ(pool.launches.size(), launches + 1);
    event(Type::kRunning, pool.launches.back().replica);
    EXPECT_EQ(state("hello"), ServiceState::kRunning);
    ASSERT_EQ(injector.calls.size(), 1u);
    EXPECT_EQ(injector.calls[0].second.size(), 2u) << "buffered SYNs replayed after the backoff";
}

TEST_F(ControllerTest, BackoffIsCapped) {
    ServiceId id = create_standby(spec("hello"));
    pool.launch_failures_left = 100;
    syn(id);
    for (int i = 0; i < 10; ++i) clock.advance_to(clock.next_deadline_ns());
    EXPECT_EQ(ctl->service("hello")->record.failure.consecutive_failures, 11u);
    uint64_t delay = clock.next_deadline_ns() - clock.now_ns();
    EXPECT_EQ(delay, 1600'000'000u);
}

TEST_F(ControllerTest, RestoreThatNeverRunsTimesOutAndFails) {
    ServiceId id = create_standby(spec("hello"));
    syn(id);
    ReplicaId r = pool.launches.back().replica;
    clock.advance_ms(5000);
    auto v = ctl->service("hello");
    EXPECT_EQ(v->record.state, ServiceState::kFailed);
    EXPECT_EQ(v->record.failure.reason, "restore: restore timed out after 5000 ms");
    EXPECT_EQ(pool.stops.back(), r);
}

TEST_F(ControllerTest, BootThatNeverReportsReadyTimesOutAndIsRetriedFromScratch) {
    ASSERT_TRUE(ctl->create_service(spec("slow")).ok());
    ReplicaId first = pool.launches.back().replica;
    clock.advance_ms(20000);
    EXPECT_EQ(state("slow"), ServiceState::kFailed);
    EXPECT_EQ(pool.stops.back(), first);
    event(Type::kExited, first);
    clock.advance_ms(100);
    EXPECT_EQ(state("slow"), ServiceState::kBooting);
    EXPECT_EQ(pool.launches.back().mode, LaunchRequest::Mode::kBoot);
}

TEST_F(ControllerTest, MonitorCrashTakesTheReplicaOutOfTheMapsAtOnce) {
    ServiceId id = create_standby(spec("hello"));
    ReplicaId r = wake_to_running(id);
    clock.advance_ms(500);
    event(Type::kExited, r);
    EXPECT_TRUE(dp.ready_of(id).empty());
    EXPECT_EQ(state("hello"), ServiceState::kStandby);
    EXPECT_EQ(dp.state_of(id), DpServiceState::kZero);
    auto v = ctl->service("hello");
    EXPECT_EQ(v->record.failure.consecutive_failures, 1u);
    EXPECT_NE(v->record.failure.reason.find("crash: replica"), std::string::npos);
    // The next SYN is served by a new replica.
    ReplicaId next = wake_to_running(id);
    EXPECT_NE(next, 0u);
    EXPECT_EQ(dp.ready_of(id), std::vector<ReplicaId>{next});
}

TEST_F(ControllerTest, ReplicasThatKeepDyingRightAfterStartAreACrashLoop) {
    ServiceId id = create_standby(spec("crashy"));
    for (int i = 0; i < 3; ++i) {
        ReplicaId r = wake_to_running(id);
        clock.advance_ms(100);
        event(Type::kExited, r);
    }
    auto v = ctl->service("crashy");
    EXPECT_EQ(v->record.state, ServiceState::kFailed);
    EXPECT_TRUE(v->record.failure.crash_loop);
    EXPECT_EQ(v->record.failure.consecutive_failures, 3u);
    size_t launches = pool.launches.size();
    syn(id, DpEvent::Type::kBuffered);
    EXPECT_EQ(pool.launches.size(), launches) << "no restore during the backoff";
    clock.advance_ms(400);
    EXPECT_EQ(pool.launches.size(), launches + 1);
}

TEST_F(ControllerTest, AReplicaThatStaysUpClearsTheFailureCount) {
    ServiceId id = create_standby(spec("hello"));
    ReplicaId r = wake_to_running(id);
    clock.advance_ms(100);
    event(Type::kExited, r);
    EXPECT_EQ(ctl->service("hello")->record.failure.consecutive_failures, 1u);
    ReplicaId r2 = wake_to_running(id);
    for (int i = 0; i < 12; ++i) {
        clock.advance_ms(900);
        dp.activity[r2] = clock.now_ns();
    }
    EXPECT_EQ(ctl->service("hello")->record.failure.consecutive_failures, 0u);
    EXPECT_EQ(store->find_service("hello")->value().failure.consecutive_failures, 0u);
}

TEST_F(ControllerTest, DeleteStopsReplicasAndRemovesEveryTrace) {
    ServiceId id = create_standby(spec("hello"));
    ReplicaId r = wake_to_running(id);
    std::string snapdir = store->list_snapshots(id)->front().path;
    ASSERT_TRUE(std::filesystem::exists(snapdir));
    ASSERT_TRUE(ctl->delete_service("hello").ok());
    EXPECT_EQ(pool.stops.back(), r);
    EXPECT_EQ(dp.services.count(id), 0u);
    EXPECT_FALSE(store->find_service("hello")->has_value());
    EXPECT_TRUE(store->list_replicas()->empty());
    EXPECT_FALSE(std::filesystem::exists(snapdir));
    EXPECT_FALSE(ctl->service("hello"));
    // Late events of its monitor are ignored.
    event(Type::kExited, r);
    auto missing = ctl->delete_service("hello");
    EXPECT_EQ(missing.error().code, ENOENT);
}

TEST_F(ControllerTest, RaisingMinAtZeroWakesOneThenTheRestAndLoweringItDrains) {
    ServiceId id = create_standby(spec("hello"));
    size_t launches = pool.launches.size();
    ASSERT_TRUE(ctl->update_settings("hello", {1000, 2, 2, 0}).ok());
    ASSERT_EQ(pool.launches.size(), launches + 1);
    event(Type::kRunning, pool.launches.back().replica);
    ASSERT_EQ(pool.launches.size(), launches + 2);
    event(Type::kRunning, pool.launches.back().replica);
    EXPECT_EQ(dp.ready_of(id).size(), 2u);
    // min replicas stay even when idle.
    clock.advance_ms(5000);
    EXPECT_EQ(dp.ready_of(id).size(), 2u);
    ASSERT_TRUE(ctl->update_settings("hello", {1000, 0, 1, 0}).ok());
    EXPECT_EQ(dp.ready_of(id).size(), 1u);
    clock.advance_ms(1001);
    EXPECT_TRUE(dp.ready_of(id).empty());
    EXPECT_EQ(state("hello"), ServiceState::kDraining);
}

// ---- autoscaling -----------------------------------------------------------------

// A service that autoscales, running on one replica (its wake).
struct Autoscaled {
    ServiceId id;
    ReplicaId first;
};

class AutoscaleTest : public ControllerTest {
protected:
    Autoscaled running_autoscaled(const std::string &name, uint32_t min, uint32_t max,
                                  uint32_t target, uint16_t port = 80) {
        ServiceSpec s = spec(name, false, port);
        s.idle_timeout_ms = 60'000;
        s.max_replicas = max;
        s.target_per_replica = target;
        ServiceId id = create_standby(s);
        ReplicaId first = wake_to_running(id);
        if (min > 0) EXPECT_TRUE(ctl->update_settings(name, {60'000, min, max, target}).ok());
        return {id, first};
    }

    // `ms` of load: every 1 ms, each READY replica of `id` takes flows at
    // `per_replica_per_s` (as the data plane would spread them), and `busy` (if
    // any) sees its packets counted and its activity stamped.
    void load(ServiceId id, uint64_t ms, uint64_t per_replica_per_s) {
        for (uint64_t t = 0; t < ms; ++t) {
            for (ReplicaId r : dp.ready_of(id)) {
                auto &l = dp.loads[r];
                carry_[r] += per_replica_per_s;
                l.new_flows += carry_[r] / 1000;
                l.in_packets += 3 * (carry_[r] / 1000);
                carry_[r] %= 1000;
                if (per_replica_per_s) dp.activity[r] = clock.now_ns();
            }
            clock.advance_ms(1);
        }
    }

    std::vector<ReplicaId> restores_since(size_t before) const {
        std::vector<ReplicaId> out;
        for (size_t i = before; i < pool.launches.size(); ++i)
            if (pool.launches[i].mode == LaunchRequest::Mode::kRestore)
                out.push_back(pool.launches[i].replica);
        return out;
    }

    std::optional<DpReplicaState> in_maps(ServiceId id, ReplicaId r) const {
        auto it = dp.replicas.find(id);
        if (it == dp.replicas.end()) return std::nullopt;
        for (auto &rep : it->second)
            if (rep.id == r) return rep.state;
        return std::nullopt;
    }

    std::map<ReplicaId, uint64_t> carry_;
};

TEST_F(AutoscaleTest, AStepStartsEveryMissingReplicaAtOnceEachFromTheGoldenSnapshotOnItsOwnTap) {
    auto svc = running_autoscaled("hello", 1, 4, 100);
    std::string golden = store->list_snapshots(svc.id)->front().path;
    size_t before = pool.launches.size();
    int taps_before = taps.created;
    load(svc.id, 20, 0);
    EXPECT_EQ(pool.launches.size(), before) << "no load, no scale-out";
    // 5,000 new flows/s on one replica with a target of 100: far past 4 replicas.
    uint64_t step_ns = clock.now_ns();
    uint64_t decided_ns = 0;
    for (int ms = 0; ms < 100 && !decided_ns; ++ms) {
        load(svc.id, 1, 5000);
        if (pool.launches.size() > before) decided_ns = clock.now_ns();
    }
    ASSERT_NE(decided_ns, 0u) << "no scale-out within 100 ms of the step";
    EXPECT_LE(decided_ns - step_ns, 20'000'000u) << "a step is decided within a panic window and a tick";
    auto started = restores_since(before);
    ASSERT_EQ(started.size(), 3u) << "1 -> 4 in one decision, three restores in flight together";
    EXPECT_EQ(taps.created - taps_before, 3);
    for (size_t i = before; i < pool.launches.size(); ++i) {
        EXPECT_EQ(pool.launches[i].snapshots, std::vector<std::string>{golden});
        for (size_t j = i + 1; j < pool.launches.size(); ++j)
            EXPECT_NE(pool.launches[i].tap, pool.launches[j].tap);
    }
    auto view = ctl->service("hello");
    EXPECT_EQ(std::count_if(view->replicas.begin(), view->replicas.end(),
                            [](auto &r) { return r.state == ReplicaState::kRestoring; }),
              3);
    // While they restore, the loop does not ask for them again.
    load(svc.id, 50, 5000);
    EXPECT_EQ(restores_since(before).size(), 3u);
    for (ReplicaId r : started) event(Type::kRunning, r);
    EXPECT_EQ(dp.ready_of(svc.id).size(), 4u) << "all four READY in the data plane's selection";
    EXPECT_EQ(metrics.counters("wisp_scale_decisions_total", "")
                  .with({{"service", "hello"}, {"reason", "panic"}})
                  .value(),
              1u);
    EXPECT_EQ(ctl->service("hello")->last_decision.to, 4u);
}

TEST_F(AutoscaleTest, AFailedScaleOutRestoreLeavesTheServiceServingAndIsRetriedLater) {
    auto svc = running_autoscaled("hello", 1, 3, 100);
    pool.launch_failures_left = 1;
    size_t before = pool.launches.size();
    load(svc.id, 40, 5000);
    EXPECT_EQ(state("hello"), ServiceState::kRunning);
    EXPECT_EQ(dp.ready_of(svc.id).size(), 1u);
    EXPECT_EQ(ctl->service("hello")->record.failure.consecutive_failures, 0u)
        << "a scale-out that could not start is no failure of the service";
    load(svc.id, 200, 5000);
    EXPECT_EQ(restores_since(before).size(), 2u) << "retried after the hold, up to max";
}

TEST_F(AutoscaleTest, ADrainedReplicaStaysInTheMapsAsDrainingWhileItsFlowsAreActiveThenStops) {
    auto svc = running_autoscaled("hello", 2, 2, 0);
    auto second = restores_since(0).back();
    event(Type::kRunning, second);
    ASSERT_EQ(dp.ready_of(svc.id).size(), 2u);
    // Traffic on both, the first busier; then the pin drops to one.
    load(svc.id, 300, 200);
    dp.loads[svc.first].in_packets += 10'000;
    load(svc.id, 150, 200);
    pool.stops.clear();
    ASSERT_TRUE(ctl->update_settings("hello", {60'000, 1, 1, 0}).ok());
    EXPECT_EQ(dp.ready_of(svc.id), std::vector<ReplicaId>{svc.first}) << "the least busy goes";
    ASSERT_EQ(in_maps(svc.id, second), DpReplicaState::kDraining)
        << "still in the maps: its flows keep reaching it, new ones do not";
    // Its existing flows keep it busy for 3 s: it stays.
    for (int i = 0; i < 30; ++i) {
        dp.activity[second] = clock.now_ns();
        clock.advance_ms(100);
    }
    EXPECT_TRUE(pool.stops.empty());
    EXPECT_EQ(in_maps(svc.id, second), DpReplicaState::kDraining);
    EXPECT_EQ(ctl->service("hello")->replicas.size(), 2u);
    // Quiet (its last packet was 100 ms ago): stopped one drain-idle period (1 s)
    // after that packet.
    clock.advance_ms(800);
    EXPECT_TRUE(pool.stops.empty());
    clock.advance_ms(200);
    EXPECT_EQ(pool.stops, std::vector<ReplicaId>{second});
    EXPECT_FALSE(in_maps(svc.id, second)) << "out of the maps once it stops";
    event(Type::kExited, second);
    EXPECT_EQ(dp.ready_of(svc.id), std::vector<ReplicaId>{svc.first});
    EXPECT_EQ(state("hello"), ServiceState::kRunning);
}

TEST_F(AutoscaleTest, ADrainedReplicaThatNeverGoesQuietIsStoppedAfterTheMaximumDrainTime) {
    auto svc = running_autoscaled("hello", 2, 2, 0);
    event(Type::kRunning, restores_since(0).back());
    ASSERT_TRUE(ctl->update_settings("hello", {60'000, 1, 1, 0}).ok());
    ReplicaId drained = 0;
    for (auto &r : dp.replicas[svc.id])
        if (r.state == DpReplicaState::kDraining) drained = r.id;
    ASSERT_NE(drained, 0u);
    pool.stops.clear();
    // A packet every 500 ms for 299.5 s: never quiet for the drain-idle second.
    for (int i = 0; i < 599; ++i) {
        dp.activity[drained] = clock.now_ns();
        clock.advance_ms(500);
    }
    EXPECT_TRUE(pool.stops.empty());
    dp.activity[drained] = clock.now_ns();
    clock.advance_ms(500);
    EXPECT_EQ(pool.stops, std::vector<ReplicaId>{drained}) << "300 s after it was drained";
}

TEST_F(AutoscaleTest, ScaleInAfterTheLoadDrainsDownToMinAndNeverTheLastReplica) {
    auto svc = running_autoscaled("hello", 1, 4, 100);
    load(svc.id, 40, 5000);
    for (ReplicaId r : restores_since(0))
        if (r != svc.first) event(Type::kRunning, r);
    ASSERT_EQ(dp.ready_of(svc.id).size(), 4u);
    load(svc.id, 1000, 1000);
    pool.stops.clear();
    // The load stops: after the cooldown and a quiet stable window, back to min.
    load(svc.id, 4000, 0);
    EXPECT_EQ(dp.ready_of(svc.id).size(), 1u);
    EXPECT_EQ(pool.stops.size(), 3u) << "three drained, quiet, stopped";
    EXPECT_GE(metrics.counters("wisp_scale_decisions_total", "")
                  .with({{"service", "hello"}, {"reason", "scale_in"}})
                  .value(),
              1u);
}

TEST_F(AutoscaleTest, ScaleNPinsTheCountStartingTheMissingReplicasInParallel) {
    auto svc = running_autoscaled("hello", 0, 1, 0);
    EXPECT_TRUE(ctl->autoscaled_services().empty()) << "max 1: wakes and idle timeouts only";
    size_t before = pool.launches.size();
    // `wisp service scale hello 4` = min = max = 4 (parse_scale).
    ASSERT_TRUE(ctl->update_settings("hello", {60'000, 4, 4, 0}).ok());
    EXPECT_EQ(restores_since(before).size(), 3u) << "1 -> 4 at once";
    for (ReplicaId r : restores_since(before)) event(Type::kRunning, r);
    EXPECT_EQ(dp.ready_of(svc.id).size(), 4u);
    // A pin holds under any load and with none.
    load(svc.id, 200, 20'000);
    load(svc.id, 5000, 0);
    EXPECT_EQ(dp.ready_of(svc.id).size(), 4u);
    EXPECT_EQ(restores_since(before).size(), 3u);
    // Back to on-demand (`scale hello 0` = min 0, max 1): drained to one at once,
    // then the idle timeout takes it to zero.
    ASSERT_TRUE(ctl->update_settings("hello", {1000, 0, 1, 0}).ok());
    EXPECT_EQ(dp.ready_of(svc.id).size(), 1u);
    clock.advance_ms(1100);
    EXPECT_TRUE(dp.ready_of(svc.id).empty());
}

TEST_F(AutoscaleTest, OnlyAutoscaledServicesAreWatchedWithOneCounterReadPerTickForAll) {
    // Not autoscaled: target 0 with max 1, and a service at zero.
    auto plain = running_autoscaled("plain", 0, 1, 0, 81);
    ServiceSpec idle = spec("idle", false, 82);
    idle.max_replicas = 4;
    idle.target_per_replica = 100;
    create_standby(idle);
    int reads = dp.load_reads;
    clock.advance_ms(100);
    EXPECT_EQ(dp.load_reads, reads) << "no fast loop while no service autoscales";
    EXPECT_TRUE(ctl->autoscaled_services().empty());

    auto a = running_autoscaled("a", 1, 4, 1000, 83);
    auto b = running_autoscaled("b", 1, 4, 1000, 84);
    EXPECT_EQ(ctl->autoscaled_services(), (std::set<ServiceId>{a.id, b.id}));
    reads = dp.load_reads;
    clock.advance_ms(100);
    int ticks = dp.load_reads - reads;
    EXPECT_GE(ticks, 19) << "a tick every 5 ms";
    EXPECT_LE(ticks, 21) << "one batched read per tick for both services";
    EXPECT_TRUE(ctl->service("a")->autoscaled);
    EXPECT_FALSE(ctl->service("plain")->autoscaled);

    ASSERT_TRUE(ctl->delete_service("a").ok());
    EXPECT_EQ(ctl->autoscaled_services(), std::set<ServiceId>{b.id});
    // b back to on-demand and at zero: nothing left to watch, the loop stops.
    ASSERT_TRUE(ctl->update_settings("b", {100, 0, 1, 0}).ok());
    EXPECT_TRUE(ctl->autoscaled_services().empty());
    clock.advance_ms(200);
    reads = dp.load_reads;
    clock.advance_ms(100);
    EXPECT_EQ(dp.load_reads, reads);
    (void)plain;
}

TEST_F(AutoscaleTest, AStatefulServiceCannotHaveMoreThanOneReplica) {
    create_standby(spec("kv", true));
    auto r = ctl->update_settings("kv", {1000, 0, 2, 0});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message.rfind("max_replicas:", 0), 0u) << r.error().message;
}

TEST_F(ControllerTest, MinReplicasGreaterThanMaxIsRefused) {
    create_standby(spec("hello"));
    auto r = ctl->update_settings("hello", {1000, 3, 2, 0});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message.rfind("min_replicas:", 0), 0u);
}

TEST_F(ControllerTest, EventsForUnknownServicesOrReplicasAreIgnored) {
    syn(77);
    event(Type::kRunning, 99);
    EXPECT_EQ(metrics.counter("wisp_events_ignored_total", "").value(), 2u);
    EXPECT_TRUE(pool.launches.empty());
}

TEST_F(ControllerTest, TheJournalTellsTheStory) {
    ServiceId id = create_standby(spec("hello"));
    wake_to_running(id);
    auto events = store->recent_events(20, "hello");
    std::vector<std::string> kinds;
    for (auto it = events->rbegin(); it != events->rend(); ++it) kinds.push_back(it->kind);
    std::vector<std::string> want = {"created", "booting", "guest-ready", "standby",
                                     "stopped", "waking",  "ready"};
    EXPECT_EQ(kinds, want);
}

TEST_F(ControllerTest, RestartAdoptsLiveReplicasForgetsDeadOnesAndCleansTheMaps) {
    ServiceId hello = create_standby(spec("hello"));
    ServiceId other = create_standby(spec("other", false, 81));
    ReplicaId live = wake_to_running(hello);
    ReplicaId dead = wake_to_running(other);
    ASSERT_TRUE(ctl->create_service(spec("unborn", false, 82)).ok());  // booting at the "crash"
    ReplicaId booting = pool.launches.back().replica;

    // "kill -9": the controller is gone without cleaning anything up.
    ctl.reset();
    dp.stale.push_back(42);
    pool.alive = {live, booting};
    pool.stops.clear();
    ctl = make_controller();
    ASSERT_TRUE(ctl->recover().ok());

    EXPECT_EQ(pool.adopt_asked.size(), 3u);
    EXPECT_EQ(state("hello"), ServiceState::kRunning);
    EXPECT_EQ(dp.ready_of(hello), std::vector<ReplicaId>{live});
    EXPECT_EQ(state("other"), ServiceState::kStandby);
    EXPECT_TRUE(dp.ready_of(other).empty());
    EXPECT_EQ(dp.state_of(other), DpServiceState::kZero);
    EXPECT_EQ(dp.services.count(42), 0u) << "stale map entry removed";
    auto rows = store->list_replicas();
    std::vector<ReplicaId> ids;
    for (auto &r : *rows) ids.push_back(r.id);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), dead), 0);
    // The interrupted boot is stopped and started again.
    EXPECT_EQ(pool.stops, std::vector<ReplicaId>{booting});
    size_t launches = pool.launches.size();
    clock.run_due();
    EXPECT_EQ(pool.launches.size(), launches + 1);
    EXPECT_EQ(pool.launches.back().mode, LaunchRequest::Mode::kBoot);
    // The adopted replica still goes idle.
    clock.advance_ms(1001);
    EXPECT_EQ(pool.stops.back(), live);
}

TEST_F(ControllerTest, RestartKeepsACrashLoopsHistory) {
    ServiceId id = create_standby(spec("crashy"));
    pool.launch_failures_left = 100;
    syn(id);
    clock.advance_ms(100);
    clock.advance_ms(200);
    ASSERT_TRUE(ctl->service("crashy")->record.failure.crash_loop);
    ctl.reset();
    ctl = make_controller();
    ASSERT_TRUE(ctl->recover().ok());
    auto v = ctl->service("crashy");
    EXPECT_EQ(v->record.state, ServiceState::kFailed);
    EXPECT_TRUE(v->record.failure.crash_loop);
    EXPECT_EQ(v->record.failure.consecutive_failures, 3u);
}

TEST_F(ControllerTest, SnapshotsMissingOnDiskAreForgottenAtRestart) {
    ServiceId id = create_standby(spec("hello"));
    std::filesystem::remove_all(store->list_snapshots(id)->front().path);
    ctl.reset();
    ctl = make_controller();
    ASSERT_TRUE(ctl->recover().ok());
    EXPECT_EQ(state("hello"), ServiceState::kCreating);
    EXPECT_TRUE(store->list_snapshots(id)->empty());
    clock.run_due();
    EXPECT_EQ(state("hello"), ServiceState::kBooting);
}

}  // namespace
