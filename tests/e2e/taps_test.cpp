// The kernel-facing ports wispd implements itself: taps for replicas and the
// replay of buffered frames into a tap (what the monitor would read).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>

#include "wisp/test/capabilities.h"
#include "wisp/test/net.h"
#include "wisp/test/process.h"
#include "wispd/taps.h"

namespace {

using namespace wisp::wispd;
using namespace wisp::test;

TEST(WispdTaps, FactoryCreatesAnUpTapThatVanishesWithItsFd) {
    WISP_REQUIRE_NETNS();
    TunTapFactory factory("wtt%d");
    std::string name;
    {
        auto tap = factory.create();
        ASSERT_TRUE(tap.ok()) << tap.error().describe();
        name = tap->name;
        EXPECT_EQ(name.rfind("wtt", 0), 0u);
        EXPECT_EQ(static_cast<int>(if_nametoindex(name.c_str())), tap->ifindex);
        auto show = run({"ip", "-o", "link", "show", name});
        EXPECT_NE(show.output.find("UP"), std::string::npos) << show.output;
        auto second = factory.create();
        ASSERT_TRUE(second.ok());
        EXPECT_NE(second->name, name) << "the kernel picks a fresh name each time";
    }
    EXPECT_EQ(if_nametoindex(name.c_str()), 0u) << "tap must disappear with its fd";
}

TEST(WispdTaps, ReplayedFramesReachTheTapReaderInOrder) {
    WISP_REQUIRE_NETNS();
    ScopedTap tap("inj");
    auto injector = PacketSocketInjector::open();
    ASSERT_TRUE(injector.ok()) << injector.error().describe();

    // Ethernet frames with a local experimental EtherType, to tell them from the
    // kernel's own traffic on the new interface (IPv6 router solicitations...).
    auto frame = [](uint8_t n) {
        std::vector<uint8_t> f = {0x02, 0x77, 0x73, 0, 0, 1, 0x02, 0x00, 0x5e, 0, 0, 2, 0x88, 0xb5};
        for (int i = 0; i < 46; ++i) f.push_back(n);
        return f;
    };
    ASSERT_TRUE((*injector)->inject(tap.ifindex(), {frame(1), frame(2), frame(3)}).ok());

    std::vector<uint8_t> got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got.size() < 3 && std::chrono::steady_clock::now() < deadline) {
        pollfd p{tap.fd(), POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        uint8_t buf[2048];
        ssize_t n = read(tap.fd(), buf, sizeof buf);
        if (n >= 15 && buf[12] == 0x88 && buf[13] == 0xb5) got.push_back(buf[14]);
    }
    EXPECT_EQ(got, (std::vector<uint8_t>{1, 2, 3}));
}

TEST(WispdTaps, RuntFramesAreRefused) {
    WISP_REQUIRE_NETNS();
    ScopedTap tap("inj");
    auto injector = PacketSocketInjector::open();
    ASSERT_TRUE(injector.ok());
    auto st = (*injector)->inject(tap.ifindex(), {{1, 2, 3}});
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, EINVAL);
}

TEST(WispdTaps, PrimaryAddressOfAnInterface) {
    WISP_REQUIRE_NETNS();
    ScopedVeth veth("addr");
    EXPECT_EQ(primary_ipv4_address(veth.host()).error().code, EADDRNOTAVAIL);
    ASSERT_EQ(run({"ip", "addr", "add", "198.18.77.1/32", "dev", veth.host()}).exit_code, 0);
    auto a = primary_ipv4_address(veth.host());
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(*a, "198.18.77.1");
}

}  // namespace
