/* wisp data plane: one object, two programs sharing the maps of wisp_maps.h.
 *
 *   wisp_ingress (XDP, on the uplink)   client -> service
 *     not service traffic               XDP_PASS, untouched
 *     existing flow, replica alive      rewrite MACs, redirect to the replica's tap
 *     new flow or bare SYN, READY       pick (rendezvous hash), remember, redirect
 *     new flow, cold service            copy into wisp_events, ZERO -> WAKING once,
 *                                       XDP_DROP (wispd replays it)
 *   wisp_tap_in (TC ingress, each tap)  guest -> client
 *     source MAC/IP/port are the replica's   bpf_redirect_neigh out of the uplink
 *     anything else                          dropped and counted
 *
 * docs/dataplane.md has the full verdict table. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "wisp_abi.h"
#include "wisp_flow.h"
#include "wisp_maps.h"
#include "wisp_parse.h"

/* Load-time settings (rodata, set by userspace before load). */

/* Bytes of a frame copied into a wake record; at most WISP_CAPTURE_MAX. */
const volatile __u32 wisp_capture_limit = WISP_CAPTURE_MAX;
/* wisp_flow_cache slots - 1 (the slot count is a power of two). */
const volatile __u32 wisp_flow_cache_mask = 8191;
/* Possible CPUs (set by the loader): the flow caches a moved flow must leave. */
const volatile __u32 wisp_nr_cpus = 1;
#define WISP_MAX_CPUS 1024

/* CLOCK_MONOTONIC_COARSE for activity stamps, read from the clock once per jiffy and
 * CPU. At most two ticks behind the precise clock. */
static __always_inline __u64 activity_now(void) {
    __u32 zero = 0;
    struct wisp_clock_cache *c = bpf_map_lookup_elem(&wisp_clock, &zero);
    __u64 jiffies = bpf_jiffies64();
    if (!c) return bpf_ktime_get_coarse_ns();
    if (c->jiffies != jiffies) {
        c->jiffies = jiffies;
        c->coarse_ns = bpf_ktime_get_coarse_ns();
    }
    return c->coarse_ns;
}

static __always_inline __u32 flow_cache_slot(const struct wisp_flow_key *k) {
    const __u64 *w = (const __u64 *)k;
    __u64 h = (w[0] ^ w[1] ^ w[2] ^ w[3] ^ w[4]) * 0x9e3779b97f4a7c15ULL;
    return (__u32)(h >> 32) & wisp_flow_cache_mask;
}

static __always_inline int same_flow_key(const struct wisp_flow_key *a,
                                         const struct wisp_flow_key *b) {
    const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
    return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

static __always_inline void flow_cache_fill(struct wisp_flow_cache_entry *slot,
                                            const struct wisp_flow_key *key,
                                            const struct wisp_flow *flow) {
    if (!slot) return;
    __builtin_memcpy(&slot->key, key, sizeof(*key));
    slot->flow = *flow;
}

/* A flow moved to another replica (a bare SYN re-picked it): no CPU's cache may
 * keep the old assignment, or a segment processed on that CPU would follow it. */
static __always_inline void flow_cache_forget(__u32 slot, const struct wisp_flow_key *key) {
    for (__u32 cpu = 0; cpu < WISP_MAX_CPUS && cpu < wisp_nr_cpus; cpu++) {
        struct wisp_flow_cache_entry *e = bpf_map_lookup_percpu_elem(&wisp_flow_cache, &slot, cpu);
        if (e && same_flow_key(&e->key, key)) e->flow.replica_id = WISP_REPLICA_NONE;
    }
}

static __always_inline void stat_inc(__u32 index) {
    __u64 *counter = bpf_map_lookup_elem(&wisp_stats, &index);
    if (counter) *counter += 1;
}

static __always_inline int port_in_use(const struct wisp_packet *p) {
    __u32 word = wisp_port_word(p->key.proto, bpf_ntohs(p->key.dport));
    __u64 *bits = bpf_map_lookup_elem(&wisp_ports, &word);
    return bits && (*bits & wisp_port_bit(bpf_ntohs(p->key.dport)));
}

static __always_inline int replica_keeps_flows(const struct wisp_replica *r) {
    return r->state == WISP_REPLICA_READY || r->state == WISP_REPLICA_DRAINING;
}

/* Six bytes as one 4-byte and one 2-byte move (unaligned access is fine on the
 * architectures wisp runs on); __builtin_memcpy would move them byte by byte. */
static __always_inline void copy_mac(__u8 *dst, const __u8 *src) {
    *(__u32 *)dst = *(const __u32 *)src;
    *(__u16 *)(dst + 4) = *(const __u16 *)(src + 4);
}

/* A frame for the guest: guest MAC as destination, the tap's MAC as source, any VLAN
 * tag removed (guests see plain Ethernet). */
static __always_inline int forward_to_replica(struct xdp_md *ctx, const struct wisp_packet *p,
                                              __u32 replica_id, const struct wisp_replica *r) {
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    __u32 ifindex = r->tap_ifindex;

    if (p->vlan) {
        /* The new header ends where the tag's inner ethertype already sits. */
        struct ethhdr *moved = data + 4;
        if ((void *)(moved + 1) > end) return XDP_DROP;
        copy_mac(moved->h_dest, r->guest_mac);
        copy_mac(moved->h_source, r->host_mac);
        if (bpf_xdp_adjust_head(ctx, 4)) return XDP_DROP;
    } else {
        struct ethhdr *eth = data;
        if ((void *)(eth + 1) > end) return XDP_DROP;
        copy_mac(eth->h_dest, r->guest_mac);
        copy_mac(eth->h_source, r->host_mac);
    }

    struct wisp_replica_stats *s = bpf_map_lookup_elem(&wisp_rep_stats, &replica_id);
    if (s) {
        s->in_packets += 1;
        s->in_bytes += p->len;
        s->last_in_ns = activity_now();
    }
    stat_inc(WISP_STAT_FORWARDED);
    return bpf_redirect(ifindex, 0);
}

/* Rendezvous pick among the service's READY replicas; 0 when there is none. */
static __always_inline __u32 pick_replica(const struct wisp_service *svc,
                                          const struct wisp_flow_key *key,
                                          const struct wisp_replica **picked) {
    __u64 hash = wisp_flow_hash(key);
    __u64 best_score = 0;
    __u32 best = WISP_REPLICA_NONE;
    __u32 service_id = svc->id;

#pragma unroll
    for (int i = 0; i < WISP_REPLICA_SLOTS; i++) {
        __u32 id = svc->replicas[i];
        if (id == WISP_REPLICA_NONE) continue;
        const struct wisp_replica *r = bpf_map_lookup_elem(&wisp_replicas, &id);
        if (!r || r->state != WISP_REPLICA_READY || r->service_id != service_id) continue;
        __u64 score = wisp_hrw_score(hash, id);
        if (best == WISP_REPLICA_NONE || score > best_score) {
            best = id;
            best_score = score;
            *picked = r;
        }
    }
    return best;
}

/* Copies the frame into the ring buffer. Returns 0 when the record was written. */
static __always_inline int capture_frame(struct xdp_md *ctx, const struct wisp_packet *p,
                                         __u32 service_id, __u32 type) {
    __u32 zero = 0;
    struct wisp_event_capture *rec = bpf_map_lookup_elem(&wisp_scratch, &zero);
    if (!rec) return -1;

    __u32 limit = wisp_capture_limit;
    if (limit > WISP_CAPTURE_MAX) limit = WISP_CAPTURE_MAX;
    __u32 cap = p->len < limit ? p->len : limit;
    if (cap < 1 || cap > WISP_CAPTURE_MAX) return -1;
    if (bpf_xdp_load_bytes(ctx, 0, rec->data, cap)) return -1;

    rec->hdr.type = type;
    rec->hdr.service_id = service_id;
    rec->hdr.timestamp_ns = bpf_ktime_get_ns();
    rec->hdr.ifindex = ctx->ingress_ifindex;
    rec->hdr.orig_len = p->len;
    rec->hdr.cap_len = cap;
    rec->hdr.l3_offset = p->l3_offset;
    rec->hdr.l3_proto = p->l3_proto;
    return bpf_ringbuf_output(&wisp_events, rec, sizeof(rec->hdr) + cap, 0) ? -1 : 0;
}

/* A TCP segment that opens a connection: SYN without ACK. */
static __always_inline int bare_tcp_syn(const struct wisp_packet *p) {
    return p->key.proto == IPPROTO_TCP && (p->tcp_flags & (0x02 /* SYN */ | 0x10 /* ACK */)) == 0x02;
}

/* A packet for a service with no replica to take it. New flows are captured for
 * wispd (the first one also starts the wake); everything else is dropped. */
static __always_inline int handle_cold(struct xdp_md *ctx, const struct wisp_packet *p,
                                       struct wisp_service *svc, __u32 state) {
    int new_flow = p->key.proto == IPPROTO_UDP || bare_tcp_syn(p);
    if (!new_flow) {
        stat_inc(WISP_STAT_COLD_DROPPED);
        return XDP_DROP;
    }

    __u32 type = WISP_EVENT_BUFFERED;
    if ((state == WISP_SERVICE_ZERO || state == WISP_SERVICE_READY) &&
        __sync_val_compare_and_swap(&svc->state, state, WISP_SERVICE_WAKING) == state)
        type = WISP_EVENT_WAKE;

    if (capture_frame(ctx, p, svc->id, type) != 0) {
        stat_inc(WISP_STAT_RINGBUF_FULL);
        /* The wake was never announced: let the next SYN try again. */
        if (type == WISP_EVENT_WAKE)
            __sync_val_compare_and_swap(&svc->state, WISP_SERVICE_WAKING, state);
        return XDP_DROP;
    }
    stat_inc(type == WISP_EVENT_WAKE ? WISP_STAT_WAKES : WISP_STAT_BUFFERED);
    return XDP_DROP;
}

SEC("xdp")
int wisp_ingress(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct wisp_packet pkt;

    enum wisp_parse_result parsed = wisp_parse_packet(data, end, &pkt);
    if (parsed != WISP_PARSE_L4) {
        stat_inc(parsed == WISP_PARSE_MALFORMED ? WISP_STAT_MALFORMED : WISP_STAT_PASSED);
        return XDP_PASS;
    }
    if (!port_in_use(&pkt)) {
        stat_inc(WISP_STAT_PASSED);
        return XDP_PASS;
    }

    /* Existing flow: straight to its replica, whatever the service state. The CPU's
     * flow cache answers most lookups; wisp_flows is the authority behind it.
     * A bare TCP SYN opens a new connection even when its 5-tuple is remembered
     * (clients reuse ports): it is picked among the READY replicas like any new
     * flow (the same one while the set is unchanged: rendezvous hashing), counted
     * in new_flows for the autoscaler, and never sent to a DRAINING replica. */
    struct wisp_flow *flow = NULL;
    struct wisp_flow_cache_entry *cached = NULL;
    int bare_syn = bare_tcp_syn(&pkt);
    __u32 slot = 0;
    if (pkt.fragment == WISP_FRAG_NONE) {
        slot = flow_cache_slot(&pkt.key);
        cached = bpf_map_lookup_elem(&wisp_flow_cache, &slot);
    }
    if (pkt.fragment == WISP_FRAG_NONE && bare_syn) {
        flow = bpf_map_lookup_elem(&wisp_flows, &pkt.key);  /* only to see if it moves */
    } else if (pkt.fragment == WISP_FRAG_NONE) {
        if (cached && same_flow_key(&cached->key, &pkt.key)) {
            __u32 id = cached->flow.replica_id;
            const struct wisp_replica *r = bpf_map_lookup_elem(&wisp_replicas, &id);
            if (r && r->generation == cached->flow.generation && replica_keeps_flows(r))
                return forward_to_replica(ctx, &pkt, id, r);
        }
        flow = bpf_map_lookup_elem(&wisp_flows, &pkt.key);
        if (flow) {
            __u32 id = flow->replica_id;
            const struct wisp_replica *r = bpf_map_lookup_elem(&wisp_replicas, &id);
            if (r && r->generation == flow->generation && replica_keeps_flows(r)) {
                flow_cache_fill(cached, &pkt.key, flow);
                return forward_to_replica(ctx, &pkt, id, r);
            }
        }
    }

    struct wisp_service_key skey;
    __builtin_memcpy(skey.vip, pkt.key.daddr, sizeof(skey.vip));
    skey.port = pkt.key.dport;
    skey.proto = pkt.key.proto;
    skey.pad = 0;
    struct wisp_service *svc = bpf_map_lookup_elem(&wisp_services, &skey);
    if (!svc) {
        stat_inc(WISP_STAT_PASSED);
        return XDP_PASS;
    }
    if (pkt.fragment != WISP_FRAG_NONE) {
        stat_inc(WISP_STAT_FRAGMENTS);
        return XDP_DROP;
    }

    __u32 state = svc->state;
    if (state == WISP_SERVICE_DRAINING) {
        stat_inc(WISP_STAT_DRAINING_PASSED);
        return XDP_PASS;
    }
    if (state == WISP_SERVICE_READY) {
        const struct wisp_replica *r = NULL;
        __u32 id = pick_replica(svc, &pkt.key, &r);
        if (id != WISP_REPLICA_NONE && r) {
            struct wisp_flow assigned = {.replica_id = id, .generation = r->generation};
            /* (Same id, new generation: stale copies are distrusted already.) */
            if (bare_syn && flow && flow->replica_id != id) flow_cache_forget(slot, &pkt.key);
            bpf_map_update_elem(&wisp_flows, &pkt.key, &assigned, BPF_ANY);
            flow_cache_fill(cached, &pkt.key, &assigned);
            stat_inc(flow && !bare_syn ? WISP_STAT_REPICKED : WISP_STAT_NEW_FLOWS);
            struct wisp_replica_stats *s = bpf_map_lookup_elem(&wisp_rep_stats, &id);
            if (s) s->new_flows += 1;
            return forward_to_replica(ctx, &pkt, id, r);
        }
    }
    return handle_cold(ctx, &pkt, svc, state);
}

static __always_inline int same_addr(const __u8 *a, const __u8 *b) {
    const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
    return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3])) == 0;
}

static __always_inline int same_mac(const __u8 *a, const __u8 *b) {
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) |
            (a[5] ^ b[5])) == 0;
}

static __always_inline int tap_drop(__u32 stat, __u32 replica_id) {
    stat_inc(stat);
    if (stat == WISP_STAT_SPOOFED) {
        struct wisp_replica_stats *s = bpf_map_lookup_elem(&wisp_rep_stats, &replica_id);
        if (s) s->spoofed += 1;
    }
    return TC_ACT_SHOT;
}

/* Is this an L3-only frame a guest may send? ICMP errors and echo replies, and the
 * later fragments of its own datagrams; never neighbour discovery (guests know the
 * gateway MAC from their boot info) or other protocols. */
static __always_inline int guest_may_send_l3(const struct wisp_packet *p) {
    if (p->fragment == WISP_FRAG_LATER) return 1;
    if (p->l4_proto == IPPROTO_ICMP) return 1;
    if (p->l4_proto == IPPROTO_ICMPV6) /* 133..137: router/neighbour discovery, redirect */
        return p->icmp_type < 133 || p->icmp_type > 137;
    return 0;
}

SEC("tc")
int wisp_tap_in(struct __sk_buff *skb) {
    __u32 ifindex = skb->ingress_ifindex;
    struct wisp_tap *tap = bpf_map_lookup_elem(&wisp_taps, &ifindex);
    if (!tap) return tap_drop(WISP_STAT_TAP_UNKNOWN, 0);
    __u32 id = tap->replica_id;
    const struct wisp_replica *r = bpf_map_lookup_elem(&wisp_replicas, &id);
    if (!r || r->state == WISP_REPLICA_FREE) return tap_drop(WISP_STAT_TAP_UNKNOWN, 0);

    /* Headers may sit outside the linear area of a tap skb: pull what parsing needs. */
    __u32 want = skb->len < 128 ? skb->len : 128;
    if ((void *)(long)skb->data + want > (void *)(long)skb->data_end) bpf_skb_pull_data(skb, want);
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;

    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end) return tap_drop(WISP_STAT_MALFORMED, id);
    if (!same_mac(eth->h_source, r->guest_mac)) return tap_drop(WISP_STAT_SPOOFED, id);
    if (eth->h_dest[0] & 1) return tap_drop(WISP_STAT_TAP_DROPPED, id); /* multicast */

    struct wisp_packet pkt;
    enum wisp_parse_result parsed = wisp_parse_packet(data, end, &pkt);
    if (parsed == WISP_PARSE_NOT_IP || pkt.vlan) return tap_drop(WISP_STAT_TAP_DROPPED, id);
    if (parsed == WISP_PARSE_MALFORMED) return tap_drop(WISP_STAT_MALFORMED, id);
    if (!same_addr(pkt.key.saddr, r->vip)) return tap_drop(WISP_STAT_SPOOFED, id);
    if (parsed == WISP_PARSE_L4) {
        if (pkt.key.proto != r->proto || pkt.key.sport != r->port)
            return tap_drop(WISP_STAT_SPOOFED, id);
    } else if (!guest_may_send_l3(&pkt)) {
        return tap_drop(WISP_STAT_TAP_DROPPED, id);
    }

    struct wisp_replica_stats *s = bpf_map_lookup_elem(&wisp_rep_stats, &id);
    if (s) {
        s->out_packets += 1;
        s->out_bytes += skb->len;
        s->last_out_ns = activity_now();
    }
    stat_inc(WISP_STAT_TAP_FORWARDED);
    return bpf_redirect_neigh(r->egress_ifindex, NULL, 0, 0);
}

char LICENSE[] SEC("license") = "GPL";
