// Wake from zero and back, end to end: the real wispd with its real data plane
// (XDP on a veth uplink), real pre-forked wisp-vmm monitors restoring real
// snapshots of the example apps, and curl in a client namespace on the other end
// of the veth. Each test has its own state, runtime and bpffs directories, and
// removes everything (monitors included) when it ends.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "wisp/test/paths.h"
#include "wisp/test/process.h"
#include "wisp/test/wispd.h"

namespace {

using nlohmann::json;
using namespace wisp::test;

// A SYN retransmission would cost the client a full second: a wake must be far
// quicker. (Generous against a loaded CI machine; the benchmark measures.)
constexpr double kNoRetransmission = 0.5;
constexpr uint16_t kPort = 8080;

class WakeE2E : public ::testing::Test {
protected:
    void SetUp() override {
        WISP_REQUIRE_WISPD();
        tmp_ = std::make_unique<ScopedTempDir>("wake");
        reaper_.reset(new MonitorReaper{tmp_->path() + "/run"});
        bpffs_ = std::make_unique<ScopedBpffsDir>("wake");
        net_ = std::make_unique<ClientNetwork>("wk");
        start();
    }

    void TearDown() override {
        if (wispd_) {
            wispd_->stop(SIGTERM, 10);
            wispd_->kill_monitors();
        }
        if (HasFailure() && wispd_) std::cerr << "---- wispd log ----\n" << wispd_->log();
    }

    WispdProcess::Config config() const {
        return {tmp_->path(), net_->veth.host(), bpffs_->path() + "/wisp",
                {"--monitor-pool-size", "2"}, {}};
    }

    void start() {
        wispd_ = std::make_unique<WispdProcess>(config());
        ASSERT_TRUE(wispd_->start()) << wispd_->log();
    }

    WispdProcess::Cli cli(const std::vector<std::string> &args) { return wispd_->cli(args); }

    // Creates a service from an example app listening on kPort and waits until it
    // is at zero with its golden snapshot (and its boot instance gone).
    void create(const std::string &name, const std::string &app,
                std::vector<std::string> extra = {}, const std::string &cmdline = "") {
        std::vector<std::string> args = {"service", "create", name, "--image", image_path(app),
                                         "-p", std::to_string(kPort), "--cmdline",
                                         "port=" + std::to_string(kPort) +
                                             (cmdline.empty() ? "" : " " + cmdline)};
        args.insert(args.end(), extra.begin(), extra.end());
        auto r = cli(args);
        ASSERT_EQ(r.exit_code, 0) << r.output;
        // At zero: standby, and the boot instance's monitor gone too.
        ASSERT_TRUE(wait_until([&] { return state(name) == "standby" && replicas(name).empty(); }, 20))
            << name << " never reached zero: " << inspect(name).dump(2);
    }

    json inspect(const std::string &name) {
        auto r = cli({"service", "inspect", name, "-o", "json"});
        json j = json::parse(r.output, nullptr, false);
        return j.is_discarded() ? json::object() : j;
    }
    std::string state(const std::string &name) { return inspect(name).value("state", ""); }
    json replicas(const std::string &name) { return inspect(name).value("replicas", json::array()); }

    // The value of one sample of /metrics (-1 if absent).
    double metric(const std::string &sample) {
        httplib::Client c(wispd_->socket());
        c.set_address_family(AF_UNIX);
        auto res = c.Get("/metrics");
        if (!res) return -1;
        std::istringstream in(res->body);
        for (std::string line; std::getline(in, line);)
            if (line.rfind(sample + " ", 0) == 0) return std::stod(line.substr(sample.size() + 1));
        return -1;
    }

    // The service's state in the pinned BPF map, as bpftool prints it (0 ZERO,
    // 1 WAKING, 2 READY, 3 DRAINING); -1 if it is not there.
    int map_state(const std::string &name) {
        int id = inspect(name).value("id", -1);
        auto r = run({"bpftool", "-j", "map", "dump", "pinned", bpffs_->path() + "/wisp/wisp_services"});
        json entries = json::parse(r.output, nullptr, false);
        if (entries.is_discarded()) return -1;
        for (auto &e : entries) {
            const json &v = e["formatted"]["value"];
            if (v["id"] == id) return v["state"];
        }
        return -1;
    }

    static bool wait_until(const std::function<bool()> &done, double timeout_s) {
        double deadline = monotonic_seconds() + timeout_s;
        while (monotonic_seconds() < deadline) {
            if (done()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return done();
    }

    static bool alive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

    ClientNetwork::Response get(const std::string &path = "/") {
        return net_->curl(net_->url(kPort, path));
    }

    // One request that wakes `name`; its one replica, as inspect shows it.
    json wake(const std::string &name) {
        auto r = get();
        EXPECT_EQ(r.status, 200) << r.body;
        json reps = replicas(name);
        EXPECT_EQ(reps.size(), 1u) << inspect(name).dump(2);
        // No replica: a pid no kill() could ever hit (callers assert it is > 0).
        return reps.empty() ? json{{"id", 0}, {"monitor_pid", 0}} : reps[0];
    }

    std::unique_ptr<ScopedTempDir> tmp_;
    std::unique_ptr<MonitorReaper> reaper_;
    std::unique_ptr<ScopedBpffsDir> bpffs_;
    std::unique_ptr<ClientNetwork> net_;
    std::unique_ptr<WispdProcess> wispd_;
};

TEST_F(WakeE2E, ColdRequestFromZeroIsAnsweredWithoutASynRetransmission) {
    create("hello", "hello");
    EXPECT_EQ(map_state("hello"), 0) << "at zero in the data plane";
    EXPECT_TRUE(replicas("hello").empty());

    auto hello = get();
    EXPECT_EQ(hello.status, 200);
    EXPECT_EQ(hello.body, "hello from wisp\n");
    EXPECT_LT(hello.connect_s, kNoRetransmission) << "connect took " << hello.connect_s << " s";
    EXPECT_EQ(metric("wisp_wakes_total{service=\"hello\"}"), 1);
    EXPECT_EQ(map_state("hello"), 2) << "READY";
    auto trace = inspect("hello")["last_wake"];
    ASSERT_TRUE(trace.is_object()) << inspect("hello").dump(2);
    EXPECT_EQ(trace["frames_replayed"], 1);
    EXPECT_GT(trace["us_after_syn"]["ready"].get<double>(), 0);
}

TEST_F(WakeE2E, SlowstartWakesFromItsSnapshotWithoutRunningItsInitAgain) {
    create("slow", "slowstart", {"--idle-timeout", "1m"}, "init_ms=1000");
    auto first = get();
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_LT(first.connect_s, kNoRetransmission) << "connect took " << first.connect_s << " s";
    // A 1 s init would show in the total time; the snapshot skipped it.
    EXPECT_LT(first.total_s, 0.9);
    json body = json::parse(first.body, nullptr, false);
    ASSERT_FALSE(body.is_discarded()) << first.body;
    EXPECT_EQ(body["init_runs"], 1);
    EXPECT_GE(body["restore_count"].get<int>(), 1);
    EXPECT_EQ(body["restored"], true);
    // The table the init computed came back with the memory.
    auto verify = get("/verify");
    EXPECT_EQ(verify.status, 200) << verify.body;
}

TEST_F(WakeE2E, TwentyClientsAtOnceShareOneRestore) {
    create("hello", "hello", {"--idle-timeout", "1m"});
    std::string url = net_->url(kPort);
    std::string ns = net_->ns.name();
    // 20 curls started together from the client namespace.
    auto r = run_shell("ip netns exec " + ns + " sh -c 'for i in $(seq 20); do curl -s -m 10 -o /dev/null -w \"%{http_code} %{time_connect}\\n\" " +
                           url + " & done; wait'",
                       30);
    std::istringstream in(r.output);
    int ok = 0;
    double worst_connect = 0;
    for (std::string code; in >> code;) {
        double connect = 0;
        in >> connect;
        ok += code == "200";
        worst_connect = std::max(worst_connect, connect);
    }
    EXPECT_EQ(ok, 20) << r.output;
    EXPECT_LT(worst_connect, kNoRetransmission) << r.output;
    EXPECT_EQ(metric("wisp_wakes_total{service=\"hello\"}"), 1) << "one restore for all";
    EXPECT_EQ(replicas("hello").size(), 1u);
    auto events = json::parse(cli({"events", "--service", "hello", "-o", "json"}).output);
    int ready_events = 0;
    for (auto &e : events["events"]) ready_events += e["kind"] == "ready";
    EXPECT_EQ(ready_events, 1);
}

TEST_F(WakeE2E, IdleReplicaGoesBackToZeroAndTheNextRequestWakesItAgain) {
    create("hello", "hello", {"--idle-timeout", "300ms"});
    pid_t monitor = wake("hello")["monitor_pid"];
    EXPECT_TRUE(alive(monitor));

    ASSERT_TRUE(wait_until([&] { return replicas("hello").empty() && state("hello") == "standby"; }, 10))
        << inspect("hello").dump(2);
    EXPECT_TRUE(wait_until([&] { return !alive(monitor); }, 5)) << "its monitor exited";
    EXPECT_EQ(map_state("hello"), 0) << "ZERO again";
    EXPECT_EQ(metric("wisp_idle_stops_total"), 1);

    auto again = get();
    EXPECT_EQ(again.status, 200);
    EXPECT_LT(again.connect_s, kNoRetransmission);
    EXPECT_EQ(metric("wisp_wakes_total{service=\"hello\"}"), 2);
}

TEST_F(WakeE2E, StatefulKvValuesSurviveStandbyAndWake) {
    create("kv", "kv", {"--idle-timeout", "300ms", "--stateful"});
    auto put = net_->curl(net_->url(kPort, "/kv/colour"), {"-X", "PUT", "--data-binary", "teal"});
    ASSERT_EQ(put.status, 201) << put.body;
    ASSERT_TRUE(wait_until([&] { return replicas("kv").empty() && state("kv") == "standby"; }, 10))
        << inspect("kv").dump(2);
    bool has_state = false;
    json kv = inspect("kv");
    for (auto &s : kv["snapshots"]) has_state |= s["kind"] != "golden";
    EXPECT_TRUE(has_state) << "a stateful snapshot was written before it stopped\n"
                           << inspect("kv").dump(2);

    auto got = get("/kv/colour");
    EXPECT_EQ(got.status, 200);
    EXPECT_EQ(got.body, "teal");
    EXPECT_LT(got.connect_s, kNoRetransmission);
    // And once more, from the snapshot of a replica that was itself restored.
    ASSERT_EQ(net_->curl(net_->url(kPort, "/kv/shape"), {"-X", "PUT", "--data-binary", "round"}).status, 201);
    ASSERT_TRUE(wait_until([&] { return replicas("kv").empty() && state("kv") == "standby"; }, 10));
    EXPECT_EQ(get("/kv/colour").body, "teal");
    EXPECT_EQ(get("/kv/shape").body, "round");
}

TEST_F(WakeE2E, Kill9OfWispdKeepsTheReplicaServingAndTheNextWispdAdoptsIt) {
    create("hello", "hello", {"--idle-timeout", "1m"});
    json before = wake("hello");

    EXPECT_EQ(wispd_->stop(SIGKILL), 128 + SIGKILL);
    EXPECT_TRUE(alive(before["monitor_pid"])) << "monitors do not die with wispd";
    for (int i = 0; i < 5; ++i) {
        auto r = get();
        EXPECT_EQ(r.status, 200) << "request " << i << " while wispd is down";
        EXPECT_EQ(r.body, "hello from wisp\n");
    }

    start();
    json after = replicas("hello");
    ASSERT_EQ(after.size(), 1u) << inspect("hello").dump(2);
    EXPECT_EQ(after[0]["id"], before["id"]);
    EXPECT_EQ(after[0]["monitor_pid"], before["monitor_pid"]);
    EXPECT_EQ(after[0]["state"], "ready");
    EXPECT_EQ(state("hello"), "running");
    EXPECT_EQ(map_state("hello"), 2);
    EXPECT_EQ(get().status, 200);
    // The pool holds exactly its size of idle monitors plus the replica's: the
    // old wispd's idle ones were taken over, not leaked.
    EXPECT_TRUE(wait_until([&] { return wispd_->monitors().size() == 3; }, 10))
        << wispd_->monitors().size() << " monitors";
    // Still under control: it goes back to zero when told.
    ASSERT_EQ(cli({"service", "set", "hello", "--idle-timeout", "100ms"}).exit_code, 0);
    EXPECT_TRUE(wait_until([&] { return replicas("hello").empty(); }, 10));
    EXPECT_TRUE(wait_until([&] { return !alive(before["monitor_pid"]); }, 5));
}

TEST_F(WakeE2E, Kill9OfAMonitorTakesItsReplicaOutAndTheNextRequestGetsANewOne) {
    create("hello", "hello", {"--idle-timeout", "1m"});
    pid_t monitor = wake("hello")["monitor_pid"];
    ASSERT_GT(monitor, 0);
    ASSERT_EQ(kill(monitor, SIGKILL), 0);

    ASSERT_TRUE(wait_until([&] { return replicas("hello").empty(); }, 5)) << inspect("hello").dump(2);
    EXPECT_EQ(state("hello"), "standby");
    EXPECT_EQ(map_state("hello"), 0);
    json failure = inspect("hello")["failure"];
    EXPECT_EQ(failure["consecutive_failures"], 1);
    EXPECT_NE(failure["reason"].get<std::string>().find("crash"), std::string::npos);

    auto r = get();
    EXPECT_EQ(r.status, 200);
    EXPECT_LT(r.connect_s, kNoRetransmission);
    json after = replicas("hello");
    ASSERT_EQ(after.size(), 1u);
    EXPECT_NE(after[0]["monitor_pid"], monitor);
}

TEST_F(WakeE2E, ReplicasThatKeepDyingAreACrashLoopShownByInspect) {
    create("hello", "hello", {"--idle-timeout", "1m"});
    for (int i = 0; i < 3; ++i) {
        pid_t monitor = wake("hello")["monitor_pid"];
        ASSERT_GT(monitor, 0) << "wake " << i;
        kill(monitor, SIGKILL);
        ASSERT_TRUE(wait_until([&] { return replicas("hello").empty(); }, 5));
    }
    json svc = inspect("hello");
    EXPECT_EQ(svc["state"], "failed") << svc.dump(2);
    EXPECT_EQ(svc["failure"]["crash_loop"], true);
    EXPECT_EQ(svc["failure"]["consecutive_failures"], 3);
    EXPECT_FALSE(svc["failure"]["next_attempt_at"].get<std::string>().empty());
    auto text = cli({"service", "inspect", "hello"});
    EXPECT_NE(text.output.find("CRASH LOOP"), std::string::npos) << text.output;
    // The backoff is over after 1 s (250, 500, 1000 ms): a request then still works.
    auto r = net_->curl(net_->url(kPort), {}, 15);
    EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(WakeE2E, ACorruptSnapshotFailsTheWakeWithItsReasonAndBacksOff) {
    create("hello", "hello");
    std::string golden = inspect("hello")["snapshots"][0]["path"];
    {
        // Flip bytes in the middle of the vmstate: its checksum no longer matches.
        std::fstream f(golden + "/vmstate", std::ios::in | std::ios::out | std::ios::binary);
        ASSERT_TRUE(f.good());
        f.seekp(64);
        f.write("\xde\xad\xbe\xef", 4);
    }
    auto r = net_->curl(net_->url(kPort), {}, 2);
    EXPECT_NE(r.status, 200);
    ASSERT_TRUE(wait_until([&] { return state("hello") == "failed"; }, 5)) << inspect("hello").dump(2);
    json failure = inspect("hello")["failure"];
    EXPECT_NE(failure["reason"].get<std::string>().find("restore"), std::string::npos) << failure.dump();
    EXPECT_GE(failure["consecutive_failures"].get<int>(), 1);
    EXPECT_GE(metric("wisp_failures_total{stage=\"restore\"}"), 1);
    EXPECT_TRUE(replicas("hello").empty());
}

}  // namespace
