// Density, end to end: 200 services registered and 50 of them running at once on
// the real wispd (real XDP data plane on a veth uplink, real pre-forked wisp-vmm
// monitors restoring real snapshots), woken by real SYNs from curl in a client
// namespace, then back to zero. The 200 services run the same image with the same
// memory and command line on 200 VIPs (198.18.64.0/24, routed to the uplink inside
// the client namespace only), so they share one golden snapshot: one boot, 199 hard
// links. The benchmark with the large counts is tools/bench/scale/density.sh.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "wisp/test/paths.h"
#include "wisp/test/process.h"
#include "wisp/test/wispd.h"

namespace {

using nlohmann::json;
using namespace wisp::test;

constexpr int kServices = 200;
constexpr int kRunning = 50;
constexpr uint16_t kPort = 8080;

std::string vip_of(int i) { return "198.18.64." + std::to_string(1 + i); }
std::string name_of(int i) { return "d" + std::to_string(i); }

bool wait_until(const std::function<bool()> &done, double timeout_s) {
    double deadline = monotonic_seconds() + timeout_s;
    while (monotonic_seconds() < deadline) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return done();
}

class DensityE2E : public ::testing::Test {
protected:
    void SetUp() override {
        WISP_REQUIRE_WISPD();
        tmp_ = std::make_unique<ScopedTempDir>("dens");
        reaper_.reset(new MonitorReaper{tmp_->path() + "/run"});
        bpffs_ = std::make_unique<ScopedBpffsDir>("dens");
        net_ = std::make_unique<ClientNetwork>("dn");
        // The VIPs live behind the uplink, as seen from the client.
        run_or_throw({"ip", "-n", net_->ns.name(), "route", "add", "198.18.64.0/24", "via",
                      net_->host_ip});
        wispd_ = std::make_unique<WispdProcess>(WispdProcess::Config{
            tmp_->path(), net_->veth.host(), bpffs_->path() + "/wisp",
            {"--monitor-pool-size", "8"}, {}});
        ASSERT_TRUE(wispd_->start()) << wispd_->log();
    }

    void TearDown() override {
        if (wispd_) {
            wispd_->stop(SIGTERM, 20);
            wispd_->kill_monitors();
        }
        if (HasFailure() && wispd_) {
            std::string log = wispd_->log();
            std::cerr << "---- wispd log (last 8 KiB) ----\n"
                      << log.substr(log.size() > 8192 ? log.size() - 8192 : 0);
        }
    }

    json api(const std::string &path) {
        httplib::Client c(wispd_->socket());
        c.set_address_family(AF_UNIX);
        c.set_read_timeout(30);
        auto res = c.Get(path.c_str());
        if (!res || res->status != 200) return json();
        return json::parse(res->body, nullptr, false);
    }

    // name -> state, for every service.
    std::map<std::string, std::string> states() {
        std::map<std::string, std::string> out;
        json list = api("/v1/services");
        if (list.is_object() && list.contains("services")) list = list["services"];
        if (!list.is_array()) return out;
        for (auto &s : list) out[s.value("name", "")] = s.value("state", "");
        return out;
    }

    size_t count_in(const std::string &state) {
        size_t n = 0;
        for (auto &[name, st] : states()) n += st == state;
        return n;
    }

    size_t replica_count() {
        json list = api("/v1/replicas");
        if (list.is_object() && list.contains("replicas")) list = list["replicas"];
        return list.is_array() ? list.size() : static_cast<size_t>(-1);
    }

    void create(int i) {
        auto r = wispd_->cli({"service", "create", name_of(i), "--image", image_path("hello"), "-p",
                              std::to_string(kPort), "--vip", vip_of(i), "--cmdline",
                              "port=" + std::to_string(kPort), "--idle-timeout", "20s"});
        ASSERT_EQ(r.exit_code, 0) << name_of(i) << ": " << r.output;
    }

    std::unique_ptr<ScopedTempDir> tmp_;
    std::unique_ptr<MonitorReaper> reaper_;
    std::unique_ptr<ScopedBpffsDir> bpffs_;
    std::unique_ptr<ClientNetwork> net_;
    std::unique_ptr<WispdProcess> wispd_;
};

TEST_F(DensityE2E, TwoHundredServicesFiftyRunningAtOnceThenAllBackToZero) {
    // The first one boots its image for the golden snapshot; the other 199 share it.
    create(0);
    ASSERT_TRUE(wait_until([&] { return states()[name_of(0)] == "standby"; }, 60))
        << json(states()).dump();
    for (int i = 1; i < kServices; ++i) {
        create(i);
        if (HasFatalFailure()) return;
    }
    ASSERT_TRUE(wait_until([&] { return count_in("standby") == kServices; }, 60))
        << json(states()).dump();

    // One golden snapshot on disk, linked into every service's directory.
    std::set<ino_t> inodes;
    nlink_t links = 0;
    for (int i = 0; i < kServices; ++i) {
        json s = api("/v1/services/" + name_of(i));
        ASSERT_TRUE(s.is_object() && s["snapshots"].size() == 1) << s.dump(2);
        struct stat st {};
        std::string memory = s["snapshots"][0]["path"].get<std::string>() + "/memory";
        ASSERT_EQ(stat(memory.c_str(), &st), 0) << memory;
        inodes.insert(st.st_ino);
        links = st.st_nlink;
    }
    EXPECT_EQ(inodes.size(), 1u) << "every service shares the first one's golden memory file";
    EXPECT_EQ(links, static_cast<nlink_t>(kServices));

    // 50 SYNs to 50 services at once, from the client namespace.
    std::string urls;
    for (int i = 0; i < kRunning; ++i)
        urls += " http://" + vip_of(i) + ":" + std::to_string(kPort) + "/";
    auto r = run_shell("ip netns exec " + net_->ns.name() + " sh -c 'for u in" + urls +
                           "; do curl -s -m 20 -o /dev/null -w \"%{http_code}/%{size_download}\\n\" $u & done; wait'",
                       60);
    // One line per curl (a single write each): status and body size of
    // "hello from wisp\n".
    std::istringstream in(r.output);
    int ok = 0;
    for (std::string line; std::getline(in, line);) ok += line == "200/16";
    EXPECT_EQ(ok, kRunning) << r.output;

    // All 50 at once, the other 150 at zero; wispd healthy and listing all 200.
    EXPECT_EQ(count_in("running"), static_cast<size_t>(kRunning)) << json(states()).dump();
    EXPECT_EQ(replica_count(), static_cast<size_t>(kRunning));
    EXPECT_EQ(count_in("standby"), static_cast<size_t>(kServices - kRunning));
    EXPECT_TRUE(wispd_->running());
    EXPECT_TRUE(api("/v1/status").is_object()) << "wispd answers its API";
    auto ls = wispd_->cli({"service", "ls", "-o", "json"});
    ASSERT_EQ(ls.exit_code, 0) << ls.output;
    json listed = json::parse(ls.output, nullptr, false);
    if (listed.is_object() && listed.contains("services")) listed = listed["services"];
    ASSERT_TRUE(listed.is_array()) << ls.output.substr(0, 500);
    EXPECT_EQ(listed.size(), static_cast<size_t>(kServices));

    // Idle for 20 s: every one goes back to zero and its monitor exits.
    EXPECT_TRUE(wait_until([&] { return count_in("standby") == kServices && replica_count() == 0; },
                           60))
        << json(states()).dump();
    EXPECT_TRUE(wait_until([&] { return wispd_->monitors().size() <= 8; }, 30))
        << wispd_->monitors().size() << " monitors left (8 are the idle pool)";
    EXPECT_TRUE(wispd_->running());
}

}  // namespace
