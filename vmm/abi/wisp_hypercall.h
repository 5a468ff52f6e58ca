/*
 * wisp guest <-> wisp-vmm ABI: hypercalls, boot-info page, guest memory map.
 *
 * Plain C, fixed-width types, explicit padding, no pointers: this header is
 * compiled by the monitor (C++), the guest SDK (freestanding C/C++) and tests,
 * and tests/unit pins the size and offset of every field.
 *
 * A hypercall is one 32-bit `out` from ring 3:
 *
 *     outl(WISP_HYPERCALL_PORT(nr), (uint32_t)gpa_of_argument_struct)
 *
 * The port names the call, the value is the guest-physical address of the
 * call's argument struct (guest memory is at most 4 GiB, so 32 bits suffice).
 * The monitor reads IN fields, writes OUT fields, and resumes the guest after
 * the `out`. Every address and length a guest passes is untrusted: the monitor
 * checks each (gpa, len) range against guest memory and ends the VM on a bad one.
 *
 * Guest memory is identity mapped (guest-virtual == guest-physical) by page
 * tables the monitor builds; the guest runs in ring 3 only and has no IDT, so
 * any fault ends the VM (KVM reports a triple fault as a shutdown).
 */
#ifndef WISP_HYPERCALL_H
#define WISP_HYPERCALL_H

#include <stdint.h>

/* Bumped on any incompatible change to this header. A guest carries the version
 * it was built for in an ELF note; the loader refuses any other. */
#define WISP_ABI_VERSION 1

/* A guest-physical address. Never a host pointer: the monitor converts it with
 * its one checked translation (gpa, len) -> host range. */
typedef uint64_t wisp_gpa_t;

/* ---- hypercall numbers ---------------------------------------------------- */

#define WISP_HYPERCALL_PORT_BASE 0x500
#define WISP_HYPERCALL_PORT(nr) (WISP_HYPERCALL_PORT_BASE + (nr))
/* The guest runs with IOPL 0; the TSS I/O bitmap opens exactly these ports to
 * ring 3 (an `out` elsewhere, cli, hlt, wrmsr, ... fault and end the VM). */
#define WISP_HYPERCALL_PORT_COUNT 0x100

enum wisp_hypercall_nr {
    WISP_HC_RESERVED = 0,    /* never valid: catches an uninitialised port */
    WISP_HC_CONSOLE = 1,     /* struct wisp_hc_console */
    WISP_HC_CLOCK = 2,       /* struct wisp_hc_clock */
    WISP_HC_POLL = 3,        /* struct wisp_hc_poll */
    WISP_HC_NET_READ = 4,    /* struct wisp_hc_net_batch */
    WISP_HC_NET_WRITE = 5,   /* struct wisp_hc_net_batch */
    WISP_HC_READY = 6,       /* struct wisp_hc_ready */
    WISP_HC_HALT = 7,        /* struct wisp_hc_halt */
    WISP_HC_ABORT = 8,       /* struct wisp_hc_abort */
    WISP_HC_MAX = 9,         /* first invalid number */
};

/* ---- argument structs ----------------------------------------------------- */

/* Write bytes to the instance's console log (bounded by the monitor). */
struct wisp_hc_console {
    wisp_gpa_t data;  /* IN: bytes to write */
    uint64_t len;     /* IN: at most WISP_CONSOLE_MAX per call */
};
#define WISP_CONSOLE_MAX 4096

/* Host clocks, for when the guest does not trust its own TSC arithmetic. */
struct wisp_hc_clock {
    uint64_t monotonic_ns; /* OUT: CLOCK_MONOTONIC of the guest (never goes back) */
    uint64_t wall_ns;      /* OUT: CLOCK_REALTIME, ns since the Unix epoch */
};

/* One network frame in a batch. */
struct wisp_frame {
    wisp_gpa_t data;  /* IN: frame buffer */
    uint32_t cap;     /* IN: buffer size (read) / frame length (write) */
    uint32_t len;     /* OUT (read): bytes received; the frame is dropped if > cap */
};

/* Read or write up to `count` frames in one exit. */
struct wisp_hc_net_batch {
    wisp_gpa_t frames; /* IN: array of struct wisp_frame */
    uint32_t count;    /* IN: entries in the array, at most WISP_NET_BATCH_MAX */
    uint32_t done;     /* OUT: frames read / written (reads stop when no frame is pending) */
};
#define WISP_NET_BATCH_MAX 64
#define WISP_FRAME_MAX 1518 /* ethernet frame without FCS; 802.1Q adds 4 */

/* The guest's event loop in one exit: transmit `tx`, then wait until a frame is
 * readable, a control message is pending, or `deadline_ns` passes, then receive
 * into `rx`. tx_count/rx_count may be zero. A return with neither bit in
 * `events` is normal (the monitor had a control message to serve): poll again. */
struct wisp_hc_poll {
    uint64_t deadline_ns; /* IN: guest monotonic time; 0 = do not block */
    wisp_gpa_t tx;        /* IN: struct wisp_frame[tx_count] to send first */
    wisp_gpa_t rx;        /* IN: struct wisp_frame[rx_count] to fill */
    uint32_t tx_count;    /* IN: <= WISP_NET_BATCH_MAX */
    uint32_t rx_count;    /* IN: <= WISP_NET_BATCH_MAX */
    uint32_t tx_done;     /* OUT: frames sent */
    uint32_t rx_done;     /* OUT: frames received */
    uint32_t events;      /* OUT: WISP_POLL_* bits */
    uint32_t pad0;
};
#define WISP_POLL_NET 0x1      /* frames are (still) pending after rx */
#define WISP_POLL_TIMEOUT 0x2  /* the deadline passed */

/* Initialisation is done: the monitor reports `ready` to its controller, which
 * may take the golden snapshot right here. Returns after any snapshot. */
struct wisp_hc_ready {
    uint64_t flags;    /* IN: 0 */
    uint64_t restored; /* OUT: 1 if the guest now runs from a restored snapshot */
};

/* Orderly exit with a status the controller sees. Does not return. */
struct wisp_hc_halt {
    int64_t status; /* IN */
};

/* Fatal error in the guest: the message is logged and the VM ends. */
struct wisp_hc_abort {
    wisp_gpa_t msg; /* IN: message bytes */
    uint64_t len;   /* IN: at most WISP_CONSOLE_MAX */
};

/* ---- boot-info page ------------------------------------------------------- */

/* Clock calibration. The guest computes (the product is 64x64->128 bit)
 *     mono_ns = mono_base_ns + (((rdtsc() - tsc_base) * tsc_mult) >> tsc_shift)
 *     wall_ns = mono_ns + wall_offset_ns
 * The monitor rewrites these fields after a snapshot restore (bumping `seq`, odd
 * while writing), so a restored guest sees correct wall time and a monotonic
 * clock that did not go backwards. Readers retry while seq is odd or changed. */
struct wisp_clock_info {
    uint32_t seq;
    uint32_t tsc_shift;
    uint64_t tsc_mult;
    uint64_t tsc_base;
    uint64_t mono_base_ns;
    int64_t wall_offset_ns;
    uint64_t tsc_hz;
};

#define WISP_BOOT_MAGIC 0x50534957u /* "WISP" */
#define WISP_CMDLINE_MAX 512

struct wisp_boot_info {
    uint32_t magic;        /* WISP_BOOT_MAGIC */
    uint32_t abi_version;  /* WISP_ABI_VERSION */
    uint64_t mem_size;     /* bytes of guest memory, from gpa 0 */
    uint64_t heap_start;   /* first free byte after the image (page aligned) */
    uint64_t heap_end;     /* end of heap = start of the stack guard page */
    uint64_t stack_top;    /* initial rsp (16-byte aligned) */
    uint8_t mac[6];        /* the guest's own MAC */
    uint8_t gw_mac[6];     /* next hop: the host side of the tap */
    uint8_t ip_family;     /* 4 or 6 */
    uint8_t prefix_len;    /* netmask length */
    uint8_t pad0[2];
    uint8_t ip[16];        /* the guest's address = the service VIP (v4 in bytes 0..3) */
    uint8_t gw_ip[16];     /* gateway address (v4 in bytes 0..3) */
    struct wisp_clock_info clock;
    uint32_t restore_count; /* 0 on a fresh boot, +1 on each restore */
    uint32_t cmdline_len;
    char cmdline[WISP_CMDLINE_MAX]; /* NUL terminated */
};

/* ---- guest memory map (guest-physical == guest-virtual) -------------------- */

#define WISP_PAGE_SIZE 4096ull
#define WISP_BOOT_INFO_GPA 0x1000ull   /* user read-only */
#define WISP_SYSTEM_GPA 0x2000ull      /* GDT, TSS, page tables: supervisor only */
#define WISP_IMAGE_BASE 0x100000ull    /* lowest address a PT_LOAD may use */
#define WISP_STACK_SIZE 0x40000ull     /* 256 KiB below stack_top, guard page below it */
#define WISP_MEM_MIN (8ull << 20)
#define WISP_MEM_MAX (4ull << 30)

/* ---- ELF note: which ABI a guest image was built for ---------------------- */

#define WISP_NOTE_NAME "wisp"          /* n_namesz = 5 */
#define WISP_NOTE_TYPE_ABI 0x57495350u /* descriptor: uint32_t abi version */

#endif /* WISP_HYPERCALL_H */
