// Pins the layout of the data plane <-> userspace ABI (bpf/wisp_abi.h). The BPF
// object and wisp::dataplane are compiled against the same header, but pinned maps
// outlive both: a layout change must be deliberate and bump WISP_DP_ABI_VERSION.
#include <gtest/gtest.h>

#include <cstddef>

#include "wisp_abi.h"

#define EXPECT_FIELD(type, field, off) EXPECT_EQ(offsetof(type, field), size_t{off}) << #field

TEST(DataplaneAbi, ServiceKeyAndValueHaveFixedLayout) {
    EXPECT_EQ(sizeof(wisp_service_key), 20u);
    EXPECT_FIELD(wisp_service_key, vip, 0);
    EXPECT_FIELD(wisp_service_key, port, 16);
    EXPECT_FIELD(wisp_service_key, proto, 18);
    EXPECT_FIELD(wisp_service_key, pad, 19);

    EXPECT_EQ(sizeof(wisp_service), 80u);
    EXPECT_FIELD(wisp_service, id, 0);
    EXPECT_FIELD(wisp_service, state, 4);
    EXPECT_FIELD(wisp_service, flags, 8);
    EXPECT_FIELD(wisp_service, pad, 12);
    EXPECT_FIELD(wisp_service, replicas, 16);
    EXPECT_EQ(sizeof(wisp_service::replicas), WISP_REPLICA_SLOTS * 4u);
}

TEST(DataplaneAbi, ReplicaAndItsCountersHaveFixedLayout) {
    EXPECT_EQ(sizeof(wisp_replica), 56u);
    EXPECT_FIELD(wisp_replica, state, 0);
    EXPECT_FIELD(wisp_replica, service_id, 4);
    EXPECT_FIELD(wisp_replica, generation, 8);
    EXPECT_FIELD(wisp_replica, tap_ifindex, 12);
    EXPECT_FIELD(wisp_replica, egress_ifindex, 16);
    EXPECT_FIELD(wisp_replica, guest_mac, 20);
    EXPECT_FIELD(wisp_replica, host_mac, 26);
    EXPECT_FIELD(wisp_replica, vip, 32);
    EXPECT_FIELD(wisp_replica, port, 48);
    EXPECT_FIELD(wisp_replica, proto, 50);
    EXPECT_FIELD(wisp_replica, pad, 51);

    EXPECT_EQ(sizeof(wisp_replica_stats), 64u);
    EXPECT_FIELD(wisp_replica_stats, in_packets, 0);
    EXPECT_FIELD(wisp_replica_stats, in_bytes, 8);
    EXPECT_FIELD(wisp_replica_stats, out_packets, 16);
    EXPECT_FIELD(wisp_replica_stats, out_bytes, 24);
    EXPECT_FIELD(wisp_replica_stats, new_flows, 32);
    EXPECT_FIELD(wisp_replica_stats, last_in_ns, 40);
    EXPECT_FIELD(wisp_replica_stats, last_out_ns, 48);
    EXPECT_FIELD(wisp_replica_stats, spoofed, 56);

    EXPECT_EQ(sizeof(wisp_tap), 4u);
    EXPECT_FIELD(wisp_tap, replica_id, 0);
}

TEST(DataplaneAbi, FlowKeyIsFortyAlignedBytesAndFlowValueEight) {
    EXPECT_EQ(sizeof(wisp_flow_key), 40u);
    EXPECT_EQ(alignof(wisp_flow_key), 8u);  // the flow hash reads it as five u64 words
    EXPECT_FIELD(wisp_flow_key, saddr, 0);
    EXPECT_FIELD(wisp_flow_key, daddr, 16);
    EXPECT_FIELD(wisp_flow_key, sport, 32);
    EXPECT_FIELD(wisp_flow_key, dport, 34);
    EXPECT_FIELD(wisp_flow_key, proto, 36);
    EXPECT_FIELD(wisp_flow_key, pad, 37);

    EXPECT_EQ(sizeof(wisp_flow), 8u);
    EXPECT_FIELD(wisp_flow, replica_id, 0);
    EXPECT_FIELD(wisp_flow, generation, 4);
}

TEST(DataplaneAbi, PrivateCacheEntriesHaveFixedLayout) {
    EXPECT_EQ(sizeof(wisp_flow_cache_entry), 48u);
    EXPECT_FIELD(wisp_flow_cache_entry, key, 0);
    EXPECT_FIELD(wisp_flow_cache_entry, flow, 40);
    EXPECT_EQ(sizeof(wisp_clock_cache), 16u);
    EXPECT_FIELD(wisp_clock_cache, jiffies, 0);
    EXPECT_FIELD(wisp_clock_cache, coarse_ns, 8);
}

TEST(DataplaneAbi, EventRecordHeaderIsThirtyTwoBytesFollowedByTheFrame) {
    EXPECT_EQ(sizeof(wisp_event), 32u);
    EXPECT_FIELD(wisp_event, type, 0);
    EXPECT_FIELD(wisp_event, service_id, 4);
    EXPECT_FIELD(wisp_event, timestamp_ns, 8);
    EXPECT_FIELD(wisp_event, ifindex, 16);
    EXPECT_FIELD(wisp_event, orig_len, 20);
    EXPECT_FIELD(wisp_event, cap_len, 24);
    EXPECT_FIELD(wisp_event, l3_offset, 28);
    EXPECT_FIELD(wisp_event, l3_proto, 30);
    EXPECT_FIELD(wisp_event_capture, data, 32);
    EXPECT_EQ(sizeof(wisp_event_capture), 32u + WISP_CAPTURE_MAX);
    EXPECT_GE(WISP_CAPTURE_MAX, 256);  // a SYN with options and a VLAN tag fits many times
}

TEST(DataplaneAbi, EnumValuesAreStable) {
    EXPECT_EQ(WISP_DP_ABI_VERSION, 1);
    EXPECT_EQ(WISP_SERVICE_ZERO, 0);
    EXPECT_EQ(WISP_SERVICE_WAKING, 1);
    EXPECT_EQ(WISP_SERVICE_READY, 2);
    EXPECT_EQ(WISP_SERVICE_DRAINING, 3);
    EXPECT_EQ(WISP_REPLICA_FREE, 0);
    EXPECT_EQ(WISP_REPLICA_STARTING, 1);
    EXPECT_EQ(WISP_REPLICA_READY, 2);
    EXPECT_EQ(WISP_REPLICA_DRAINING, 3);
    EXPECT_EQ(WISP_EVENT_WAKE, 1);
    EXPECT_EQ(WISP_EVENT_BUFFERED, 2);
    EXPECT_EQ(WISP_STAT_PASSED, 0);
    EXPECT_EQ(WISP_STAT_TAP_UNKNOWN, 14);
    EXPECT_EQ(WISP_STAT_MAX, 15);
    EXPECT_EQ(WISP_REPLICA_SLOTS, 16);
    EXPECT_EQ(WISP_PORT_WORDS, 2048);
}
