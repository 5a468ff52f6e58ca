/*
 * wisp guest networking: lwIP on the instance's one interface, driven by an event
 * loop built around the POLL hypercall.
 *
 * Every loop iteration is one VM exit: POLL transmits the frames lwIP queued,
 * waits until a frame arrives or lwIP's next timer is due, and receives up to
 * WISP_NET_BATCH_MAX frames, which are all fed to lwIP before the next POLL.
 * Apps use lwIP's raw API (or the HTTP helper in wisp/http.h) from callbacks.
 */
#ifndef WISP_NET_H
#define WISP_NET_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct netif;

/* Initialises lwIP and brings the interface up with the boot-info addressing:
 * the instance's MAC and IP (the service VIP), the gateway, and a static ARP
 * entry for the gateway MAC. Aborts the guest if boot info is unusable. */
void wisp_net_init(void);

/* One event-loop iteration: transmit, wait at most `max_wait_ns` (less if an
 * lwIP timer is due sooner, not at all if frames are pending), receive, run
 * due timers. While no TCP connection exists, lwIP's timers do not shorten the
 * wait (only ARP/ND housekeeping is left, which a wisp guest does not need on
 * time): an app with periodic work of its own passes its deadline here. */
void wisp_net_poll(uint64_t max_wait_ns);

/* Runs the event loop forever. */
__attribute__((noreturn)) void wisp_net_run(void);

/* The interface wisp_net_init brought up. */
struct netif *wisp_net_netif(void);

struct wisp_net_stats {
    uint64_t polls;        /* POLL exits */
    uint64_t flushes;      /* extra NET_WRITE exits because the transmit batch was full */
    uint64_t rx_frames;
    uint64_t tx_frames;
    uint64_t tx_dropped;   /* frames the monitor did not take, or too large */
    uint64_t rx_dropped;   /* frames too short, or refused by lwIP */
};
struct wisp_net_stats wisp_net_stats(void);

#ifdef __cplusplus
}
#endif

#endif /* WISP_NET_H */
