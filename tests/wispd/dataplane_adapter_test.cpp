// wispd's DataPlane port over the real data plane: the BPF object loaded into the
// kernel, its maps pinned under a test bpffs directory, XDP on a veth, TC on a tap.
// The maps are read back raw (by their pins), the way XDP and a restarted wispd
// see them.
#include "wispd/dataplane_adapter.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "wisp/test/capabilities.h"
#include "wisp/test/net.h"
#include "wisp/test/process.h"
#include "wisp_abi.h"

namespace {

using namespace wisp::wispd;
using namespace wisp::test;

constexpr const char *kVip = "198.18.99.1";
constexpr uint16_t kPort = 8080;

class DataplaneAdapterTest : public ::testing::Test {
protected:
    void SetUp() override {
        WISP_REQUIRE_BPF();
        WISP_REQUIRE_NETNS();
        dp_ = open();
    }

    std::unique_ptr<BpfDataPlane> open() {
        auto dp = BpfDataPlane::open({bpffs_.path() + "/wisp", veth_.host()});
        EXPECT_TRUE(dp.ok()) << dp.error().describe();
        return dp.ok() ? std::move(dp).value() : nullptr;
    }

    // A pinned map, opened the way another process (XDP's loader, bpftool) would.
    wisp::UniqueFd pin(const char *map) {
        return wisp::UniqueFd(bpf_obj_get((bpffs_.path() + "/wisp/" + map).c_str()));
    }

    // The service's map value, as XDP reads it.
    wisp_service service_value() {
        wisp_service_key key{};
        key.vip[10] = key.vip[11] = 0xff;
        inet_pton(AF_INET, kVip, key.vip + 12);
        key.port = htons(kPort);
        key.proto = IPPROTO_TCP;
        wisp_service v{};
        auto fd = pin("wisp_services");
        EXPECT_EQ(bpf_map_lookup_elem(fd.get(), &key, &v), 0);
        return v;
    }
    wisp_replica replica_value(uint32_t id) {
        wisp_replica v{};
        auto fd = pin("wisp_replicas");
        EXPECT_EQ(bpf_map_lookup_elem(fd.get(), &id, &v), 0);
        return v;
    }

    DpService service(DpServiceState state) { return {7, kVip, kPort, Protocol::kTcp, state}; }
    DpReplica replica(ReplicaId id, DpReplicaState state = DpReplicaState::kReady) {
        return {id, 7, tap_.ifindex(), MacAddress::for_replica(id), {}, state};
    }

    ScopedBpffsDir bpffs_{"dpad"};
    ScopedVeth veth_{"dpad"};
    ScopedTap tap_{"dpad"};
    std::unique_ptr<BpfDataPlane> dp_;
};

TEST_F(DataplaneAdapterTest, ReplicasAndStateReachTheMapsAsXdpReadsThem) {
    ASSERT_TRUE(dp_->upsert_service(service(DpServiceState::kZero)).ok());
    EXPECT_EQ(service_value().state, WISP_SERVICE_ZERO);
    ASSERT_TRUE(dp_->set_replicas(7, {replica(5)}).ok());
    ASSERT_TRUE(dp_->upsert_service(service(DpServiceState::kReady)).ok());
    wisp_service s = service_value();
    EXPECT_EQ(s.id, 7u);
    EXPECT_EQ(s.state, WISP_SERVICE_READY);
    EXPECT_EQ(s.replicas[0], 5u);
    wisp_replica r = replica_value(5);
    EXPECT_EQ(r.state, WISP_REPLICA_READY);
    EXPECT_EQ(r.tap_ifindex, static_cast<uint32_t>(tap_.ifindex()));
    EXPECT_EQ(r.service_id, 7u);
    EXPECT_EQ(ntohs(r.port), kPort);
    // The tap's own MAC was looked up (the replica came with none).
    auto mac = run({"cat", "/sys/class/net/" + tap_.name() + "/address"}).output.substr(0, 17);
    MacAddress host;
    std::copy(std::begin(r.host_mac), std::end(r.host_mac), host.bytes.begin());
    EXPECT_EQ(host.to_string(), mac);
}

TEST_F(DataplaneAdapterTest, AReplicaLeftOutOfTheSetIsFreedAndLeavesItsSlot) {
    ASSERT_TRUE(dp_->upsert_service(service(DpServiceState::kReady)).ok());
    ASSERT_TRUE(dp_->set_replicas(7, {replica(5), replica(6, DpReplicaState::kDraining)}).ok());
    EXPECT_EQ(replica_value(6).state, WISP_REPLICA_DRAINING);
    ASSERT_TRUE(dp_->set_replicas(7, {replica(6, DpReplicaState::kDraining)}).ok());
    EXPECT_EQ(replica_value(5).state, WISP_REPLICA_FREE);
    wisp_service s = service_value();
    EXPECT_EQ(s.replicas[0], 6u);
    EXPECT_EQ(s.replicas[1], WISP_REPLICA_NONE);
}

TEST_F(DataplaneAdapterTest, SettingReplicasKeepsTheStateTheDataPlaneChose) {
    ASSERT_TRUE(dp_->upsert_service(service(DpServiceState::kZero)).ok());
    // XDP saw a SYN and moved the service to WAKING by itself.
    wisp_service v = service_value();
    v.state = WISP_SERVICE_WAKING;
    wisp_service_key key{};
    key.vip[10] = key.vip[11] = 0xff;
    inet_pton(AF_INET, kVip, key.vip + 12);
    key.port = htons(kPort);
    key.proto = IPPROTO_TCP;
    auto fd = pin("wisp_services");
    ASSERT_EQ(bpf_map_update_elem(fd.get(), &key, &v, BPF_EXIST), 0);
    ASSERT_TRUE(dp_->set_replicas(7, {replica(5)}).ok());
    EXPECT_EQ(service_value().state, WISP_SERVICE_WAKING);
}

TEST_F(DataplaneAdapterTest, ARestartedWispdKeepsTheReplicasItFindsPinned) {
    ASSERT_TRUE(dp_->upsert_service(service(DpServiceState::kReady)).ok());
    ASSERT_TRUE(dp_->set_replicas(7, {replica(5)}).ok());
    dp_.reset();  // wispd killed: pins and programs stay

    auto again = open();
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->reused_pins());
    ASSERT_TRUE(again->upsert_service(service(DpServiceState::kReady)).ok());
    EXPECT_EQ(service_value().replicas[0], 5u) << "forwarding must not pause during recovery";
    auto ids = again->list_services();
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*ids, std::vector<ServiceId>{7});
    // Recovery found replica 5 dead: an empty set frees it.
    ASSERT_TRUE(again->set_replicas(7, {}).ok());
    EXPECT_EQ(replica_value(5).state, WISP_REPLICA_FREE);
    ASSERT_TRUE(again->remove_service(7).ok());
    EXPECT_TRUE(again->list_services()->empty());
}

TEST_F(DataplaneAdapterTest, LastActivityIsTheNewerStampCentredOnItsCoarseTick) {
    ASSERT_TRUE(dp_->upsert_service(service(DpServiceState::kReady)).ok());
    ASSERT_TRUE(dp_->set_replicas(7, {replica(5)}).ok());
    EXPECT_EQ(*dp_->last_activity_ns(5), 0u) << "no packet yet";
    // Stamps as XDP (in) and TC (out) write them, on two CPUs.
    int cpus = libbpf_num_possible_cpus();
    ASSERT_GT(cpus, 0);
    std::vector<wisp_replica_stats> per_cpu(static_cast<size_t>(cpus));
    per_cpu[0].last_in_ns = 1'000'000'000;
    per_cpu[cpus > 1 ? 1 : 0].last_out_ns = 1'500'000'000;
    uint32_t id = 5;
    auto fd = pin("wisp_rep_stats");
    ASSERT_EQ(bpf_map_update_elem(fd.get(), &id, per_cpu.data(), BPF_ANY), 0);
    timespec res{};
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    uint64_t tick = static_cast<uint64_t>(res.tv_nsec);
    EXPECT_EQ(*dp_->last_activity_ns(5), 1'500'000'000u + tick / 2);
}

TEST_F(DataplaneAdapterTest, ReplicaLoadsReadEveryListedReplicaSummedOverCpusInBatchesOfNearbyIds) {
    // Counters as XDP writes them, on every CPU, for ids spread over the map.
    int cpus = libbpf_num_possible_cpus();
    ASSERT_GT(cpus, 0);
    auto fd = pin("wisp_rep_stats");
    for (uint32_t id : {3u, 9u, 40u, 4095u}) {
        std::vector<wisp_replica_stats> per_cpu(static_cast<size_t>(cpus));
        for (int c = 0; c < cpus; ++c) {
            per_cpu[static_cast<size_t>(c)].new_flows = id * 10 + static_cast<uint64_t>(c);
            per_cpu[static_cast<size_t>(c)].in_packets = id * 100;
        }
        per_cpu[0].last_in_ns = 2'000'000'000 + id;
        ASSERT_EQ(bpf_map_update_elem(fd.get(), &id, per_cpu.data(), BPF_ANY), 0);
    }
    // Any order; 7 has no traffic; 3, 7 and 9 are one batch, 40 and 4095 one each.
    std::vector<ReplicaId> ids = {40, 3, 9, 4095, 7};
    std::vector<DpReplicaLoad> loads;
    ASSERT_TRUE(dp_->replica_loads(ids, loads).ok());
    ASSERT_EQ(loads.size(), ids.size());
    uint64_t cpu_sum = static_cast<uint64_t>(cpus) * static_cast<uint64_t>(cpus - 1) / 2;
    timespec res{};
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    uint64_t half_tick = static_cast<uint64_t>(res.tv_nsec) / 2;
    for (size_t i = 0; i < 4; ++i) {
        uint64_t id = ids[i];
        EXPECT_EQ(loads[i].new_flows, id * 10 * static_cast<uint64_t>(cpus) + cpu_sum) << id;
        EXPECT_EQ(loads[i].in_packets, id * 100 * static_cast<uint64_t>(cpus)) << id;
        EXPECT_EQ(loads[i].last_activity_ns, 2'000'000'000 + id + half_tick) << id;
    }
    EXPECT_EQ(loads[4].new_flows, 0u);
    EXPECT_EQ(loads[4].last_activity_ns, 0u);
    ASSERT_TRUE(dp_->replica_loads({}, loads).ok());
    EXPECT_TRUE(loads.empty());
}

TEST_F(DataplaneAdapterTest, CountersAreTheDataPlanesOwnStatistics) {
    auto counters = dp_->counters();
    std::vector<std::string> names;
    for (auto &c : counters) names.push_back(c.name);
    for (const char *n : {"passed", "forwarded", "wakes", "buffered", "ringbuf_full", "tap_forwarded"})
        EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
    EXPECT_EQ(counters.size(), static_cast<size_t>(WISP_STAT_MAX));
    EXPECT_GE(dp_->event_fd(), 0);
}

}  // namespace
