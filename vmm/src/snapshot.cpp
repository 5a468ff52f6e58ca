// Snapshot save and restore of a whole VM: each component's save()/restore()
// (vCPU, layout, identity, clock) plus guest memory, through the snapshot format
// of snapshot/ (docs/snapshot-format.md).
//
// Restore is the wake path of every cold request: it validates everything first,
// then only maps memory, sets the vCPU state, fixes the clock and attaches the tap.
// Nothing in it grows with guest memory: the memory file is mapped privately and
// pages load when the guest touches them.
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "wisp/snapshot/memory_file.h"
#include "wisp/snapshot/vmstate.h"
#include "wisp/vmm/vmm.h"

namespace wisp::vmm {

namespace {

// Runs of a diff closer than this many pages are joined (fewer mappings on restore).
constexpr uint64_t kDiffRunGap = 16;

Status write_file(int fd, const std::vector<uint8_t> &bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("write vmstate");
        if (n == 0) return Error{ENOSPC, "write vmstate: no progress"};
        done += static_cast<size_t>(n);
    }
    if (ftruncate(fd, static_cast<off_t>(bytes.size())) != 0) return errno_error("size vmstate");
    return {};
}

Status check_memory_file(int fd, uint64_t mem_size, const char *what) {
    struct stat st;
    if (fstat(fd, &st) != 0) return errno_error(std::string("fstat ") + what);
    if (!S_ISREG(st.st_mode)) return invalid(std::string(what) + " is not a regular file");
    if (static_cast<uint64_t>(st.st_size) != mem_size)
        return invalid(std::string(what) + " holds " + std::to_string(st.st_size) +
                           " bytes, the snapshot's guest memory is " + std::to_string(mem_size),
                       EBADMSG);
    return {};
}

bool same_id(const uint8_t *a, const uint8_t *b) { return std::memcmp(a, b, 16) == 0; }

}  // namespace

Result<std::vector<snapshot::PageRun>> Vmm::pages_to_save(bool diff) {
    using snapshot::PageFilter;
    if (!pagemap_) return invalid("snapshots need /proc/self/pagemap, which was not available", ENOTSUP);
    if (diff) {
        if (!base_memory_)
            return invalid("a diff snapshot needs a VM restored from a full snapshot", ENOTSUP);
        // Written since the restore (copy-on-write made them anonymous), plus what
        // the diff this VM came from supplied.
        auto written = snapshot::scan_pagemap(pagemap_.get(), memory_.host_base(), memory_.size(),
                                              PageFilter::kPrivate);
        if (!written) return written;
        return snapshot::coalesce_runs(snapshot::merge_runs(*written, overlay_runs_), kDiffRunGap,
                                       snapshot::kMaxRuns);
    }
    // Every page that can be non-zero: touched ones, and when the memory is a
    // snapshot's, the data of its files (untouched pages still read from them).
    auto touched = snapshot::scan_pagemap(pagemap_.get(), memory_.host_base(), memory_.size(),
                                          PageFilter::kResident);
    if (!touched) return touched;
    std::vector<snapshot::PageRun> pages = std::move(*touched);
    if (base_memory_) {
        auto data = snapshot::file_data_runs(base_memory_.get(), memory_.size());
        if (!data) return data;
        pages = snapshot::merge_runs(pages, *data);
        pages = snapshot::merge_runs(pages, overlay_runs_);
    }
    return pages;
}

Result<SnapshotOutcome> Vmm::save_snapshot(int vmstate_fd, int memory_fd, const SnapshotOptions &options) {
    if (!memory_.valid() || exited_) return invalid("no running guest to snapshot");
    // 1. the vCPU: finish the I/O exit in flight so rip points past the `out`
    WISP_RETURN_IF_ERROR(vcpu_.complete_pending_io());
    snapshot::VmState state;
    auto vcpu = vcpu_.save();
    if (!vcpu) return std::move(vcpu).error();
    state.vcpu = *vcpu;
    auto live_clock = read_clock_info(memory_);
    if (!live_clock) return std::move(live_clock).error();

    // 2. every component's state
    state.layout = layout_.save();
    state.identity = identity_.save();
    state.clock = clock_.save(*live_clock, state.vcpu.tsc, tsc_khz_);
    state.monitor.restore_count = restore_count_;
    if (at_ready_) {
        state.monitor.flags |= snapshot::kMonitorHeldAtReady;
        state.monitor.ready_arg_gpa = ready_arg_gpa_;
    }
    snapshot::SnapshotInfo &info = state.info;
    if (getrandom(info.id, sizeof info.id, 0) != sizeof info.id) return errno_error("getrandom (snapshot id)");
    info.id[0] |= 1;  // never all zero
    info.created_wall_ns = host_realtime_ns();
    info.cpuid_hash = kvm_.cpuid_hash();
    info.kind = static_cast<uint32_t>(options.diff ? snapshot::SnapshotKind::kDiff : snapshot::SnapshotKind::kFull);
    if (options.diff) std::memcpy(info.parent_id, base_.id, sizeof info.parent_id);

    // 3. memory: the pages that matter, zero ones left as holes
    auto pages = pages_to_save(options.diff);
    if (!pages) return std::move(pages).error();
    auto written = snapshot::write_memory_pages(
        memory_fd, std::span<const uint8_t>(memory_.host_base(), memory_.size()), *pages);
    if (!written) return std::move(written).error();
    state.memory.mem_size = memory_.size();
    state.memory.data_bytes = written->data_bytes;
    if (options.diff) {
        state.runs = std::move(*pages);
        state.memory.run_count = static_cast<uint32_t>(state.runs.size());
        state.memory.run_pages = snapshot::count_pages(state.runs);
    }

    // 4. the vmstate last (a reader needs both; the controller syncs and renames)
    WISP_RETURN_IF_ERROR(snapshot::validate(state));
    std::vector<uint8_t> bytes = snapshot::encode_vmstate(state);
    WISP_RETURN_IF_ERROR(write_file(vmstate_fd, bytes));
    SnapshotOutcome out;
    out.info = state.info;
    out.memory = state.memory;
    out.vmstate_bytes = bytes.size();
    return out;
}

Status Vmm::restore_snapshot(RestoreFiles files, Tap tap, ConsoleLog console,
                             const std::optional<GuestIdentity> &identity) {
    if (memory_.valid()) return invalid("this VM already runs a guest", EALREADY);
    // ---- 1. read and validate everything; KVM untouched ----
    WISP_RETURN_IF_ERROR(tap.prepare());
    auto state = snapshot::read_vmstate(files.vmstate.get());
    if (!state) return std::move(state).error();
    const bool diff = state->kind() == snapshot::SnapshotKind::kDiff;
    const uint64_t mem = state->memory.mem_size;
    snapshot::SnapshotInfo base_info = state->info;
    if (diff) {
        if (!files.base_vmstate || !files.base_memory)
            return invalid("a diff snapshot needs its full parent snapshot to restore");
        auto base = snapshot::read_vmstate(files.base_vmstate.get());
        if (!base) return Error{base.error().code, "parent snapshot: " + base.error().message};
        if (base->kind() != snapshot::SnapshotKind::kFull)
            return invalid("the parent of a diff must be a full snapshot");
        if (!same_id(base->info.id, state->info.parent_id))
            return invalid("the given parent is not the full snapshot this diff was taken from", EBADMSG);
        if (base->memory.mem_size != mem) return invalid("parent and diff differ in memory size", EBADMSG);
        WISP_RETURN_IF_ERROR(check_memory_file(files.base_memory.get(), mem, "parent memory file"));
        base_info = base->info;
    } else if (files.base_vmstate || files.base_memory) {
        return invalid("a full snapshot is restored without a parent");
    }
    if (state->info.cpuid_hash != kvm_.cpuid_hash())
        return invalid("the snapshot was taken on a host whose CPU offers other features", ENOTSUP);
    WISP_RETURN_IF_ERROR(check_restorable(state->vcpu.regs, state->vcpu.sregs, mem, kvm_.has_xsave()));
    auto layout = GuestLayout::restore(state->layout);
    if (!layout) return std::move(layout).error();
    auto saved_identity = GuestIdentity::restore(state->identity);
    if (!saved_identity) return std::move(saved_identity).error();
    GuestIdentity new_identity = identity ? *identity : *saved_identity;
    WISP_RETURN_IF_ERROR(check_identity(new_identity));
    WISP_RETURN_IF_ERROR(check_memory_file(files.memory.get(), mem, "memory file"));

    // ---- 2. memory: a private mapping of the full snapshot, the diff over it ----
    //      (in the range a pre-forked monitor prepared: KVM knows it already)
    auto memory = map_memory(mem, diff ? files.base_memory.get() : files.memory.get());
    if (!memory) return std::move(memory).error();
    if (diff) WISP_RETURN_IF_ERROR(memory->overlay_file(files.memory.get(), state->runs));

    // ---- 3. KVM: from here on a failure leaves this VM unusable ----
    WISP_RETURN_IF_ERROR(attach_memory(*memory));
    memory_ = std::move(*memory);
    layout_ = std::move(*layout);
    WISP_RETURN_IF_ERROR(vcpu_.restore(state->vcpu, &vcpu_baseline_));

    // ---- 4. clock, restore count, identity, the ready hypercall's answer ----
    auto tsc = vcpu_.get_msr(kMsrTsc);
    if (!tsc) return std::move(tsc).error();
    wisp_clock_info calibration;
    auto clock = GuestClock::restore(state->clock, *tsc, tsc_khz_, calibration);
    if (!clock) return std::move(clock).error();
    clock_ = *clock;
    WISP_RETURN_IF_ERROR(write_clock_info(memory_, calibration));
    restore_count_ = state->monitor.restore_count + 1;
    WISP_RETURN_IF_ERROR(write_restore_info(memory_, restore_count_, new_identity));
    if (state->monitor.flags & snapshot::kMonitorHeldAtReady) {
        const uint64_t restored = 1;
        if (!memory_.write(state->monitor.ready_arg_gpa + offsetof(wisp_hc_ready, restored), restored))
            return invalid("ready argument outside guest memory");
    }

    // ---- 5. devices and bookkeeping ----
    tap_ = std::move(tap);
    console_ = std::move(console);
    identity_ = new_identity;
    restored_from_ = state->info;
    base_ = base_info;
    base_memory_ = std::move(diff ? files.base_memory : files.memory);
    if (diff) {
        overlay_memory_ = std::move(files.memory);
        overlay_runs_ = std::move(state->runs);
    }
    first_hypercall_ns_ = 0;
    ready_ns_ = 0;
    entry_rip_ = state->vcpu.regs.rip;
    entry_ns_ = host_monotonic_ns();
    return {};
}

}  // namespace wisp::vmm
