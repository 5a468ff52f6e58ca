// Guest runtime self-test: exercises the SDK's runtime inside a real guest and
// prints SUCCESS (halt 0) or FAIL lines (halt 1). With case=<name> on the command
// line it instead dies in one named way, for the abort-path tests.
// assert() must stay armed in this test even in release builds.
#undef NDEBUG
#include <assert.h>
#include <new>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wisp/guest.h"

namespace {

int g_failures;

void check(bool ok, const char *what) {
    if (!ok) {
        printf("FAIL: %s\n", what);
        g_failures++;
    }
}

// Static constructors run before main.
struct Constructed {
    int value;
    Constructed() : value(42) {}
};
Constructed g_constructed;

struct alignas(64) Aligned {
    char bytes[64];
};

struct Base {
    virtual ~Base() = default;
    virtual int kind() const { return 1; }
};
struct Derived : Base {
    int kind() const override { return 2; }
};

uint64_t rng_state = 88172645463325252ull;
uint64_t next_random() {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

void check_heap() {
    size_t before = wisp_malloc_stats().in_use;
    constexpr int kSlots = 256;
    static unsigned char *blocks[kSlots];
    static size_t sizes[kSlots];
    for (int round = 0; round < 20000; round++) {
        int i = static_cast<int>(next_random() % kSlots);
        if (blocks[i]) {
            for (size_t k = 0; k < sizes[i]; k++)
                if (blocks[i][k] != static_cast<unsigned char>(i)) {
                    check(false, "heap block contents survive other allocations");
                    return;
                }
            if (next_random() % 3 == 0) {
                size_t n = next_random() % 9000;
                auto *p = static_cast<unsigned char *>(realloc(blocks[i], n));
                if (n && !p) check(false, "realloc");
                if (p) memset(p, i, n);
                blocks[i] = n ? p : nullptr;
                sizes[i] = n;
                continue;
            }
            free(blocks[i]);
            blocks[i] = nullptr;
        } else {
            sizes[i] = next_random() % 5000;
            blocks[i] = static_cast<unsigned char *>(malloc(sizes[i]));
            check(blocks[i] != nullptr, "malloc");
            check(reinterpret_cast<uintptr_t>(blocks[i]) % 16 == 0, "malloc alignment");
            memset(blocks[i], i, sizes[i]);
        }
    }
    for (int i = 0; i < kSlots; i++) free(blocks[i]);
    check(wisp_malloc_stats().in_use == before, "everything freed returns to the heap");
    auto *z = static_cast<unsigned char *>(calloc(1000, 3));
    bool zero = z != nullptr;
    for (int k = 0; zero && k < 3000; k++) zero = z[k] == 0;
    check(zero, "calloc zeroes");
    free(z);
    check(malloc(size_t{1} << 40) == nullptr, "impossible malloc returns NULL");
    void *aligned = aligned_alloc(4096, 100);
    check(aligned && reinterpret_cast<uintptr_t>(aligned) % 4096 == 0, "aligned_alloc");
    free(aligned);
}

void check_cxx() {
    check(g_constructed.value == 42, "static constructor ran");
    auto *a = new Aligned;
    check(reinterpret_cast<uintptr_t>(a) % 64 == 0, "aligned new");
    delete a;
    Base *b = new Derived;
    check(b->kind() == 2, "virtual dispatch");
    delete b;
    int *arr = new int[1000]();
    check(arr[999] == 0, "array new value-initialises");
    delete[] arr;
    check(new (std::nothrow) char[size_t{1} << 40] == nullptr, "nothrow new returns nullptr");
}

int compare_ints(const void *a, const void *b) {
    int x = *static_cast<const int *>(a), y = *static_cast<const int *>(b);
    return (x > y) - (x < y);
}

void check_libc() {
    char buf[128];
    snprintf(buf, sizeof buf, "%d|%5s|%-4x|%08.3f|%llu|%c", -42, "ab", 255, 3.14159, 1ull << 40, 'z');
    check(strcmp(buf, "-42|   ab|ff  |0003.142|1099511627776|z") == 0, "snprintf");
    check(strtol("  -123abc", nullptr, 10) == -123, "strtol");
    check(strtoull("0xffffffffffffffff", nullptr, 0) == ~0ull, "strtoull");
    int values[] = {5, 3, 9, 1, 7, 2};
    qsort(values, 6, sizeof(int), compare_ints);
    check(values[0] == 1 && values[5] == 9, "qsort");
    int key = 7;
    check(bsearch(&key, values, 6, sizeof(int), compare_ints) == &values[4], "bsearch");
    char text[] = "abcdefgh";
    memmove(text + 2, text, 5);
    check(strcmp(text, "ababcdeh") == 0, "overlapping memmove");
    check(strstr("hello wisp", "wisp") != nullptr, "strstr");
    char *dup = strdup("copy");
    check(dup && strcmp(dup, "copy") == 0, "strdup");
    free(dup);
}

void check_clock() {
    uint64_t t0 = wisp_monotonic_ns();
    struct wisp_hc_clock host = {0, 0};
    wisp_hypercall(WISP_HC_CLOCK, &host);
    uint64_t t1 = wisp_monotonic_ns();
    // The TSC-derived clock agrees with the monitor's clock hypercall.
    int64_t skew = static_cast<int64_t>(host.monotonic_ns) - static_cast<int64_t>(t0);
    check(skew > -5000000 && static_cast<uint64_t>(skew) < t1 - t0 + 5000000, "TSC clock matches the host clock");
    uint64_t prev = wisp_monotonic_ns();
    const uint64_t spin_until = prev + 20000000;  // 20 ms
    bool monotonic = true;
    while (prev < spin_until) {
        uint64_t now = wisp_monotonic_ns();
        if (now < prev) monotonic = false;
        prev = now;
    }
    check(monotonic, "monotonic clock never goes back");
    check(wisp_wall_ns() > 1577836800ull * 1000000000ull, "wall clock after 2020");
    printf("wall_s=%llu\n", static_cast<unsigned long long>(wisp_wall_ns() / 1000000000ull));
}

void check_random() {
    uint64_t a = wisp_random_u64(), b = wisp_random_u64(), c = wisp_random_u64();
    check(a != b && b != c && a != c, "random numbers differ");
    check((a | b | c) >> 40 != 0, "random numbers use the high bits");
}

void check_boot() {
    char value[32];
    check(wisp_cmdline_get("mode", value, sizeof value) == 4 && strcmp(value, "test") == 0, "cmdline value");
    check(wisp_cmdline_u64("number", 0) == 3u << 20, "cmdline number with suffix");
    check(wisp_cmdline_u64("absent", 7) == 7, "cmdline fallback");
    check(wisp_restore_count() == 0, "fresh boot has restore_count 0");
    check(wisp_boot_info()->magic == WISP_BOOT_MAGIC, "boot info magic");
}

}  // namespace

int main() {
    char which[32] = "";
    wisp_cmdline_get("case", which, sizeof which);
    if (strcmp(which, "assert") == 0) {
        int answer = 41;
        assert(answer == 42);
    } else if (strcmp(which, "oom") == 0) {
        volatile size_t huge = size_t{1} << 40;
        char *p = new char[huge];
        p[0] = 1;
    } else if (strcmp(which, "double_free") == 0) {
        void *p = malloc(32);
        free(p);
        free(p);
    } else if (strcmp(which, "bad_number") == 0) {
        wisp_cmdline_u64("number", 0);
    }
    check_boot();
    check_heap();
    check_cxx();
    check_libc();
    check_clock();
    check_random();
    if (g_failures) return 1;
    printf("SUCCESS\n");
    return 0;
}
