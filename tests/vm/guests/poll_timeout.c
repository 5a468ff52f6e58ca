/* Poll timeout accuracy: for each timeout in ms (timeouts=a,b,c is not needed:
 * uses 1, 5, 20, 50 ms) poll with no frames and print how long it really
 * waited: "slept <requested_ns> <measured_ns> <events>". */
#include "vmtest.h"

int main(void) {
    static const uint64_t timeouts_ms[] = {1, 5, 20, 50};
    for (unsigned i = 0; i < sizeof timeouts_ms / sizeof timeouts_ms[0]; i++) {
        uint64_t start, wall, end;
        vt_clock(&start, &wall);
        struct wisp_hc_poll p = {0};
        p.deadline_ns = start + timeouts_ms[i] * 1000000ull;
        wisp_hypercall(WISP_HC_POLL, &p);
        vt_clock(&end, &wall);
        vt_print("slept ");
        vt_print_u64(timeouts_ms[i] * 1000000ull);
        vt_print(" ");
        vt_print_u64(end - start);
        vt_print(" ");
        vt_print_u64(p.events);
        vt_print("\n");
    }
    /* deadline 0: returns at once with no TIMEOUT */
    struct wisp_hc_poll p = {0};
    wisp_hypercall(WISP_HC_POLL, &p);
    vt_print("nonblocking events ");
    vt_print_u64(p.events);
    vt_print("\nSUCCESS\n");
    return 0;
}
