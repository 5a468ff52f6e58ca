// The CLI's parsing of sizes and durations, and its table layout.
#include "format.h"

#include <gtest/gtest.h>

namespace {

using namespace wisp::cli;

TEST(CliFormat, SizesAcceptMAndGSuffixesAndBareMiB) {
    EXPECT_EQ(*parse_size_mib("64"), 64u);
    EXPECT_EQ(*parse_size_mib("64M"), 64u);
    EXPECT_EQ(*parse_size_mib("64MiB"), 64u);
    EXPECT_EQ(*parse_size_mib("2G"), 2048u);
    EXPECT_EQ(*parse_size_mib("1GiB"), 1024u);
    for (const char *bad : {"", "M", "12Q", "-1", "1.5G", "64 M"})
        EXPECT_FALSE(parse_size_mib(bad).ok()) << bad;
}

TEST(CliFormat, DurationsAcceptMsSMH) {
    EXPECT_EQ(*parse_duration_ms("250"), 250u);
    EXPECT_EQ(*parse_duration_ms("250ms"), 250u);
    EXPECT_EQ(*parse_duration_ms("2s"), 2000u);
    EXPECT_EQ(*parse_duration_ms("5m"), 300000u);
    EXPECT_EQ(*parse_duration_ms("1h"), 3600000u);
    for (const char *bad : {"", "s", "2d", "1.5s", "-3s"})
        EXPECT_FALSE(parse_duration_ms(bad).ok()) << bad;
}

TEST(CliFormat, DurationsPrintCompactly) {
    EXPECT_EQ(format_duration_ms(250), "250ms");
    EXPECT_EQ(format_duration_ms(1000), "1s");
    EXPECT_EQ(format_duration_ms(1500), "1.5s");
    EXPECT_EQ(format_duration_ms(120000), "2m");
    EXPECT_EQ(format_duration_ms(7200000), "2.0h");
}

TEST(CliFormat, AgesAreRelative) {
    EXPECT_EQ(format_age(0, 1000), "-");
    EXPECT_EQ(format_age(1000, 6000), "5s ago");
    EXPECT_EQ(format_age(0 + 1, 1 + 3 * 3600 * 1000), "3h ago");
}

TEST(CliFormat, TableColumnsAlignWithoutTrailingSpaces) {
    auto t = render_table({{"NAME", "STATE"}, {"hello", "running"}, {"a", "b"}});
    EXPECT_EQ(t, "NAME   STATE\nhello  running\na      b\n");
}

}  // namespace
