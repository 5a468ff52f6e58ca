// The kernel-facing ports wispd implements itself: taps for replicas and the
// replay of buffered frames into a tap (what the monitor would read).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>

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

TEST(WispdTaps, FactoryTapsKnowTheirMacAndKeepIpv6Off) {
    WISP_REQUIRE_NETNS();
    TunTapFactory factory("wtt%d");
    auto tap = factory.create();
    ASSERT_TRUE(tap.ok()) << tap.error().describe();
    auto addr = run({"cat", "/sys/class/net/" + tap->name + "/address"});
    EXPECT_EQ(addr.output.substr(0, 17), tap->mac.to_string());
    auto v6 = run({"cat", "/proc/sys/net/ipv6/conf/" + tap->name + "/disable_ipv6"});
    if (v6.exit_code == 0) EXPECT_EQ(v6.output.substr(0, 1), "1") << "the host must not talk to guests";
}

TEST(WispdTaps, ReplayedPacketsReachTheTapReaderInOrderAddressedToTheGuest) {
    WISP_REQUIRE_NETNS();
    ScopedTap tap("inj");
    auto injector = PacketSocketInjector::open();
    ASSERT_TRUE(injector.ok()) << injector.error().describe();

    const MacAddress guest{{0x02, 0x77, 0x73, 0, 0, 9}};
    const MacAddress gateway{{0x02, 0x00, 0x5e, 0, 0, 2}};
    // IPv4-looking packets (version nibble 4); only their bytes matter here.
    auto packet = [](uint8_t n) {
        std::vector<uint8_t> p = {0x45, 0x00};
        for (int i = 0; i < 40; ++i) p.push_back(n);
        return p;
    };
    ReplayTarget to{tap.ifindex(), guest, gateway};
    ASSERT_TRUE((*injector)->inject(to, {packet(1), packet(2), packet(3)}).ok());

    std::vector<uint8_t> got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got.size() < 3 && std::chrono::steady_clock::now() < deadline) {
        pollfd p{tap.fd(), POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        uint8_t buf[2048];
        ssize_t n = read(tap.fd(), buf, sizeof buf);
        // Skip the kernel's own traffic on the new interface (IPv6 solicitations).
        if (n < 17 || buf[12] != 0x08 || buf[13] != 0x00) continue;
        EXPECT_EQ(std::vector<uint8_t>(buf, buf + 6), std::vector<uint8_t>(guest.bytes.begin(), guest.bytes.end()));
        EXPECT_EQ(std::vector<uint8_t>(buf + 6, buf + 12),
                  std::vector<uint8_t>(gateway.bytes.begin(), gateway.bytes.end()));
        EXPECT_EQ(n, 14 + 42);
        got.push_back(buf[16]);
    }
    EXPECT_EQ(got, (std::vector<uint8_t>{1, 2, 3}));
}

TEST(WispdTaps, NonIpPacketsAreRefused) {
    WISP_REQUIRE_NETNS();
    ScopedTap tap("inj");
    auto injector = PacketSocketInjector::open();
    ASSERT_TRUE(injector.ok());
    ReplayTarget to{tap.ifindex(), {}, {}};
    for (auto bad : {std::vector<uint8_t>{}, std::vector<uint8_t>{0x12, 2, 3}}) {
        auto st = (*injector)->inject(to, {bad});
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.error().code, EINVAL);
    }
}

TEST(WispdTaps, PoolKeepsPreparedTapsReadyAndRefillsAfterATake) {
    WISP_REQUIRE_NETNS();
    auto loop = EventLoop::create({});
    ASSERT_TRUE(loop.ok());
    BackgroundWorker worker;
    std::atomic<int> prepared{0};
    PreparedTapPool pool(
        2,
        [&](const Tap &t) {
            EXPECT_GT(t.ifindex, 0);
            ++prepared;
            return wisp::Status{};
        },
        **loop, worker, "wtp%d");
    auto wait_for = [&](size_t ready) {
        auto deadline = (*loop)->now_ns() + 10'000'000'000ull;
        std::function<void()> check = [&] {
            if (pool.ready() >= ready || (*loop)->now_ns() > deadline) (*loop)->stop();
            else (*loop)->schedule_after_ms(5, check);
        };
        (*loop)->schedule_after_ms(0, check);
        ASSERT_TRUE((*loop)->run().ok());
    };
    pool.fill();
    wait_for(2);
    ASSERT_EQ(pool.ready(), 2u);
    EXPECT_EQ(prepared.load(), 2);
    auto tap = pool.create();
    ASSERT_TRUE(tap.ok());
    EXPECT_TRUE(tap->prepared);
    EXPECT_EQ(tap->name.rfind("wtp", 0), 0u);
    EXPECT_EQ(pool.ready(), 1u);
    wait_for(2);
    EXPECT_EQ(pool.ready(), 2u) << "the pool refills in the background";
    EXPECT_EQ(prepared.load(), 3);
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
