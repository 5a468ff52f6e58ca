/*
 * wispd <-> wisp-vmm control protocol.
 *
 * Plain C, fixed-width types, explicit padding, no pointers; pinned by
 * tests/vm/control_layout_test.cpp. Spec: docs/control-protocol.md.
 *
 * Transport: one AF_UNIX SOCK_SEQPACKET connection per monitor. Every message is
 * one packet: a struct wisp_ctl_header followed by exactly `length` payload bytes.
 * The receiver checks that the packet size equals sizeof(header) + length and
 * that `length` equals the size its type prescribes; anything else (truncated,
 * oversized, unknown type, file descriptors where none belong) is rejected with a
 * WISP_CTL_EV_ERROR reply and never ends the monitor.
 *
 * File descriptors travel as SCM_RIGHTS ancillary data of the packet that needs
 * them (boot, snapshot, restore).
 *
 * Every command gets exactly one reply, in order: the event named next to it, or
 * WISP_CTL_EV_ERROR. Events without a command (ready, exited) may come between
 * a command and its reply.
 */
#ifndef WISP_CONTROL_H
#define WISP_CONTROL_H

#include <stdint.h>

/* Bumped on any incompatible change; sent in the hello event.
 * 2: snapshot and restore commands, snapshot/restored/running events. */
#define WISP_CONTROL_VERSION 2

/* Largest packet either side sends or accepts, header included. */
#define WISP_CTL_MSG_MAX 4096

struct wisp_ctl_header {
    uint32_t type;   /* enum wisp_ctl_type */
    uint32_t length; /* payload bytes after this header */
};

enum wisp_ctl_type {
    WISP_CTL_RESERVED = 0,

    /* commands: controller -> monitor */
    WISP_CTL_BOOT = 1,     /* struct wisp_ctl_boot + fds  -> EV_STARTED */
    WISP_CTL_PAUSE = 2,    /* no payload                  -> EV_STATE   */
    WISP_CTL_RESUME = 3,   /* no payload                  -> EV_STATE   */
    WISP_CTL_STOP = 4,     /* no payload                  -> EV_EXITED  */
    WISP_CTL_STATS = 5,    /* no payload                  -> EV_STATS   */
    WISP_CTL_SNAPSHOT = 6, /* struct wisp_ctl_snapshot + fds -> EV_SNAPSHOT */
    WISP_CTL_RESTORE = 7,  /* struct wisp_ctl_restore + fds  -> EV_RESTORED */
    WISP_CTL_STATUS = 8,   /* no payload                  -> EV_STATE   */

    /* events: monitor -> controller */
    WISP_CTL_EV_HELLO = 0x100,   /* struct wisp_ctl_hello, first packet on every connection */
    WISP_CTL_EV_STARTED = 0x101, /* struct wisp_ctl_started: the guest was entered */
    WISP_CTL_EV_READY = 0x102,   /* struct wisp_ctl_ready: the guest called `ready` */
    WISP_CTL_EV_EXITED = 0x103,  /* struct wisp_ctl_exited: the VM ended; the monitor exits */
    WISP_CTL_EV_STATS = 0x104,   /* struct wisp_ctl_stats */
    WISP_CTL_EV_STATE = 0x105,   /* struct wisp_ctl_state */
    WISP_CTL_EV_ERROR = 0x106,   /* struct wisp_ctl_error: a command was rejected */
    WISP_CTL_EV_SNAPSHOT = 0x107, /* struct wisp_ctl_snapshotted: the snapshot files are written */
    WISP_CTL_EV_RESTORED = 0x108, /* struct wisp_ctl_restored: the guest is about to run again */
    WISP_CTL_EV_RUNNING = 0x109,  /* struct wisp_ctl_running: first hypercall after a restore */
};

/* Monitor states, as seen by the controller. */
enum wisp_vm_state {
    WISP_VM_EMPTY = 0,   /* VM and vCPU created, nothing loaded: waits for boot/restore */
    WISP_VM_RUNNING = 1,
    WISP_VM_PAUSED = 2,  /* by a pause command, or held at `ready` (WISP_BOOT_HOLD_AT_READY) */
    WISP_VM_EXITED = 3,
};

/* ---- boot ----------------------------------------------------------------- */

/* SCM_RIGHTS order: [0] tap fd (IFF_TAP|IFF_NO_PI), [1] guest image (a readable
 * ELF file), [2] console log (optional, present iff WISP_BOOT_LOG_FD). */
#define WISP_BOOT_LOG_FD 0x1
/* Stop the guest inside its `ready` hypercall (state PAUSED, EV_READY sent) until
 * the controller resumes it, so a golden snapshot captures the ready point. */
#define WISP_BOOT_HOLD_AT_READY 0x2
#define WISP_BOOT_FLAGS_ALL (WISP_BOOT_LOG_FD | WISP_BOOT_HOLD_AT_READY)

#define WISP_CTL_CMDLINE_MAX 512 /* == WISP_CMDLINE_MAX, NUL included */

struct wisp_ctl_boot {
    uint64_t mem_size;        /* bytes, WISP_MEM_MIN..WISP_MEM_MAX, multiple of 2 MiB */
    uint64_t console_limit;   /* bytes the console log may grow to (0 = monitor default) */
    uint32_t flags;           /* WISP_BOOT_* */
    uint32_t cmdline_len;     /* bytes used in cmdline, without NUL, < WISP_CTL_CMDLINE_MAX */
    uint8_t mac[6];           /* guest MAC */
    uint8_t gw_mac[6];        /* next hop MAC (host side of the tap) */
    uint8_t ip_family;        /* 4 or 6 */
    uint8_t prefix_len;
    uint8_t pad0[2];
    uint8_t ip[16];
    uint8_t gw_ip[16];
    char cmdline[WISP_CTL_CMDLINE_MAX];
};

/* ---- snapshot ------------------------------------------------------------- */

/* SCM_RIGHTS order: [0] vmstate, [1] memory: empty regular files opened
 * read-write, which the controller created in a temporary directory. The monitor
 * writes them (memory sparse: zero pages stay holes) but does not sync them; the
 * controller makes them durable and renames the directory into place
 * (snapshot/include/wisp/snapshot/store.h). Allowed while RUNNING or PAUSED; the
 * VM's state does not change. */
#define WISP_SNAPSHOT_DIFF 0x1 /* only pages changed since the full snapshot the VM was restored from */
#define WISP_SNAPSHOT_FLAGS_ALL (WISP_SNAPSHOT_DIFF)

struct wisp_ctl_snapshot {
    uint32_t flags; /* WISP_SNAPSHOT_* */
    uint32_t pad0;
};

/* ---- restore -------------------------------------------------------------- */

/* SCM_RIGHTS order: [0] tap (IFF_TAP|IFF_NO_PI), [1] vmstate, [2] memory (both
 * read-only); with WISP_RESTORE_DIFF then [3] vmstate and [4] memory of the diff's
 * parent full snapshot; with WISP_RESTORE_LOG_FD the console log last. Only in
 * state EMPTY. A rejected restore (bad file, wrong parent, other CPU, ...) leaves
 * the monitor EMPTY and usable. */
#define WISP_RESTORE_LOG_FD 0x1
#define WISP_RESTORE_DIFF 0x2      /* a diff snapshot: its parent's fds follow */
#define WISP_RESTORE_IDENTITY 0x4  /* give the guest the identity below, not the snapshot's */
#define WISP_RESTORE_FLAGS_ALL (WISP_RESTORE_LOG_FD | WISP_RESTORE_DIFF | WISP_RESTORE_IDENTITY)

struct wisp_ctl_restore {
    uint64_t console_limit; /* bytes the console log may grow to (0 = monitor default) */
    uint32_t flags;         /* WISP_RESTORE_* */
    uint32_t pad0;
    /* with WISP_RESTORE_IDENTITY (as in wisp_ctl_boot): */
    uint8_t mac[6];
    uint8_t gw_mac[6];
    uint8_t ip_family;
    uint8_t prefix_len;
    uint8_t pad1[2];
    uint8_t ip[16];
    uint8_t gw_ip[16];
};

/* ---- events --------------------------------------------------------------- */

struct wisp_ctl_hello {
    uint32_t control_version; /* WISP_CONTROL_VERSION */
    uint32_t abi_version;     /* WISP_ABI_VERSION of the guest ABI it runs */
    uint32_t pid;
    uint32_t state;           /* enum wisp_vm_state */
};

struct wisp_ctl_started {
    uint64_t command_ns;  /* CLOCK_MONOTONIC when the boot command was read */
    uint64_t entry_ns;    /* CLOCK_MONOTONIC just before the first guest instruction */
    uint64_t mem_size;
    uint64_t entry_rip;
};

struct wisp_ctl_ready {
    uint64_t first_hypercall_ns; /* CLOCK_MONOTONIC of the guest's first hypercall */
    uint64_t ready_ns;           /* CLOCK_MONOTONIC of the ready hypercall */
    uint32_t held;               /* 1 if the guest is held at ready (state PAUSED) */
    uint32_t pad0;
};

/* Why a VM ended. */
enum wisp_exit_reason {
    WISP_EXIT_HALT = 1,            /* the guest called halt: `status` is valid */
    WISP_EXIT_ABORT = 2,           /* the guest called abort: detail = its message */
    WISP_EXIT_STOPPED = 3,         /* a stop command, or the controller went away */
    WISP_EXIT_BAD_POINTER = 4,     /* a hypercall range outside guest memory */
    WISP_EXIT_LENGTH_OVERFLOW = 5, /* a hypercall (address + length) overflows */
    WISP_EXIT_BAD_ARGUMENT = 6,    /* a hypercall argument out of its allowed range */
    WISP_EXIT_UNKNOWN_HYPERCALL = 7,
    WISP_EXIT_BAD_PORT_ACCESS = 8, /* `in`, or a width other than 32 bits, on a hypercall port */
    WISP_EXIT_PRIVILEGED_INSTRUCTION = 9, /* cli, sti, hlt, wrmsr, rdmsr, in/out elsewhere, ... */
    WISP_EXIT_READ_ONLY_WRITE = 10,
    WISP_EXIT_STACK_OVERFLOW = 11,
    WISP_EXIT_UNMAPPED_ACCESS = 12,  /* page fault outside mapped guest memory */
    WISP_EXIT_EXECUTE_VIOLATION = 13, /* instruction fetch from a non-executable page */
    WISP_EXIT_INVALID_OPCODE = 14,
    WISP_EXIT_TRIPLE_FAULT = 15,     /* any other fault */
    WISP_EXIT_UNEXPECTED_EXIT = 16,  /* a KVM exit the monitor does not handle */
    WISP_EXIT_MONITOR_ERROR = 17,    /* the host side failed (logged) */
};

#define WISP_CTL_DETAIL_MAX 256

struct wisp_ctl_exited {
    int64_t status;   /* guest's halt status (WISP_EXIT_HALT), else 0 */
    uint32_t reason;  /* enum wisp_exit_reason */
    uint32_t hypercall; /* hypercall number being served when it ended, 0 if none */
    uint64_t rip;     /* guest rip at the end */
    uint32_t detail_len;
    uint32_t pad0;
    char detail[WISP_CTL_DETAIL_MAX]; /* human-readable cause, NUL terminated */
};

struct wisp_ctl_stats {
    uint64_t exits;           /* KVM_RUN returns */
    uint64_t hypercalls;
    uint64_t console_bytes;   /* bytes written to the console log */
    uint64_t console_dropped; /* bytes dropped at the log's limit */
    uint64_t rx_frames;
    uint64_t rx_bytes;
    uint64_t rx_dropped;      /* frames larger than the guest's buffer */
    uint64_t tx_frames;
    uint64_t tx_bytes;
    uint64_t tx_dropped;      /* frames the tap refused */
    uint64_t max_rss_kib;     /* the monitor's peak RSS */
    uint32_t state;           /* enum wisp_vm_state */
    uint32_t pad0;
};

struct wisp_ctl_snapshotted {
    uint64_t command_ns;    /* CLOCK_MONOTONIC when the command was read */
    uint64_t done_ns;       /* CLOCK_MONOTONIC when both files were written */
    uint64_t mem_size;
    uint64_t data_bytes;    /* bytes of guest memory written (zero pages excluded) */
    uint64_t run_pages;     /* diff: pages it covers; full: 0 */
    uint32_t vmstate_bytes;
    uint32_t kind;          /* 1 full, 2 diff */
    uint8_t id[16];         /* the new snapshot's id */
    uint8_t parent_id[16];  /* diff: the full snapshot it applies to; else zero */
};

struct wisp_ctl_restored {
    uint64_t command_ns; /* CLOCK_MONOTONIC when the restore command was read */
    uint64_t entry_ns;   /* CLOCK_MONOTONIC just before the guest runs again */
    uint64_t mem_size;
    uint64_t rip;        /* where the guest continues */
    uint32_t restore_count;
    uint32_t kind;       /* of the snapshot restored: 1 full, 2 diff */
    uint8_t id[16];      /* the snapshot restored */
};

struct wisp_ctl_running {
    uint64_t first_hypercall_ns; /* CLOCK_MONOTONIC of the guest's first hypercall */
};

struct wisp_ctl_state {
    uint32_t state; /* enum wisp_vm_state */
    uint32_t pad0;
};

#define WISP_CTL_ERROR_MAX 256

struct wisp_ctl_error {
    uint32_t command; /* type of the rejected command (0 if unparseable) */
    int32_t error;    /* an errno value */
    uint32_t message_len;
    uint32_t pad0;
    char message[WISP_CTL_ERROR_MAX]; /* NUL terminated */
};

#endif /* WISP_CONTROL_H */
