// The guest runtime inside a real guest: a self-test image exercises malloc,
// printf, C++ support, clocks and the command line, and dies in named ways on
// request.
#include <time.h>

#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "guest_fixture.h"
#include "wisp/test/capabilities.h"

namespace wisp::test {
namespace {

TEST(GuestRuntime, SelfTestPassesInsideARealGuest) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    auto r = run_guest_to_exit({"runtime_selftest", "mode=test number=3M"});
    EXPECT_EQ(r.exit_code, 0) << r.console;
    EXPECT_NE(r.console.find("SUCCESS"), std::string::npos) << r.console;
    EXPECT_EQ(r.console.find("FAIL"), std::string::npos) << r.console;
    // The guest's wall clock (calibrated TSC) agrees with the host's.
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.console, m, std::regex("wall_s=([0-9]+)")));
    long long guest_s = std::stoll(m[1]);
    EXPECT_NEAR(static_cast<double>(guest_s), static_cast<double>(time(nullptr)), 60.0);
}

struct Death {
    const char *which;
    const char *message;  // what the instance log must say
};

TEST(GuestRuntime, FatalErrorsEndTheVmWithTheirMessage) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    const Death deaths[] = {
        {"assert", "assertion failed: answer == 42"},
        {"oom", "out of memory: operator new"},
        {"double_free", "double free"},
        {"bad_number", "cmdline: number=x is not a number"},
    };
    for (const auto &d : deaths) {
        std::string cmdline = std::string("case=") + d.which + " number=x";
        auto r = run_guest_to_exit({"runtime_selftest", cmdline});
        EXPECT_NE(r.exit_code, 0) << d.which;
        EXPECT_NE(r.console.find(d.message), std::string::npos) << d.which << ":\n" << r.console;
        EXPECT_EQ(r.console.find("SUCCESS"), std::string::npos) << d.which;
    }
}

}  // namespace
}  // namespace wisp::test
