/* Bounds-checked cursor parsers for the data plane (BPF only).
 *
 * Each wisp_parse_<hdr>() checks that its whole header lies before `end`, advances
 * the cursor past it and returns the next protocol, or a negative WISP_PARSE_* code.
 * wisp_parse_packet() chains them for both programs and fills a struct wisp_packet
 * whose `key` is already the flow key, so the fast path copies nothing twice.
 *
 * Length fields are checked against each other as well as against the frame: an
 * IPv4 total length shorter than its header or longer than the frame, a TCP data
 * offset below 5 or beyond the IP payload, a UDP length beyond the IP payload are
 * all WISP_PARSE_MALFORMED. Trailing bytes after the IP packet (Ethernet padding)
 * are fine. */
#ifndef WISP_PARSE_H
#define WISP_PARSE_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "wisp_abi.h"

enum wisp_parse_result {
    WISP_PARSE_L4 = 0,        /* TCP or UDP header parsed: the flow key is complete */
    WISP_PARSE_L3 = 1,        /* IP without a TCP/UDP header (other protocol, or a
                                 fragment other than the first) */
    WISP_PARSE_NOT_IP = 2,    /* neither IPv4 nor IPv6 (ARP, LLDP, a second VLAN tag) */
    WISP_PARSE_MALFORMED = 3, /* truncated, or header fields that contradict the frame */
};

enum wisp_fragment {
    WISP_FRAG_NONE = 0,
    WISP_FRAG_FIRST = 1, /* offset 0, more fragments follow: carries the L4 header */
    WISP_FRAG_LATER = 2, /* offset > 0: no L4 header */
};

#define WISP_ETH_P_8021AD 0x88A8
#define WISP_IP_MF 0x2000     /* IPv4 "more fragments" */
#define WISP_IP_OFFSET 0x1fff /* IPv4 fragment offset mask */
#define WISP_IPV6_MAX_EXT_HEADERS 4

struct wisp_cursor {
    void *pos;
};

struct wisp_packet {
    struct wisp_flow_key key; /* addresses (v4-mapped for IPv4), ports, protocol */
    __u32 len;                /* frame length */
    __u16 l3_proto;           /* ETH_P_IP or ETH_P_IPV6, host order */
    __u16 l3_offset;          /* 14, or 18 behind a VLAN tag */
    __u8 vlan;                /* 1 when one 802.1Q/802.1ad tag was skipped */
    __u8 l4_proto;            /* IP protocol number, also when not TCP/UDP */
    __u8 tcp_flags;           /* byte 13 of the TCP header */
    __u8 fragment;            /* enum wisp_fragment */
    __u8 icmp_type;           /* first byte of an ICMP/ICMPv6 header, if present */
};

/* Ethernet header and at most one VLAN tag. Returns the ethertype (network order). */
static __always_inline int wisp_parse_ethhdr(struct wisp_cursor *c, void *end,
                                             struct wisp_packet *p) {
    struct ethhdr *eth = c->pos;
    if ((void *)(eth + 1) > end) return -WISP_PARSE_MALFORMED;
    c->pos = eth + 1;
    __be16 proto = eth->h_proto;
    p->vlan = 0;
    if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(WISP_ETH_P_8021AD)) {
        /* TCI (2 bytes), then the encapsulated ethertype (2 bytes). */
        __be16 *tag = c->pos;
        if ((void *)(tag + 2) > end) return -WISP_PARSE_MALFORMED;
        proto = tag[1];
        c->pos = tag + 2;
        p->vlan = 1;
    }
    return proto;
}

static __always_inline void wisp_store_v4_mapped(__u8 *out, __be32 addr) {
    __u32 *w = (__u32 *)out;
    w[0] = 0;
    w[1] = 0;
    w[2] = bpf_htonl(0xffff);
    w[3] = addr;
}

static __always_inline int wisp_is_v4_mapped(const struct in6_addr *a) {
    return (a->in6_u.u6_addr32[0] | a->in6_u.u6_addr32[1]) == 0 &&
           a->in6_u.u6_addr32[2] == bpf_htonl(0xffff);
}

/* IPv4 with options. Returns the IP protocol; *payload gets the bytes the header
 * says follow it. */
static __always_inline int wisp_parse_iphdr(struct wisp_cursor *c, void *end, struct wisp_packet *p,
                                            __u32 *payload) {
    struct iphdr *ip = c->pos;
    if ((void *)(ip + 1) > end) return -WISP_PARSE_MALFORMED;
    __u32 hdr_len = ip->ihl * 4;
    __u32 tot_len = bpf_ntohs(ip->tot_len);
    if (ip->version != 4 || hdr_len < sizeof(*ip)) return -WISP_PARSE_MALFORMED;
    if (tot_len < hdr_len || (void *)ip + tot_len > end) return -WISP_PARSE_MALFORMED;
    if ((void *)ip + hdr_len > end) return -WISP_PARSE_MALFORMED;
    c->pos = (void *)ip + hdr_len;
    *payload = tot_len - hdr_len;

    __u16 frag = bpf_ntohs(ip->frag_off);
    if (frag & WISP_IP_OFFSET)
        p->fragment = WISP_FRAG_LATER;
    else if (frag & WISP_IP_MF)
        p->fragment = WISP_FRAG_FIRST;
    else
        p->fragment = WISP_FRAG_NONE;
    wisp_store_v4_mapped(p->key.saddr, ip->saddr);
    wisp_store_v4_mapped(p->key.daddr, ip->daddr);
    return ip->protocol;
}

/* IPv6 and up to WISP_IPV6_MAX_EXT_HEADERS extension headers (hop-by-hop, routing,
 * destination options, fragment). Returns the upper-layer protocol. */
static __always_inline int wisp_parse_ipv6hdr(struct wisp_cursor *c, void *end,
                                              struct wisp_packet *p, __u32 *payload) {
    struct ipv6hdr *ip6 = c->pos;
    if ((void *)(ip6 + 1) > end) return -WISP_PARSE_MALFORMED;
    if (ip6->version != 6) return -WISP_PARSE_MALFORMED;
    __u32 remaining = bpf_ntohs(ip6->payload_len);
    /* A payload length of 0 means a jumbogram, which XDP never sees whole. */
    if (remaining == 0 || (void *)(ip6 + 1) + remaining > end) return -WISP_PARSE_MALFORMED;
    /* IPv4-mapped addresses never appear in IPv6 headers on the wire (RFC 4291); here
     * they would alias the IPv4 services and replicas. */
    if (wisp_is_v4_mapped(&ip6->saddr) || wisp_is_v4_mapped(&ip6->daddr))
        return -WISP_PARSE_MALFORMED;
    __builtin_memcpy(p->key.saddr, &ip6->saddr, 16);
    __builtin_memcpy(p->key.daddr, &ip6->daddr, 16);
    c->pos = ip6 + 1;
    p->fragment = WISP_FRAG_NONE;

    __u8 next = ip6->nexthdr;
#pragma unroll
    for (int i = 0; i < WISP_IPV6_MAX_EXT_HEADERS; i++) {
        if (next == IPPROTO_FRAGMENT) {
            struct frag_hdr {
                __u8 nexthdr, reserved;
                __be16 frag_off;
                __be32 identification;
            } *fh = c->pos;
            if ((void *)(fh + 1) > end || remaining < sizeof(*fh)) return -WISP_PARSE_MALFORMED;
            __u16 off = bpf_ntohs(fh->frag_off);
            p->fragment = (off & 0xfff8) ? WISP_FRAG_LATER : WISP_FRAG_FIRST;
            next = fh->nexthdr;
            c->pos = fh + 1;
            remaining -= sizeof(*fh);
            if (p->fragment == WISP_FRAG_LATER) break;
        } else if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS) {
            struct {
                __u8 nexthdr, len;
            } *eh = c->pos;
            if ((void *)(eh + 1) > end) return -WISP_PARSE_MALFORMED;
            __u32 len = (eh->len + 1) * 8;
            if (len > remaining || c->pos + len > end) return -WISP_PARSE_MALFORMED;
            next = eh->nexthdr;
            c->pos += len;
            remaining -= len;
        } else {
            break;
        }
    }
    *payload = remaining;
    return next;
}

/* TCP header including options; the IP payload must hold all of it. */
static __always_inline int wisp_parse_tcphdr(struct wisp_cursor *c, void *end,
                                             struct wisp_packet *p, __u32 payload) {
    struct tcphdr *tcp = c->pos;
    if ((void *)(tcp + 1) > end || payload < sizeof(*tcp)) return -WISP_PARSE_MALFORMED;
    __u32 hdr_len = tcp->doff * 4;
    if (hdr_len < sizeof(*tcp) || hdr_len > payload || c->pos + hdr_len > end)
        return -WISP_PARSE_MALFORMED;
    p->key.sport = tcp->source;
    p->key.dport = tcp->dest;
    p->tcp_flags = ((__u8 *)tcp)[13];
    c->pos += hdr_len;
    return 0;
}

static __always_inline int wisp_parse_udphdr(struct wisp_cursor *c, void *end,
                                             struct wisp_packet *p, __u32 payload) {
    struct udphdr *udp = c->pos;
    if ((void *)(udp + 1) > end || payload < sizeof(*udp)) return -WISP_PARSE_MALFORMED;
    __u32 len = bpf_ntohs(udp->len);
    if (len < sizeof(*udp) || len > payload) return -WISP_PARSE_MALFORMED;
    p->key.sport = udp->source;
    p->key.dport = udp->dest;
    p->tcp_flags = 0;
    c->pos = udp + 1;
    return 0;
}

/* Parses a frame from its Ethernet header to its TCP/UDP header. */
static __always_inline enum wisp_parse_result wisp_parse_packet(void *data, void *end,
                                                                struct wisp_packet *p) {
    struct wisp_cursor c = {.pos = data};
    __u32 payload = 0;
    int proto;

    p->len = end - data;
    p->key.sport = 0;
    p->key.dport = 0;
    p->key.pad[0] = p->key.pad[1] = p->key.pad[2] = 0;
    p->tcp_flags = 0;
    p->icmp_type = 0;

    int ethertype = wisp_parse_ethhdr(&c, end, p);
    if (ethertype < 0) return WISP_PARSE_MALFORMED;
    p->l3_offset = c.pos - data;
    if (ethertype == bpf_htons(ETH_P_IP)) {
        p->l3_proto = ETH_P_IP;
        proto = wisp_parse_iphdr(&c, end, p, &payload);
    } else if (ethertype == bpf_htons(ETH_P_IPV6)) {
        p->l3_proto = ETH_P_IPV6;
        proto = wisp_parse_ipv6hdr(&c, end, p, &payload);
    } else {
        return WISP_PARSE_NOT_IP;
    }
    if (proto < 0) return WISP_PARSE_MALFORMED;
    p->l4_proto = proto;
    p->key.proto = proto;
    if (p->fragment == WISP_FRAG_LATER) return WISP_PARSE_L3;

    if (proto == IPPROTO_TCP) {
        if (wisp_parse_tcphdr(&c, end, p, payload) < 0) return WISP_PARSE_MALFORMED;
        return WISP_PARSE_L4;
    }
    if (proto == IPPROTO_UDP) {
        if (wisp_parse_udphdr(&c, end, p, payload) < 0) return WISP_PARSE_MALFORMED;
        return WISP_PARSE_L4;
    }
    if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
        __u8 *type = c.pos;
        if ((void *)(type + 1) <= end && payload >= 1) p->icmp_type = *type;
    }
    return WISP_PARSE_L3;
}

#endif /* WISP_PARSE_H */
