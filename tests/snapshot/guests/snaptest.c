/* The snapshot test guest. Modes (first word of the command line):
 *
 * golden [kb=N]   fills N KiB (default 256) of heap with a pattern seeded from the
 *                 TSC (so no two boots agree), notes its clocks and calls ready.
 *                 After ready returns it prints one line
 *                   "after-ready restored=R count=C sum=S/S' mono=M0/M1/H1 wall=W1"
 *                 (pattern checksum at ready / now, TSC monotonic time at ready /
 *                 now, the clock hypercall's monotonic time now, wall time now)
 *                 and halts 0, or aborts if the pattern or the clocks went wrong.
 *
 * history [init_kb=N] [kb=M]
 *                 fills N KiB (default 0) of heap once, calls ready, then lives in
 *                 a poll loop. Each time the restore count changes it records it,
 *                 rewrites M KiB (default 0) of other heap, and prints
 *                   "history: 0 1 2 ... init=<checksum of the N KiB>"
 *                 - the restore counts every earlier incarnation of this memory
 *                 saw, and proof that the first fill is intact.
 *
 * never-ready     an initialisation that never ends: polls forever, no ready.
 */
#include "../../vm/guests/vmtest.h"

static uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

struct table {
    uint64_t *words;
    size_t count;
};

static uint64_t g_heap_used;

static void fill(struct table t, uint64_t seed) {
    for (size_t i = 0; i < t.count; i++) t.words[i] = splitmix(seed + i);
}

static uint64_t checksum(struct table t) {
    uint64_t s = 0;
    for (size_t i = 0; i < t.count; i++) s = splitmix(s ^ t.words[i]);
    return s;
}

/* kb KiB of heap, after the tables taken before. */
static struct table alloc_table(uint64_t kb) {
    const struct wisp_boot_info *bi = wisp_boot_info();
    struct table t = {(uint64_t *)(uintptr_t)(bi->heap_start + g_heap_used), (size_t)(kb * 1024 / 8)};
    g_heap_used += t.count * 8;
    if (bi->heap_start + g_heap_used > bi->heap_end) wisp_abort("table does not fit the heap");
    return t;
}

static void print_kv(const char *key, uint64_t v) {
    vt_print(key);
    vt_print_u64(v);
}

static int golden(void) {
    struct table t = alloc_table(vt_arg("kb", 256));
    fill(t, __builtin_ia32_rdtsc());
    uint64_t sum0 = checksum(t);
    uint64_t mono0 = vt_tsc_mono();
    int restored = wisp_ready();
    uint64_t mono1 = vt_tsc_mono(), hmono, wall;
    vt_clock(&hmono, &wall);
    uint64_t sum1 = checksum(t);
    print_kv("after-ready restored=", (uint64_t)restored);
    print_kv(" count=", wisp_boot_info()->restore_count);
    print_kv(" sum=", sum0);
    print_kv("/", sum1);
    print_kv(" mono=", mono0);
    print_kv("/", mono1);
    print_kv("/", hmono);
    print_kv(" wall=", wall);
    vt_print("\n");
    if (sum0 != sum1) wisp_abort("the pattern changed across ready");
    if (mono1 < mono0 || hmono < mono0) wisp_abort("monotonic time went backwards across ready");
    return 0;
}

#define MAX_HISTORY 64

static int history(void) {
    static uint32_t seen[MAX_HISTORY];
    static uint32_t count;
    struct table init = alloc_table(vt_arg("init_kb", 0));
    struct table scratch = alloc_table(vt_arg("kb", 0));
    fill(init, __builtin_ia32_rdtsc());
    uint64_t init_sum = checksum(init);
    wisp_ready();
    uint32_t last = UINT32_MAX;
    for (;;) {
        uint32_t now = *(const volatile uint32_t *)&wisp_boot_info()->restore_count;
        if (now != last) {
            last = now;
            if (count < MAX_HISTORY) seen[count++] = now;
            fill(scratch, now * 1000003ull);
            vt_print("history:");
            for (uint32_t i = 0; i < count; i++) print_kv(" ", seen[i]);
            if (checksum(init) != init_sum) wisp_abort("the init table changed");
            print_kv(" init=", init_sum);
            vt_print("\n");
        }
        struct wisp_hc_poll p = {0};
        p.deadline_ns = vt_tsc_mono() + 20000000ull;
        wisp_hypercall(WISP_HC_POLL, &p);
    }
}

static int never_ready(void) {
    for (;;) {
        struct wisp_hc_poll p = {0};
        p.deadline_ns = vt_tsc_mono() + 50000000ull;
        wisp_hypercall(WISP_HC_POLL, &p);
    }
}

int main(void) {
    if (vt_mode_is("golden")) return golden();
    if (vt_mode_is("history")) return history();
    if (vt_mode_is("never-ready")) return never_ready();
    wisp_abort("snaptest: unknown mode");
}
