/* Replica selection and port-filter arithmetic, shared word for word by the XDP
 * program and userspace (which predicts picks, e.g. to test them, and maintains the
 * port filter). Plain C, no kernel or libc calls, so it compiles for BPF and C++.
 *
 * New flows are spread with rendezvous (highest-random-weight) hashing: each READY
 * replica in a service's slots gets the score mix(flow_hash ^ spread(replica id)) and
 * the highest score wins. Adding a replica moves only the flows it now wins; removing
 * one moves only its own flows. (The flow table keeps existing flows put anyway; the
 * hash makes picks agree across restarts and after LRU eviction.) */
#ifndef WISP_FLOW_H
#define WISP_FLOW_H

#include <linux/types.h>

#include "wisp_abi.h"

/* The murmur3 64-bit finaliser: every input bit flips each output bit with p ~ 1/2. */
static inline __u64 wisp_mix64(__u64 x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Hash of a flow key (all 40 bytes, including the zero padding). */
static inline __u64 wisp_flow_hash(const struct wisp_flow_key *key) {
    const unsigned char *bytes = (const unsigned char *)key;
    __u64 h = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < (int)(sizeof(*key) / 8); i++) {
        __u64 word;
        __builtin_memcpy(&word, bytes + 8 * i, 8);
        h = (h ^ word) * 0x100000001b3ULL;
        h = (h << 31) | (h >> 33);
    }
    return wisp_mix64(h);
}

/* Rendezvous score of `replica_id` for a flow. */
static inline __u64 wisp_hrw_score(__u64 flow_hash, __u32 replica_id) {
    return wisp_mix64(flow_hash ^ ((__u64)replica_id * 0x9e3779b97f4a7c15ULL));
}

/* wisp_ports word index and bit for (proto, port); port in host order. */
static inline __u32 wisp_port_word(__u8 proto, __u16 port) {
    return (proto == 17 /* IPPROTO_UDP */ ? WISP_PORT_WORDS_PER_PROTO : 0) + (port >> 6);
}

static inline __u64 wisp_port_bit(__u16 port) {
    return 1ULL << (port & 63);
}

#endif /* WISP_FLOW_H */
