/* Hostile guests: the command line's first word picks one way to misbehave. Each
 * must end the VM with its named reason; none may hurt the monitor. */
#include "vmtest.h"

static const char rodata_bytes[64] = "read-only";
static volatile uint64_t sink;
static volatile uint64_t depth_limit = ~0ull;

__attribute__((noinline)) static uint64_t recurse(uint64_t depth) {
    volatile uint8_t frame[256];
    frame[0] = (uint8_t)depth;
    if (depth == depth_limit) return 0;
    return recurse(depth + 1) + frame[0];
}

static inline void out32(uint16_t port, uint32_t value) {
    __asm__ __volatile__("outl %0, %1" : : "a"(value), "d"(port) : "memory");
}

int main(void) {
    if (vt_mode_is("bad-pointer")) {
        struct wisp_hc_console c = {wisp_boot_info()->mem_size + 4096, 16};
        wisp_hypercall(WISP_HC_CONSOLE, &c);
    } else if (vt_mode_is("bad-struct")) {
        /* the argument struct itself lies beyond guest memory */
        out32(WISP_HYPERCALL_PORT(WISP_HC_CLOCK), 0xfffffff0u);
    } else if (vt_mode_is("length-overflow")) {
        struct wisp_hc_console c = {~0ull - 10, 100};
        wisp_hypercall(WISP_HC_CONSOLE, &c);
    } else if (vt_mode_is("oversized-batch")) {
        struct wisp_frame f[1] = {{0, 0, 0}};
        struct wisp_hc_net_batch b = {(wisp_gpa_t)(uintptr_t)f, 1000, 0};
        wisp_hypercall(WISP_HC_NET_WRITE, &b);
    } else if (vt_mode_is("unknown-hypercall")) {
        out32(WISP_HYPERCALL_PORT(42), 0);
    } else if (vt_mode_is("port-in")) {
        uint32_t v;
        __asm__ __volatile__("inl %1, %0" : "=a"(v) : "d"((uint16_t)WISP_HYPERCALL_PORT(1)));
        sink = v;
    } else if (vt_mode_is("foreign-port")) {
        out32(0x3f8, 'x');
    } else if (vt_mode_is("cli")) {
        __asm__ __volatile__("cli");
    } else if (vt_mode_is("hlt")) {
        __asm__ __volatile__("hlt");
    } else if (vt_mode_is("wrmsr")) {
        __asm__ __volatile__("wrmsr" : : "c"(0x10u), "a"(0u), "d"(0u));
    } else if (vt_mode_is("write-rodata")) {
        *(volatile char *)&rodata_bytes[3] = 'x';
    } else if (vt_mode_is("write-text")) {
        *(volatile uint8_t *)(uintptr_t)&main = 0xcc;
    } else if (vt_mode_is("write-boot-info")) {
        *(volatile uint32_t *)(uintptr_t)WISP_BOOT_INFO_GPA = 0;
    } else if (vt_mode_is("read-page-tables")) {
        sink = *(volatile uint64_t *)(uintptr_t)0x6000;
    } else if (vt_mode_is("null-deref")) {
        sink = *(volatile uint64_t *)(uintptr_t)0;
    } else if (vt_mode_is("exec-stack")) {
        volatile uint8_t code[16];
        code[0] = 0xc3; /* ret, written at run time so it really is on the stack */
        ((void (*)(void))(uintptr_t)code)();
    } else if (vt_mode_is("stack-overflow")) {
        sink = recurse(0);
    } else if (vt_mode_is("ud2")) {
        __builtin_trap();
    } else if (vt_mode_is("abort")) {
        wisp_abort("the guest gave up");
    } else if (vt_mode_is("console-spam")) {
        static char chunk[WISP_CONSOLE_MAX];
        memset(chunk, 'x', sizeof chunk);
        uint64_t chunks = vt_arg("chunks", 1024);
        for (uint64_t i = 0; i < chunks; i++) wisp_console_write(chunk, sizeof chunk);
        return 0;
    } else if (vt_mode_is("spin")) {
        wisp_ready();
        for (;;) sink++;
    }
    vt_print("no such hostile mode\n");
    return 99;
}
