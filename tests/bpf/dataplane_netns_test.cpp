// The data plane on real interfaces: a client namespace behind a veth whose host end
// carries wisp_ingress (native XDP), a tap read by the test as the "guest", and
// wisp_tap_in on the tap. Also: the attachments and maps outlive the process that
// loaded them, and bpftool shows the maps with their field names.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>

#include "dataplane_test_support.h"
#include "wisp/dataplane/frames.h"
#include "wisp/dataplane/selection.h"
#include "wisp/test/capabilities.h"
#include "wisp/test/process.h"

namespace wisp::test {
namespace {

using Frame = std::vector<uint8_t>;

const Mac kGuestMac = {0x02, 0x77, 0x73, 0x00, 0x00, 0x01};
constexpr auto kWait = std::chrono::seconds(5);

void must(const std::vector<std::string> &argv) {
    auto r = run(argv, 30);
    ASSERT_EQ(r.exit_code, 0) << argv[0] << " failed: " << r.output;
}

Mac mac_of(const std::string &ifname) {
    std::ifstream in("/sys/class/net/" + ifname + "/address");
    std::string text;
    in >> text;
    auto mac = dataplane::parse_mac(text);
    EXPECT_TRUE(mac.ok()) << ifname << ": " << text;
    return mac.ok() ? *mac : Mac{};
}

// A /30 of 198.18.0.0/15 for this process: host .1, client .2.
std::pair<std::string, std::string> unique_subnet() {
    static unsigned counter = 0;
    uint32_t index = (static_cast<uint32_t>(getpid()) * 8 + counter++) % 32768;
    uint32_t base = 0xc6120000u + index * 4;
    auto text = [](uint32_t a) {
        in_addr addr{htonl(a)};
        char buf[INET_ADDRSTRLEN];
        return std::string(inet_ntop(AF_INET, &addr, buf, sizeof buf));
    };
    return {text(base + 1), text(base + 2)};
}

// Reads frames from `fd` (a tap fd or a packet socket) until one satisfies `want` or
// `wait` passes. Outgoing copies on packet sockets are skipped.
std::optional<Frame> receive(int fd, const std::function<bool(const Frame &)> &want,
                             std::chrono::milliseconds wait) {
    auto deadline = std::chrono::steady_clock::now() + wait;
    Frame buf(4096);
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        sockaddr_ll from{};
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT,
                             reinterpret_cast<sockaddr *>(&from), &len);
        if (n < 0 && errno == ENOTSOCK) n = read(fd, buf.data(), buf.size());
        if (n <= 0) continue;
        if (len >= sizeof from && from.sll_family == AF_PACKET &&
            from.sll_pkttype == PACKET_OUTGOING)
            continue;
        Frame f(buf.begin(), buf.begin() + n);
        if (want(f)) return f;
    }
}

// IPv4 TCP frame whose ports are (sport, dport).
std::function<bool(const Frame &)> tcp_ports(uint16_t sport, uint16_t dport) {
    return [=](const Frame &f) {
        return f.size() >= 38 && f[12] == 0x08 && f[13] == 0x00 && f[23] == IPPROTO_TCP &&
               (f[34] << 8 | f[35]) == sport && (f[36] << 8 | f[37]) == dport;
    };
}

// Client namespace <-> veth <-> host, plus a tap for the guest, all removed at the end.
struct Topology {
    ScopedNetns ns{"dpns"};
    ScopedVeth veth{"dpv"};
    ScopedTap tap{"dpt"};
    std::string host_ip, client_ip;
    Mac host_mac{}, client_mac{}, tap_mac{};
    uint32_t host_ifindex = 0;
    UniqueFd client;  // AF_PACKET on the client's veth end, inside the namespace

    Topology() {
        std::tie(host_ip, client_ip) = unique_subnet();
        veth.move_peer_to(ns);
        must({"ip", "addr", "add", host_ip + "/30", "dev", veth.host()});
        must({"ip", "-n", ns.name(), "addr", "add", client_ip + "/30", "dev", veth.peer()});
        host_mac = mac_of(veth.host());
        tap_mac = mac_of(tap.name());
        host_ifindex = if_nametoindex(veth.host().c_str());
        open_client_socket();
    }

    // The socket is created by a thread that entered the namespace; it stays bound
    // to that namespace's interface after the thread is gone.
    void open_client_socket() {
        std::string error;
        std::thread t([&] {
            UniqueFd nsfd(open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC));
            if (!nsfd || setns(nsfd.get(), CLONE_NEWNET) != 0) {
                error = "enter namespace: " + std::string(strerror(errno));
                return;
            }
            UniqueFd s(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
            unsigned ifindex = if_nametoindex(veth.peer().c_str());
            sockaddr_ll addr{};
            addr.sll_family = AF_PACKET;
            addr.sll_protocol = htons(ETH_P_ALL);
            addr.sll_ifindex = static_cast<int>(ifindex);
            if (!s || !ifindex ||
                bind(s.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
                error = "packet socket on " + veth.peer() + ": " + strerror(errno);
                return;
            }
            ifreq ifr{};
            std::strncpy(ifr.ifr_name, veth.peer().c_str(), IFNAMSIZ - 1);
            if (ioctl(s.get(), SIOCGIFHWADDR, &ifr) != 0) {
                error = "MAC of " + veth.peer();
                return;
            }
            std::memcpy(client_mac.data(), ifr.ifr_hwaddr.sa_data, 6);
            client = std::move(s);
        });
        t.join();
        if (!error.empty()) throw std::runtime_error(error);
    }

    FrameBuilder from_client() const {
        return std::move(FrameBuilder().macs(host_mac, client_mac).ip(client_ip, host_ip));
    }
    FrameBuilder from_guest() const {
        return std::move(FrameBuilder().macs(tap_mac, kGuestMac).ip(host_ip, client_ip));
    }

    void client_send(const Frame &f) const {
        ASSERT_EQ(write(client.get(), f.data(), f.size()), ssize_t(f.size()));
    }
    void guest_send(const Frame &f) const {
        ASSERT_EQ(write(tap.fd(), f.data(), f.size()), ssize_t(f.size()));
    }

    ServiceKey service(uint16_t port) const {
        return {*IpAddress::parse(host_ip), port, Protocol::tcp};
    }
    Replica replica(uint32_t service_id, uint16_t port) const {
        Replica r;
        r.service_id = service_id;
        r.state = ReplicaState::ready;
        r.tap_ifindex = static_cast<uint32_t>(tap.ifindex());
        r.egress_ifindex = host_ifindex;
        r.guest_mac = kGuestMac;
        r.host_mac = tap_mac;
        r.vip = *IpAddress::parse(host_ip);
        r.port = port;
        return r;
    }
};

Frame with_macs(Frame f, const Mac &dst, const Mac &src) {
    std::copy(dst.begin(), dst.end(), f.begin());
    std::copy(src.begin(), src.end(), f.begin() + 6);
    return f;
}

// Sets up service `id` on `port` with one READY replica (id 1) behind the tap.
void serve(Dataplane &dp, const Topology &t, uint32_t id, uint16_t port) {
    ASSERT_TRUE(dp.set_replica(1, t.replica(id, port)).ok());
    ASSERT_TRUE(dp.upsert_service(t.service(port), Service{id, ServiceState::ready, {1}}).ok());
}

TEST(DataplaneNetns, SynReachesTheReadyReplicasTapAndItsReplyReachesTheClient) {
    WISP_REQUIRE_BPF();
    WISP_REQUIRE_NETNS();
    Topology t;
    DataplaneFixture f;
    auto mode = f.dp().attach_uplink(t.host_ifindex);
    ASSERT_TRUE(mode.ok()) << mode.error().describe();
    EXPECT_EQ(*mode, dataplane::XdpMode::native);
    ASSERT_TRUE(f.dp().attach_tap(static_cast<uint32_t>(t.tap.ifindex())).ok());
    serve(f.dp(), t, 7, 8080);

    Frame syn = t.from_client().tcp(40000, 8080, kTcpSyn).build();
    t.client_send(syn);
    auto at_guest = receive(t.tap.fd(), tcp_ports(40000, 8080), kWait);
    ASSERT_TRUE(at_guest) << "the SYN never reached the tap";
    EXPECT_EQ(*at_guest, with_macs(syn, kGuestMac, t.tap_mac))
        << "the guest must get the SYN with its own MACs";

    Frame synack = t.from_guest().tcp(8080, 40000, kTcpSyn | kTcpAck).build();
    t.guest_send(synack);
    auto at_client = receive(t.client.get(), tcp_ports(8080, 40000), kWait);
    ASSERT_TRUE(at_client) << "the guest's reply never reached the client";
    EXPECT_EQ(*at_client, with_macs(synack, t.client_mac, t.host_mac));

    auto s = statistics(f.dp());
    EXPECT_GE(s[WISP_STAT_FORWARDED], 1u);
    EXPECT_GE(s[WISP_STAT_TAP_FORWARDED], 1u);
    auto c = *f.dp().replica_counters(1);
    EXPECT_GE(c.in_packets, 1u);
    EXPECT_GE(c.out_packets, 1u);

    // A guest cannot send as someone else: nothing with a foreign source leaves.
    Frame spoofed = FrameBuilder()
                        .macs(t.tap_mac, kGuestMac)
                        .ip("198.18.255.1", t.client_ip)
                        .tcp(8080, 40001, kTcpAck)
                        .build();
    t.guest_send(spoofed);
    EXPECT_FALSE(receive(t.client.get(), tcp_ports(8080, 40001), std::chrono::milliseconds(300)));
    EXPECT_GE(statistics(f.dp())[WISP_STAT_SPOOFED], 1u);

    ASSERT_TRUE(f.dp().detach_uplink(t.host_ifindex).ok());
    ASSERT_TRUE(f.dp().detach_tap(static_cast<uint32_t>(t.tap.ifindex())).ok());
}

TEST(DataplaneNetns, SynToAColdServiceArrivesInTheRingBufferIntactAndReplaysIntoTheTap) {
    WISP_REQUIRE_BPF();
    WISP_REQUIRE_NETNS();
    Topology t;
    DataplaneFixture f;
    ASSERT_TRUE(f.dp().attach_uplink(t.host_ifindex).ok());
    ASSERT_TRUE(f.dp().upsert_service(t.service(9090), Service{9, ServiceState::zero, {}}).ok());

    Frame syn = t.from_client().tcp(40000, 9090, kTcpSyn, 20).build();
    t.client_send(syn);
    pollfd p{f.dp().event_fd(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 5000), 1) << "no wake event within 5 s";
    auto events = drain_events(f.dp());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, EventType::wake);
    EXPECT_EQ(events[0].service_id, 9u);
    EXPECT_EQ(events[0].frame, syn) << "the captured frame must be the SYN as sent";
    EXPECT_EQ(events[0].orig_len, syn.size());
    EXPECT_EQ(f.dp().lookup_service(t.service(9090))->state, ServiceState::waking);
    EXPECT_FALSE(receive(t.tap.fd(), tcp_ports(40000, 9090), std::chrono::milliseconds(200)))
        << "a SYN to a cold service must not reach any tap";

    // wispd's replay: the captured SYN, readdressed to the guest, injected into the tap.
    dataplane::Event ev;
    ev.type = events[0].type;
    ev.orig_len = events[0].orig_len;
    ev.l3_offset = events[0].l3_offset;
    ev.l3_proto = events[0].l3_proto;
    ev.frame = events[0].frame;
    auto replay = dataplane::replay_frame(ev, kGuestMac, t.tap_mac);
    ASSERT_TRUE(replay.ok()) << replay.error().describe();
    ASSERT_TRUE(dataplane::inject_frame(static_cast<uint32_t>(t.tap.ifindex()), *replay).ok());
    auto at_guest = receive(t.tap.fd(), tcp_ports(40000, 9090), kWait);
    ASSERT_TRUE(at_guest) << "the replayed SYN never reached the tap's reader";
    EXPECT_EQ(*at_guest, with_macs(syn, kGuestMac, t.tap_mac));

    // Several buffered frames go in order through one call.
    Frame second =
        with_macs(t.from_client().tcp(40001, 9090, kTcpSyn).build(), kGuestMac, t.tap_mac);
    std::vector<Frame> batch = {*replay, second};
    ASSERT_TRUE(dataplane::inject_frames(static_cast<uint32_t>(t.tap.ifindex()), batch).ok());
    EXPECT_TRUE(receive(t.tap.fd(), tcp_ports(40000, 9090), kWait));
    EXPECT_TRUE(receive(t.tap.fd(), tcp_ports(40001, 9090), kWait));
    ASSERT_TRUE(f.dp().detach_uplink(t.host_ifindex).ok());
}

TEST(DataplanePins, ForwardingOutlivesTheLoaderAndANewProcessKeepsTheSameMaps) {
    WISP_REQUIRE_BPF();
    WISP_REQUIRE_NETNS();
    Topology t;
    ScopedBpffsDir pins("dppin");
    dataplane::Options options;
    options.pin_root = pins.path() + "/wisp";
    const uint32_t tap = static_cast<uint32_t>(t.tap.ifindex());

    // The loader: sets everything up and exits without detaching anything.
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        int rc = [&] {
            auto dp = Dataplane::open(options);
            if (!dp || (*dp)->reused_pins()) return 1;
            if (!(*dp)->attach_uplink(t.host_ifindex).ok() || !(*dp)->attach_tap(tap).ok())
                return 2;
            if (!(*dp)->set_replica(1, t.replica(7, 8080)).ok()) return 3;
            if (!(*dp)->upsert_service(t.service(8080), Service{7, ServiceState::ready, {1}}).ok())
                return 4;
            return 0;
        }();
        _exit(rc);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "loader failed, status " << status;

    // Nobody holds the data plane now: it keeps forwarding both ways.
    Frame syn = t.from_client().tcp(40000, 8080, kTcpSyn).build();
    t.client_send(syn);
    ASSERT_TRUE(receive(t.tap.fd(), tcp_ports(40000, 8080), kWait))
        << "forwarding stopped with the loader";
    t.guest_send(t.from_guest().tcp(8080, 40000, kTcpSyn | kTcpAck).build());
    ASSERT_TRUE(receive(t.client.get(), tcp_ports(8080, 40000), kWait))
        << "return path stopped with the loader";

    // A new process re-opens the pins: same maps, same entries, same flow.
    auto reopened = Dataplane::open(options);
    ASSERT_TRUE(reopened.ok()) << reopened.error().describe();
    Dataplane &dp = **reopened;
    EXPECT_TRUE(dp.reused_pins());
    auto svc = dp.lookup_service(t.service(8080));
    ASSERT_TRUE(svc.ok());
    EXPECT_EQ(svc->id, 7u);
    EXPECT_EQ(svc->state, ServiceState::ready);
    EXPECT_EQ(svc->replicas, std::vector<uint32_t>{1});
    EXPECT_EQ(dp.lookup_replica(1)->tap_ifindex, tap);
    auto flow = dp.lookup_flow(dataplane::make_flow_key(
        *IpAddress::parse(t.client_ip), 40000, *IpAddress::parse(t.host_ip), 8080, Protocol::tcp));
    ASSERT_TRUE(flow.ok() && flow->has_value()) << "the flow of the first SYN is gone";
    EXPECT_EQ((*flow)->replica_id, 1u);
    EXPECT_GE(statistics(dp)[WISP_STAT_FORWARDED], 1u);

    // Writes through the new handle steer the program the old process attached.
    ASSERT_TRUE(dp.upsert_service(t.service(8081), Service{8, ServiceState::zero, {}}).ok());
    t.client_send(t.from_client().tcp(40001, 8081, kTcpSyn).build());
    pollfd p{dp.event_fd(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 5000), 1) << "the attached program does not see the new handle's service";
    auto events = drain_events(dp);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].service_id, 8u);

    // Re-attaching swaps in this process's program atomically; the flow stays put.
    auto mode = dp.attach_uplink(t.host_ifindex);
    ASSERT_TRUE(mode.ok()) << mode.error().describe();
    ASSERT_TRUE(dp.attach_tap(tap).ok());
    t.client_send(t.from_client().tcp(40000, 8080, kTcpAck).payload(10).build());
    EXPECT_TRUE(receive(t.tap.fd(), tcp_ports(40000, 8080), kWait))
        << "forwarding broke across the program swap";

    // Clean detach: the SYN now goes to the host stack instead of the tap.
    ASSERT_TRUE(dp.detach_uplink(t.host_ifindex).ok());
    ASSERT_TRUE(dp.detach_tap(tap).ok());
    EXPECT_EQ(dp.detach_uplink(t.host_ifindex).error().code, ENOENT);
    t.client_send(t.from_client().tcp(40002, 8080, kTcpSyn).build());
    EXPECT_FALSE(receive(t.tap.fd(), tcp_ports(40002, 8080), std::chrono::milliseconds(300)));
    ASSERT_TRUE(dp.unpin().ok());
}

// A bridge: an interface whose driver has no native XDP. Removed at the end.
struct ScopedBridge {
    std::string name = unique_name("dpbr");
    ScopedBridge() {
        must({"ip", "link", "add", name, "type", "bridge"});
        must({"ip", "link", "set", name, "up"});
    }
    ~ScopedBridge() { run({"ip", "link", "del", name}, 30); }
    uint32_t ifindex() const { return if_nametoindex(name.c_str()); }
};

TEST(DataplaneAttach, FallsBackToGenericXdpWhereTheDriverHasNoNativeXdp) {
    WISP_REQUIRE_BPF();
    WISP_REQUIRE_NETNS();
    ScopedBridge bridge;
    DataplaneFixture f;
    auto mode = f.dp().attach_uplink(bridge.ifindex());
    ASSERT_TRUE(mode.ok()) << mode.error().describe();
    EXPECT_EQ(*mode, dataplane::XdpMode::generic);
    ASSERT_TRUE(f.dp().detach_uplink(bridge.ifindex()).ok());
}

TEST(DataplaneAttach, GenericModeForwardsLikeNativeMode) {
    WISP_REQUIRE_BPF();
    WISP_REQUIRE_NETNS();
    Topology t;
    DataplaneFixture f;
    auto mode = f.dp().attach_uplink(t.host_ifindex, dataplane::XdpMode::generic);
    ASSERT_TRUE(mode.ok()) << mode.error().describe();
    EXPECT_EQ(*mode, dataplane::XdpMode::generic);
    serve(f.dp(), t, 7, 8080);
    Frame syn = t.from_client().tcp(40000, 8080, kTcpSyn).build();
    t.client_send(syn);
    auto at_guest = receive(t.tap.fd(), tcp_ports(40000, 8080), kWait);
    ASSERT_TRUE(at_guest) << "the SYN never reached the tap";
    EXPECT_EQ(*at_guest, with_macs(syn, kGuestMac, t.tap_mac));
    ASSERT_TRUE(f.dp().detach_uplink(t.host_ifindex).ok());
}

TEST(DataplanePins, AttachingNextToAForeignXdpProgramIsRefused) {
    WISP_REQUIRE_BPF();
    WISP_REQUIRE_NETNS();
    Topology t;
    DataplaneFixture mine, theirs;  // two data planes with separate maps
    ASSERT_TRUE(theirs.dp().attach_uplink(t.host_ifindex).ok());
    auto refused = mine.dp().attach_uplink(t.host_ifindex);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, EEXIST);
    EXPECT_EQ(mine.dp().detach_uplink(t.host_ifindex).error().code, ENOENT)
        << "must not detach a stranger";
    ASSERT_TRUE(theirs.dp().detach_uplink(t.host_ifindex).ok());
}

TEST(DataplanePins, PinsWithAnotherLayoutAreRefusedInsteadOfMisread) {
    WISP_REQUIRE_BPF();
    ScopedBpffsDir pins("dpabi");
    // A services map as an incompatible version would have left it (other value size).
    UniqueFd stale(bpf_map_create(BPF_MAP_TYPE_HASH, "wisp_services", sizeof(wisp_service_key), 64,
                                  1024, nullptr));
    ASSERT_TRUE(stale) << strerror(errno);
    ASSERT_EQ(bpf_obj_pin(stale.get(), (pins.path() + "/wisp_services").c_str()), 0);
    dataplane::Options options;
    options.pin_root = pins.path();
    auto dp = Dataplane::open(options);
    ASSERT_FALSE(dp.ok());
    EXPECT_NE(dp.error().message.find("incompatible"), std::string::npos) << dp.error().describe();
}

TEST(DataplanePins, BpftoolShowsTheMapsWithNamedFields) {
    WISP_REQUIRE_BPF();
    DataplaneFixture f;
    ServiceKey key{*IpAddress::parse("198.18.0.1"), 8080, Protocol::tcp};
    Replica r;
    r.service_id = 7;
    r.tap_ifindex = 12;
    r.egress_ifindex = 2;
    r.guest_mac = kGuestMac;
    r.vip = key.vip;
    r.port = 8080;
    ASSERT_TRUE(f.dp().set_replica(3, r).ok());
    ASSERT_TRUE(f.dp().upsert_service(key, Service{7, ServiceState::ready, {3}}).ok());

    auto dump = run({"bpftool", "-j", "map", "dump", "pinned", f.pin_root() + "/wisp_services"});
    ASSERT_EQ(dump.exit_code, 0) << dump.output;
    auto json = nlohmann::json::parse(dump.output);
    ASSERT_EQ(json.size(), 1u) << dump.output;
    ASSERT_TRUE(json[0].contains("formatted")) << "bpftool found no BTF: " << dump.output;
    auto k = json[0]["formatted"]["key"], v = json[0]["formatted"]["value"];
    EXPECT_EQ(k["port"], htons(8080));
    EXPECT_EQ(k["proto"], IPPROTO_TCP);
    EXPECT_EQ(k["vip"].size(), 16u);
    EXPECT_EQ(k["vip"][12], 198);
    EXPECT_EQ(v["id"], 7);
    EXPECT_EQ(v["state"], WISP_SERVICE_READY);
    EXPECT_EQ(v["replicas"][0], 3);

    dump = run({"bpftool", "-j", "map", "lookup", "pinned", f.pin_root() + "/wisp_replicas", "key",
                "3", "0", "0", "0"});
    ASSERT_EQ(dump.exit_code, 0) << dump.output;
    auto replica = nlohmann::json::parse(dump.output)["formatted"]["value"];
    EXPECT_EQ(replica["service_id"], 7);
    EXPECT_EQ(replica["tap_ifindex"], 12);
    EXPECT_EQ(replica["state"], WISP_REPLICA_STARTING);
    EXPECT_EQ(replica["guest_mac"][0], 0x02);
}

}  // namespace
}  // namespace wisp::test
