// Validation of API input: every rule names the field it is about.
#include "wispd/spec.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "wisp/test/net.h"

namespace {

using namespace wisp::wispd;
using nlohmann::json;
using wisp::test::ScopedTempDir;

class SpecTest : public ::testing::Test {
protected:
    void SetUp() override {
        image = dir.path() + "/app.elf";
        std::ofstream(image) << "\x7f" "ELF-not-really-but-the-magic-is-right";
        std::ofstream(dir.path() + "/notelf") << "#!/bin/sh\n";
    }
    json base() const { return {{"name", "hello"}, {"image", image}, {"port", 8080}}; }
    wisp::Result<ServiceSpec> parse(const json &body) {
        return parse_service_spec(body, [] { return wisp::Result<std::string>("198.18.0.1"); });
    }
    // The field a rejected body is blamed on.
    std::string blamed(const json &body) {
        auto r = parse(body);
        if (r.ok()) return "<accepted>";
        return error_field(r.error());
    }
    json with(const std::string &key, json value) const {
        json b = base();
        b[key] = std::move(value);
        return b;
    }

    ScopedTempDir dir{"spec"};
    std::string image;
};

TEST_F(SpecTest, MinimalBodyGetsTheDefaults) {
    auto r = parse(base());
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->name, "hello");
    EXPECT_EQ(r->memory_mib, kDefaultMemoryMib);
    EXPECT_EQ(r->protocol, Protocol::kTcp);
    EXPECT_EQ(r->vip, "198.18.0.1");
    EXPECT_EQ(r->idle_timeout_ms, 1000u);
    EXPECT_FALSE(r->stateful);
    EXPECT_EQ(r->min_replicas, 0u);
    EXPECT_EQ(r->max_replicas, 1u);
}

TEST_F(SpecTest, EveryFieldIsRead) {
    json b = base();
    b.update({{"memory_mib", 256}, {"protocol", "udp"}, {"vip", "2001:db8::7"},
              {"cmdline", "--x 1"}, {"idle_timeout_ms", 250}, {"stateful", false},
              {"min_replicas", 1}, {"max_replicas", 4}, {"target_per_replica", 20}});
    auto r = parse(b);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->memory_mib, 256u);
    EXPECT_EQ(r->protocol, Protocol::kUdp);
    EXPECT_EQ(r->vip, "2001:db8::7");
    EXPECT_EQ(r->cmdline, "--x 1");
    EXPECT_EQ(r->idle_timeout_ms, 250u);
    EXPECT_FALSE(r->stateful);
    EXPECT_EQ(r->max_replicas, 4u);
    EXPECT_EQ(r->target_per_replica, 20u);
    b.update({{"stateful", true}, {"max_replicas", 1}});
    r = parse(b);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->stateful);
}

TEST_F(SpecTest, AStatefulServiceRunsAtMostOneReplica) {
    json b = base();
    b.update({{"stateful", true}, {"min_replicas", 0}, {"max_replicas", 2}});
    auto r = parse(b);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("max_replicas"), std::string::npos) << r.error().message;
}

TEST_F(SpecTest, RequiredFieldsAreNamedWhenMissing) {
    for (const char *f : {"name", "image", "port"}) {
        json b = base();
        b.erase(f);
        EXPECT_EQ(blamed(b), f);
    }
}

TEST_F(SpecTest, NamesAreShortLowercaseDnsLabels) {
    for (const char *bad : {"", "Hello", "1abc", "a_b", "a.b", "abc-", "a b"})
        EXPECT_EQ(blamed(with("name", bad)), "name") << bad;
    EXPECT_EQ(blamed(with("name", std::string(64, 'a'))), "name");
    EXPECT_EQ(blamed(with("name", std::string(63, 'a'))), "<accepted>");
    EXPECT_EQ(blamed(with("name", "a-1-b")), "<accepted>");
    EXPECT_EQ(blamed(with("name", 5)), "name");
}

TEST_F(SpecTest, ImageMustBeAnExistingAbsoluteElfFile) {
    EXPECT_EQ(blamed(with("image", "app.elf")), "image");
    EXPECT_EQ(blamed(with("image", dir.path() + "/missing.elf")), "image");
    EXPECT_EQ(blamed(with("image", dir.path())), "image");
    EXPECT_EQ(blamed(with("image", dir.path() + "/notelf")), "image");
    auto r = parse(with("image", dir.path() + "/missing.elf"));
    EXPECT_NE(r.error().message.find("does not exist"), std::string::npos);
}

TEST_F(SpecTest, PortMustBeAnIntegerInRange) {
    for (json bad : {json(0), json(65536), json(-1), json("80"), json(80.5), json(nullptr)})
        EXPECT_EQ(blamed(with("port", bad)), "port") << bad.dump();
    EXPECT_EQ(blamed(with("port", 65535)), "<accepted>");
}

TEST_F(SpecTest, MemoryIsBetween8MiBAnd4GiB) {
    EXPECT_EQ(blamed(with("memory_mib", 7)), "memory_mib");
    EXPECT_EQ(blamed(with("memory_mib", 4097)), "memory_mib");
    EXPECT_EQ(blamed(with("memory_mib", 8)), "<accepted>");
    EXPECT_EQ(blamed(with("memory_mib", 4096)), "<accepted>");
}

TEST_F(SpecTest, ProtocolIsTcpOrUdp) {
    EXPECT_EQ(blamed(with("protocol", "sctp")), "protocol");
    EXPECT_EQ(blamed(with("protocol", "TCP")), "protocol");
}

TEST_F(SpecTest, VipMustBeAUsableUnicastAddress) {
    for (const char *bad : {"not-an-ip", "0.0.0.0", "255.255.255.255", "224.0.0.1", "127.0.0.1",
                            "::", "::1", "ff02::1", "198.18.0.256"})
        EXPECT_EQ(blamed(with("vip", bad)), "vip") << bad;
}

TEST_F(SpecTest, MissingVipWithoutADefaultNamesTheVip) {
    auto r = parse_service_spec(base(), [] {
        return wisp::Result<std::string>(wisp::Error{EADDRNOTAVAIL, "uplink eth0 has no IPv4 address"});
    });
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(error_field(r.error()), "vip");
    EXPECT_NE(r.error().message.find("uplink eth0 has no IPv4 address"), std::string::npos);
}

TEST_F(SpecTest, IdleTimeoutHasBounds) {
    EXPECT_EQ(blamed(with("idle_timeout_ms", 9)), "idle_timeout_ms");
    EXPECT_EQ(blamed(with("idle_timeout_ms", 86400001)), "idle_timeout_ms");
    EXPECT_EQ(blamed(with("idle_timeout_ms", 10)), "<accepted>");
}

TEST_F(SpecTest, ReplicaBoundsAndMinNotAboveMax) {
    EXPECT_EQ(blamed(with("max_replicas", 0)), "max_replicas");
    EXPECT_EQ(blamed(with("max_replicas", 65)), "max_replicas");
    json b = base();
    b["min_replicas"] = 3;
    b["max_replicas"] = 2;
    EXPECT_EQ(blamed(b), "min_replicas");
    EXPECT_EQ(blamed(with("target_per_replica", -5)), "target_per_replica");
}

TEST_F(SpecTest, CmdlineIsBoundedAndPrintable) {
    EXPECT_EQ(blamed(with("cmdline", std::string(1025, 'x'))), "cmdline");
    EXPECT_EQ(blamed(with("cmdline", "a\nb")), "cmdline");
    EXPECT_EQ(blamed(with("stateful", "yes")), "stateful");
}

TEST_F(SpecTest, UnknownFieldsAreRefusedByName) {
    EXPECT_EQ(blamed(with("memory", 64)), "memory");
    EXPECT_EQ(blamed(json::array()), "body");
}

TEST_F(SpecTest, PatchChangesOnlySettingsAndKeepsTheRest) {
    ServiceSettings current{1000, 0, 1, 0};
    auto r = parse_settings_patch({{"idle_timeout_ms", 3000}, {"max_replicas", 5}}, current);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->idle_timeout_ms, 3000u);
    EXPECT_EQ(r->max_replicas, 5u);
    EXPECT_EQ(r->min_replicas, 0u);

    auto fixed = parse_settings_patch({{"port", 81}}, current);
    ASSERT_FALSE(fixed.ok());
    EXPECT_EQ(error_field(fixed.error()), "port");
    EXPECT_NE(fixed.error().message.find("cannot be changed"), std::string::npos);
    auto min_over = parse_settings_patch({{"min_replicas", 2}}, current);
    EXPECT_EQ(error_field(min_over.error()), "min_replicas");
    EXPECT_EQ(error_field(parse_settings_patch(json::object(), current).error()), "body");
}

TEST_F(SpecTest, ScalePinsMinAndMax) {
    ServiceSettings current{1000, 0, 1, 0};
    auto r = parse_scale({{"replicas", 3}}, current);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->min_replicas, 3u);
    EXPECT_EQ(r->max_replicas, 3u);
    auto zero = parse_scale({{"replicas", 0}}, current);
    EXPECT_EQ(zero->min_replicas, 0u);
    EXPECT_EQ(zero->max_replicas, 1u) << "0 returns to on-demand wakes";
    EXPECT_EQ(error_field(parse_scale({{"replicas", 65}}, current).error()), "replicas");
    EXPECT_EQ(error_field(parse_scale(json::object(), current).error()), "replicas");
}

}  // namespace
