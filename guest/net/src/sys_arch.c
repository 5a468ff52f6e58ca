/* lwIP's system hooks for wisp guests: time, randomness, assertions. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lwip/sys.h"
#include "lwip/ip_addr.h"
#include "wisp/guest.h"
#include "wisp/siphash.h"

/* lwIP asks for the time on every timer check and TCP event: it must not cost a
 * VM exit, so it comes from the TSC-based clock. */
u32_t sys_now(void) { return (u32_t)(wisp_monotonic_ns() / 1000000u); }

uint32_t wisp_lwip_rand(void) { return (uint32_t)wisp_random_u64(); }

/* TCP initial sequence numbers as RFC 6528 asks: a 4 us clock plus a keyed hash
 * of the connection's addresses and ports. lwIP's own ISNs are a counter, the
 * same in every replica restored from one snapshot and easy to predict; the key
 * here is drawn at first use and again after every restore. */
u32_t wisp_tcp_isn(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip,
                   u16_t remote_port) {
    static uint64_t key[2];
    static uint32_t keyed_for = UINT32_MAX;
    if (keyed_for != wisp_restore_count()) {
        key[0] = wisp_random_u64();
        key[1] = wisp_random_u64();
        keyed_for = wisp_restore_count();
    }
    struct {
        ip_addr_t local, remote;
        u16_t local_port, remote_port;
    } tuple;
    memset(&tuple, 0, sizeof tuple);
    ip_addr_copy(tuple.local, *local_ip);
    ip_addr_copy(tuple.remote, *remote_ip);
    tuple.local_port = local_port;
    tuple.remote_port = remote_port;
    uint32_t clock = (uint32_t)(wisp_monotonic_ns() / 4000u);
    return clock + (uint32_t)wisp_siphash24(key[0], key[1], &tuple, sizeof tuple);
}

void wisp_lwip_assert(const char *msg, const char *file, int line) {
    char text[256];
    snprintf(text, sizeof text, "lwIP assertion \"%s\" failed at %s:%d", msg, file, line);
    wisp_abort(text);
}
