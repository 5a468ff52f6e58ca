// `wisp-vmm run` as a human (and the guest SDK's tests) use it: inside a network
// namespace, on a tap made there, console on stdout, exit code = halt status.
#include <gtest/gtest.h>

#include "wisp/test/capabilities.h"
#include "wisp/test/net.h"
#include "wisp/test/paths.h"
#include "wisp/test/process.h"

using wisp::test::run;

TEST(RunCommand, BootsTheHelloGuestInANamespaceWithItsConsoleOnStdout) {
    WISP_REQUIRE_KVM();
    WISP_REQUIRE_NETNS();
    wisp::test::ScopedNetns ns("cli");
    std::string tap = "wtap0";
    ASSERT_EQ(run({"ip", "-n", ns.name(), "tuntap", "add", "dev", tap, "mode", "tap"}).exit_code, 0);
    ASSERT_EQ(run({"ip", "-n", ns.name(), "link", "set", tap, "up"}).exit_code, 0);
    auto r = run({"ip", "netns", "exec", ns.name(), wisp::test::binary_path("wisp-vmm"), "run",
                  "--image", wisp::test::image_path("vmtest_hello"), "--tap", tap, "--mem", "16M",
                  "--cmdline", "status=4", "--ip", "198.18.0.2", "--gateway-ip", "198.18.0.1"},
                 60);
    EXPECT_EQ(r.exit_code, 4) << r.output;
    EXPECT_NE(r.output.find("hello from a wisp guest"), std::string::npos) << r.output;
}

TEST(RunCommand, AHostileGuestGivesExitCode70AndItsReason) {
    WISP_REQUIRE_KVM();
    WISP_REQUIRE_NETNS();
    wisp::test::ScopedNetns ns("cli");
    std::string tap = "wtap0";
    ASSERT_EQ(run({"ip", "-n", ns.name(), "tuntap", "add", "dev", tap, "mode", "tap"}).exit_code, 0);
    auto r = run({"ip", "netns", "exec", ns.name(), wisp::test::binary_path("wisp-vmm"), "run",
                  "--image", wisp::test::image_path("vmtest_hostile"), "--tap", tap, "--cmdline",
                  "stack-overflow"},
                 60);
    EXPECT_EQ(r.exit_code, 70) << r.output;
    EXPECT_NE(r.output.find("stack overflow"), std::string::npos) << r.output;
}

TEST(RunCommand, RejectsAMalformedImageWithAClearError) {
    WISP_REQUIRE_KVM();
    WISP_REQUIRE_NETNS();
    wisp::test::ScopedNetns ns("cli");
    auto r = run({"ip", "netns", "exec", ns.name(), wisp::test::binary_path("wisp-vmm"), "run",
                  "--image", wisp::test::binary_path("wisp-vmm"), "--tap", "wtap1"},
                 60);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("invalid guest image"), std::string::npos) << r.output;
}
