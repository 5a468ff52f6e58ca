/* The data plane's maps (BPF side). Keys and values are defined in wisp_abi.h.
 *
 * Every shared map is pinned by name under the pin root userspace passes to
 * libbpf (default /sys/fs/bpf/wisp), so a restarted wispd re-opens the same maps
 * while the attached programs keep forwarding. max_entries given here are
 * placeholders: userspace sets the real sizes before load (and adopts the sizes of
 * existing pins). */
#ifndef WISP_MAPS_H
#define WISP_MAPS_H

#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

#include "wisp_abi.h"

/* Services. Key: (VIP, port, protocol). Value: id, state, replica slots.
 * Written by userspace; the XDP program only flips `state` to WAKING (CAS). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct wisp_service_key);
    __type(value, struct wisp_service);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_services SEC(".maps");

/* Replicas. Key: replica id (array index; id 0 is never used). Value: tap, MACs,
 * VIP, port, state, generation. Written by userspace only (the programs cannot
 * write it: BPF_F_RDONLY_PROG). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, struct wisp_replica);
    __uint(map_flags, BPF_F_RDONLY_PROG);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_replicas SEC(".maps");

/* Per-replica traffic counters and last-activity stamps, per CPU. Key: replica id.
 * Written by both programs; read (and zeroed when an id is reused) by userspace. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, struct wisp_replica_stats);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_rep_stats SEC(".maps");

/* Flow affinity. Key: 5-tuple toward a service. Value: replica id + generation.
 * Written by the XDP program when a flow gets a replica; LRU evicts idle flows.
 * Userspace only reads it (and may delete entries). */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct wisp_flow_key);
    __type(value, struct wisp_flow);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_flows SEC(".maps");

/* Flow cache: per CPU, direct-mapped, in front of wisp_flows (whose hash lookup is
 * the most expensive step of forwarding). Key: slot = hash of the flow key masked by
 * wisp_flow_cache_mask. Value: a flow key and its wisp_flows entry. Written by the
 * XDP program only; entries are checked against the replica (state, generation) like
 * wisp_flows entries, so a stale one is never trusted, and a flow a bare SYN moves to
 * another replica is cleared from every CPU's copy. Private to each loaded program
 * instance: not pinned. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 8192);
    __type(key, __u32);
    __type(value, struct wisp_flow_cache_entry);
} wisp_flow_cache SEC(".maps");

/* Clock cache: per CPU, one entry. Reading the clock costs more than the rest of the
 * forwarding path on some virtual machines; jiffies cost nothing. Private: not
 * pinned. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct wisp_clock_cache);
} wisp_clock SEC(".maps");

/* Taps. Key: tap ifindex. Value: the replica whose guest owns the tap.
 * Written by userspace; read by the TC program to know whose frames it sees. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, struct wisp_tap);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_taps SEC(".maps");

/* Port filter: one bit per (protocol, destination port) some service listens on,
 * laid out as described at WISP_PORT_WORDS. Key: word index. Value: 64 port bits.
 * Written by userspace with every service change; lets the XDP program pass host
 * traffic to other ports after one array read instead of a hash lookup. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, WISP_PORT_WORDS);
    __type(key, __u32);
    __type(value, __u64);
    __uint(map_flags, BPF_F_RDONLY_PROG);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_ports SEC(".maps");

/* Wake events: struct wisp_event + captured frame bytes. Written by the XDP
 * program; consumed by wispd (epoll on the ring buffer). Size in bytes. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_events SEC(".maps");

/* Statistics, per CPU. Key: enum wisp_stat. Value: a counter.
 * Written by both programs; read by userspace. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, WISP_STAT_MAX);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_stats SEC(".maps");

/* Scratch space where the XDP program assembles one ring-buffer record (too big
 * for the 512-byte stack). Private to each loaded program instance: not pinned. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct wisp_event_capture);
} wisp_scratch SEC(".maps");

#endif /* WISP_MAPS_H */
