// The monitor's seccomp allow-list: every system call wisp-vmm makes after
// enter_sandbox(), each with the reason it is needed. Anything else kills the
// process (SIGSYS), so a guest that compromised the monitor can do little more
// than the monitor itself. Keep this the only place syscalls are allowed.
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "wisp/vmm/kvm.h"
#include "wisp/vmm/sandbox.h"

namespace wisp::vmm {

namespace {

struct Allowed {
    int nr;
    const char *why;
};

// Plain allow rules.
const Allowed kSyscalls[] = {
    {SCMP_SYS(read), "console/log fds; eventual stdin reads of the runtime"},
    {SCMP_SYS(readv), "tap frames straight into guest buffers (+ spill area)"},
    {SCMP_SYS(write), "tap frames out, console log, logging to stderr"},
    {SCMP_SYS(writev), "logging (stdio may gather writes)"},
    {SCMP_SYS(pread64), "reading the guest image, a snapshot's vmstate, /proc/self/pagemap (fds)"},
    {SCMP_SYS(pwrite64), "writing a snapshot's vmstate and memory pages into the fds the controller passed"},
    {SCMP_SYS(ftruncate), "sizing a snapshot's memory file to guest memory (the rest stays holes)"},
    {SCMP_SYS(lseek), "SEEK_DATA/SEEK_HOLE: which pages of a restored snapshot's memory file hold data"},
    {SCMP_SYS(getrandom), "a new snapshot's random id"},
    {SCMP_SYS(close), "closing fds of rejected commands and old controllers"},
    {SCMP_SYS(dup), "the default console log is a dup of stderr"},
    {SCMP_SYS(fstat), "image, vmstate and memory file sizes before using them"},
    {SCMP_SYS(newfstatat), "fstat() as glibc implements it"},
    {SCMP_SYS(munmap), "freeing memory (allocator, guest memory of a failed boot or restore)"},
    {SCMP_SYS(madvise), "the allocator returning memory"},
    {SCMP_SYS(brk), "the allocator"},
    {SCMP_SYS(mremap), "the allocator growing large blocks"},
    {SCMP_SYS(ppoll), "poll hypercall: wait for a frame, a control message or the deadline"},
    {SCMP_SYS(poll), "waiting for commands while empty or paused"},
    {SCMP_SYS(recvmsg), "control messages (with SCM_RIGHTS fds)"},
    {SCMP_SYS(sendmsg), "control events"},
    {SCMP_SYS(accept4), "a (new) controller connecting to the control socket"},
    {SCMP_SYS(getsockopt), "checking a new controller's socket type"},
    {SCMP_SYS(fcntl), "O_ASYNC/O_NONBLOCK and SIGIO ownership on control sockets and the tap"},
    {SCMP_SYS(gettid), "SIGIO owner thread; log lines"},
    {SCMP_SYS(getpid), "hello event; log lines"},
    {SCMP_SYS(rt_sigreturn), "returning from the SIGIO/SIGTERM kick handler"},
    {SCMP_SYS(rt_sigprocmask), "glibc masks signals around some library calls"},
    {SCMP_SYS(restart_syscall), "resuming an interrupted wait"},
    {SCMP_SYS(clock_gettime), "guest clocks when the vDSO falls back to the syscall"},
    {SCMP_SYS(getrusage), "peak RSS for the stats command"},
    {SCMP_SYS(futex), "locks inside the logging library and libstdc++"},
    {SCMP_SYS(unlinkat), "removing the control socket when the monitor ends"},
    {SCMP_SYS(exit), "thread exit"},
    {SCMP_SYS(exit_group), "process exit"},
    {SCMP_SYS(tgkill), "abort() on an internal assertion (the process dies either way)"},
};

// ioctl requests, by fd kind.
const unsigned long kIoctls[] = {
    KVM_RUN,                     // the vCPU loop
    KVM_GET_REGS, KVM_SET_REGS,  // entry registers; fault diagnosis; snapshots
    KVM_GET_SREGS, KVM_SET_SREGS,
    KVM_SET_USER_MEMORY_REGION,  // guest memory is mapped at boot/restore, after the sandbox
    KVM_GET_XCRS, KVM_SET_XCRS,  // AVX state enable; snapshots
    kvm_ioctl::kGetXsave, kvm_ioctl::kSetXsave,
    KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS,  // fault diagnosis; snapshots
    kvm_ioctl::kGetMsrs, kvm_ioctl::kSetMsrs,  // guest TSC for clock calibration; snapshots
    KVM_GET_TSC_KHZ,             // clock calibration
    TUNGETIFF,                   // checking the tap fd handed over with boot
};

// mmap/mprotect: never executable memory in the monitor.
bool add_no_exec_rule(scmp_filter_ctx ctx, int nr) {
    return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                            SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) == 0;
}

}  // namespace

Status install_seccomp_filter() {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx) return invalid("seccomp_init failed", ENOMEM);
    int rc = 0;
    for (const Allowed &a : kSyscalls)
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, a.nr, 0)) != 0) break;
    for (unsigned long request : kIoctls) {
        if (rc != 0) break;
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, request & 0xffffffffu));
    }
    // guest memory (read/write, never executable) and allocator mappings
    if (rc == 0 && (!add_no_exec_rule(ctx, SCMP_SYS(mmap)) ||
                    !add_no_exec_rule(ctx, SCMP_SYS(mprotect))))
        rc = -EINVAL;
    if (rc == 0) rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) return Error{-rc, "installing the seccomp filter"};
    return {};
}

}  // namespace wisp::vmm
