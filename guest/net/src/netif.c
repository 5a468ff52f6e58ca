/* The wisp netif (lwIP over the POLL / NET_* hypercalls) and the event loop. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lwip/etharp.h"
#include "netif/ethernet.h"
#include "lwip/ethip6.h"
#include "lwip/init.h"
#include "lwip/ip6_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"
#include "wisp/guest.h"
#include "wisp/net.h"

#define BATCH WISP_NET_BATCH_MAX
#define FRAME_BUF 1536 /* >= WISP_FRAME_MAX + a VLAN tag, a multiple of 64 */
#define MAX_WAIT_NS (60ull * 1000000000ull) /* re-arm a "forever" wait once a minute */

static struct netif g_netif;
static struct wisp_net_stats g_stats;
static uint32_t g_restore_count;
static ip6_addr_t g_gw6;

/* Transmit side: lwIP's output is copied into a batch that the next POLL sends. */
static struct wisp_frame g_tx[BATCH];
static uint8_t g_tx_buf[BATCH][FRAME_BUF] __attribute__((aligned(64)));
static uint32_t g_tx_count;

/* Receive side: the monitor writes frames straight into lwIP pbufs. The batch
 * starts small and doubles whenever a POLL fills it, so an idle service keeps
 * (and snapshots) a few receive buffers rather than a full batch. */
#define RX_SLOTS_INITIAL 8
static struct wisp_frame g_rx[BATCH];
static struct pbuf *g_rx_pbuf[BATCH];
static uint32_t g_rx_slots = RX_SLOTS_INITIAL;
static int g_rx_pending; /* the last POLL left frames behind: do not block next time */

static void tx_account(uint32_t sent) {
    g_stats.tx_frames += sent;
    g_stats.tx_dropped += g_tx_count - sent;
    g_tx_count = 0;
}

/* Sends the batch now (only when lwIP produces more than a batch in one go). */
static void tx_flush(void) {
    struct wisp_hc_net_batch arg = {.frames = (wisp_gpa_t)(uintptr_t)g_tx, .count = g_tx_count};
    wisp_hypercall(WISP_HC_NET_WRITE, &arg);
    g_stats.flushes++;
    tx_account(arg.done);
}

static err_t wisp_linkoutput(struct netif *netif, struct pbuf *p) {
    (void)netif;
    if (p->tot_len > WISP_FRAME_MAX + 4) {
        g_stats.tx_dropped++;
        return ERR_IF;
    }
    if (g_tx_count == BATCH) tx_flush();
    uint8_t *buf = g_tx_buf[g_tx_count];
    pbuf_copy_partial(p, buf, p->tot_len, 0);
    g_tx[g_tx_count].data = (wisp_gpa_t)(uintptr_t)buf;
    g_tx[g_tx_count].cap = p->tot_len;
    g_tx[g_tx_count].len = 0;
    g_tx_count++;
    return ERR_OK;
}

/* Gives every receive slot a pbuf; returns how many leading slots are usable. */
static uint32_t rx_refill(void) {
    uint32_t n = 0;
    for (; n < g_rx_slots; n++) {
        if (!g_rx_pbuf[n]) {
            struct pbuf *p = pbuf_alloc(PBUF_RAW, FRAME_BUF, PBUF_POOL);
            if (!p) break; /* short of memory: receive fewer frames this time */
            if (p->next) { /* not one contiguous buffer: cannot receive into it */
                pbuf_free(p);
                break;
            }
            g_rx_pbuf[n] = p;
        }
        g_rx[n].data = (wisp_gpa_t)(uintptr_t)g_rx_pbuf[n]->payload;
        g_rx[n].cap = g_rx_pbuf[n]->len;
        g_rx[n].len = 0;
    }
    return n;
}

static void rx_deliver(uint32_t count) {
    for (uint32_t i = 0; i < count; i++) {
        struct pbuf *p = g_rx_pbuf[i];
        uint32_t len = g_rx[i].len;
        g_rx_pbuf[i] = NULL;
        if (len < SIZEOF_ETH_HDR || len > p->len) {
            g_stats.rx_dropped++;
            pbuf_free(p);
            continue;
        }
        pbuf_realloc(p, (u16_t)len);
        g_stats.rx_frames++;
        if (g_netif.input(p, &g_netif) != ERR_OK) {
            g_stats.rx_dropped++;
            pbuf_free(p);
        }
    }
    /* Keep the unused pbufs at the front so the next refill reuses them. */
    uint32_t dst = 0;
    for (uint32_t i = 0; i < BATCH; i++) {
        if (g_rx_pbuf[i]) {
            struct pbuf *p = g_rx_pbuf[i];
            g_rx_pbuf[i] = NULL;
            g_rx_pbuf[dst++] = p;
        }
    }
}

const struct ip6_addr *wisp_nd6_gateway(struct netif *netif, const struct ip6_addr *dest) {
    (void)netif;
    (void)dest;
    return ip6_addr_isany(&g_gw6) ? NULL : &g_gw6;
}

static int all_zero(const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

/* (Re)applies the boot-info addressing. Runs at init and after every snapshot
 * restore: a replica restored from a shared snapshot may have its own MAC. */
static void apply_boot_addressing(void) {
    const struct wisp_boot_info *bi = wisp_boot_info();
    memcpy(g_netif.hwaddr, bi->mac, ETH_HWADDR_LEN);
    if (bi->ip_family == 4) {
        if (bi->prefix_len > 32) wisp_abort("net: IPv4 prefix length > 32");
        ip4_addr_t ip, mask, gw;
        memcpy(&ip.addr, bi->ip, 4);
        memcpy(&gw.addr, bi->gw_ip, 4);
        mask.addr = bi->prefix_len ? lwip_htonl(0xffffffffu << (32 - bi->prefix_len)) : 0;
        netif_set_addr(&g_netif, &ip, &mask, &gw);
        etharp_cleanup_netif(&g_netif); /* drops dynamic and static entries */
        if (!all_zero(bi->gw_mac, 6) && !ip4_addr_isany_val(gw)) {
            struct eth_addr gw_mac;
            memcpy(gw_mac.addr, bi->gw_mac, 6);
            if (etharp_add_static_entry(&gw, &gw_mac) != ERR_OK)
                wisp_abort("net: cannot add the gateway's static ARP entry");
        }
    } else if (bi->ip_family == 6) {
        ip6_addr_t ip;
        memcpy(ip.addr, bi->ip, 16);
        memcpy(g_gw6.addr, bi->gw_ip, 16);
        ip6_addr_clear_zone(&ip);
        ip6_addr_clear_zone(&g_gw6);
        if (ip6_addr_islinklocal(&g_gw6)) ip6_addr_assign_zone(&g_gw6, IP6_UNICAST, &g_netif);
        netif_create_ip6_linklocal_address(&g_netif, 1);
        netif_ip6_addr_set(&g_netif, 1, &ip);
        netif_ip6_addr_set_state(&g_netif, 1, IP6_ADDR_PREFERRED);
    } else {
        wisp_abort("net: boot info ip_family is neither 4 nor 6");
    }
}

static err_t wisp_netif_init(struct netif *netif) {
    netif->name[0] = 'w';
    netif->name[1] = '0';
    netif->mtu = 1500;
#if LWIP_IPV6
    netif->mtu6 = 1500;
#endif
    netif->hwaddr_len = ETH_HWADDR_LEN;
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
    netif->output = etharp_output;
    netif->output_ip6 = ethip6_output;
    netif->linkoutput = wisp_linkoutput;
    return ERR_OK;
}

void wisp_net_init(void) {
    lwip_init();
    if (!netif_add_noaddr(&g_netif, NULL, wisp_netif_init, ethernet_input))
        wisp_abort("net: netif_add failed");
    netif_set_default(&g_netif);
    netif_set_up(&g_netif); /* first: a static ARP entry needs a route to its address */
    apply_boot_addressing();
    g_restore_count = wisp_restore_count();
}

struct netif *wisp_net_netif(void) { return &g_netif; }

struct wisp_net_stats wisp_net_stats(void) { return g_stats; }

void wisp_net_poll(uint64_t max_wait_ns) {
    uint64_t deadline = 0;
    if (!g_rx_pending) {
        uint64_t now = wisp_monotonic_ns();
        uint64_t wait = max_wait_ns < MAX_WAIT_NS ? max_wait_ns : MAX_WAIT_NS;
        uint32_t timer_ms = sys_timeouts_sleeptime();
        /* Without a TCP connection (open or in TIME_WAIT) the only lwIP timers
         * left are the 1 s ARP and ND housekeeping, which have nothing to do
         * here: the gateway's entries are static and the data plane drops ARP and
         * ND a guest sends. Waking for them costs a VM exit and entry every
         * second per idle instance (64 % of a core for 1,300 idle guests on the
         * development host), so an idle guest sleeps until a frame arrives or the
         * caller's own deadline; overdue housekeeping runs on the next wake. */
        if (!tcp_active_pcbs && !tcp_tw_pcbs) timer_ms = SYS_TIMEOUTS_SLEEPTIME_INFINITE;
        /* lwIP counts in whole milliseconds of sys_now(): wake exactly when the
         * millisecond the timer is due in begins, not up to 1 ms early. */
        uint64_t now_ms = now / 1000000u;
        if (timer_ms != SYS_TIMEOUTS_SLEEPTIME_INFINITE && (now_ms + timer_ms) * 1000000u - now < wait)
            wait = (now_ms + timer_ms) * 1000000u - now;
        deadline = wait ? now + wait : 0;
    }
    uint32_t rx_slots = rx_refill();
    struct wisp_hc_poll arg = {
        .deadline_ns = deadline,
        .tx = (wisp_gpa_t)(uintptr_t)g_tx,
        .rx = (wisp_gpa_t)(uintptr_t)g_rx,
        .tx_count = g_tx_count,
        .rx_count = rx_slots,
    };
    wisp_hypercall(WISP_HC_POLL, &arg);
    g_stats.polls++;
    tx_account(arg.tx_done);
    if (wisp_restore_count() != g_restore_count) {
        g_restore_count = wisp_restore_count();
        apply_boot_addressing();
    }
    uint32_t got = arg.rx_done <= rx_slots ? arg.rx_done : rx_slots;
    if (got == g_rx_slots && g_rx_slots < BATCH) g_rx_slots *= 2;
    rx_deliver(got);
    g_rx_pending = (arg.events & WISP_POLL_NET) != 0;
    sys_check_timeouts();
}

void wisp_net_run(void) {
    for (;;) wisp_net_poll(MAX_WAIT_NS);
}
