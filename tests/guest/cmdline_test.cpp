// Command-line parsing for guests (guest/runtime/src/cmdline.c), host-compiled.
#include <gtest/gtest.h>

#include <string>

#include "wisp/cmdline.h"

namespace {

std::string find(const char *cmdline, const char *key) {
    char buf[64];
    long n = wisp_cmdline_find(cmdline, key, buf, sizeof buf);
    return n < 0 ? "<absent>" : std::string(buf);
}

TEST(Cmdline, FindsKeyValueWordsAndBareFlags) {
    const char *line = "  init_ms=2000 verbose  max_bytes=16M\tname=a=b ";
    EXPECT_EQ(find(line, "init_ms"), "2000");
    EXPECT_EQ(find(line, "verbose"), "");
    EXPECT_EQ(find(line, "max_bytes"), "16M");
    EXPECT_EQ(find(line, "name"), "a=b");
    EXPECT_EQ(find(line, "init"), "<absent>") << "a prefix of a key is not the key";
    EXPECT_EQ(find(line, "ms"), "<absent>");
    EXPECT_EQ(find("", "x"), "<absent>");
}

TEST(Cmdline, TheLastOccurrenceWins) { EXPECT_EQ(find("a=1 a=2", "a"), "2"); }

TEST(Cmdline, LongValuesAreTruncatedButTheirLengthIsReported) {
    char buf[4];
    EXPECT_EQ(wisp_cmdline_find("k=abcdefgh", "k", buf, sizeof buf), 8);
    EXPECT_STREQ(buf, "abc");
}

TEST(Cmdline, NumbersAcceptDecimalHexAndSizeSuffixes) {
    uint64_t v = 0;
    EXPECT_EQ(wisp_parse_u64("2000", &v), 0);
    EXPECT_EQ(v, 2000u);
    EXPECT_EQ(wisp_parse_u64("0x1F", &v), 0);
    EXPECT_EQ(v, 31u);
    EXPECT_EQ(wisp_parse_u64("16M", &v), 0);
    EXPECT_EQ(v, 16u << 20);
    EXPECT_EQ(wisp_parse_u64("4k", &v), 0);
    EXPECT_EQ(v, 4096u);
    EXPECT_EQ(wisp_parse_u64("2G", &v), 0);
    EXPECT_EQ(v, 2ull << 30);
    EXPECT_EQ(wisp_parse_u64("18446744073709551615", &v), 0);
    EXPECT_EQ(v, UINT64_MAX);
}

TEST(Cmdline, GarbageAndOverflowAreRejected) {
    uint64_t v = 7;
    for (const char *bad : {"", "x", "12x", "0x", "-1", "1MB", "18446744073709551616", "17179869184G"})
        EXPECT_EQ(wisp_parse_u64(bad, &v), -1) << bad;
    EXPECT_EQ(v, 7u);
}

}  // namespace
