/* Console hello, then `ready`; halts with status=N (default 0), or with
 * "linger" keeps polling (no frames, long deadlines) until the monitor stops it. */
#include "vmtest.h"

int main(void) {
    vt_print("hello from a wisp guest\n");
    wisp_ready();
    if (vt_mode_is("linger")) {
        for (;;) {
            uint64_t mono, wall;
            vt_clock(&mono, &wall);
            struct wisp_hc_poll p = {0};
            p.deadline_ns = mono + 10ull * 1000 * 1000 * 1000;
            wisp_hypercall(WISP_HC_POLL, &p);
        }
    }
    return (int)vt_arg("status", 0);
}
