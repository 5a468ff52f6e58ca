// One wisp microVM: KVM VM + vCPU, guest memory, tap, console, clock, and the
// hypercall loop. Used by the wisp-vmm binary (vmm/src/main.cpp, monitor.cpp),
// tests and benchmarks.
//
// Life cycle:
//   create()  — open KVM, create the VM and vCPU, set CPUID. Nothing about the
//               guest is known yet: a pre-forked monitor does this ahead of time.
//   boot()    — memory, image, page tables, registers, boot info.
//   restore_snapshot() — instead of boot(): a snapshot's memory mapped privately,
//               vCPU state set, clock fixed, a (new) tap attached.
//   save_snapshot() — between run() calls, any number of times.
//   run()     — runs the guest until it exits, calls `ready`, or is interrupted
//               (a signal from kick.h, or a readable wake fd during `poll`).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "wisp/result.h"
#include "wisp/vmm/boot_info.h"
#include "wisp/vmm/clock.h"
#include "wisp/vmm/console.h"
#include "wisp/vmm/kvm.h"
#include "wisp/vmm/machine.h"
#include "wisp/vmm/tap.h"
#include "wisp_control.h"

namespace wisp::vmm {

struct BootConfig {
    uint64_t mem_size = 64ull << 20;
    std::string cmdline;
    GuestIdentity identity;
};

struct SnapshotOptions {
    // Only the pages changed since the full snapshot this VM was restored from.
    bool diff = false;
};

struct SnapshotOutcome {
    snapshot::SnapshotInfo info{};
    snapshot::MemoryState memory{};
    uint64_t vmstate_bytes = 0;
};

// The files of a snapshot to restore, opened by the controller. A diff snapshot
// also needs its parent full snapshot's files (base_*).
struct RestoreFiles {
    UniqueFd vmstate, memory;
    UniqueFd base_vmstate, base_memory;
};

enum class RunStop {
    kExited,       // the VM ended: see exit_info()
    kReady,        // the guest completed its `ready` hypercall
    kInterrupted,  // a kick or a wake fd: the caller services its control channel
};

class Vmm {
public:
    static Result<std::unique_ptr<Vmm>> create();
    ~Vmm();
    Vmm(const Vmm &) = delete;
    Vmm &operator=(const Vmm &) = delete;

    // Registers guest memory of `size` bytes with KVM ahead of time, over a
    // reserved range of host addresses that stays unmapped until a boot or
    // restore maps memory there. KVM's cost for a memory slot grows with its size
    // (metadata allocation, ~0.7 ms per GiB here; replacing a mapping it knows,
    // ~0.2 ms per GiB): a pre-forked monitor pays it now, and a boot or restore
    // of exactly this size pays nothing for it. Other sizes still work.
    Status prepare_memory(uint64_t size);

    Status boot(const BootConfig &config, std::span<const uint8_t> image, Tap tap,
                ConsoleLog console);

    // Restores a snapshot into this VM instead of booting it (a pre-forked VM whose
    // vCPU never ran). Reads and validates every input (vmstate, base, CPU
    // features, vCPU mode, file sizes) before touching KVM; an error after that
    // leaves the VM unusable (memory().valid() then says so). `identity` replaces
    // the snapshot's network identity (another tap, another MAC).
    Status restore_snapshot(RestoreFiles files, Tap tap, ConsoleLog console,
                            const std::optional<GuestIdentity> &identity);

    // Writes the VM's state and memory into two empty, writable files (the caller
    // makes them durable and moves them into place; snapshot/store.h). Call
    // between run() calls. Zero pages are holes; a diff holds only the pages
    // written since the restore plus those of the diff it was restored from.
    // Does not change the VM: it may run on afterwards.
    Result<SnapshotOutcome> save_snapshot(int vmstate_fd, int memory_fd, const SnapshotOptions &options);

    // Called once at the guest's first hypercall after a boot or restore (the
    // monitor tells its controller the guest runs).
    void set_first_hypercall_hook(std::function<void()> hook) { first_hypercall_hook_ = std::move(hook); }

    // File descriptors whose readability ends a `poll` wait early (the control
    // sockets), so commands are served promptly while the guest sleeps.
    void set_wake_fds(std::vector<int> fds) { wake_fds_ = std::move(fds); }

    RunStop run();

    // Ends the VM from outside (stop command, controller gone, signal).
    void stop(wisp_exit_reason reason, const std::string &detail);
    bool exited() const { return exited_; }
    const wisp_ctl_exited &exit_info() const { return exit_; }
    // "halt status 0", "stack overflow: ...", etc.
    std::string exit_summary() const;

    wisp_ctl_stats stats() const;
    uint64_t entry_ns() const { return entry_ns_; }
    uint64_t first_hypercall_ns() const { return first_hypercall_ns_; }
    uint64_t ready_ns() const { return ready_ns_; }
    uint64_t entry_rip() const { return entry_rip_; }
    uint32_t restore_count() const { return restore_count_; }
    // The snapshot this VM was restored from (zero id if booted).
    const snapshot::SnapshotInfo &restored_from() const { return restored_from_; }

    // Component access for snapshot save/restore.
    Kvm &kvm() { return kvm_; }
    Vm &vm() { return vm_; }
    Vcpu &vcpu() { return vcpu_; }
    GuestMemory &memory() { return memory_; }
    GuestLayout &layout() { return layout_; }
    GuestClock &clock() { return clock_; }
    Tap &tap() { return tap_; }

private:
    Vmm(Kvm kvm, Vm vm, Vcpu vcpu);

    enum class Action { kContinue, kReady, kInterrupted, kExit };
    Action dispatch(uint32_t nr, uint64_t arg);
    Action hc_console(uint64_t arg);
    Action hc_clock(uint64_t arg);
    Action hc_poll(uint64_t arg);
    Action hc_net_batch(uint64_t arg, bool write);  // net_read / net_write
    Action hc_ready(uint64_t arg);
    Action hc_halt(uint64_t arg);
    Action hc_abort(uint64_t arg);

    // Hypercall helpers: each returns false after ending the VM with the reason.
    bool translate_or_die(uint64_t gpa, uint64_t len, const char *what, std::span<uint8_t> &out);
    template <class T>
    bool read_arg(uint64_t gpa, T &out);
    template <class T>
    bool write_out(uint64_t gpa, const T &value);
    // The guest's wisp_frame[count] table, count checked against the batch limit.
    bool frame_table(uint64_t frames, uint32_t count, const char *what, std::span<uint8_t> &table);
    bool transmit(uint64_t frames, uint32_t count, uint32_t &done);
    bool receive(uint64_t frames, uint32_t count, uint32_t &done);
    // Waits until the tap is readable, a wake fd is readable, a signal arrives
    // or the host deadline passes. Returns true when woken by a wake fd/signal.
    bool wait_for_frames(uint64_t deadline_host_ns);
    bool tap_readable();

    void die(wisp_exit_reason reason, const std::string &detail, int64_t status = 0);
    void handle_shutdown();
    // The machine model's special registers and XCR0 (machine.h).
    Status set_machine_registers();
    // Guest memory of `size` (a private mapping of `fd`, or anonymous if fd < 0),
    // in the prepared range when it fits; attach_memory() then tells KVM unless
    // it already knows the range.
    Result<GuestMemory> map_memory(uint64_t size, int fd);
    Status attach_memory(const GuestMemory &memory);
    // Which pages a snapshot must write (snapshot.cpp).
    Result<std::vector<snapshot::PageRun>> pages_to_save(bool diff);

    Kvm kvm_;
    Vm vm_;
    Vcpu vcpu_;
    GuestMemory memory_;
    GuestLayout layout_;
    GuestClock clock_;
    Tap tap_;
    ConsoleLog console_;
    std::vector<int> wake_fds_;

    uint32_t current_hypercall_ = 0;
    bool exited_ = false;
    wisp_ctl_exited exit_{};
    wisp_ctl_stats stats_{};
    uint64_t entry_ns_ = 0;
    uint64_t first_hypercall_ns_ = 0;
    uint64_t ready_ns_ = 0;
    uint64_t entry_rip_ = 0;
    uint32_t restore_count_ = 0;
    std::function<void()> first_hypercall_hook_;

    // Snapshot support. The guest stopped in its ready hypercall until run() is
    // entered again; a snapshot taken then is a golden one.
    bool at_ready_ = false;
    uint64_t ready_arg_gpa_ = 0;
    GuestIdentity identity_;
    UniqueFd pagemap_;  // /proc/self/pagemap, opened before the sandbox
    VcpuState vcpu_baseline_;  // what the vCPU holds after create()
    uint32_t tsc_khz_ = 0;
    uint8_t *prepared_base_ = nullptr;  // see prepare_memory()
    uint64_t prepared_size_ = 0;
    // After a restore: what lies under the memory mapping. The full snapshot's
    // memory file (and id), and the runs of a diff mapped over it.
    snapshot::SnapshotInfo restored_from_{};
    snapshot::SnapshotInfo base_{};
    UniqueFd base_memory_;
    UniqueFd overlay_memory_;
    std::vector<snapshot::PageRun> overlay_runs_;
};

// Names for logs and the CLI: "stack overflow", "halt", ...
const char *exit_reason_name(uint32_t reason);
const char *hypercall_name(uint32_t nr);

}  // namespace wisp::vmm
