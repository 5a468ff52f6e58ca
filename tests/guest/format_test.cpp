// The guest's printf core (guest/runtime/src/format.c), compiled for the host and
// compared with the C library's snprintf on the same arguments.
#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <string>

#include "wisp/format.h"

// The format strings are runtime data in these helpers on purpose.
#pragma clang diagnostic ignored "-Wformat-nonliteral"
#pragma clang diagnostic ignored "-Wformat-security"

namespace {

template <typename... Args>
std::string ours(const char *fmt, Args... args) {
    char buf[1024];
    int n = wisp_snprintf(buf, sizeof buf, fmt, args...);
    EXPECT_EQ(n, static_cast<int>(std::string(buf).size())) << fmt;
    return buf;
}

template <typename... Args>
std::string libc(const char *fmt, Args... args) {
    char buf[1024];
    snprintf(buf, sizeof buf, fmt, args...);
    return buf;
}

#define EXPECT_SAME(...) EXPECT_EQ(ours(__VA_ARGS__), libc(__VA_ARGS__)) << #__VA_ARGS__

TEST(Format, IntegersMatchLibc) {
    for (int v : {0, 1, -1, 42, -42, 123456789, INT_MAX, INT_MIN}) {
        for (const char *fmt : {"%d", "%i", "%5d", "%-5d|", "%05d", "%+d", "% d", "%.3d", "%8.3d",
                                "%-8.3d|", "%+05d", "%.0d", "%x", "%X", "%#x", "%#X", "%o",
                                "%#o", "%u", "%08x", "%#010x", "%#.0o", "%hhd", "%hd", "%hhu"}) {
            EXPECT_SAME(fmt, v);
        }
    }
    EXPECT_SAME("%ld %lu %lx", LONG_MIN, ULONG_MAX, 0xdeadbeefcafeUL);
    EXPECT_SAME("%lld %llu", LLONG_MIN, ULLONG_MAX);
    EXPECT_SAME("%zu %zd %td %jd %ju", SIZE_MAX, (ssize_t)-5, (ptrdiff_t)-7, INTMAX_MIN, UINTMAX_MAX);
    EXPECT_SAME("%*d|%-*d|%.*d", 6, 42, 6, 42, 4, 42);
    EXPECT_SAME("%*d|", -6, 42);
}

TEST(Format, StringsCharsPointersAndPercentMatchLibc) {
    EXPECT_SAME("%s", "hello");
    EXPECT_SAME("[%10s][%-10s][%.3s][%10.2s]", "abc", "abc", "abcdef", "abcdef");
    EXPECT_SAME("%c%c%c", 'w', 'i', 's');
    EXPECT_SAME("[%3c][%-3c]", 'x', 'y');
    EXPECT_SAME("100%%");
    EXPECT_SAME("%p", reinterpret_cast<void *>(0x1234abcd));
    EXPECT_SAME("%p", static_cast<void *>(nullptr));
    EXPECT_SAME("%20p|", reinterpret_cast<void *>(0xffff));
    EXPECT_SAME("%s", static_cast<const char *>(nullptr));
}

TEST(Format, FloatsMatchLibc) {
    for (double v : {0.0, -0.0, 1.0, -1.5, 3.14159265358979, 2.675, 0.125, 0.1, 1e-7, 123456.789,
                     1e15, 99.995, 0.5, 1.5, 2.5, 9.9999999, 1234567890123.5}) {
        for (const char *fmt : {"%f", "%.0f", "%.1f", "%.2f", "%.3f", "%10.3f", "%-10.2f|", "%+f",
                                "%010.2f", "%#.0f", "%e", "%.2e", "%E", "%.0e", "%g", "%G",
                                "%.3g", "%10g", "%#g", "%.10g"}) {
            EXPECT_SAME(fmt, v);
        }
    }
    EXPECT_SAME("%f %F %e", 1.0 / 0.0, -1.0 / 0.0, 0.0 / 0.0 * 0 + __builtin_nan(""));
    EXPECT_SAME("%5.1f|%-8.3e|", 1e10, 6.02214076e23);
    EXPECT_SAME("%g %g %g %g", 1e-5, 1e-4, 123456.0, 1234567.0);
}

TEST(Format, TruncatesLikeSnprintfAndReportsTheFullLength) {
    char buf[8];
    memset(buf, 'x', sizeof buf);
    int n = wisp_snprintf(buf, sizeof buf, "%s-%d", "abcdef", 12345);
    EXPECT_EQ(n, 12);
    EXPECT_STREQ(buf, "abcdef-");
    EXPECT_EQ(wisp_snprintf(nullptr, 0, "%d", 123456), 6);
    char one[1] = {'x'};
    EXPECT_EQ(wisp_snprintf(one, 1, "abc"), 3);
    EXPECT_EQ(one[0], '\0');
}

TEST(Format, UnknownConversionsArePrintedAsWritten) {
    EXPECT_EQ(ours("a%yb"), "a%yb");
    EXPECT_EQ(ours("end%"), "end%");
}

}  // namespace
