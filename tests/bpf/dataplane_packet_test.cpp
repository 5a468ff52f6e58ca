// Packet-level tests of the data plane: crafted frames through the real programs in
// the kernel (bpf_prog_test_run_opts), Katran style. Each table row is {description,
// input frame, expected verdict, expected output bytes, expected effects on the
// statistics, the replica counters and the ring buffer}; rows of one table run in
// order against one set of maps, so a row may depend on the rows before it.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>
#include <sched.h>

#include <algorithm>
#include <map>
#include <optional>
#include <thread>

#include "dataplane_test_support.h"
#include "wisp/dataplane/selection.h"
#include "wisp/test/capabilities.h"
#include "wisp_flow.h"

namespace wisp::test {
namespace {

const MacBytes kUplinkMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
const MacBytes kRouterMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
const char *kVip = "198.18.0.1";
const char *kVip6 = "2001:2::1";  // IPv6 benchmarking range
const char *kClient = "198.18.0.2";
const char *kClient6 = "2001:2::2";
constexpr uint32_t kUplinkIfindex = 100;

IpAddress ip(const char *text) {
    return *IpAddress::parse(text);
}

Mac guest_mac(uint32_t replica) {
    return {0x02, 0x77, 0x73, 0x00, 0x00, static_cast<uint8_t>(replica)};
}
Mac host_mac(uint32_t replica) {
    return {0x02, 0x77, 0x73, 0xff, 0x00, static_cast<uint8_t>(replica)};
}
uint32_t tap_of(uint32_t replica) {
    return 1000 + replica;
}

// The services every table starts from.
struct Svc {
    ServiceKey key;
    uint32_t id;
};
const Svc kWeb{{ip(kVip), 8080, Protocol::tcp}, 1};     // READY, replicas 1, 2
const Svc kCold{{ip(kVip), 9090, Protocol::tcp}, 2};    // ZERO
const Svc kDns{{ip(kVip), 5353, Protocol::udp}, 3};     // ZERO, UDP
const Svc kWeb6{{ip(kVip6), 8080, Protocol::tcp}, 4};   // READY, replica 3
const Svc kDrain{{ip(kVip), 7070, Protocol::tcp}, 5};   // READY, replica 4 (tests drain it)
const Svc kStats{{ip(kVip), 6000, Protocol::udp}, 6};   // READY, replica 5, UDP
const Svc kColder{{ip(kVip), 9191, Protocol::tcp}, 7};  // ZERO

Replica replica_for(const Svc &svc, uint32_t id, ReplicaState state = ReplicaState::ready) {
    Replica r;
    r.service_id = svc.id;
    r.state = state;
    r.tap_ifindex = tap_of(id);
    r.egress_ifindex = kUplinkIfindex;
    r.guest_mac = guest_mac(id);
    r.host_mac = host_mac(id);
    r.vip = svc.key.vip;
    r.port = svc.key.port;
    r.protocol = svc.key.protocol;
    return r;
}

void add_replica(dataplane::Dataplane &dp, const Svc &svc, uint32_t id,
                 ReplicaState state = ReplicaState::ready) {
    auto g = dp.set_replica(id, replica_for(svc, id, state));
    ASSERT_TRUE(g.ok()) << g.error().describe();
}

void set_service(dataplane::Dataplane &dp, const Svc &svc, ServiceState state,
                 std::vector<uint32_t> replicas) {
    auto st = dp.upsert_service(svc.key, Service{svc.id, state, std::move(replicas)});
    ASSERT_TRUE(st.ok()) << st.error().describe();
}

void install_services(dataplane::Dataplane &dp) {
    for (uint32_t id : {1u, 2u}) add_replica(dp, kWeb, id);
    add_replica(dp, kWeb6, 3);
    add_replica(dp, kDrain, 4);
    add_replica(dp, kStats, 5);
    set_service(dp, kWeb, ServiceState::ready, {1, 2});
    set_service(dp, kCold, ServiceState::zero, {});
    set_service(dp, kDns, ServiceState::zero, {});
    set_service(dp, kWeb6, ServiceState::ready, {3});
    set_service(dp, kDrain, ServiceState::ready, {4});
    set_service(dp, kStats, ServiceState::ready, {5});
    set_service(dp, kColder, ServiceState::zero, {});
}

// Frames from the client through the uplink.
FrameBuilder from_client(const char *src = kClient, const char *dst = kVip) {
    return std::move(FrameBuilder().macs(kUplinkMac, kRouterMac).ip(src, dst));
}
std::vector<uint8_t> syn(uint16_t sport, uint16_t dport = 8080) {
    return from_client().tcp(sport, dport, kTcpSyn).build();
}
std::vector<uint8_t> ack(uint16_t sport, uint16_t dport = 8080) {
    return from_client().tcp(sport, dport, kTcpAck).payload(10).build();
}

// What the guest of `replica` receives for `frame`: its MACs, no VLAN tag.
std::vector<uint8_t> to_guest(std::vector<uint8_t> frame, uint32_t replica) {
    if (frame[12] == 0x81 && frame[13] == 0x00) frame.erase(frame.begin() + 12, frame.begin() + 16);
    Mac g = guest_mac(replica), h = host_mac(replica);
    std::copy(g.begin(), g.end(), frame.begin());
    std::copy(h.begin(), h.end(), frame.begin() + 6);
    return frame;
}

// Which replica a frame redirected by the XDP program was meant for (by its MAC).
std::optional<uint32_t> replica_of(const std::vector<uint8_t> &out) {
    if (out.size() < 6 || out[0] != 0x02 || out[1] != 0x77 || out[3] != 0x00) return std::nullopt;
    return out[5];
}

uint32_t predicted(const char *client, uint16_t sport, const Svc &svc,
                   std::vector<uint32_t> ready) {
    auto key =
        dataplane::make_flow_key(ip(client), sport, svc.key.vip, svc.key.port, svc.key.protocol);
    return dataplane::pick_replica(key, ready);
}

struct Effects {
    std::vector<std::pair<wisp_stat, uint64_t>> stats;  // every other statistic stays put
    std::vector<EventType> events;                      // records carrying the input frame
    std::optional<uint32_t> replica;                    // counted as forwarded to it
};

struct PacketCase {
    std::string description;
    std::vector<uint8_t> input;
    int verdict;
    std::optional<std::vector<uint8_t>> output;  // nullopt: the input, unchanged
    Effects effects;
};

enum class Program { ingress, tap };

// Runs the rows in order; `tap_ifindex` is where tap-program rows pretend to come from.
void run_table(dataplane::Dataplane &dp, Program program, const std::vector<PacketCase> &rows,
               uint32_t tap_ifindex = 0) {
    for (const auto &row : rows) {
        SCOPED_TRACE(row.description);
        auto before = statistics(dp);
        std::optional<dataplane::ReplicaCounters> replica_before;
        if (row.effects.replica) replica_before = *dp.replica_counters(*row.effects.replica);

        RunResult r = program == Program::ingress ? run_xdp(dp, row.input)
                                                  : run_tap(dp, row.input, tap_ifindex);

        EXPECT_EQ(r.verdict, row.verdict);
        EXPECT_EQ(r.output, row.output.value_or(row.input));
        auto after = statistics(dp);
        for (int i = 0; i < WISP_STAT_MAX; i++) {
            auto stat = static_cast<wisp_stat>(i);
            uint64_t expected = 0;
            for (auto [s, delta] : row.effects.stats)
                if (s == stat) expected = delta;
            EXPECT_EQ(after[stat] - before[stat], expected)
                << "statistic " << dataplane::stat_name(stat);
        }
        auto events = drain_events(dp);
        ASSERT_EQ(events.size(), row.effects.events.size());
        for (size_t i = 0; i < events.size(); i++) {
            EXPECT_EQ(events[i].type, row.effects.events[i]);
            EXPECT_EQ(events[i].frame, row.input) << "captured bytes differ";
            EXPECT_EQ(events[i].orig_len, row.input.size());
        }
        if (row.effects.replica) {
            auto c = *dp.replica_counters(*row.effects.replica);
            EXPECT_EQ(c.in_packets - replica_before->in_packets, 1u)
                << "replica " << *row.effects.replica;
            EXPECT_EQ(c.in_bytes - replica_before->in_bytes, row.input.size());
        }
    }
}

class XdpIngress : public ::testing::Test {
  protected:
    void SetUp() override {
        WISP_REQUIRE_BPF();
        fixture_ = std::make_unique<DataplaneFixture>();
        install_services(dp());
    }
    dataplane::Dataplane &dp() { return fixture_->dp(); }
    std::unique_ptr<DataplaneFixture> fixture_;
};

TEST_F(XdpIngress, PassesTrafficThatIsNotForAServiceUntouched) {
    std::vector<uint8_t> qinq =
        FrameBuilder().macs(kUplinkMac, kRouterMac).vlan(7).ethertype(0x8100).payload(46).build();
    // clang-format off
    run_table(dp(), Program::ingress, {
        {"ARP request for the host", FrameBuilder().macs(kUplinkMac, kRouterMac).ethertype(0x0806).payload(28).build(),
         XDP_PASS, {}, {{{WISP_STAT_PASSED, 1}}}},
        {"ICMP echo to the VIP", from_client().icmp(8).payload(32).build(), XDP_PASS, {}, {{{WISP_STAT_PASSED, 1}}}},
        {"SYN to a host port with no service", syn(40000, 22), XDP_PASS, {}, {{{WISP_STAT_PASSED, 1}}}},
        {"SYN to a service port on another host address", from_client(kClient, "198.18.0.9").tcp(40000, 8080, kTcpSyn).build(),
         XDP_PASS, {}, {{{WISP_STAT_PASSED, 1}}}},
        {"UDP to a TCP service's port", from_client().udp(40000, 8080).payload(20).build(), XDP_PASS, {},
         {{{WISP_STAT_PASSED, 1}}}},
        {"reply to the host's own connection from remote port 8080", from_client().tcp(8080, 45000, kTcpAck).build(),
         XDP_PASS, {}, {{{WISP_STAT_PASSED, 1}}}},
        {"IPv6 SYN to a host port with no service", from_client(kClient6, kVip6).tcp(40000, 22, kTcpSyn).build(),
         XDP_PASS, {}, {{{WISP_STAT_PASSED, 1}}}},
        {"later IPv4 fragment to the VIP", from_client().fragment(1480, false).udp(1, 2).payload(100).build(), XDP_PASS, {},
         {{{WISP_STAT_PASSED, 1}}}},
        {"double-tagged (QinQ) frame", qinq, XDP_PASS, {}, {{{WISP_STAT_PASSED, 1}}}},
    });
    // clang-format on
}

TEST_F(XdpIngress, ForwardsServiceTrafficToAReadyReplicaWithItsMacs) {
    uint32_t r1 = predicted(kClient, 40001, kWeb, {1, 2});
    auto tagged = from_client().vlan(100).tcp(40002, 8080, kTcpSyn).build();
    auto options = from_client().ip_options(12).tcp(40003, 8080, kTcpSyn, 20).build();
    auto padded = syn(40004);
    padded.resize(60, 0);  // Ethernet minimum frame: padding after the IP packet
    auto v6 = from_client(kClient6, kVip6).tcp(40000, 8080, kTcpSyn).build();
    auto v6ext = from_client(kClient6, kVip6)
                     .ipv6_extension(0)
                     .ipv6_extension(60)
                     .tcp(40001, 8080, kTcpSyn)
                     .build();
    auto udp = from_client().udp(41000, 6000).payload(64).build();
    const std::pair<wisp_stat, uint64_t> fwd = {WISP_STAT_FORWARDED, 1},
                                         fresh = {WISP_STAT_NEW_FLOWS, 1};
    uint32_t r2 = predicted(kClient, 40002, kWeb, {1, 2}),
             r3 = predicted(kClient, 40003, kWeb, {1, 2}),
             r4 = predicted(kClient, 40004, kWeb, {1, 2});
    // clang-format off
    run_table(dp(), Program::ingress, {
        {"SYN to a READY service", syn(40001), XDP_REDIRECT, to_guest(syn(40001), r1), {{fwd, fresh}, {}, r1}},
        {"next packet of the same flow", ack(40001), XDP_REDIRECT, to_guest(ack(40001), r1), {{fwd}, {}, r1}},
        {"SYN behind an 802.1Q tag (tag removed)", tagged, XDP_REDIRECT, to_guest(tagged, r2), {{fwd, fresh}, {}, r2}},
        {"SYN with IPv4 and TCP options", options, XDP_REDIRECT, to_guest(options, r3), {{fwd, fresh}, {}, r3}},
        {"SYN with Ethernet padding after the IP packet", padded, XDP_REDIRECT, to_guest(padded, r4), {{fwd, fresh}, {}, r4}},
        {"IPv6 SYN", v6, XDP_REDIRECT, to_guest(v6, 3), {{fwd, fresh}, {}, 3u}},
        {"IPv6 SYN behind hop-by-hop and destination options", v6ext, XDP_REDIRECT, to_guest(v6ext, 3), {{fwd, fresh}, {}, 3u}},
        {"UDP datagram to a READY UDP service", udp, XDP_REDIRECT, to_guest(udp, 5), {{fwd, fresh}, {}, 5u}},
    });
    // clang-format on
}

TEST_F(XdpIngress, StampsTheReplicasLastIngressActivity) {
    uint64_t before = dataplane::monotonic_now_ns();
    auto r = run_xdp(dp(), syn(40100));
    uint64_t after = dataplane::monotonic_now_ns();
    ASSERT_EQ(r.verdict, XDP_REDIRECT);
    auto id = replica_of(r.output);
    ASSERT_TRUE(id);
    auto c = *dp().replica_counters(*id);
    // Coarse clock: up to one tick (<= 10 ms at HZ=100) behind the precise one.
    EXPECT_GE(c.last_in_ns + 20'000'000, before);
    EXPECT_LE(c.last_in_ns, after);
    EXPECT_EQ(c.new_flows, 1u);
    EXPECT_EQ(c.last_out_ns, 0u);
}

TEST_F(XdpIngress, SpreadsNewFlowsEvenlyExactlyAsPredicted) {
    for (uint32_t id : {6u, 7u}) add_replica(dp(), kWeb, id);
    set_service(dp(), kWeb, ServiceState::ready, {1, 2, 6, 7});
    std::map<uint32_t, int> load;
    for (uint16_t port = 20000; port < 22000; port++) {
        auto r = run_xdp(dp(), syn(port));
        ASSERT_EQ(r.verdict, XDP_REDIRECT);
        auto id = replica_of(r.output);
        ASSERT_TRUE(id);
        ASSERT_EQ(*id, predicted(kClient, port, kWeb, {1, 2, 6, 7})) << "port " << port;
        load[*id]++;
    }
    ASSERT_EQ(load.size(), 4u);
    for (auto [id, n] : load) {
        EXPECT_GT(n, 400) << "replica " << id;
        EXPECT_LT(n, 600) << "replica " << id;
    }
    EXPECT_EQ(statistics(dp())[WISP_STAT_NEW_FLOWS], 2000u);
}

TEST_F(XdpIngress, KeepsFlowsOnTheirReplicaWhileReplicasComeAndGo) {
    auto replica_for_packet = [&](const std::vector<uint8_t> &frame) -> uint32_t {
        auto r = run_xdp(dp(), frame);
        EXPECT_EQ(r.verdict, XDP_REDIRECT);
        return replica_of(r.output).value_or(0);
    };
    std::map<uint16_t, uint32_t> placed;
    for (uint16_t port = 30000; port < 30064; port++) placed[port] = replica_for_packet(syn(port));

    // A third replica joins: the hash would now send some of these flows to it.
    add_replica(dp(), kWeb, 6);
    set_service(dp(), kWeb, ServiceState::ready, {1, 2, 6});
    int would_move = 0;
    for (auto [port, id] : placed) {
        would_move += predicted(kClient, port, kWeb, {1, 2, 6}) != id;
        EXPECT_EQ(replica_for_packet(ack(port)), id)
            << "flow " << port << " moved after a replica joined";
    }
    EXPECT_GT(would_move, 0) << "the scenario must include flows the hash would move";

    // Replica 1 drains: it keeps its flows and gets no new ones.
    ASSERT_TRUE(dp().set_replica_state(1, ReplicaState::draining).ok());
    for (auto [port, id] : placed) EXPECT_EQ(replica_for_packet(ack(port)), id);
    for (uint16_t port = 31000; port < 31064; port++) EXPECT_NE(replica_for_packet(syn(port)), 1u);

    // Replica 1 is gone: its flows are re-picked among the READY ones.
    ASSERT_TRUE(dp().remove_replica(1).ok());
    uint64_t repicked_before = statistics(dp())[WISP_STAT_REPICKED];
    int on_one = 0;
    for (auto [port, id] : placed) {
        uint32_t now = replica_for_packet(ack(port));
        if (id == 1) {
            on_one++;
            EXPECT_EQ(now, predicted(kClient, port, kWeb, {2, 6}));
        } else {
            EXPECT_EQ(now, id);
        }
    }
    EXPECT_GT(on_one, 0);
    EXPECT_EQ(statistics(dp())[WISP_STAT_REPICKED] - repicked_before, uint64_t(on_one));

    // Id 2 is reused for a new guest behind another tap: a new generation, so the
    // old guest's flows do not stick to the newcomer by accident.
    Replica fresh = replica_for(kWeb, 2);
    fresh.tap_ifindex = 2002;
    auto g_old = dp().lookup_replica(2)->generation;
    auto g_new = dp().set_replica(2, fresh);
    ASSERT_TRUE(g_new.ok());
    EXPECT_NE(*g_new, g_old);
    auto key = dataplane::make_flow_key(ip(kClient), 30000, ip(kVip), 8080, Protocol::tcp);
    auto flow = dp().lookup_flow(key);
    ASSERT_TRUE(flow.ok() && flow->has_value());
    if ((*flow)->replica_id == 2) EXPECT_EQ((*flow)->generation, g_old);
}

TEST_F(XdpIngress, ABareSynOnARememberedTupleIsANewConnectionPickedAmongTheReadyReplicas) {
    // Clients reuse ports: the flow table still remembers these 5-tuples when their
    // next connection opens.
    std::map<uint16_t, uint32_t> placed;
    for (uint16_t port = 32000; port < 32128; port++)
        placed[port] = replica_of(run_xdp(dp(), syn(port)).output).value_or(0);

    // Scale-out: a third replica joins. Segments of open connections stay put; a
    // new connection on a remembered tuple is spread like any new flow, and counted.
    add_replica(dp(), kWeb, 6);
    set_service(dp(), kWeb, ServiceState::ready, {1, 2, 6});
    auto before = statistics(dp());
    auto six_before = *dp().replica_counters(6);
    int moved = 0;
    for (auto [port, id] : placed) {
        EXPECT_EQ(replica_of(run_xdp(dp(), ack(port)).output), id) << "open flow " << port;
        uint32_t want = predicted(kClient, port, kWeb, {1, 2, 6});
        EXPECT_EQ(replica_of(run_xdp(dp(), syn(port)).output), want) << "new connection " << port;
        moved += want != id;
        placed[port] = want;
    }
    EXPECT_GT(moved, 0) << "the scenario must include tuples the hash moves";
    auto after = statistics(dp());
    EXPECT_EQ(after[WISP_STAT_NEW_FLOWS] - before[WISP_STAT_NEW_FLOWS], placed.size());
    EXPECT_EQ(after[WISP_STAT_REPICKED] - before[WISP_STAT_REPICKED], 0u);
    EXPECT_EQ(dp().replica_counters(6)->new_flows - six_before.new_flows, uint64_t(moved));

    // Scale-in: replica 1 drains. Its open connections stay on it; a new connection
    // on one of its tuples goes to a READY replica.
    ASSERT_TRUE(dp().set_replica_state(1, ReplicaState::draining).ok());
    int on_one = 0;
    for (auto [port, id] : placed) {
        if (id != 1) continue;
        on_one++;
        EXPECT_EQ(replica_of(run_xdp(dp(), ack(port)).output), 1u) << "open flow " << port;
        EXPECT_EQ(replica_of(run_xdp(dp(), syn(port)).output),
                  predicted(kClient, port, kWeb, {2, 6}))
            << "new connection " << port << " went to the draining replica";
    }
    EXPECT_GT(on_one, 0);
}

// Pins the calling thread to one CPU: a test run of the XDP program executes on
// the CPU of its caller, so this chooses which CPU's flow cache it uses.
void run_on_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ASSERT_EQ(sched_setaffinity(0, sizeof(set), &set), 0) << "cpu " << cpu;
}

TEST_F(XdpIngress, AConnectionMovedByABareSynIsFollowedOnEveryCpu) {
    ASSERT_GE(std::thread::hardware_concurrency(), 2u)
        << "this test needs two CPUs (each has its own flow cache)";
    cpu_set_t saved;
    ASSERT_EQ(sched_getaffinity(0, sizeof(saved), &saved), 0);
    // A tuple the hash moves when replica 6 joins {1, 2}.
    uint16_t port = 33000;
    while (predicted(kClient, port, kWeb, {1, 2, 6}) == predicted(kClient, port, kWeb, {1, 2}))
        port++;
    uint32_t before = predicted(kClient, port, kWeb, {1, 2});
    uint32_t after = predicted(kClient, port, kWeb, {1, 2, 6});

    // First connection: SYN on CPU 0, its segments also seen on CPU 1 (both caches
    // now hold the tuple on `before`).
    run_on_cpu(0);
    EXPECT_EQ(replica_of(run_xdp(dp(), syn(port)).output), before);
    run_on_cpu(1);
    EXPECT_EQ(replica_of(run_xdp(dp(), ack(port)).output), before);

    // Scale-out; the client reuses the port for a new connection, whose SYN is
    // handled on CPU 0 and its next segments on CPU 1.
    add_replica(dp(), kWeb, 6);
    set_service(dp(), kWeb, ServiceState::ready, {1, 2, 6});
    run_on_cpu(0);
    EXPECT_EQ(replica_of(run_xdp(dp(), syn(port)).output), after);
    run_on_cpu(1);
    EXPECT_EQ(replica_of(run_xdp(dp(), ack(port)).output), after)
        << "CPU 1's flow cache still sent the new connection to the old replica";
    run_on_cpu(0);
    EXPECT_EQ(replica_of(run_xdp(dp(), ack(port)).output), after);
    ASSERT_EQ(sched_setaffinity(0, sizeof(saved), &saved), 0);
}

TEST(XdpFlowCache, FlowsSharingACacheSlotKeepTheirOwnReplicas) {
    WISP_REQUIRE_BPF();
    dataplane::Options o;
    o.flow_cache_slots = 1;  // every flow competes for the same slot
    DataplaneFixture f(o);
    install_services(f.dp());
    // Two flows the hash places on different replicas.
    uint16_t a = 40000, b = 40001;
    while (predicted(kClient, b, kWeb, {1, 2}) == predicted(kClient, a, kWeb, {1, 2})) b++;
    std::map<uint16_t, uint32_t> placed;
    for (uint16_t port : {a, b})
        placed[port] = replica_of(run_xdp(f.dp(), syn(port)).output).value_or(0);
    ASSERT_NE(placed[a], placed[b]);
    // Alternating packets evict each other from the one slot; each keeps its replica.
    for (int i = 0; i < 4; i++)
        for (uint16_t port : {a, b}) {
            auto r = run_xdp(f.dp(), ack(port));
            EXPECT_EQ(r.verdict, XDP_REDIRECT);
            EXPECT_EQ(replica_of(r.output), placed[port])
                << "flow " << port << " took its neighbour's replica";
        }
}

bool port_filter_has(dataplane::Dataplane &dp, uint8_t proto, uint16_t port) {
    uint32_t word = wisp_port_word(proto, port);
    uint64_t bits = 0;
    EXPECT_EQ(bpf_map_lookup_elem(dp.map_fd(dataplane::Map::ports), &word, &bits), 0);
    return bits & wisp_port_bit(port);
}

TEST_F(XdpIngress, RemovedServiceTakesNewFlowsNoMoreAndItsFlowsEndWithTheirReplica) {
    const Svc other{{ip("198.18.0.3"), 8080, Protocol::tcp}, 9};
    add_replica(dp(), other, 8);
    set_service(dp(), other, ServiceState::ready, {8});
    auto to_other = [](uint16_t sport, uint8_t flags) {
        return from_client(kClient, "198.18.0.3").tcp(sport, 8080, flags).build();
    };
    ASSERT_EQ(run_xdp(dp(), to_other(40000, kTcpSyn)).verdict, XDP_REDIRECT);
    ASSERT_TRUE(dp().remove_service(kWeb.key).ok());
    ASSERT_TRUE(dp().remove_service(other.key).ok());
    // clang-format off
    run_table(dp(), Program::ingress, {
        {"SYN to a removed service", syn(40000), XDP_PASS, {}, {{{WISP_STAT_PASSED, 1}}}},
        {"new flow to another removed service", to_other(40001, kTcpSyn), XDP_PASS, {}, {{{WISP_STAT_PASSED, 1}}}},
        {"existing flow of a removed service, replica still alive", to_other(40000, kTcpAck),
         XDP_REDIRECT, to_guest(to_other(40000, kTcpAck), 8), {{{WISP_STAT_FORWARDED, 1}}, {}, 8u}},
    });
    // clang-format on
    ASSERT_TRUE(dp().remove_replica(8).ok());
    // clang-format off
    run_table(dp(), Program::ingress, {
        {"the same flow once its replica is gone", to_other(40000, kTcpAck), XDP_PASS, {}, {{{WISP_STAT_PASSED, 1}}}},
    });
    // clang-format on
    EXPECT_EQ(dp().remove_service(other.key).error().code, ENOENT);

    // The port filter keeps TCP 8080 while the IPv6 service still listens there.
    EXPECT_TRUE(port_filter_has(dp(), IPPROTO_TCP, 8080));
    EXPECT_FALSE(port_filter_has(dp(), IPPROTO_UDP, 8080));
    ASSERT_TRUE(dp().remove_service(kWeb6.key).ok());
    EXPECT_FALSE(port_filter_has(dp(), IPPROTO_TCP, 8080));
    EXPECT_TRUE(port_filter_has(dp(), IPPROTO_TCP, 9090));
    EXPECT_TRUE(port_filter_has(dp(), IPPROTO_UDP, 5353));
}

TEST_F(XdpIngress, FirstSynToAColdServiceWakesItAndLaterOnesAreBuffered) {
    uint64_t before = dataplane::monotonic_now_ns();
    // clang-format off
    run_table(dp(), Program::ingress, {
        {"first SYN to a service at zero", syn(40000, 9090), XDP_DROP, {},
         {{{WISP_STAT_WAKES, 1}}, {EventType::wake}}},
        {"retransmitted SYN while waking", syn(40000, 9090), XDP_DROP, {},
         {{{WISP_STAT_BUFFERED, 1}}, {EventType::buffered}}},
        {"another client's SYN while waking", from_client("198.18.0.77").tcp(40001, 9090, kTcpSyn).build(), XDP_DROP, {},
         {{{WISP_STAT_BUFFERED, 1}}, {EventType::buffered}}},
        {"ACK to a cold service", ack(40000, 9090), XDP_DROP, {}, {{{WISP_STAT_COLD_DROPPED, 1}}}},
        {"RST to a cold service", from_client().tcp(40000, 9090, kTcpRst).build(), XDP_DROP, {},
         {{{WISP_STAT_COLD_DROPPED, 1}}}},
        {"SYN-ACK to a cold service", from_client().tcp(40000, 9090, kTcpSyn | kTcpAck).build(), XDP_DROP, {},
         {{{WISP_STAT_COLD_DROPPED, 1}}}},
        {"first UDP datagram to a UDP service at zero", from_client().udp(5000, 5353).payload(200).build(), XDP_DROP, {},
         {{{WISP_STAT_WAKES, 1}}, {EventType::wake}}},
        {"next UDP datagram while waking", from_client().udp(5001, 5353).payload(1400).build(), XDP_DROP, {},
         {{{WISP_STAT_BUFFERED, 1}}, {EventType::buffered}}},
    });
    // clang-format on
    EXPECT_EQ(dp().lookup_service(kCold.key)->state, ServiceState::waking);
    EXPECT_EQ(dp().lookup_service(kDns.key)->state, ServiceState::waking);

    // The record names the service, the IP header offset and the arrival time.
    ASSERT_EQ(run_xdp(dp(), syn(40002, 9191)).verdict, XDP_DROP);
    auto events = drain_events(dp());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, EventType::wake);
    EXPECT_EQ(events[0].service_id, kColder.id);
    EXPECT_EQ(events[0].l3_offset, 14);
    EXPECT_EQ(events[0].l3_proto, 0x0800);
    EXPECT_GE(events[0].timestamp_ns, before);
    EXPECT_LE(events[0].timestamp_ns, dataplane::monotonic_now_ns());
}

TEST_F(XdpIngress, SynFloodFromTwoCpusProducesExactlyOneWake) {
    constexpr int kPerThread = 400;
    auto flood = [&](uint16_t base) {
        for (int i = 0; i < kPerThread; i++)
            run_xdp(dp(), syn(static_cast<uint16_t>(base + i), 9090));
    };
    std::thread a(flood, 10000), b(flood, 20000);
    a.join();
    b.join();
    auto s = statistics(dp());
    EXPECT_EQ(s[WISP_STAT_WAKES], 1u);
    EXPECT_EQ(s[WISP_STAT_BUFFERED], 2u * kPerThread - 1);
    auto events = drain_events(dp());
    ASSERT_EQ(events.size(), 2u * kPerThread);
    EXPECT_EQ(std::count_if(events.begin(), events.end(),
                            [](auto &e) { return e.type == EventType::wake; }),
              1);
    EXPECT_EQ(events[0].type, EventType::wake);
}

TEST_F(XdpIngress, DrainingServicePassesNewFlowsAndKeepsItsExistingOnes) {
    auto first = run_xdp(dp(), syn(40000, 7070));
    ASSERT_EQ(first.verdict, XDP_REDIRECT);
    set_service(dp(), kDrain, ServiceState::draining, {4});
    // clang-format off
    run_table(dp(), Program::ingress, {
        {"existing flow of a draining service", ack(40000, 7070), XDP_REDIRECT, to_guest(ack(40000, 7070), 4),
         {{{WISP_STAT_FORWARDED, 1}}, {}, 4u}},
        {"new flow to a draining service goes to the host stack", syn(40001, 7070), XDP_PASS, {},
         {{{WISP_STAT_DRAINING_PASSED, 1}}}},
    });
    // clang-format on
}

TEST_F(XdpIngress, ReadyServiceWithOnlyDrainingReplicasWakesAnotherOne) {
    ASSERT_EQ(run_xdp(dp(), syn(40000, 7070)).verdict, XDP_REDIRECT);
    ASSERT_TRUE(dp().set_replica_state(4, ReplicaState::draining).ok());
    // clang-format off
    run_table(dp(), Program::ingress, {
        {"existing flow stays on the draining replica", ack(40000, 7070), XDP_REDIRECT, to_guest(ack(40000, 7070), 4),
         {{{WISP_STAT_FORWARDED, 1}}, {}, 4u}},
        {"new flow finds no READY replica and wakes one", syn(40001, 7070), XDP_DROP, {},
         {{{WISP_STAT_WAKES, 1}}, {EventType::wake}}},
        {"the next new flow is buffered", syn(40002, 7070), XDP_DROP, {},
         {{{WISP_STAT_BUFFERED, 1}}, {EventType::buffered}}},
    });
    // clang-format on
    EXPECT_EQ(dp().lookup_service(kDrain.key)->state, ServiceState::waking);
}

TEST_F(XdpIngress, FirstFragmentsToAServiceAreDroppedAndLaterOnesPassed) {
    // clang-format off
    run_table(dp(), Program::ingress, {
        {"first IPv4 fragment to a service", from_client().fragment(0, true).tcp(40000, 8080, kTcpSyn).build(), XDP_DROP, {},
         {{{WISP_STAT_FRAGMENTS, 1}}}},
        {"first IPv6 fragment to a service", from_client(kClient6, kVip6).fragment(0, true).tcp(40000, 8080, kTcpSyn).build(),
         XDP_DROP, {}, {{{WISP_STAT_FRAGMENTS, 1}}}},
        {"later IPv6 fragment", from_client(kClient6, kVip6).fragment(1448, false).udp(1, 2).payload(64).build(), XDP_PASS,
         {}, {{{WISP_STAT_PASSED, 1}}}},
        {"first IPv4 fragment to a host port", from_client().fragment(0, true).udp(5000, 4000).payload(64).build(), XDP_PASS,
         {}, {{{WISP_STAT_PASSED, 1}}}},
    });
    // clang-format on
}

// A correct frame with some bytes overwritten and/or cut.
std::vector<uint8_t> damaged(std::vector<uint8_t> f, std::vector<std::pair<size_t, uint8_t>> bytes,
                             size_t cut = 0) {
    for (auto [at, v] : bytes) f.at(at) = v;
    if (cut) f.resize(cut);
    return f;
}

TEST_F(XdpIngress, MalformedFramesArePassedUntouchedAndCounted) {
    auto tcp4 = syn(40000);                                                      // 14 + 20 + 20
    auto udp4 = from_client().udp(40000, 6000).payload(8).build();               // 14 + 20 + 8 + 8
    auto tcp6 = from_client(kClient6, kVip6).tcp(40000, 8080, kTcpSyn).build();  // 14 + 40 + 20
    auto ext6 = from_client(kClient6, kVip6).ipv6_extension(0).tcp(40000, 8080, kTcpSyn).build();
    auto tagged = from_client().vlan(5).tcp(40000, 8080, kTcpSyn).build();
    const size_t ip = 14, tcp = 34, ip6 = 14;
    // IPv4 total length is at ip+2; IPv6 payload length at ip6+4; UDP length at tcp+4.
    // clang-format off
    std::vector<std::pair<std::string, std::vector<uint8_t>>> frames = {
        {"VLAN tag cut short", damaged(tagged, {}, 16)},
        {"IPv4 header cut short", damaged(tcp4, {}, ip + 12)},
        {"IPv4 version field is not 4", damaged(tcp4, {{ip, 0x55}})},
        {"IPv4 header length below 20 bytes", damaged(tcp4, {{ip, 0x44}})},
        {"IPv4 header length beyond the packet", damaged(tcp4, {{ip, 0x4f}})},
        {"IPv4 total length beyond the frame", damaged(tcp4, {{ip + 2, 0x05}, {ip + 3, 0xdc}})},
        {"IPv4 total length shorter than its header", damaged(tcp4, {{ip + 2, 0}, {ip + 3, 16}})},
        {"TCP header cut short", damaged(tcp4, {{ip + 2, 0}, {ip + 3, 30}}, tcp + 10)},
        {"TCP data offset below 5", damaged(tcp4, {{tcp + 12, 0x40}})},
        {"TCP data offset beyond the IP payload", damaged(tcp4, {{tcp + 12, 0xf0}})},
        {"UDP header cut short", damaged(udp4, {{ip + 2, 0}, {ip + 3, 24}}, tcp + 4)},
        {"UDP length beyond the IP payload", damaged(udp4, {{tcp + 4, 0x01}, {tcp + 5, 0}})},
        {"UDP length below its header", damaged(udp4, {{tcp + 4, 0}, {tcp + 5, 4}})},
        {"IPv6 header cut short", damaged(tcp6, {}, ip6 + 30)},
        {"IPv6 version field is not 6", damaged(tcp6, {{ip6, 0x40}})},
        {"IPv6 payload length beyond the frame", damaged(tcp6, {{ip6 + 4, 0x04}})},
        {"IPv6 payload length 0 (jumbogram)", damaged(tcp6, {{ip6 + 4, 0}, {ip6 + 5, 0}})},
        {"IPv6 extension header longer than the payload", damaged(ext6, {{ip6 + 41, 9}})},
        {"IPv6 extension header cut short", damaged(ext6, {{ip6 + 4, 0}, {ip6 + 5, 1}}, ip6 + 41)},
        {"TCP header after IPv6 cut short", damaged(tcp6, {{ip6 + 4, 0}, {ip6 + 5, 12}}, ip6 + 52)},
        {"IPv6 to the IPv4-mapped form of the VIP", from_client(kClient6, "::ffff:198.18.0.1").tcp(40000, 8080, kTcpSyn).build()},
    };
    // clang-format on
    std::vector<PacketCase> rows;
    for (auto &[what, frame] : frames)
        rows.push_back({what, frame, XDP_PASS, {}, {{{WISP_STAT_MALFORMED, 1}}}});
    // clang-format off
    run_table(dp(), Program::ingress, rows);
    // clang-format on
}

TEST(XdpCapture, FullRingBufferIsCountedAndTheLostWakeIsRetried) {
    WISP_REQUIRE_BPF();
    dataplane::Options o;
    o.sizes.event_bytes = 4096;  // one page: a few dozen SYN records
    DataplaneFixture f(o);
    install_services(f.dp());

    // Fill the ring with one service's wake and buffered SYNs.
    uint64_t full = 0;
    for (uint16_t port = 10000; port < 10200 && full == 0; port++) {
        ASSERT_EQ(run_xdp(f.dp(), syn(port, 9090)).verdict, XDP_DROP);
        full = statistics(f.dp())[WISP_STAT_RINGBUF_FULL];
    }
    ASSERT_EQ(full, 1u) << "the ring never filled up";

    // A SYN for another cold service cannot be announced: counted, and its service
    // stays at zero so that a later SYN wakes it.
    auto before = statistics(f.dp());
    EXPECT_EQ(run_xdp(f.dp(), syn(40000, 9191)).verdict, XDP_DROP);
    auto after = statistics(f.dp());
    EXPECT_EQ(after[WISP_STAT_RINGBUF_FULL] - before[WISP_STAT_RINGBUF_FULL], 1u);
    EXPECT_EQ(after[WISP_STAT_WAKES], before[WISP_STAT_WAKES]);
    EXPECT_EQ(f.dp().lookup_service(kColder.key)->state, ServiceState::zero);

    auto queued = drain_events(f.dp());
    ASSERT_GT(queued.size(), 10u);
    EXPECT_EQ(queued[0].type, EventType::wake);
    for (auto &e : queued) EXPECT_EQ(e.service_id, kCold.id);
    // With room in the ring again, the next SYN wakes the service.
    // clang-format off
    run_table(f.dp(), Program::ingress, {
        {"SYN to the same service once the ring has room", syn(40000, 9191), XDP_DROP, {},
         {{{WISP_STAT_WAKES, 1}}, {EventType::wake}}},
    });
    // clang-format on
    EXPECT_EQ(f.dp().lookup_service(kColder.key)->state, ServiceState::waking);
}

TEST(XdpCapture, CapturesWholeFramesUpToTheConfiguredLimit) {
    WISP_REQUIRE_BPF();
    dataplane::Options o;
    o.capture_limit = 128;
    DataplaneFixture limited(o);
    install_services(limited.dp());
    auto big = from_client().udp(5000, 5353).payload(1000).build();
    ASSERT_EQ(run_xdp(limited.dp(), big).verdict, XDP_DROP);
    auto events = drain_events(limited.dp());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].orig_len, big.size());
    ASSERT_EQ(events[0].frame.size(), 128u);
    EXPECT_TRUE(std::equal(events[0].frame.begin(), events[0].frame.end(), big.begin()));

    DataplaneFixture full;
    install_services(full.dp());
    auto jumbo = from_client().udp(5000, 5353).payload(2000).build();
    ASSERT_EQ(run_xdp(full.dp(), jumbo).verdict, XDP_DROP);
    events = drain_events(full.dp());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].orig_len, jumbo.size());
    ASSERT_EQ(events[0].frame.size(), size_t{WISP_CAPTURE_MAX});
    EXPECT_TRUE(std::equal(events[0].frame.begin(), events[0].frame.end(), jumbo.begin()));
}

// Frames a guest writes into its tap.
FrameBuilder from_guest(uint32_t replica, const char *src = kVip, const char *dst = kClient) {
    Mac g = guest_mac(replica), h = host_mac(replica);
    return std::move(FrameBuilder().macs(h, g).ip(src, dst));
}

class TapReturnPath : public XdpIngress {};

TEST_F(TapReturnPath, SendsTheGuestsRepliesOutOfTheUplinkAndStampsActivity) {
    auto synack = from_guest(1).tcp(8080, 40000, kTcpSyn | kTcpAck).build();
    uint64_t before = dataplane::monotonic_now_ns();
    // clang-format off
    run_table(dp(), Program::tap, {
        {"SYN-ACK from the guest's VIP and service port", synack, TC_ACT_REDIRECT, {}, {{{WISP_STAT_TAP_FORWARDED, 1}}}},
        {"ICMP from the guest", from_guest(1).icmp(3).payload(28).build(), TC_ACT_REDIRECT, {},
         {{{WISP_STAT_TAP_FORWARDED, 1}}}},
    }, tap_of(1));
    // clang-format on
    // clang-format off
    run_table(dp(), Program::tap, {
        {"IPv6 reply", from_guest(3, kVip6, kClient6).tcp(8080, 40000, kTcpAck).build(), TC_ACT_REDIRECT, {},
         {{{WISP_STAT_TAP_FORWARDED, 1}}}},
    }, tap_of(3));
    // clang-format on
    auto c = *dp().replica_counters(1);
    EXPECT_EQ(c.out_packets, 2u);
    EXPECT_GE(c.last_out_ns + 20'000'000, before);
    EXPECT_LE(c.last_out_ns, dataplane::monotonic_now_ns());
    EXPECT_EQ(c.in_packets, 0u);
}

TEST_F(TapReturnPath, DropsFramesAGuestSendsFromSomeoneElsesAddress) {
    Mac other = {0x02, 0x77, 0x73, 0x00, 0x00, 0x99};
    const std::pair<wisp_stat, uint64_t> spoofed = {WISP_STAT_SPOOFED, 1};
    // clang-format off
    run_table(dp(), Program::tap, {
        {"source MAC not the guest's", FrameBuilder().macs(host_mac(1), other).ip(kVip, kClient).tcp(8080, 40000, kTcpAck).build(),
         TC_ACT_SHOT, {}, {{spoofed}}},
        {"source MAC of another replica", FrameBuilder().macs(host_mac(1), guest_mac(2)).ip(kVip, kClient).tcp(8080, 40000, kTcpAck).build(),
         TC_ACT_SHOT, {}, {{spoofed}}},
        {"source IP not the VIP", from_guest(1, "198.18.0.50").tcp(8080, 40000, kTcpAck).build(), TC_ACT_SHOT, {}, {{spoofed}}},
        {"source port not the service port", from_guest(1).tcp(22, 40000, kTcpAck).build(), TC_ACT_SHOT, {}, {{spoofed}}},
        {"UDP from a TCP replica", from_guest(1).udp(8080, 40000).payload(8).build(), TC_ACT_SHOT, {}, {{spoofed}}},
        {"IPv6 from an IPv4 replica", from_guest(1, kVip6, kClient6).tcp(8080, 40000, kTcpAck).build(), TC_ACT_SHOT, {},
         {{spoofed}}},
        {"IPv6 from the IPv4-mapped form of its VIP", from_guest(1, "::ffff:198.18.0.1", kClient6).tcp(8080, 40000, kTcpAck).build(),
         TC_ACT_SHOT, {}, {{{WISP_STAT_MALFORMED, 1}}}},
    }, tap_of(1));
    // clang-format on
    EXPECT_EQ(dp().replica_counters(1)->spoofed, 6u);  // the malformed one is not spoofing
    EXPECT_EQ(dp().replica_counters(1)->out_packets, 0u);
}

TEST_F(TapReturnPath, DropsArpNeighbourDiscoveryAndOtherNonReplyFrames) {
    Mac g = guest_mac(1);
    const std::pair<wisp_stat, uint64_t> dropped = {WISP_STAT_TAP_DROPPED, 1};
    auto v6guest = from_guest(3, kVip6, "ff02::1:ff00:2").icmp(135).payload(20).build();
    // clang-format off
    run_table(dp(), Program::tap, {
        {"ARP request", FrameBuilder().macs({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, g).ethertype(0x0806).payload(28).build(),
         TC_ACT_SHOT, {}, {{dropped}}},
        {"ARP to the gateway MAC", FrameBuilder().macs(host_mac(1), g).ethertype(0x0806).payload(28).build(), TC_ACT_SHOT,
         {}, {{dropped}}},
        {"VLAN-tagged frame", from_guest(1).vlan(3).tcp(8080, 40000, kTcpAck).build(), TC_ACT_SHOT, {}, {{dropped}}},
        {"broadcast UDP", FrameBuilder().macs({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, g).ip(kVip, "198.18.0.255").udp(8080, 9).build(),
         TC_ACT_SHOT, {}, {{dropped}}},
        {"GRE from the VIP", from_guest(1).protocol(47).payload(24).build(), TC_ACT_SHOT, {}, {{dropped}}},
        {"IPv4 total length beyond the frame", damaged(from_guest(1).tcp(8080, 40000, kTcpAck).build(), {{16, 0x05}, {17, 0xdc}}),
         TC_ACT_SHOT, {}, {{{WISP_STAT_MALFORMED, 1}}}},
        {"TCP data offset below 5", damaged(from_guest(1).tcp(8080, 40000, kTcpAck).build(), {{46, 0x30}}), TC_ACT_SHOT, {},
         {{{WISP_STAT_MALFORMED, 1}}}},
    }, tap_of(1));
    // clang-format on
    // clang-format off
    run_table(dp(), Program::tap, {
        {"IPv6 neighbour solicitation (unicast MAC)", v6guest, TC_ACT_SHOT, {}, {{dropped}}},
    }, tap_of(3));
    // clang-format on
}

TEST_F(TapReturnPath, DropsFramesOnTapsWithoutALiveReplica) {
    auto reply = from_guest(1).tcp(8080, 40000, kTcpAck).build();
    // clang-format off
    run_table(dp(), Program::tap, {
        {"tap unknown to the data plane", reply, TC_ACT_SHOT, {}, {{{WISP_STAT_TAP_UNKNOWN, 1}}}},
    }, 4242);
    // clang-format on
    ASSERT_TRUE(dp().remove_replica(1).ok());
    // clang-format off
    run_table(dp(), Program::tap, {
        {"tap of a removed replica", reply, TC_ACT_SHOT, {}, {{{WISP_STAT_TAP_UNKNOWN, 1}}}},
    }, tap_of(1));
    // clang-format on
}

}  // namespace
}  // namespace wisp::test
