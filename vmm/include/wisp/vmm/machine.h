// The x86-64 machine a wisp guest sees, set up by the monitor without any guest
// ring-0 code: identity-mapped page tables with per-page permissions, a GDT with
// ring-3 segments, a TSS whose I/O bitmap opens only the hypercall ports, long
// mode, SSE/AVX state. See docs/vmm.md ("Machine model") for why each choice.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "wisp/result.h"
#include "wisp/snapshot/state.h"
#include "wisp/vmm/elf_loader.h"
#include "wisp/vmm/guest_memory.h"

namespace wisp::vmm {

// Where things live in guest-physical memory (also guest-virtual: identity map).
namespace gpa {
constexpr uint64_t kGdt = WISP_SYSTEM_GPA;           // 0x2000, one page
constexpr uint64_t kTss = WISP_SYSTEM_GPA + 0x1000;  // 0x3000, three pages (I/O bitmap)
constexpr uint64_t kPml4 = WISP_SYSTEM_GPA + 0x4000; // 0x6000
constexpr uint64_t kPdpt = kPml4 + 0x1000;           // 0x7000
constexpr uint64_t kPd = kPdpt + 0x1000;             // 0x8000, four pages (4 GiB)
constexpr uint64_t kPt = kPd + 0x4000;               // 0xc000 .. WISP_IMAGE_BASE: 4 KiB tables
}  // namespace gpa

// Hypercall ports the TSS I/O bitmap lets through to the monitor; an `out` to any
// other port (or any `in`) faults in the guest.
constexpr uint16_t kHypercallPortFirst = WISP_HYPERCALL_PORT_BASE;
constexpr uint16_t kHypercallPortLast = WISP_HYPERCALL_PORT_BASE + WISP_HYPERCALL_PORT_COUNT - 1;

// GDT selectors (ring-3 ones carry RPL 3).
constexpr uint16_t kUserDataSelector = 0x18 | 3;
constexpr uint16_t kUserCodeSelector = 0x20 | 3;
constexpr uint16_t kTssSelector = 0x28;

enum class PageAccess : uint8_t {
    kNone,          // not mapped: null page, gaps, the stack guard page
    kUserRead,      // boot info, rodata
    kUserReadExec,  // text
    kUserReadWrite, // data, bss, heap, stack
    kSupervisor,    // GDT, TSS, page tables: invisible to ring 3
};

const char *page_access_name(PageAccess access);

// The guest's memory map, derived from its size and its image.
struct GuestLayout {
    uint64_t mem_size = 0;
    uint64_t image_end = 0;   // == heap_start
    uint64_t heap_end = 0;    // == guard page
    uint64_t stack_top = 0;   // == mem_size
    std::vector<ElfSegment> segments;

    uint64_t guard_page() const { return heap_end; }
    PageAccess access_at(uint64_t gpa) const;

    // Snapshot state. restore() converts a state the vmstate decoder has already
    // validated (snapshot::validate) and checks it once more.
    snapshot::LayoutState save() const;
    static Result<GuestLayout> restore(const snapshot::LayoutState &state);
};

// The highest address an image may use in memory of `mem_size` bytes (below the
// stack guard page and the stack).
uint64_t image_load_limit(uint64_t mem_size);

GuestLayout make_layout(uint64_t mem_size, const ElfImage &image);

// Writes the GDT, TSS and page tables into guest memory.
Status build_system_tables(const GuestLayout &layout, const GuestMemory &memory);

// Special registers for 64-bit ring-3 execution on the tables above. `xsave`
// tells whether the guest CPUID offers XSAVE (then CR4.OSXSAVE is set).
void init_special_registers(kvm_sregs &sregs, bool xsave);

// General registers at the entry point.
kvm_regs initial_registers(uint64_t entry, uint64_t stack_top);

// Whether a saved vCPU state stays inside this machine model: 64-bit ring 3 on the
// monitor's GDT, TSS and page tables, IOPL 0, rip inside guest memory. A restore
// refuses anything else, so a damaged or forged vmstate can neither hand the guest
// ring 0 nor another address space. Nothing a ring-3 guest can do changes these.
Status check_restorable(const kvm_regs &regs, const kvm_sregs &sregs, uint64_t mem_size, bool xsave);

}  // namespace wisp::vmm
