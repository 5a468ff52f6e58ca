/* Net echo: receives frames with the poll hypercall and sends each back with
 * source and destination MACs swapped, batching replies into the next poll's
 * tx. Halts after count=N frames (default 16). Reports `ready` once it polls. */
#include "vmtest.h"

#define BATCH 8

static uint8_t rx_buf[BATCH][WISP_FRAME_MAX + 4];
static uint8_t tx_buf[BATCH][WISP_FRAME_MAX + 4];

int main(void) {
    uint64_t want = vt_arg("count", 16), echoed = 0;
    struct wisp_frame rx[BATCH], tx[BATCH];
    uint32_t pending = 0;
    wisp_ready();
    while (echoed < want) {
        for (int i = 0; i < BATCH; i++) {
            rx[i].data = (wisp_gpa_t)(uintptr_t)rx_buf[i];
            rx[i].cap = sizeof rx_buf[i];
            rx[i].len = 0;
        }
        uint64_t mono, wall;
        vt_clock(&mono, &wall);
        struct wisp_hc_poll p = {0};
        /* the last replies go out without waiting for more frames */
        p.deadline_ns = echoed + pending >= want ? 0 : mono + 5ull * 1000 * 1000 * 1000;
        p.tx = (wisp_gpa_t)(uintptr_t)tx;
        p.tx_count = pending;
        p.rx = (wisp_gpa_t)(uintptr_t)rx;
        p.rx_count = BATCH;
        wisp_hypercall(WISP_HC_POLL, &p);
        if (p.tx_done != pending) wisp_abort("tx incomplete");
        echoed += pending;
        pending = 0;
        for (uint32_t i = 0; i < p.rx_done; i++) {
            uint32_t len = rx[i].len;
            if (len < 14) continue;
            memcpy(tx_buf[pending], rx_buf[i] + 6, 6);
            memcpy(tx_buf[pending] + 6, rx_buf[i], 6);
            memcpy(tx_buf[pending] + 12, rx_buf[i] + 12, len - 12);
            tx[pending].data = (wisp_gpa_t)(uintptr_t)tx_buf[pending];
            tx[pending].cap = len;
            tx[pending].len = 0;
            pending++;
        }
    }
    vt_print("echoed ");
    vt_print_u64(echoed);
    vt_print("\nSUCCESS\n");
    return 0;
}
