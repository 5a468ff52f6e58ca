/* wisp data plane ABI: every BPF map key and value, the ring-buffer record, and the
 * enums shared by the BPF programs (bpf/wisp_dataplane.bpf.c) and userspace
 * (userspace/dataplane/). Plain C, fixed-width fields, explicit padding, no pointers.
 * tests/bpf/dataplane_abi_test.cpp pins sizeof/offsetof of every struct: a change here
 * must be deliberate and bump WISP_DP_ABI_VERSION (pinned maps from an older layout
 * are then refused at load time because their key/value sizes no longer match).
 *
 * Conventions:
 *   - addresses are 16 bytes: IPv6 as is, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d);
 *   - ports are in network byte order (as on the wire), everything else host order;
 *   - `pad` fields are zero; map keys are compared byte for byte.
 *
 * docs/dataplane.md describes who writes which map and the packet paths. */
#ifndef WISP_ABI_H
#define WISP_ABI_H

#include <linux/types.h>

#define WISP_DP_ABI_VERSION 1

/* Replica slots per service: the set new flows are spread over (autoscale limit). */
#define WISP_REPLICA_SLOTS 16

/* Replica id 0 is never used: an empty slot in wisp_service.replicas. */
#define WISP_REPLICA_NONE 0

/* Most bytes of a frame a ring-buffer record carries: a full 1500-byte IP packet
 * with its Ethernet header and one VLAN tag, so first UDP datagrams up to the usual
 * MTU can be replayed whole. The load-time setting wisp_capture_limit can lower it. */
#define WISP_CAPTURE_MAX 1536

/* wisp_ports: one bit per (protocol, destination port) that some service uses.
 * Word index = (proto == IPPROTO_UDP ? WISP_PORT_WORDS_PER_PROTO : 0) + (port >> 6),
 * bit = port & 63 (port in host order). See wisp_port_word()/wisp_port_bit(). */
#define WISP_PORT_WORDS_PER_PROTO 1024
#define WISP_PORT_WORDS (2 * WISP_PORT_WORDS_PER_PROTO)

/* Default pin root; every map below is pinned there under its own name. */
#define WISP_DEFAULT_PIN_ROOT "/sys/fs/bpf/wisp"

/* Service state. Userspace (wispd) writes every state; the data plane itself only
 * moves ZERO -> WAKING (or READY -> WAKING when no replica is READY) with an atomic
 * compare-and-swap, so a flood of SYNs produces exactly one WAKE event. */
enum wisp_service_state {
    WISP_SERVICE_ZERO = 0,     /* no replica: the first SYN wakes the service */
    WISP_SERVICE_WAKING = 1,   /* a wake is in flight: new SYNs are buffered */
    WISP_SERVICE_READY = 2,    /* new flows are spread over READY replicas */
    WISP_SERVICE_DRAINING = 3, /* stopping: existing flows continue, new ones are
                                  passed to the host stack (which refuses them) */
};

/* Replica state (wisp_replica.state), written by userspace only. */
enum wisp_replica_state {
    WISP_REPLICA_FREE = 0,     /* id unused: flows pointing here are re-picked */
    WISP_REPLICA_STARTING = 1, /* tap exists, guest not ready: gets no traffic,
                                  its frames are accepted on the return path */
    WISP_REPLICA_READY = 2,    /* takes new and existing flows */
    WISP_REPLICA_DRAINING = 3, /* keeps its existing flows, gets no new ones */
};

/* Ring-buffer record type (wisp_event.type). */
enum wisp_event_type {
    WISP_EVENT_WAKE = 1,     /* first new flow to a cold service: start a replica */
    WISP_EVENT_BUFFERED = 2, /* another new flow while the wake is in flight */
};

/* Per-CPU statistics (wisp_stats), indexed by this enum; userspace sums the CPUs. */
enum wisp_stat {
    WISP_STAT_PASSED = 0,         /* XDP: not service traffic, passed untouched */
    WISP_STAT_FORWARDED = 1,      /* XDP: redirected to a replica's tap */
    WISP_STAT_NEW_FLOWS = 2,      /* XDP: flows given a replica (flow table insert) */
    WISP_STAT_REPICKED = 3,       /* XDP: flows whose replica was gone, re-picked */
    WISP_STAT_WAKES = 4,          /* XDP: WAKE records written */
    WISP_STAT_BUFFERED = 5,       /* XDP: BUFFERED records written */
    WISP_STAT_COLD_DROPPED = 6,   /* XDP: non-initial packets to a cold service */
    WISP_STAT_RINGBUF_FULL = 7,   /* XDP: captures lost to a full ring buffer */
    WISP_STAT_MALFORMED = 8,      /* XDP+TC: frames the parser rejected */
    WISP_STAT_FRAGMENTS = 9,      /* XDP: first fragments to a service, dropped */
    WISP_STAT_DRAINING_PASSED = 10, /* XDP: new flows to a DRAINING service, passed */
    WISP_STAT_TAP_FORWARDED = 11, /* TC: guest frames sent out of the uplink */
    WISP_STAT_SPOOFED = 12,       /* TC: guest frames with a foreign MAC/IP/port */
    WISP_STAT_TAP_DROPPED = 13,   /* TC: non-IP/ND/multicast/other-protocol frames */
    WISP_STAT_TAP_UNKNOWN = 14,   /* TC: frames on a tap that has no live replica */
    WISP_STAT_MAX = 15,
};

/* wisp_services key: where a service listens. */
struct wisp_service_key {
    __u8 vip[16];  /* service address (normally the uplink's own address) */
    __be16 port;   /* destination port, network order */
    __u8 proto;    /* IPPROTO_TCP or IPPROTO_UDP */
    __u8 pad;
};

/* wisp_services value. */
struct wisp_service {
    __u32 id;     /* wispd's service id, copied into events and replicas */
    __u32 state;  /* enum wisp_service_state */
    __u32 flags;  /* none defined yet; zero */
    __u32 pad;
    __u32 replicas[WISP_REPLICA_SLOTS]; /* replica ids (WISP_REPLICA_NONE = empty) */
};

/* wisp_replicas value, indexed by replica id. */
struct wisp_replica {
    __u32 state;          /* enum wisp_replica_state */
    __u32 service_id;     /* the service this replica serves */
    __u32 generation;     /* new for every use of this id: stale flows are re-picked */
    __u32 tap_ifindex;    /* frames for the guest are redirected to this tap */
    __u32 egress_ifindex; /* the guest's replies leave through it (the uplink) */
    __u8 guest_mac[6];    /* the guest's MAC: destination of frames to it */
    __u8 host_mac[6];     /* source MAC of frames to the guest (the guest's gateway) */
    __u8 vip[16];         /* the address the guest answers from */
    __be16 port;          /* the guest's service port, network order */
    __u8 proto;           /* IPPROTO_TCP or IPPROTO_UDP */
    __u8 pad[5];
};

/* wisp_rep_stats value (per CPU), indexed by replica id. "in" is toward the guest
 * (XDP), "out" is from the guest (TC). Timestamps are bpf_ktime_get_coarse_ns():
 * CLOCK_MONOTONIC_COARSE, comparable with clock_gettime(CLOCK_MONOTONIC) to within
 * one scheduler tick. Userspace sums counters and takes the latest timestamp over
 * CPUs. */
struct wisp_replica_stats {
    __u64 in_packets;
    __u64 in_bytes;
    __u64 out_packets;
    __u64 out_bytes;
    __u64 new_flows;   /* flows assigned to this replica */
    __u64 last_in_ns;  /* last frame forwarded to the guest */
    __u64 last_out_ns; /* last frame the guest sent out */
    __u64 spoofed;     /* frames from this guest dropped as spoofed */
};

/* wisp_flows key: the 5-tuple of a packet toward a service. */
struct wisp_flow_key {
    __u8 saddr[16]; /* client address */
    __u8 daddr[16]; /* service address */
    __be16 sport;
    __be16 dport;
    __u8 proto;
    __u8 pad[3];
} __attribute__((aligned(8)));

/* wisp_flows value: the replica a flow sticks to. */
struct wisp_flow {
    __u32 replica_id;
    __u32 generation; /* wisp_replica.generation when the flow was assigned */
};

/* wisp_taps value, keyed by the tap's ifindex (__u32). */
struct wisp_tap {
    __u32 replica_id;
};

/* wisp_flow_cache value (per CPU; private to the data plane, userspace only sizes
 * it): a direct-mapped copy of recently used wisp_flows entries. */
struct wisp_flow_cache_entry {
    struct wisp_flow_key key;
    struct wisp_flow flow;
};

/* wisp_clock value (per CPU; private to the data plane): the coarse clock read at the
 * start of the current jiffy, so a packet reads a counter instead of the clock. */
struct wisp_clock_cache {
    __u64 jiffies;
    __u64 coarse_ns;
};

/* Ring-buffer record header (wisp_events); cap_len bytes of the frame follow it
 * directly, starting with its Ethernet header. */
struct wisp_event {
    __u32 type;         /* enum wisp_event_type */
    __u32 service_id;
    __u64 timestamp_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
    __u32 ifindex;      /* interface the frame arrived on */
    __u32 orig_len;     /* frame length on the wire */
    __u32 cap_len;      /* bytes that follow (< orig_len: truncated) */
    __u16 l3_offset;    /* offset of the IP header in the frame (14, or 18 with VLAN) */
    __u16 l3_proto;     /* ETH_P_IP or ETH_P_IPV6 (host order) */
};

/* A whole record as the XDP program assembles it before copying it out. */
struct wisp_event_capture {
    struct wisp_event hdr;
    __u8 data[WISP_CAPTURE_MAX];
};

#endif /* WISP_ABI_H */
