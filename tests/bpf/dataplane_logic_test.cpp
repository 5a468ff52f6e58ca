// The data plane's pure logic, without the kernel: address and MAC handling, flow
// keys, rendezvous replica selection (the same code the XDP program runs), and
// building replay frames from captured ones.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include "wisp/dataplane/frames.h"
#include "wisp/dataplane/selection.h"
#include "wisp/dataplane/types.h"
#include "wisp/test/packet.h"

namespace {

using namespace wisp::dataplane;

IpAddress ip(const char *text) {
    auto a = IpAddress::parse(text);
    EXPECT_TRUE(a.ok()) << text;
    return a.ok() ? *a : IpAddress();
}

// Flow keys of `n` clients of one service, varied by address and port.
std::vector<wisp_flow_key> client_flows(size_t n) {
    std::vector<wisp_flow_key> keys;
    for (size_t i = 0; i < n; i++) {
        uint32_t addr = htonl(0xc6120000u | static_cast<uint32_t>(i / 1000 + 2));  // 198.18.x.x
        keys.push_back(make_flow_key(IpAddress::from_ipv4(addr),
                                     static_cast<uint16_t>(10000 + i % 1000), ip("198.19.0.1"),
                                     8080, Protocol::tcp));
    }
    return keys;
}

TEST(DataplaneTypes, Ipv4AddressesAreStoredIpv4MappedAndPrintedBack) {
    IpAddress a = ip("198.18.0.1");
    EXPECT_TRUE(a.is_ipv4());
    const std::array<uint8_t, 16> expected = {0, 0, 0,    0,    0,   0,  0, 0,
                                              0, 0, 0xff, 0xff, 198, 18, 0, 1};
    EXPECT_EQ(a.bytes(), expected);
    EXPECT_EQ(a.to_string(), "198.18.0.1");
    EXPECT_EQ(ntohl(a.ipv4()), 0xc6120001u);
}

TEST(DataplaneTypes, Ipv6AddressesRoundTripAndJunkIsRejected) {
    IpAddress a = ip("2001:db8::1");
    EXPECT_FALSE(a.is_ipv4());
    EXPECT_EQ(a.to_string(), "2001:db8::1");
    EXPECT_FALSE(IpAddress::parse("198.18.0.256").ok());
    EXPECT_FALSE(IpAddress::parse("").ok());
    EXPECT_FALSE(IpAddress::parse("example.com").ok());
}

TEST(DataplaneTypes, MacAddressesRoundTripAndMalformedOnesAreRejected) {
    auto mac = parse_mac("02:0a:FF:00:10:9c");
    ASSERT_TRUE(mac.ok());
    EXPECT_EQ(format_mac(*mac), "02:0a:ff:00:10:9c");
    EXPECT_FALSE(parse_mac("02:0a:ff:00:10").ok());
    EXPECT_FALSE(parse_mac("02-0a-ff-00-10-9c").ok());
    EXPECT_FALSE(parse_mac("02:0a:ff:00:10:9g").ok());
}

TEST(DataplaneTypes, EveryStatisticHasADistinctName) {
    std::set<std::string> names;
    for (int i = 0; i < WISP_STAT_MAX; i++) {
        std::string name = stat_name(static_cast<wisp_stat>(i));
        EXPECT_NE(name, "unknown") << i;
        names.insert(name);
    }
    EXPECT_EQ(names.size(), size_t{WISP_STAT_MAX});
}

TEST(FlowKeys, CarryPortsInNetworkOrderAndZeroPadding) {
    wisp_flow_key k = make_flow_key(ip("198.18.0.2"), 40000, ip("198.18.0.1"), 8080, Protocol::udp);
    EXPECT_EQ(k.sport, htons(40000));
    EXPECT_EQ(k.dport, htons(8080));
    EXPECT_EQ(k.proto, 17);
    EXPECT_EQ(k.pad[0] | k.pad[1] | k.pad[2], 0);
    EXPECT_EQ(std::memcmp(k.daddr, ip("198.18.0.1").bytes().data(), 16), 0);
}

TEST(ReplicaSelection, NoReadyReplicaMeansNone) {
    auto keys = client_flows(1);
    EXPECT_EQ(pick_replica(keys[0], {}), uint32_t{WISP_REPLICA_NONE});
    const uint32_t only_empty[] = {WISP_REPLICA_NONE};
    EXPECT_EQ(pick_replica(keys[0], only_empty), uint32_t{WISP_REPLICA_NONE});
}

TEST(ReplicaSelection, SpreadsNewFlowsEvenly) {
    const std::vector<uint32_t> ready = {3, 9, 10, 41};
    std::map<uint32_t, int> load;
    auto keys = client_flows(20000);
    for (auto &k : keys) load[pick_replica(k, ready)]++;
    ASSERT_EQ(load.size(), ready.size());
    for (auto [id, n] : load) {
        EXPECT_GT(n, 5000 * 0.9) << "replica " << id;
        EXPECT_LT(n, 5000 * 1.1) << "replica " << id;
    }
}

TEST(ReplicaSelection, DoesNotDependOnSlotOrder) {
    std::vector<uint32_t> ready = {5, 1, 7, 2};
    std::vector<uint32_t> shuffled = {7, 2, 5, 1};
    for (auto &k : client_flows(2000)) EXPECT_EQ(pick_replica(k, ready), pick_replica(k, shuffled));
}

TEST(ReplicaSelection, AddingAReplicaMovesFlowsOnlyToIt) {
    std::vector<uint32_t> before = {1, 2, 3, 4}, after = {1, 2, 3, 4, 5};
    auto keys = client_flows(20000);
    int moved = 0;
    for (auto &k : keys) {
        uint32_t a = pick_replica(k, before), b = pick_replica(k, after);
        if (a != b) {
            EXPECT_EQ(b, 5u) << "a flow moved between two existing replicas";
            moved++;
        }
    }
    // The newcomer takes its fair fifth, no more.
    EXPECT_GT(moved, 20000 / 5 * 0.85);
    EXPECT_LT(moved, 20000 / 5 * 1.15);
}

TEST(ReplicaSelection, RemovingAReplicaMovesOnlyItsFlows) {
    std::vector<uint32_t> before = {1, 2, 3, 4, 5}, after = {1, 2, 4, 5};
    for (auto &k : client_flows(20000)) {
        uint32_t a = pick_replica(k, before), b = pick_replica(k, after);
        if (a != 3)
            EXPECT_EQ(a, b);
        else
            EXPECT_NE(b, 3u);
    }
}

TEST(ReplayFrames, GetTheGuestsMacsAndLoseTheirVlanTag) {
    using wisp::test::FrameBuilder;
    const Mac guest = {0x02, 0x77, 0x73, 0, 0, 1}, host = {0x02, 0x77, 0x73, 0xff, 0, 9};
    auto tagged = FrameBuilder()
                      .vlan(42)
                      .ip("198.18.0.2", "198.18.0.1")
                      .tcp(40000, 8080, wisp::test::kTcpSyn)
                      .build();
    Event ev;
    ev.l3_offset = 18;
    ev.l3_proto = 0x0800;
    ev.orig_len = static_cast<uint32_t>(tagged.size());
    ev.frame = tagged;
    auto out = replay_frame(ev, guest, host);
    ASSERT_TRUE(out.ok()) << out.error().describe();
    ASSERT_EQ(out->size(), tagged.size() - 4);
    EXPECT_TRUE(std::equal(guest.begin(), guest.end(), out->begin()));
    EXPECT_TRUE(std::equal(host.begin(), host.end(), out->begin() + 6));
    EXPECT_EQ((*out)[12], 0x08);
    EXPECT_EQ((*out)[13], 0x00);
    EXPECT_TRUE(std::equal(out->begin() + 14, out->end(), tagged.begin() + 18));
}

TEST(ReplayFrames, TruncatedCapturesAndMissingIpHeadersAreRefused) {
    using wisp::test::FrameBuilder;
    auto frame = FrameBuilder().ip("198.18.0.2", "198.18.0.1").udp(5000, 53).payload(100).build();
    Event ev;
    ev.l3_offset = 14;
    ev.l3_proto = 0x0800;
    ev.orig_len = static_cast<uint32_t>(frame.size() + 500);  // more was on the wire
    ev.frame = frame;
    auto out = replay_frame(ev, Mac{}, Mac{});
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error().code, EMSGSIZE);

    EXPECT_FALSE(replay_frame(std::span(frame).first(14), 14, 0x0800, Mac{}, Mac{}).ok());
    EXPECT_FALSE(replay_frame(frame, 14, 0x0806, Mac{}, Mac{}).ok());
}

}  // namespace
