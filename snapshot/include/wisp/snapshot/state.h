// The saved state of every component of a wisp microVM, as plain structs: what a
// snapshot's `vmstate` file holds (docs/snapshot-format.md). Each struct is copied
// into the file byte for byte, so every one has fixed-width fields, explicit
// padding and a size pinned by a static_assert and tests/snapshot/format_test.cpp.
//
// Producers and consumers (vmm/): Vcpu::save()/restore() (VcpuState),
// GuestLayout::save()/restore() (LayoutState), save_identity()/restore_identity()
// (IdentityState), save_clock()/restore_clock() (ClockState); the monitor fills
// MonitorState and MemoryState; the writer fills SnapshotInfo.
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace wisp::snapshot {

// ---- vCPU ---------------------------------------------------------------------

// The vCPU's architectural state as KVM exposes it. The KVM structs are x86-64
// UAPI (fixed layout); XSAVE is KVM_GET_XSAVE's legacy 4 KiB area, enough for the
// x87/SSE/AVX state the guest may use (XCR0 = 7).
struct VcpuState {
    kvm_regs regs{};
    kvm_sregs sregs{};
    struct {
        uint32_t region[1024];
    } xsave{};
    kvm_xcrs xcrs{};
    kvm_vcpu_events events{};
    uint64_t tsc = 0;             // MSR_IA32_TSC
    uint64_t pat = 0;             // MSR_IA32_CR_PAT
    uint64_t kernel_gs_base = 0;  // MSR_KERNEL_GS_BASE (swapgs is ring 0, kept for completeness)
};
static_assert(sizeof(kvm_regs) == 144 && sizeof(kvm_sregs) == 312 && sizeof(kvm_xcrs) == 392 &&
                  sizeof(kvm_vcpu_events) == 64,
              "KVM UAPI struct sizes changed: the vmstate format depends on them");
static_assert(sizeof(VcpuState) == 5032);

// ---- guest memory map -----------------------------------------------------------

inline constexpr uint32_t kSegmentWritable = 0x1;
inline constexpr uint32_t kSegmentExecutable = 0x2;
// The ELF loader accepts at most 64 program headers, so at most 64 segments.
inline constexpr uint32_t kMaxSegments = 64;

struct SegmentState {
    uint64_t vaddr;
    uint64_t mem_size;
    uint64_t file_offset;
    uint64_t file_size;
    uint32_t flags;  // kSegment*
    uint32_t pad0;
};
static_assert(sizeof(SegmentState) == 40);

// GuestLayout: who may access which page (the page tables in guest memory were
// built from it; the monitor needs it to name faults).
struct LayoutState {
    uint64_t mem_size;
    uint64_t image_end;
    uint64_t heap_end;
    uint64_t stack_top;
    uint32_t segment_count;
    uint32_t pad0;
    SegmentState segments[kMaxSegments];
};
static_assert(sizeof(LayoutState) == 40 + 40 * kMaxSegments);

// ---- network identity (the tap's side of the guest) ------------------------------

// GuestIdentity: the guest's MAC, next-hop MAC and addresses (also in the boot-info
// page, which lives in guest memory). A restore may replace it.
struct IdentityState {
    uint8_t mac[6];
    uint8_t gw_mac[6];
    uint8_t ip_family;  // 4 or 6
    uint8_t prefix_len;
    uint8_t pad0[2];
    uint8_t ip[16];
    uint8_t gw_ip[16];
};
static_assert(sizeof(IdentityState) == 48);

// ---- clocks -----------------------------------------------------------------------

// The guest's clocks at the moment of the snapshot. A restore continues the
// guest's monotonic clock from guest_mono_ns (time spent stored does not count,
// so it never jumps backwards nor by days) and recomputes wall time from the host.
struct ClockState {
    uint64_t guest_mono_ns;  // guest monotonic time at the snapshot (>= anything the guest saw)
    uint64_t guest_tsc;      // guest TSC at that moment (== VcpuState::tsc)
    uint64_t host_wall_ns;   // CLOCK_REALTIME at the snapshot (information)
    uint32_t tsc_khz;        // guest TSC rate then
    uint32_t pad0;
};
static_assert(sizeof(ClockState) == 32);

// ---- memory ----------------------------------------------------------------------

// What the `memory` file next to the vmstate holds. Full: guest-physical
// [0, mem_size), zero pages as holes. Diff: the same offsets, but only the pages in
// the run list are valid; every other page comes from the parent full snapshot.
struct MemoryState {
    uint64_t mem_size;    // bytes of guest memory == size of the memory file
    uint64_t data_bytes;  // bytes actually written (non-zero pages)
    uint64_t run_pages;   // diff: pages covered by the run list; full: 0
    uint32_t run_count;   // diff: entries in the run list; full: 0
    uint32_t pad0;
};
static_assert(sizeof(MemoryState) == 32);

// A run of guest pages [first_page, first_page + page_count), in 4 KiB pages.
struct PageRun {
    uint64_t first_page;
    uint64_t page_count;
    bool operator==(const PageRun &) const = default;
};
static_assert(sizeof(PageRun) == 16);

// ---- monitor ----------------------------------------------------------------------

// The guest stopped inside its `ready` hypercall (a golden snapshot): a restore
// writes restored = 1 into the wisp_hc_ready at ready_arg_gpa.
inline constexpr uint32_t kMonitorHeldAtReady = 0x1;
inline constexpr uint32_t kMonitorFlagsAll = kMonitorHeldAtReady;

struct MonitorState {
    uint32_t restore_count;  // restores this guest went through (boot info has it too)
    uint32_t flags;          // kMonitor*
    uint64_t ready_arg_gpa;  // with kMonitorHeldAtReady
};
static_assert(sizeof(MonitorState) == 16);

// ---- the snapshot itself ------------------------------------------------------------

enum class SnapshotKind : uint32_t {
    kFull = 1,  // memory holds all of guest memory
    kDiff = 2,  // memory holds only the pages changed since its parent (a full snapshot)
};

struct SnapshotInfo {
    uint8_t id[16];         // random, names this snapshot
    uint8_t parent_id[16];  // diff: the id of the full snapshot it applies to; zero for full
    uint64_t created_wall_ns;
    uint64_t cpuid_hash;  // hash of the host's supported CPUID: restore needs the same features
    uint32_t kind;        // SnapshotKind
    uint32_t pad0;
};
static_assert(sizeof(SnapshotInfo) == 56);

// Everything a vmstate file holds, decoded.
struct VmState {
    SnapshotInfo info{};
    VcpuState vcpu{};
    LayoutState layout{};
    IdentityState identity{};
    ClockState clock{};
    MemoryState memory{};
    MonitorState monitor{};
    std::vector<PageRun> runs;  // diff only: the pages the memory file supplies

    SnapshotKind kind() const { return static_cast<SnapshotKind>(info.kind); }
};

}  // namespace wisp::snapshot
