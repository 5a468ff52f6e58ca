/* Clocks: the clock hypercall's monotonic time never goes back, the TSC-derived
 * time agrees with it, and both values are printed for the host to compare with
 * its own clocks ("mono=<ns> wall=<ns>"). Halts 0 on success, else aborts. */
#include "vmtest.h"

static uint64_t diff(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

int main(void) {
    uint64_t prev = 0, mono = 0, wall = 0;
    for (int i = 0; i < 200; i++) {
        vt_clock(&mono, &wall);
        if (mono < prev) wisp_abort("monotonic clock went backwards");
        prev = mono;
    }
    uint64_t tsc_prev = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t t = vt_tsc_mono();
        if (t < tsc_prev) wisp_abort("TSC clock went backwards");
        tsc_prev = t;
    }
    uint64_t before = vt_tsc_mono();
    vt_clock(&mono, &wall);
    uint64_t after = vt_tsc_mono();
    /* The hypercall's reading lies between the two TSC readings, give or take
     * the calibration error (allow 2 ms: the host is shared and noisy). */
    if (mono + 2000000 < before || mono > after + 2000000) {
        vt_print("tsc before=");
        vt_print_u64(before);
        vt_print(" hypercall=");
        vt_print_u64(mono);
        vt_print(" after=");
        vt_print_u64(after);
        vt_print("\n");
        wisp_abort("TSC-derived time disagrees with the clock hypercall");
    }
    if (diff(before, after) > 1000000000ull) wisp_abort("one clock hypercall took over a second");
    vt_print("mono=");
    vt_print_u64(mono);
    vt_print(" wall=");
    vt_print_u64(wall);
    vt_print("\nSUCCESS\n");
    return 0;
}
