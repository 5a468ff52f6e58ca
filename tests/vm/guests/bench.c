/* Benchmark guest: "clock count=N" issues N clock hypercalls back to back, then
 * halts. tools/bench/vmm times it under the monitor's hypercall loop and under a
 * bare KVM_RUN loop (the baseline). */
#include "vmtest.h"

int main(void) {
    uint64_t n = vt_arg("count", 1000);
    struct wisp_hc_clock c = {0, 0};
    for (uint64_t i = 0; i < n; i++) wisp_hypercall(WISP_HC_CLOCK, &c);
    return 0;
}
