// Autoscaling end to end: the real wispd (its fast loop reading the real data
// plane's per-replica counters), real pre-forked wisp-vmm monitors restoring the
// `hello` snapshot in parallel, and real clients in a namespace behind a veth:
// wrk with short-lived connections for the load (new connections are what the
// data plane spreads over replicas), and a few long-lived keep-alive connections
// opened before any scaling. Bounded: a few seconds of load, then the scale-in.
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "wisp/test/paths.h"
#include "wisp/test/process.h"
#include "wisp/test/wispd.h"

namespace {

using nlohmann::json;
using namespace wisp::test;

constexpr uint16_t kPort = 8080;

bool wait_until(const std::function<bool()> &done, double timeout_s) {
    double deadline = monotonic_seconds() + timeout_s;
    while (monotonic_seconds() < deadline) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return done();
}

// One HTTP/1.1 keep-alive connection from the client namespace. A connection
// cannot move between replicas: another replica knows nothing of it and would
// answer with a reset. So a connection that keeps answering is still on the
// replica it started on.
class KeepAliveClient {
public:
    KeepAliveClient(const ClientNetwork &net, const std::string &vip) : fd_(net.tcp_socket()) {
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(kPort);
        inet_pton(AF_INET, vip.c_str(), &to.sin_addr);
        connected_ = fd_ && connect(fd_.get(), reinterpret_cast<sockaddr *>(&to), sizeof to) == 0;
    }
    bool connected() const { return connected_; }

    // One request on the connection; true when the whole 200 response came back.
    bool get() {
        static const std::string request = "GET / HTTP/1.1\r\nHost: wisp\r\n\r\n";
        if (send(fd_.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size()))
            return false;
        std::string got;
        char buf[1024];
        double deadline = monotonic_seconds() + 5;
        while (got.find("hello from wisp\n") == std::string::npos) {
            pollfd p{fd_.get(), POLLIN, 0};
            int left_ms = static_cast<int>((deadline - monotonic_seconds()) * 1000);
            if (left_ms <= 0 || poll(&p, 1, left_ms) != 1) return false;
            ssize_t n = recv(fd_.get(), buf, sizeof buf, 0);
            if (n <= 0) return false;  // closed or reset
            got.append(buf, static_cast<size_t>(n));
        }
        return got.rfind("HTTP/1.1 200", 0) == 0;
    }

private:
    wisp::UniqueFd fd_;
    bool connected_ = false;
};

class AutoscaleE2E : public ::testing::Test {
protected:
    void SetUp() override {
        WISP_REQUIRE_WISPD();
        tmp_ = std::make_unique<ScopedTempDir>("scale");
        reaper_.reset(new MonitorReaper{tmp_->path() + "/run"});
        bpffs_ = std::make_unique<ScopedBpffsDir>("scale");
        net_ = std::make_unique<ClientNetwork>("sc");
        wispd_ = std::make_unique<WispdProcess>(WispdProcess::Config{
            tmp_->path(), net_->veth.host(), bpffs_->path() + "/wisp",
            {"--monitor-pool-size", "4"}, {}});
        ASSERT_TRUE(wispd_->start()) << wispd_->log();
    }

    void TearDown() override {
        if (wispd_) {
            wispd_->stop(SIGTERM, 10);
            wispd_->kill_monitors();
        }
        if (HasFailure() && wispd_) std::cerr << "---- wispd log ----\n" << wispd_->log();
    }

    json inspect(const std::string &name) {
        auto r = wispd_->cli({"service", "inspect", name, "-o", "json"});
        json j = json::parse(r.output, nullptr, false);
        return j.is_discarded() ? json::object() : j;
    }
    int replicas_in(const json &service, const char *state) {
        return service.value("replicas_by_state", json::object()).value(state, -1);
    }

    std::string metrics() {
        httplib::Client c(wispd_->socket());
        c.set_address_family(AF_UNIX);
        auto res = c.Get("/metrics");
        return res ? res->body : std::string();
    }

    std::unique_ptr<ScopedTempDir> tmp_;
    std::unique_ptr<MonitorReaper> reaper_;
    std::unique_ptr<ScopedBpffsDir> bpffs_;
    std::unique_ptr<ClientNetwork> net_;
    std::unique_ptr<WispdProcess> wispd_;
};

TEST_F(AutoscaleE2E, LoadStepScalesOutToSeveralReplicasAndBackWithoutAnErrorOrAResetConnection) {
    // min 1 keeps a replica up for the keep-alive clients; a target of 100 new
    // flows/s per replica needs all four under wrk's closing connections.
    auto created = wispd_->cli({"service", "create", "hello", "--image", image_path("hello"), "-p",
                                std::to_string(kPort), "--cmdline", "port=" + std::to_string(kPort),
                                "--min", "1", "--max", "4", "--target", "100",
                                "--idle-timeout", "30s"});
    ASSERT_EQ(created.exit_code, 0) << created.output;
    ASSERT_TRUE(wait_until([&] { return replicas_in(inspect("hello"), "ready") == 1; }, 30))
        << inspect("hello").dump(2);
    ASSERT_EQ(inspect("hello")["autoscale"]["active"], true) << inspect("hello").dump(2);

    // Long-lived connections, opened before any scaling: all on the one replica.
    std::vector<std::unique_ptr<KeepAliveClient>> keep;
    for (int i = 0; i < 4; ++i) {
        keep.push_back(std::make_unique<KeepAliveClient>(*net_, net_->host_ip));
        ASSERT_TRUE(keep.back()->connected());
        ASSERT_TRUE(keep.back()->get());
    }
    std::atomic<bool> stop_keepalive{false};
    std::atomic<int> keepalive_ok{0}, keepalive_failed{0};
    std::thread keepalive([&] {
        while (!stop_keepalive) {
            for (auto &k : keep) (k->get() ? keepalive_ok : keepalive_failed)++;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });

    // The step: 4 s of wrk with a new connection per request.
    double step_at = monotonic_seconds();
    int64_t step_wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    std::atomic<bool> wrk_done{false};
    CommandResult wrk;
    std::thread load([&] {
        wrk = run({"ip", "netns", "exec", net_->ns.name(), "wrk", "-t2", "-c16", "-d4s",
                   "--timeout", "5s", "-H", "Connection: close", net_->url(kPort)},
                  30);
        wrk_done = true;
    });
    int most_ready = 0;
    double three_ready_after = -1;
    while (!wrk_done) {
        int ready = replicas_in(inspect("hello"), "ready");
        if (ready >= 3 && three_ready_after < 0) three_ready_after = monotonic_seconds() - step_at;
        most_ready = std::max(most_ready, ready);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    load.join();
    json during = inspect("hello");

    ASSERT_EQ(wrk.exit_code, 0) << wrk.output;
    EXPECT_EQ(wrk.output.find("Socket errors"), std::string::npos) << wrk.output;
    EXPECT_EQ(wrk.output.find("Non-2xx"), std::string::npos) << wrk.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(wrk.output, m, std::regex("([0-9]+) requests in"))) << wrk.output;
    EXPECT_GT(std::stoull(m[1]), 1000u) << wrk.output;
    EXPECT_GE(most_ready, 3) << "the step should have needed at least three replicas\n"
                             << during.dump(2) << wrk.output;
    std::cout << "three replicas READY " << three_ready_after << " s after the step; most "
              << most_ready << "; " << m[1] << " requests\n";

    // Load gone: back to min once the cooldown and a quiet stable window are over
    // and the drained replicas' flows are quiet.
    EXPECT_TRUE(wait_until(
        [&] {
            json s = inspect("hello");
            return replicas_in(s, "ready") == 1 && s["replicas"].size() == 1u;
        },
        20))
        << inspect("hello").dump(2);
    // The keep-alive connections go on after the others are gone.
    int ok_before = keepalive_ok;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    stop_keepalive = true;
    keepalive.join();
    EXPECT_EQ(keepalive_failed, 0) << "a keep-alive connection failed or was reset";
    EXPECT_GT(keepalive_ok, ok_before) << "keep-alive connections still answer after the scale-in";
    for (auto &k : keep) EXPECT_TRUE(k->get());

    std::string text = metrics();
    EXPECT_NE(text.find("wisp_scale_decisions_total{service=\"hello\",reason=\"scale_in\"}"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("wisp_service_replicas{service=\"hello\",state=\"ready\"} 1"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("wisp_instances{state=\"running\"} 1"), std::string::npos) << text;
    EXPECT_NE(text.find("wisp_instance_memory_pss_bytes{service=\"hello\",replica="), std::string::npos) << text;
    auto events = wispd_->cli({"events", "--service", "hello", "-n", "500", "-o", "json"});
    EXPECT_NE(events.output.find("\"drained\""), std::string::npos) << events.output;
    // For docs/autoscale.md: when the first scale-out was decided after wrk began,
    // and the journal's account of the restores it started.
    json journal = json::parse(events.output, nullptr, false);
    if (!journal.is_discarded())
        for (auto &e : journal["events"]) {
            std::string kind = e.value("kind", "");
            if (kind == "scale" || kind == "ready")
                std::cout << e.value("at_ms", int64_t{0}) - step_wall_ms << " ms after wrk began: "
                          << kind << ": " << e.value("message", "") << "\n";
        }
}

}  // namespace
