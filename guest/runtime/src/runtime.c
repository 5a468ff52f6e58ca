/* Guest runtime core: entry into C, the hypercall wrappers every app uses. */
#include <stddef.h>
#include <stdint.h>

#include "wisp/guest.h"

extern int main(void);

static const struct wisp_boot_info *g_boot_info;

const struct wisp_boot_info *wisp_boot_info(void) { return g_boot_info; }

static size_t cstr_len(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

void wisp_console_write(const char *data, size_t len) {
    while (len > 0) {
        size_t chunk = len < WISP_CONSOLE_MAX ? len : WISP_CONSOLE_MAX;
        struct wisp_hc_console arg = {.data = (wisp_gpa_t)(uintptr_t)data, .len = chunk};
        wisp_hypercall(WISP_HC_CONSOLE, &arg);
        data += chunk;
        len -= chunk;
    }
}

int wisp_ready(void) {
    struct wisp_hc_ready arg = {.flags = 0, .restored = 0};
    wisp_hypercall(WISP_HC_READY, &arg);
    return arg.restored != 0;
}

void wisp_halt(int64_t status) {
    struct wisp_hc_halt arg = {.status = status};
    for (;;) wisp_hypercall(WISP_HC_HALT, &arg);
}

void wisp_abort(const char *msg) {
    size_t len = cstr_len(msg);
    struct wisp_hc_abort arg = {.msg = (wisp_gpa_t)(uintptr_t)msg,
                                .len = len < WISP_CONSOLE_MAX ? len : WISP_CONSOLE_MAX};
    for (;;) wisp_hypercall(WISP_HC_ABORT, &arg);
}

typedef void (*init_fn)(void);
extern init_fn __init_array_start[], __init_array_end[];

__attribute__((noreturn)) void wisp_runtime_start(const struct wisp_boot_info *boot_info) {
    g_boot_info = boot_info;
    for (init_fn *fn = __init_array_start; fn < __init_array_end; fn++) (*fn)();
    wisp_halt(main());
}
