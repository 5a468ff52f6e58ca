#include "wisp/result.h"

#include <gtest/gtest.h>

namespace {

wisp::Result<int> parse_positive(int v) {
    if (v <= 0) return wisp::invalid("value must be positive");
    return v;
}

wisp::Status double_check(int v) {
    WISP_RETURN_IF_ERROR(wisp::Status(parse_positive(v) ? wisp::Status() : wisp::invalid("nested")));
    return {};
}

TEST(Result, CarriesValueWhenOk) {
    auto r = parse_positive(5);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, 5);
}

TEST(Result, CarriesErrnoAndMessageWhenFailed) {
    auto r = parse_positive(-1);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_EQ(r.error().message, "value must be positive");
    EXPECT_NE(r.error().describe().find("Invalid argument"), std::string::npos);
}

TEST(Result, ErrnoErrorCapturesCurrentErrno) {
    errno = ENOENT;
    auto e = wisp::errno_error("open /nope");
    EXPECT_EQ(e.code, ENOENT);
    EXPECT_EQ(e.describe(), "open /nope: No such file or directory");
}

TEST(Result, ReturnIfErrorPropagatesTheError) {
    EXPECT_TRUE(double_check(1).ok());
    auto s = double_check(0);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "nested");
}

}  // namespace
