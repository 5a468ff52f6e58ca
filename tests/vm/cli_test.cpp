// `wisp-vmm run` as a human (and the guest SDK's tests) use it: inside a network
// namespace, on a tap made there, console on stdout, exit code = halt status.
#include <gtest/gtest.h>

#include "wisp/test/capabilities.h"
#include "wisp/test/net.h"
#include "wisp/test/paths.h"
#include "wisp/test/process.h"

using wisp::test::run;

namespace {
// A namespace with a tap `wtap0` made inside it, as a user would set one up.
struct NamespaceWithTap {
    wisp::test::ScopedNetns ns{"cli"};
    std::string tap = "wtap0";
    NamespaceWithTap() {
        EXPECT_EQ(run({"ip", "-n", ns.name(), "tuntap", "add", "dev", tap, "mode", "tap"}).exit_code, 0);
        EXPECT_EQ(run({"ip", "-n", ns.name(), "link", "set", tap, "up"}).exit_code, 0);
    }
    // `wisp-vmm run --tap wtap0 <args>` inside the namespace.
    wisp::test::CommandResult wisp_vmm_run(std::vector<std::string> args) {
        std::vector<std::string> argv = {"ip", "netns", "exec", ns.name(),
                                         wisp::test::binary_path("wisp-vmm"), "run", "--tap", tap};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, 60);
    }
};
}  // namespace

TEST(RunCommand, BootsTheHelloGuestInANamespaceWithItsConsoleOnStdout) {
    WISP_REQUIRE_KVM();
    WISP_REQUIRE_NETNS();
    NamespaceWithTap net;
    auto r = net.wisp_vmm_run({"--image", wisp::test::image_path("vmtest_hello"), "--mem", "16M",
                               "--cmdline", "status=4", "--ip", "198.18.0.2", "--gateway-ip",
                               "198.18.0.1"});
    EXPECT_EQ(r.exit_code, 4) << r.output;
    EXPECT_NE(r.output.find("hello from a wisp guest"), std::string::npos) << r.output;
}

TEST(RunCommand, AHostileGuestGivesExitCode70AndItsReason) {
    WISP_REQUIRE_KVM();
    WISP_REQUIRE_NETNS();
    NamespaceWithTap net;
    auto r = net.wisp_vmm_run(
        {"--image", wisp::test::image_path("vmtest_hostile"), "--cmdline", "stack-overflow"});
    EXPECT_EQ(r.exit_code, 70) << r.output;
    EXPECT_NE(r.output.find("stack overflow"), std::string::npos) << r.output;
}

TEST(RunCommand, RejectsAMalformedImageWithAClearError) {
    WISP_REQUIRE_KVM();
    WISP_REQUIRE_NETNS();
    NamespaceWithTap net;
    auto r = net.wisp_vmm_run({"--image", wisp::test::binary_path("wisp-vmm")});
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("invalid guest image"), std::string::npos) << r.output;
}

TEST(ServeCommand, RefusesAControlFdThatIsNotASeqpacketSocket) {
    WISP_REQUIRE_KVM();
    // fd 0 of the child is /dev/null here, not a socket.
    auto r = wisp::test::run_shell(wisp::test::binary_path("wisp-vmm") +
                                       " serve --control-fd 0 </dev/null",
                                   30);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("not a SOCK_SEQPACKET socket"), std::string::npos) << r.output;
}
