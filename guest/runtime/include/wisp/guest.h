/*
 * wisp guest runtime: the small API a unikernel app is written against.
 *
 * An app defines `int main(void)`; the runtime calls it after setting up the C
 * environment and halts the VM with its return value.
 */
#ifndef WISP_GUEST_H
#define WISP_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "wisp_hypercall.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/* Write `len` bytes to the console. */
void wisp_console_write(const char *data, size_t len);

/* Report that initialisation is done. Returns 1 if the guest now runs from a
 * restored snapshot, 0 otherwise. */
int wisp_ready(void);

/* End the VM with `status`. */
__attribute__((noreturn)) void wisp_halt(int64_t status);

/* End the VM with a message in the instance log. */
__attribute__((noreturn)) void wisp_abort(const char *msg);

#ifdef __cplusplus
}
#endif

#endif /* WISP_GUEST_H */
