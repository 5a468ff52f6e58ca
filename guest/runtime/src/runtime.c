/* Guest runtime core: entry into C, boot-info checks, the hypercall wrappers
 * every app uses. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "wisp/cmdline.h"
#include "wisp/guest.h"
#include "runtime_internal.h"

extern int main(void);

static const struct wisp_boot_info *g_boot_info;

const struct wisp_boot_info *wisp_boot_info(void) { return g_boot_info; }

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
    wisp_console_flush();
    struct wisp_hc_ready arg = {.flags = 0, .restored = 0};
    wisp_hypercall(WISP_HC_READY, &arg);
    return arg.restored != 0;
}

void wisp_halt(int64_t status) {
    wisp_console_flush();
    struct wisp_hc_halt arg = {.status = status};
    for (;;) wisp_hypercall(WISP_HC_HALT, &arg);
}

void wisp_abort(const char *msg) {
    wisp_console_flush();
    size_t len = strnlen(msg, WISP_CONSOLE_MAX);
    struct wisp_hc_abort arg = {.msg = (wisp_gpa_t)(uintptr_t)msg, .len = len};
    for (;;) wisp_hypercall(WISP_HC_ABORT, &arg);
}

uint32_t wisp_restore_count(void) {
    return *(const volatile uint32_t *)&g_boot_info->restore_count;
}

const char *wisp_cmdline(void) { return g_boot_info->cmdline; }

long wisp_cmdline_get(const char *key, char *out, size_t cap) {
    return wisp_cmdline_find(g_boot_info->cmdline, key, out, cap);
}

uint64_t wisp_cmdline_u64(const char *key, uint64_t fallback) {
    char value[64];
    long len = wisp_cmdline_get(key, value, sizeof value);
    if (len < 0) return fallback;
    uint64_t v;
    if ((size_t)len >= sizeof value || wisp_parse_u64(value, &v) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "cmdline: %s=%s is not a number", key, value);
        wisp_abort(msg);
    }
    return v;
}

/* The monitor owns the layout; a page that does not describe a usable guest means
 * the image was started by something else (or a different ABI): stop at once with
 * a clear message rather than corrupt memory later. */
static void check_boot_info(const struct wisp_boot_info *bi) {
    extern char __image_end[];
    if (bi->magic != WISP_BOOT_MAGIC) wisp_abort("boot info: bad magic");
    if (bi->abi_version != WISP_ABI_VERSION) wisp_abort("boot info: ABI version mismatch");
    if (bi->heap_start < (uint64_t)(uintptr_t)__image_end || bi->heap_end < bi->heap_start ||
        bi->heap_end > bi->mem_size)
        wisp_abort("boot info: heap bounds invalid");
    if (memchr(bi->cmdline, '\0', sizeof bi->cmdline) == NULL)
        wisp_abort("boot info: command line not terminated");
}

typedef void (*init_fn)(void);
extern init_fn __init_array_start[], __init_array_end[];

__attribute__((noreturn)) void wisp_runtime_start(const struct wisp_boot_info *boot_info) {
    g_boot_info = boot_info;
    check_boot_info(boot_info);
    wisp_malloc_init((void *)(uintptr_t)boot_info->heap_start,
                     (size_t)(boot_info->heap_end - boot_info->heap_start));
    for (init_fn *fn = __init_array_start; fn < __init_array_end; fn++) (*fn)();
    wisp_halt(main());
}
