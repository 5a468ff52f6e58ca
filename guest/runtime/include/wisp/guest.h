/*
 * wisp guest runtime: the small API a unikernel app is written against.
 *
 * An app defines `int main(void)`; the runtime validates the boot-info page, sets
 * up the heap, runs static constructors, calls main() and halts the VM with its
 * return value. Everything a guest needs from the outside world is a hypercall
 * (vmm/abi/wisp_hypercall.h); each one is a VM exit, which costs ~25 µs on a
 * software KVM, so the runtime avoids them where it can (the clock is read from
 * the TSC, console output is line buffered).
 */
#ifndef WISP_GUEST_H
#define WISP_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "wisp/heap.h"
#include "wisp_hypercall.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The app's entry point, called by the runtime. Declared here with C linkage so a
 * C++ app's `int main()` is found too (-ffreestanding makes main an ordinary,
 * mangled function in C++). */
int main(void);

/* The boot-info page the monitor filled in (read-only). */
const struct wisp_boot_info *wisp_boot_info(void);

/* Issue hypercall `nr` with argument struct `arg` (identity mapped: its address is
 * its gpa). The argument struct's OUT fields are filled when this returns. */
static inline void wisp_hypercall(enum wisp_hypercall_nr nr, void *arg) {
    __asm__ __volatile__("outl %0, %1"
                         :
                         : "a"((uint32_t)(uintptr_t)arg), "d"((uint16_t)WISP_HYPERCALL_PORT(nr))
                         : "memory");
}

/* Write `len` bytes to the console (unbuffered: one exit per 4 KiB). */
void wisp_console_write(const char *data, size_t len);

/* Write out what printf() has buffered (printf flushes at each newline). */
void wisp_console_flush(void);

/* Report that initialisation is done. Returns 1 if the guest now runs from a
 * restored snapshot, 0 otherwise. The monitor may snapshot the guest inside this
 * call, so everything the app computed before it is part of the golden image. */
int wisp_ready(void);

/* End the VM with `status`. */
__attribute__((noreturn)) void wisp_halt(int64_t status);

/* End the VM with a message in the instance log. */
__attribute__((noreturn)) void wisp_abort(const char *msg);

/* ---- clocks (no exit: rdtsc scaled by the boot-info calibration) ---------- */

/* Monotonic nanoseconds; never goes backwards, also across a snapshot restore. */
uint64_t wisp_monotonic_ns(void);

/* Wall-clock nanoseconds since the Unix epoch. */
uint64_t wisp_wall_ns(void);

/* How many times this guest's memory was restored from a snapshot (0 when it
 * booted fresh). Changes under the app's feet after a restore. */
uint32_t wisp_restore_count(void);

/* ---- randomness -------------------------------------------------------------- */

/* 64 random bits: RDRAND when the CPU has it, otherwise TSC-seeded and re-seeded
 * after each snapshot restore. Good for sequence numbers and hash seeds; not a
 * substitute for a vetted CSPRNG where secrets are made. */
uint64_t wisp_random_u64(void);

/* ---- command line (boot_info.cmdline: "key=value flag ...") ---------------- */

const char *wisp_cmdline(void);

/* Value of `key` copied into out (see wisp_cmdline_find); -1 if absent. */
long wisp_cmdline_get(const char *key, char *out, size_t cap);

/* Numeric value of `key` (decimal, 0x-hex, k/M/G suffixes), `fallback` if absent.
 * A value that is not a number aborts the guest with a message naming the key. */
uint64_t wisp_cmdline_u64(const char *key, uint64_t fallback);

/* ---- heap ------------------------------------------------------------------ */

/* malloc's bookkeeping: bytes in use, peak, and memory touched so far. */
struct wisp_heap_stats wisp_malloc_stats(void);

#ifdef __cplusplus
}
#endif

#endif /* WISP_GUEST_H */
