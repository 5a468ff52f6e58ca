/*
 * lwIP configuration for wisp guests: NO_SYS=1 (no threads, the event loop in
 * guest/net/src/netif.c drives lwIP), raw API only, one ethernet netif over the
 * wisp poll/net hypercalls.
 */
#ifndef WISP_LWIPOPTS_H
#define WISP_LWIPOPTS_H

#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0 /* one vCPU, no interrupts */
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0

#define LWIP_IPV4 1
#define LWIP_IPV6 1
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define LWIP_ICMP 1
#define LWIP_ICMP6 1
#define LWIP_TCP 1
#define LWIP_UDP 1
#define LWIP_RAW 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define LWIP_IPV6_MLD 0
#define LWIP_IPV6_AUTOCONFIG 0
#define LWIP_IPV6_DHCP6 0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 0 /* addressing is static (boot info) */
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS 0 /* the VIP is valid at once: no DAD delay */
/* Frames are at most 1518 bytes and every hop is a tap or veth with MTU 1500. */
#define IP_REASSEMBLY 0
#define IP_FRAG 0
#define LWIP_IPV6_FRAG 0
#define LWIP_IPV6_REASS 0

/* The gateway MAC comes from boot info and is entered as a static ARP entry, so
 * the first reply (e.g. a SYN-ACK to a replayed SYN) needs no ARP round trip. */
#define ETHARP_SUPPORT_STATIC_ENTRIES 1
#define ARP_TABLE_SIZE 32
#define ARP_QUEUEING 1

/* IPv6 has no static neighbour API: off-link destinations go to the boot-info
 * gateway (resolved by neighbour discovery once). */
#define LWIP_HOOK_ND6_GET_GW(netif, dest) wisp_nd6_gateway((netif), (dest))
struct netif;
struct ip6_addr;
const struct ip6_addr *wisp_nd6_gateway(struct netif *netif, const struct ip6_addr *dest);

/* TCP initial sequence numbers from a keyed hash (RFC 6528), see sys_arch.c. */
#define LWIP_HOOK_TCP_ISN(local_ip, local_port, remote_ip, remote_port) \
    wisp_tcp_isn((local_ip), (local_port), (remote_ip), (remote_port))
struct ip_addr;
unsigned int wisp_tcp_isn(const struct ip_addr *local_ip, unsigned short local_port,
                          const struct ip_addr *remote_ip, unsigned short remote_port);

/* Memory: every lwIP allocation (heap and pools) goes through the runtime's
 * malloc. Pools would be touched in full by memp_init; malloc touches only what
 * is used, which keeps a guest's (and its snapshot's) memory small. Per-flow
 * memory stays bounded by the TCP limits below and the HTTP helper's connection
 * cap. */
#define MEM_LIBC_MALLOC 1
#define MEMP_MEM_MALLOC 1
#define MEM_ALIGNMENT 16
#define PBUF_POOL_BUFSIZE 1536 /* one whole frame (1518) per receive buffer */

/* TCP: full-size segments, window scaling so a window can exceed 64 KiB. */
#define TCP_MSS 1460
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 2
#define TCP_WND (64 * TCP_MSS)
#define TCP_SND_BUF (64 * TCP_MSS)
#define TCP_SND_QUEUELEN (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_SNDLOWAT (TCP_SND_BUF / 4)
#define TCP_QUEUE_OOSEQ 1
#define TCP_OOSEQ_MAX_PBUFS 64
/* No SACK: measured under 3 % loss, offering it made Linux peers recover far
 * more slowly from lwIP's point of view (lwIP cannot use SACK to retransmit). */
#define LWIP_TCP_SACK_OUT 0
#define TCP_LISTEN_BACKLOG 1
#define TCP_DEFAULT_LISTEN_BACKLOG 255
/* TIME_WAIT = 2 * MSL = 200 ms, ended by the next slow-timer pass after it:
 * 200-400 ms (lwIP's default is 2 x 60 s). A server that closes first
 * (`Connection: close`) keeps a TIME_WAIT pcb per connection, and lwIP answers
 * a SYN that meets one with a challenge ACK the client resets, so the client
 * waits for a SYN retransmission (1 s, then 3 s ...). Linux clients reuse an
 * ephemeral port after about 3,000 connections to the same server (measured:
 * its allocator walks the range with small random steps), so under a load of a
 * few thousand short connections per second a port is back within a second,
 * and the data plane's flow affinity sends it to the same guest. 2 s of
 * TIME_WAIT stalled all of wrk's connections at once in the autoscaling e2e
 * test. Old duplicates live microseconds on the one-host paths a guest sees;
 * the other role of TIME_WAIT, re-acknowledging a retransmitted FIN, comes
 * after >= 200 ms (Linux's minimum RTO) and only when our ACK was lost, and the
 * client has its whole response by then. */
#define TCP_MSL 100UL
#define LWIP_CHECKSUM_ON_COPY 1
/* TCP timers tick every 100 ms (lwIP default 250): retransmission timeouts are
 * counted in coarse ticks (2 x this), so a lost segment on a sub-millisecond
 * path is resent after ~200-400 ms instead of ~1 s. The cost is one wake-up per
 * 100 ms while connections exist. */
#define TCP_TMR_INTERVAL 100

#define LWIP_STATS 0
#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_SINGLE_NETIF 1

#endif
