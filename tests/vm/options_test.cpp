// Parsing of wisp-vmm's human-facing option values.
#include <gtest/gtest.h>

#include "wisp/vmm/options.h"

using namespace wisp::vmm;

TEST(Options, SizesAcceptUnitsAndRejectGarbage) {
    EXPECT_EQ(*parse_size("64M"), 64ull << 20);
    EXPECT_EQ(*parse_size("64MiB"), 64ull << 20);
    EXPECT_EQ(*parse_size("1G"), 1ull << 30);
    EXPECT_EQ(*parse_size("512k"), 512ull << 10);
    EXPECT_EQ(*parse_size("4096"), 4096u);
    EXPECT_FALSE(parse_size("").ok());
    EXPECT_FALSE(parse_size("M").ok());
    EXPECT_FALSE(parse_size("12X").ok());
    EXPECT_FALSE(parse_size("99999999999999999999").ok());
    EXPECT_FALSE(parse_size("17179869184G").ok());
}

TEST(Options, MacAndIpAddressesParseStrictly) {
    auto mac = parse_mac("02:77:69:73:70:01");
    ASSERT_TRUE(mac.ok());
    EXPECT_EQ((*mac)[1], 0x77);
    EXPECT_FALSE(parse_mac("02:77:69:73:70").ok());
    EXPECT_FALSE(parse_mac("02:77:69:73:70:01:02").ok());
    EXPECT_FALSE(parse_mac("zz:77:69:73:70:01").ok());
    auto v4 = parse_ip("198.18.0.2");
    ASSERT_TRUE(v4.ok());
    EXPECT_EQ(v4->family, 4);
    EXPECT_EQ(v4->bytes[3], 2);
    auto v6 = parse_ip("2001:db8::2");
    ASSERT_TRUE(v6.ok());
    EXPECT_EQ(v6->family, 6);
    EXPECT_FALSE(parse_ip("198.18.0").ok());
    EXPECT_FALSE(parse_ip("host").ok());
}
