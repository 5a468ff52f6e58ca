// The API as a function from request to response (routing, status codes, JSON
// error bodies), over the real controller and store with fake ports.
#include "wispd/api.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fakes.h"
#include "wisp/test/net.h"

namespace {

using namespace wisp::wispd;
using namespace wisp::wispd::test;
using nlohmann::json;
using wisp::test::ScopedTempDir;

class ApiTest : public ::testing::Test {
protected:
    void SetUp() override {
        store = std::move(Store::open(dir.path() + "/wisp.db")).value();
        ControllerConfig config;
        config.layout = {dir.path() + "/state", dir.path() + "/run"};
        ctl = std::make_unique<Controller>(*store, fakes.ports(), metrics, config);
        ASSERT_TRUE(ctl->recover().ok());
        ApiEnvironment env;
        env.default_vip = [] { return wisp::Result<std::string>("198.18.0.1"); };
        env.status = [] { return json{{"version", "test"}}; };
        api = std::make_unique<Api>(*ctl, *store, metrics, env);
        image = dir.path() + "/app.elf";
        std::ofstream(image) << "\x7f" "ELF....";
    }

    ApiResponse call(const std::string &method, const std::string &path, const std::string &body = "",
                     std::map<std::string, std::string> query = {}) {
        return api->handle({method, path, std::move(query), body});
    }
    static json parsed(const ApiResponse &r) { return json::parse(r.body); }
    ApiResponse create(const std::string &name, uint16_t port = 8080) {
        return call("POST", "/v1/services",
                    json{{"name", name}, {"image", image}, {"port", port}}.dump());
    }

    ScopedTempDir dir{"api"};
    std::unique_ptr<Store> store;
    FakePorts fakes;
    FakeMonitorPool &pool = fakes.pool;
    MetricsRegistry &metrics = fakes.metrics;
    std::unique_ptr<Controller> ctl;
    std::unique_ptr<Api> api;
    std::string image;
};

TEST_F(ApiTest, CreateAnswers201WithTheServiceAndListShowsIt) {
    auto r = create("hello");
    ASSERT_EQ(r.status, 201) << r.body;
    auto j = parsed(r);
    EXPECT_EQ(j["name"], "hello");
    EXPECT_EQ(j["state"], "booting");
    EXPECT_EQ(j["vip"], "198.18.0.1");
    auto list = parsed(call("GET", "/v1/services"));
    ASSERT_EQ(list["services"].size(), 1u);
    EXPECT_EQ(list["services"][0]["name"], "hello");
}

TEST_F(ApiTest, BadInputIs400WithTheFieldNamed) {
    struct Case {
        std::string body, field;
    };
    std::vector<Case> cases = {
        {"", "body"},
        {"{not json", "body"},
        {"[1,2]", "body"},
        {json{{"image", image}, {"port", 80}}.dump(), "name"},
        {json{{"name", "ok"}, {"image", image}, {"port", 70000}}.dump(), "port"},
        {json{{"name", "ok"}, {"image", "/nope"}, {"port", 80}}.dump(), "image"},
        {json{{"name", "ok"}, {"image", image}, {"port", 80}, {"memory_mib", 1}}.dump(),
         "memory_mib"},
        {json{{"name", "ok"}, {"image", image}, {"port", 80}, {"colour", "red"}}.dump(), "colour"},
    };
    for (auto &c : cases) {
        auto r = call("POST", "/v1/services", c.body);
        EXPECT_EQ(r.status, 400) << c.body;
        auto err = parsed(r)["error"];
        EXPECT_EQ(err["field"], c.field) << c.body;
        EXPECT_EQ(err["status"], 400);
        EXPECT_FALSE(err["message"].get<std::string>().empty());
    }
    EXPECT_TRUE(pool.launches.empty());
}

TEST_F(ApiTest, DuplicatesAre409) {
    ASSERT_EQ(create("hello").status, 201);
    auto dup = create("hello", 9090);
    EXPECT_EQ(dup.status, 409);
    EXPECT_EQ(parsed(dup)["error"]["field"], "name");
    auto clash = create("other", 8080);
    EXPECT_EQ(clash.status, 409);
    EXPECT_EQ(parsed(clash)["error"]["field"], "port");
}

TEST_F(ApiTest, UnknownServiceIs404OnEveryServiceEndpoint) {
    EXPECT_EQ(call("GET", "/v1/services/nope").status, 404);
    EXPECT_EQ(call("DELETE", "/v1/services/nope").status, 404);
    EXPECT_EQ(call("PATCH", "/v1/services/nope", "{\"idle_timeout_ms\":5}").status, 404);
    EXPECT_EQ(call("POST", "/v1/services/nope/scale", "{\"replicas\":1}").status, 404);
    EXPECT_EQ(call("GET", "/v1/services/nope/logs").status, 404);
    EXPECT_EQ(call("GET", "/v1/replicas", "", {{"service", "nope"}}).status, 404);
}

TEST_F(ApiTest, UnknownPathsAre404AndWrongMethods405) {
    EXPECT_EQ(call("GET", "/v2/services").status, 404);
    EXPECT_EQ(call("GET", "/v1/nothing").status, 404);
    EXPECT_EQ(call("DELETE", "/v1/services").status, 405);
    EXPECT_EQ(call("POST", "/metrics").status, 405);
    EXPECT_EQ(call("PUT", "/v1/services/x").status, 405);
}

TEST_F(ApiTest, PatchUpdatesSettingsAndRefusesFixedFields) {
    ASSERT_EQ(create("hello").status, 201);
    auto r = call("PATCH", "/v1/services/hello", R"({"idle_timeout_ms": 2500, "max_replicas": 3})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(parsed(r)["idle_timeout_ms"], 2500);
    EXPECT_EQ(parsed(r)["max_replicas"], 3);
    EXPECT_EQ(store->find_service("hello")->value().spec.idle_timeout_ms, 2500u);
    auto fixed = call("PATCH", "/v1/services/hello", R"({"image": "/x"})");
    EXPECT_EQ(fixed.status, 400);
    EXPECT_EQ(parsed(fixed)["error"]["field"], "image");
}

TEST_F(ApiTest, ScalePinsTheReplicaCount) {
    ASSERT_EQ(create("hello").status, 201);
    auto r = call("POST", "/v1/services/hello/scale", R"({"replicas": 2})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(parsed(r)["min_replicas"], 2);
    EXPECT_EQ(parsed(r)["max_replicas"], 2);
}

TEST_F(ApiTest, DeleteRemovesTheService) {
    ASSERT_EQ(create("hello").status, 201);
    EXPECT_EQ(call("DELETE", "/v1/services/hello").status, 200);
    EXPECT_EQ(call("GET", "/v1/services/hello").status, 404);
}

TEST_F(ApiTest, LogsReturnTheLastLinesAcrossConsoleFiles) {
    ASSERT_EQ(create("hello").status, 201);
    auto logs = ctl->layout().service_logs("hello");
    std::filesystem::create_directories(logs);
    std::ofstream(ctl->layout().console_log("hello", 1000, 1)) << "one\ntwo\n";
    std::ofstream(ctl->layout().console_log("hello", 2000, 2)) << "three\nfour\n";
    auto r = call("GET", "/v1/services/hello/logs", "", {{"tail", "3"}});
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "two\nthree\nfour\n");
    EXPECT_EQ(r.content_type.rfind("text/plain", 0), 0u);
    auto one = call("GET", "/v1/services/hello/logs", "", {{"replica", "1"}});
    EXPECT_EQ(one.body, "one\ntwo\n");
    auto bad = call("GET", "/v1/services/hello/logs", "", {{"tail", "0"}});
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(parsed(bad)["error"]["field"], "tail");
}

TEST_F(ApiTest, EventsAreNewestFirstAndLimited) {
    ASSERT_EQ(create("a", 1).status, 201);
    ASSERT_EQ(create("b", 2).status, 201);
    auto r = parsed(call("GET", "/v1/events", "", {{"limit", "1"}}));
    ASSERT_EQ(r["events"].size(), 1u);
    EXPECT_EQ(r["events"][0]["service"], "b");
    auto only_a = parsed(call("GET", "/v1/events", "", {{"service", "a"}}));
    for (auto &e : only_a["events"]) EXPECT_EQ(e["service"], "a");
    EXPECT_EQ(call("GET", "/v1/events", "", {{"limit", "x"}}).status, 400);
}

TEST_F(ApiTest, StatusCountsServicesByState) {
    ASSERT_EQ(create("hello").status, 201);
    auto s = parsed(call("GET", "/v1/status"));
    EXPECT_EQ(s["version"], "test");
    EXPECT_EQ(s["services_total"], 1);
    EXPECT_EQ(s["services"]["booting"], 1);
    EXPECT_EQ(s["schema_version"], latest_schema_version());
}

TEST_F(ApiTest, MetricsArePrometheusText) {
    (void)call("GET", "/v1/status");
    auto r = call("GET", "/metrics");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type.rfind("text/plain; version=0.0.4", 0), 0u);
    EXPECT_NE(r.body.find("wisp_api_requests_total{code=\"200\"} 1"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("# TYPE wisp_wake_latency_seconds histogram"), std::string::npos);
}

TEST_F(ApiTest, InvalidUtf8InStoredTextDoesNotBreakJson) {
    ASSERT_TRUE(store->append_event({0, 1, "x", {}, "crashed", "bad \xff\xfe bytes"}).ok());
    auto r = call("GET", "/v1/events");
    EXPECT_EQ(r.status, 200);
    EXPECT_NO_THROW((void)json::parse(r.body));
}

}  // namespace
