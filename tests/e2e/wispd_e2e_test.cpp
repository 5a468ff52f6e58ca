// wispd end to end: the real daemon binary and the real `wisp` CLI, each test with
// its own state directory, runtime directory, API socket, bpffs pin root and a veth
// as uplink: services, the CLI and API, restarts, preflight. Wakes and scale to
// zero are in wake_e2e_test.cpp.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <sstream>

#include "wisp/test/capabilities.h"
#include "wisp/test/net.h"
#include "wisp/test/paths.h"
#include "wisp/test/process.h"
#include "wisp/test/wispd.h"

namespace {

using nlohmann::json;
using namespace wisp::test;

class WispdE2E : public ::testing::Test {
protected:
    void SetUp() override {
        WISP_REQUIRE_WISPD();
        box_ = std::make_unique<WispdSandbox>("e2e");
        tmp_ = &box_->tmp;
        veth_ = &box_->veth;
        bpffs_ = &box_->bpffs;
        address_ = assign_test_address(veth_->host());
        wispd_ = std::make_unique<WispdProcess>(config());
    }

    WispdProcess::Config config() const { return box_->config(); }

    void start() { ASSERT_TRUE(wispd_->start()) << wispd_->log(); }

    WispdProcess::Cli cli(const std::vector<std::string> &args) { return wispd_->cli(args); }

    static json parse_json(const std::string &text) {
        json j = json::parse(text, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << "not JSON:\n" << text;
        return j;
    }

    httplib::Result http(const std::string &method, const std::string &path,
                         const std::string &body = "") {
        httplib::Client c(wispd_->socket());
        c.set_address_family(AF_UNIX);
        c.set_read_timeout(30);
        if (method == "POST") return c.Post(path.c_str(), body, "application/json");
        return c.Get(path.c_str());
    }

    // A real guest image: creating a service boots it for its golden snapshot.
    const std::string image_ = image_path("hello");
    std::unique_ptr<WispdSandbox> box_;
    ScopedTempDir *tmp_ = nullptr;
    ScopedVeth *veth_ = nullptr;
    ScopedBpffsDir *bpffs_ = nullptr;
    std::string address_;
    std::unique_ptr<WispdProcess> wispd_;
};

TEST_F(WispdE2E, ServiceCreatedWithTheCliIsListedAndInspectable) {
    start();
    auto created = cli({"service", "create", "hello", "--image", image_, "-p", "8080",
                        "--memory", "32M", "--idle-timeout", "1500ms", "--cmdline", "greet=hi"});
    ASSERT_EQ(created.exit_code, 0) << created.output;
    EXPECT_NE(created.output.find("created hello"), std::string::npos) << created.output;

    auto ls = cli({"service", "ls"});
    ASSERT_EQ(ls.exit_code, 0) << ls.output;
    EXPECT_EQ(ls.output.rfind("NAME", 0), 0u) << ls.output;
    EXPECT_NE(ls.output.find("hello"), std::string::npos);
    EXPECT_NE(ls.output.find(address_ + ":8080/tcp"), std::string::npos)
        << "the default VIP is the uplink's address\n" << ls.output;

    auto inspect = parse_json(cli({"service", "inspect", "hello", "-o", "json"}).output);
    EXPECT_EQ(inspect["memory_mib"], 32);
    EXPECT_EQ(inspect["idle_timeout_ms"], 1500);
    EXPECT_EQ(inspect["cmdline"], "greet=hi");
    EXPECT_EQ(inspect["vip"], address_);
    EXPECT_TRUE(inspect.contains("failure"));
    EXPECT_TRUE(inspect.contains("replicas"));
}

TEST_F(WispdE2E, EveryListingPrintsParseableJsonWithDashOJson) {
    start();
    auto created = cli({"service", "create", "hello", "--image", image_, "-p", "80", "-o", "json"});
    ASSERT_EQ(created.exit_code, 0) << created.output;
    EXPECT_EQ(parse_json(created.output)["name"], "hello");
    for (std::vector<std::string> args :
         {std::vector<std::string>{"service", "ls", "-o", "json"},
          {"service", "inspect", "hello", "-o", "json"},
          {"replica", "ls", "-o", "json"},
          {"replica", "ls", "--service", "hello", "-o", "json"},
          {"events", "-o", "json"},
          {"status", "-o", "json"},
          {"service", "set", "hello", "--idle-timeout", "2s", "-o", "json"},
          {"service", "scale", "hello", "1", "-o", "json"}}) {
        auto r = cli(args);
        std::string cmd;
        for (auto &a : args) cmd += a + " ";
        ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
        EXPECT_TRUE(parse_json(r.output).is_object()) << cmd;
    }
    EXPECT_EQ(parse_json(cli({"service", "ls", "-o", "json"}).output)["services"].size(), 1u);
    EXPECT_EQ(parse_json(cli({"status", "-o", "json"}).output)["uplink"], veth_->host());
}

TEST_F(WispdE2E, BadCliInputGivesAClearErrorAndItsExitCode) {
    start();
    struct Case {
        std::vector<std::string> args;
        int exit_code;
        std::string says;
    };
    std::vector<Case> cases = {
        {{"service", "create", "Bad", "--image", image_, "-p", "80"}, 1, "name: must start with a lowercase letter"},
        {{"service", "create", "ok", "--image", "/nonexistent.elf", "-p", "80"}, 1, "image: '/nonexistent.elf' does not exist"},
        {{"service", "create", "ok", "--image", "/etc/hostname", "-p", "80"}, 1, "is not an ELF file"},
        {{"service", "create", "ok", "--image", image_, "-p", "0"}, 1, "port: must be between 1 and 65535"},
        {{"service", "create", "ok", "--image", image_, "-p", "80", "--memory", "4M"}, 1, "memory_mib: must be between 8 and 4096"},
        {{"service", "create", "ok", "--image", image_, "-p", "80", "--vip", "300.1.1.1"}, 1, "vip:"},
        {{"service", "create", "ok", "--image", image_, "-p", "80", "--min", "2", "--max", "1"}, 1, "min_replicas: must not exceed max_replicas"},
        {{"service", "create", "ok", "--image", image_, "-p", "80", "--idle-timeout", "1ms"}, 1, "idle_timeout_ms:"},
        {{"service", "create", "ok", "--image", image_, "-p", "80", "--protocol", "sctp"}, 1, "protocol:"},
        {{"service", "create", "ok", "--image", image_, "-p", "70000"}, 2, "port"},
        {{"service", "create", "ok", "--image", image_, "-p", "80", "--memory", "12Q"}, 2, "unknown size unit"},
        {{"service", "create", "ok", "-p", "80"}, 2, "--image"},
        {{"service", "inspect", "nope"}, 1, "service 'nope' does not exist"},
        {{"service", "rm", "nope"}, 1, "does not exist"},
        {{"service", "set", "nope", "--max", "2"}, 1, "does not exist"},
        {{"service", "set", "nope"}, 2, "nothing to change"},
        {{"logs", "nope"}, 1, "does not exist"},
        {{"service"}, 2, "subcommand"},
        {{"service", "ls", "-o", "yaml"}, 2, "yaml"},
        {{"frobnicate"}, 2, ""},
    };
    for (auto &c : cases) {
        auto r = cli(c.args);
        std::string cmd;
        for (auto &a : c.args) cmd += a + " ";
        EXPECT_EQ(r.exit_code, c.exit_code) << cmd << "\n" << r.output;
        EXPECT_NE(r.output.find(c.says), std::string::npos) << cmd << "\n" << r.output;
    }
    // Nothing was created by any of them.
    EXPECT_TRUE(parse_json(cli({"service", "ls", "-o", "json"}).output)["services"].empty());
}

TEST_F(WispdE2E, DuplicateNameAndAddressAreConflicts) {
    start();
    ASSERT_EQ(cli({"service", "create", "a", "--image", image_, "-p", "80"}).exit_code, 0);
    auto dup = cli({"service", "create", "a", "--image", image_, "-p", "81"});
    EXPECT_EQ(dup.exit_code, 1);
    EXPECT_NE(dup.output.find("already exists"), std::string::npos) << dup.output;
    auto clash = cli({"service", "create", "b", "--image", image_, "-p", "80"});
    EXPECT_EQ(clash.exit_code, 1);
    EXPECT_NE(clash.output.find("already served by 'a'"), std::string::npos) << clash.output;
}

TEST_F(WispdE2E, UnreachableDaemonIsExitCode3) {
    auto r = run({binary_path("wisp"), "--socket", tmp_->path() + "/none.sock", "status"});
    EXPECT_EQ(r.exit_code, 3) << r.output;
    EXPECT_NE(r.output.find("cannot reach wispd"), std::string::npos) << r.output;
}

TEST_F(WispdE2E, ApiAnswersBadRequestsWithJsonErrorsNamingTheField) {
    start();
    struct Case {
        std::string body, field;
    };
    for (auto &c : std::vector<Case>{{"{", "body"},
                                     {"[]", "body"},
                                     {R"({"name":"x","image":"/usr/bin/true"})", "port"},
                                     {R"({"name":"x","image":"/usr/bin/true","port":"80"})", "port"},
                                     {R"({"name":"x","image":"/usr/bin/true","port":80,"stateful":"yes"})", "stateful"},
                                     {R"({"name":"x","image":"/usr/bin/true","port":80,"size":1})", "size"}}) {
        auto res = http("POST", "/v1/services", c.body);
        ASSERT_TRUE(res) << httplib::to_string(res.error());
        EXPECT_EQ(res->status, 400) << c.body;
        auto j = parse_json(res->body);
        EXPECT_EQ(j["error"]["field"], c.field) << c.body << " -> " << res->body;
        EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    }
    auto missing = http("GET", "/v1/nothing-here");
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404);
    EXPECT_EQ(parse_json(missing->body)["error"]["code"], "not_found");
}

TEST_F(WispdE2E, MetricsAreServedInPrometheusTextFormat) {
    start();
    ASSERT_EQ(cli({"service", "create", "hello", "--image", image_, "-p", "80"}).exit_code, 0);
    auto res = http("GET", "/metrics");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
    const std::string &m = res->body;
    for (const char *line : {"# TYPE wisp_wake_latency_seconds histogram",
                             "# TYPE wisp_wakes_total counter", "# TYPE wisp_services gauge",
                             "# TYPE wisp_replicas gauge", "wisp_dataplane_packets_total{counter=",
                             "wisp_api_requests_total{code=\"201\"} 1"})
        EXPECT_NE(m.find(line), std::string::npos) << line << "\n" << m;
    // Exactly one service, whatever state it is in.
    double services = 0;
    std::istringstream in(m);
    for (std::string l; std::getline(in, l);)
        if (l.rfind("wisp_services{", 0) == 0) services += std::stod(l.substr(l.rfind(' ') + 1));
    EXPECT_EQ(services, 1);
}

TEST_F(WispdE2E, ServicesSurviveAKill9OfWispdAndAreListedAfterRestart) {
    start();
    for (auto [name, port] : {std::pair{"alpha", "80"}, {"beta", "81"}, {"gamma", "82"}})
        ASSERT_EQ(cli({"service", "create", name, "--image", image_, "-p", port}).exit_code, 0);
    ASSERT_EQ(cli({"service", "set", "beta", "--idle-timeout", "7s", "--max", "3"}).exit_code, 0);

    EXPECT_EQ(wispd_->stop(SIGKILL), 128 + SIGKILL);
    struct stat st {};
    ASSERT_EQ(stat(wispd_->socket().c_str(), &st), 0) << "a killed wispd leaves its socket";

    wispd_ = std::make_unique<WispdProcess>(config());
    start();
    auto list = parse_json(cli({"service", "ls", "-o", "json"}).output)["services"];
    ASSERT_EQ(list.size(), 3u) << list.dump();
    std::vector<std::string> names;
    for (auto &s : list) names.push_back(s["name"]);
    EXPECT_EQ(names, (std::vector<std::string>{"alpha", "beta", "gamma"}));
    auto beta = parse_json(cli({"service", "inspect", "beta", "-o", "json"}).output);
    EXPECT_EQ(beta["idle_timeout_ms"], 7000);
    EXPECT_EQ(beta["max_replicas"], 3);
    EXPECT_EQ(beta["port"], 81);
    // The journal survived too.
    auto events = parse_json(cli({"events", "--service", "alpha", "-n", "1000", "-o", "json"}).output);
    bool created = false;
    for (auto &e : events["events"]) created |= e["kind"] == "created";
    EXPECT_TRUE(created) << events.dump();
}

TEST_F(WispdE2E, DeletedServiceStaysDeletedAfterRestart) {
    start();
    ASSERT_EQ(cli({"service", "create", "gone", "--image", image_, "-p", "80"}).exit_code, 0);
    ASSERT_EQ(cli({"service", "rm", "gone"}).exit_code, 0);
    EXPECT_EQ(wispd_->stop(SIGKILL), 128 + SIGKILL);
    wispd_ = std::make_unique<WispdProcess>(config());
    start();
    EXPECT_TRUE(parse_json(cli({"service", "ls", "-o", "json"}).output)["services"].empty());
}

TEST_F(WispdE2E, SecondWispdOnTheSameStateDirectoryIsRefused) {
    start();
    auto cfg = config();
    WispdProcess second(cfg);
    // It shares the first one's log file; its own message is what we look for.
    EXPECT_EQ(second.run_to_exit(), 1);
    EXPECT_NE(second.log().find("another wispd (pid " + std::to_string(wispd_->pid()) +
                                ") uses the state directory"),
              std::string::npos)
        << second.log();
    EXPECT_TRUE(wispd_->running());
    EXPECT_EQ(cli({"status"}).exit_code, 0);
}

TEST_F(WispdE2E, ApiSocketIsRootOnlyAndStateDirectoryPrivate) {
    start();
    struct stat st {};
    ASSERT_EQ(stat(wispd_->socket().c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(st.st_uid, 0u);
    ASSERT_EQ(stat(wispd_->state_dir().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(WispdE2E, SigtermStopsPromptlyAndRemovesTheSocket) {
    start();
    ASSERT_EQ(cli({"service", "create", "hello", "--image", image_, "-p", "80"}).exit_code, 0);
    EXPECT_EQ(wispd_->stop(SIGTERM, 10), 0) << wispd_->log();
    EXPECT_NE(access(wispd_->socket().c_str(), F_OK), 0);
}

// ---- preflight -------------------------------------------------------------------

class WispdPreflight : public WispdE2E {
protected:
    int run_with(const std::string &uplink, const std::string &bpffs_root,
                 std::vector<std::string> extra = {}) {
        WispdProcess p({tmp_->path(), uplink, bpffs_root, std::move(extra), {}});
        int rc = p.run_to_exit();
        log_ = p.log();
        return rc;
    }
    std::string log_;
};

TEST_F(WispdPreflight, MissingUplinkIsNamed) {
    EXPECT_EQ(run_with("wnoup" + std::to_string(getpid() % 100000), bpffs_->path() + "/wisp"), 1);
    EXPECT_NE(log_.find("uplink interface 'wnoup"), std::string::npos) << log_;
    EXPECT_NE(log_.find("does not exist"), std::string::npos) << log_;
}

TEST_F(WispdPreflight, MissingMonitorBinaryIsNamed) {
    EXPECT_EQ(run_with(veth_->host(), bpffs_->path() + "/wisp",
                       {"--monitor-binary", tmp_->path() + "/no-such-wisp-vmm"}),
              1);
    EXPECT_NE(log_.find("monitor binary " + tmp_->path() + "/no-such-wisp-vmm is not executable"),
              std::string::npos)
        << log_;
}

TEST_F(WispdPreflight, DownUplinkIsNamedWithTheFix) {
    ASSERT_EQ(run({"ip", "link", "set", veth_->host(), "down"}).exit_code, 0);
    EXPECT_EQ(run_with(veth_->host(), bpffs_->path() + "/wisp"), 1);
    EXPECT_NE(log_.find("is down (`ip link set " + veth_->host() + " up`)"), std::string::npos)
        << log_;
}

TEST_F(WispdPreflight, NoUplinkConfiguredIsExplained) {
    EXPECT_EQ(run_with("", bpffs_->path() + "/wisp"), 1);
    EXPECT_NE(log_.find("no uplink interface configured"), std::string::npos) << log_;
}

TEST_F(WispdPreflight, PinRootOutsideBpffsIsRefusedAndEveryProblemListed) {
    EXPECT_EQ(run_with("wnoup" + std::to_string(getpid() % 100000), tmp_->path() + "/pins"), 1);
    EXPECT_NE(log_.find("is not on a bpffs mount"), std::string::npos) << log_;
    EXPECT_NE(log_.find("does not exist"), std::string::npos) << "all problems at once\n" << log_;
}

}  // namespace
