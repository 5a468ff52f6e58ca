// The example apps in wisp-vmm on a tap, answering real curl in a test namespace.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <regex>
#include <string>

#include "guest_fixture.h"
#include "wisp/test/capabilities.h"
#include "wisp/test/net.h"

namespace wisp::test {
namespace {

TEST(HelloApp, AnswersGetRootWithItsGreeting) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    auto r = curl(guest, "/");
    EXPECT_EQ(r.curl_exit, 0) << r.curl_output;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "hello from wisp\n");
    EXPECT_NE(guest.console().find("hello: listening on port 80"), std::string::npos);
}

TEST(HelloApp, AnswersUnknownPathsWith404AndOtherMethodsWith405) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    EXPECT_EQ(curl(guest, "/nope").status, 404);
    auto post = curl(guest, "/", {"-X", "POST", "--data", "x"});
    EXPECT_EQ(post.status, 405);
    auto head = curl(guest, "/", {"-I"});
    EXPECT_EQ(head.status, 200);
    EXPECT_NE(head.body.find("Content-Length: 16"), std::string::npos) << head.body;
}

TEST(HelloApp, ListensOnThePortFromItsCommandLine) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", "port=8080"});
    auto r = guest.run_in_ns({"curl", "-sS", "--max-time", "30",
                              std::string("http://") + RunningGuest::kGuestIp + ":8080/"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "hello from wisp\n");
}

TEST(HelloApp, SendsA1MiBResponseIntact) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"hello", ""});
    auto r = curl(guest, "/bytes/1048576");
    ASSERT_EQ(r.status, 200) << r.curl_output;
    ASSERT_EQ(r.body.size(), 1048576u);
    EXPECT_TRUE(r.body == pattern_bytes(1048576)) << "1 MiB body differs from the pattern";
}

TEST(HelloApp, AnswersOverIpv6) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    GuestSpec spec{"hello", ""};
    spec.ipv6 = true;
    RunningGuest guest(spec);
    auto r = curl(guest, "/");
    EXPECT_EQ(r.status, 200) << r.curl_output;
    EXPECT_EQ(r.body, "hello from wisp\n");
    auto big = curl(guest, "/bytes/1048576");
    EXPECT_EQ(big.status, 200);
    EXPECT_TRUE(big.body == pattern_bytes(1048576)) << "1 MiB over IPv6 differs from the pattern";
}

TEST(KvApp, StoresAndReturnsA64KiBValueIntact) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"kv", ""});
    ScopedTempDir dir("kv");
    std::string value(64 * 1024, '\0');
    std::mt19937 rng(7);
    for (char &c : value) c = static_cast<char>(rng());
    std::string file = dir.path() + "/value";
    std::ofstream(file, std::ios::binary).write(value.data(), static_cast<long>(value.size()));

    auto put = curl(guest, "/kv/blob", {"-X", "PUT", "--data-binary", "@" + file});
    EXPECT_EQ(put.status, 201) << put.curl_output << put.body;
    auto get = curl(guest, "/kv/blob");
    EXPECT_EQ(get.status, 200);
    EXPECT_EQ(get.body.size(), value.size());
    EXPECT_TRUE(get.body == value) << "64 KiB value came back different";

    auto replace = curl(guest, "/kv/blob", {"-X", "PUT", "--data-binary", "small"});
    EXPECT_EQ(replace.status, 204);
    EXPECT_EQ(curl(guest, "/kv/blob").body, "small");
    EXPECT_EQ(curl(guest, "/kv/blob", {"-X", "DELETE"}).status, 204);
    EXPECT_EQ(curl(guest, "/kv/blob").status, 404);
    EXPECT_EQ(curl(guest, "/kv/blob", {"-X", "DELETE"}).status, 404);
    EXPECT_EQ(curl(guest, "/kv/blob", {"-X", "POST", "--data", "x"}).status, 405);
}

TEST(KvApp, RefusesWritesBeyondItsMemoryBudgetWithAClearError) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"kv", "kv_max_bytes=200K kv_max_value=64K"});
    std::string chunk(50 * 1024, 'v');
    int stored = 0;
    HttpResult full;
    for (int i = 0; i < 10; i++) {
        full = curl(guest, "/kv/k" + std::to_string(i), {"-X", "PUT", "--data-binary", chunk});
        if (full.status != 201) break;
        stored++;
    }
    EXPECT_EQ(stored, 3) << "3 x 50 KiB fit a 200 KiB budget, a 4th does not";
    EXPECT_EQ(full.status, 507);
    EXPECT_NE(full.body.find("kv store full"), std::string::npos) << full.body;
    // The store keeps working: earlier values are intact, deleting frees room.
    EXPECT_EQ(curl(guest, "/kv/k0").body, chunk);
    EXPECT_EQ(curl(guest, "/kv/k1", {"-X", "DELETE"}).status, 204);
    EXPECT_EQ(curl(guest, "/kv/k9", {"-X", "PUT", "--data-binary", chunk}).status, 201);
    // A value above kv_max_value is refused by the HTTP helper before it is sent.
    std::string big(65 * 1024 + 1, 'b');
    EXPECT_EQ(curl(guest, "/kv/big", {"-X", "PUT", "--data-binary", big}).status, 413);
    auto summary = curl(guest, "/kv");
    EXPECT_EQ(json_number(summary.body, "keys"), 3u) << summary.body;
}

TEST(SlowstartApp, RunsItsInitialisationBeforeReadyAndReportsIt) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    RunningGuest guest({"slowstart", "init_ms=400 table_kb=1024"});
    auto r = curl(guest, "/", {"-D", "-"});
    ASSERT_EQ(r.status, 200) << r.curl_output;
    EXPECT_GE(json_number(r.body, "init_ms"), 400u) << r.body;
    EXPECT_GE(json_number(r.body, "rounds"), 1u);
    EXPECT_EQ(json_number(r.body, "init_runs"), 1u);
    EXPECT_EQ(json_number(r.body, "restore_count"), 0u);
    EXPECT_EQ(json_number(r.body, "table_bytes"), 1024u * 1024);
    EXPECT_NE(r.body.find("\"restored\":false"), std::string::npos);
    EXPECT_NE(r.curl_output.find("X-Wisp-Init-Runs: 1"), std::string::npos) << r.curl_output;
    // The table it serves a checksum of is still in memory, unchanged.
    auto verify = curl(guest, "/verify");
    EXPECT_NE(verify.body.find("\"intact\":true"), std::string::npos) << verify.body;
    EXPECT_NE(guest.console().find("slowstart: init took"), std::string::npos);
}

}  // namespace
}  // namespace wisp::test
