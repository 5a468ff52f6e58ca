#include "wisp/vmm/machine.h"

#include <cstring>

namespace wisp::vmm {

namespace {

constexpr uint64_t kPage = WISP_PAGE_SIZE;
constexpr uint64_t kLargePage = 2ull << 20;

// Page-table entry bits.
constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kWritable = 1ull << 1;
constexpr uint64_t kUser = 1ull << 2;
constexpr uint64_t kAccessed = 1ull << 5;
constexpr uint64_t kDirty = 1ull << 6;
constexpr uint64_t kLarge = 1ull << 7;
constexpr uint64_t kNoExec = 1ull << 63;
// Upper levels allow everything; the leaf decides. A/D preset so the CPU never
// writes the tables (each such write is an exit on a shadow-paging KVM).
constexpr uint64_t kTable = kPresent | kWritable | kUser | kAccessed;

// TSS: 104-byte 64-bit TSS, then the I/O permission bitmap (one bit per port,
// 1 = fault) and the 0xff byte the CPU requires after it.
constexpr uint64_t kTssBase = 104;
constexpr uint64_t kIoBitmapBytes = 65536 / 8;
constexpr uint64_t kTssLimit = kTssBase + kIoBitmapBytes;  // inclusive: covers the 0xff byte

constexpr uint64_t kPtPages = (WISP_IMAGE_BASE - gpa::kPt) / kPage;

uint64_t leaf_bits(PageAccess access) {
    switch (access) {
        case PageAccess::kNone: return 0;
        case PageAccess::kUserRead: return kPresent | kUser | kAccessed | kNoExec;
        case PageAccess::kUserReadExec: return kPresent | kUser | kAccessed;
        case PageAccess::kUserReadWrite:
            return kPresent | kWritable | kUser | kAccessed | kDirty | kNoExec;
        case PageAccess::kSupervisor: return kPresent | kWritable | kAccessed | kDirty | kNoExec;
    }
    return 0;
}

// A 2 MiB region can use one large page when every page in it is heap or stack.
bool region_is_plain_read_write(const GuestLayout &l, uint64_t start) {
    uint64_t end = start + kLargePage;
    bool in_heap = start >= l.image_end && end <= l.heap_end;
    bool in_stack = start >= l.heap_end + kPage && end <= l.mem_size;
    return in_heap || in_stack;
}

uint64_t gdt_entry(uint8_t access, uint8_t flags) {
    // base 0, limit 0xfffff (ignored in long mode except for data in compat mode)
    return 0xffffull | (uint64_t{access} << 40) | (0xfull << 48) | (uint64_t{flags} << 52);
}

}  // namespace

const char *page_access_name(PageAccess access) {
    switch (access) {
        case PageAccess::kNone: return "unmapped";
        case PageAccess::kUserRead: return "read-only";
        case PageAccess::kUserReadExec: return "read-execute";
        case PageAccess::kUserReadWrite: return "read-write";
        case PageAccess::kSupervisor: return "monitor-only";
    }
    return "?";
}

uint64_t image_load_limit(uint64_t mem_size) {
    return mem_size - WISP_STACK_SIZE - kPage;
}

GuestLayout make_layout(uint64_t mem_size, const ElfImage &image) {
    GuestLayout l;
    l.mem_size = mem_size;
    l.image_end = image.end;
    l.heap_end = image_load_limit(mem_size);
    l.stack_top = mem_size;
    l.segments = image.segments;
    return l;
}

PageAccess GuestLayout::access_at(uint64_t gpa) const {
    if (gpa >= mem_size || gpa < WISP_BOOT_INFO_GPA) return PageAccess::kNone;
    if (gpa < WISP_SYSTEM_GPA) return PageAccess::kUserRead;
    if (gpa < WISP_IMAGE_BASE) return PageAccess::kSupervisor;
    if (gpa < image_end) {
        for (const ElfSegment &s : segments) {
            uint64_t first = s.vaddr & ~(kPage - 1);
            uint64_t end = (s.vaddr + s.mem_size + kPage - 1) & ~(kPage - 1);
            if (gpa >= first && gpa < end)
                return s.writable     ? PageAccess::kUserReadWrite
                       : s.executable ? PageAccess::kUserReadExec
                                      : PageAccess::kUserRead;
        }
        return PageAccess::kNone;  // a gap between segments
    }
    uint64_t guard = guard_page();
    if (gpa >= guard && gpa < guard + kPage) return PageAccess::kNone;
    return PageAccess::kUserReadWrite;
}

Status build_system_tables(const GuestLayout &l, const GuestMemory &memory) {
    // GDT: null, ring-0 code/data (required to exist for the TSS and for KVM's
    // segment checks, never used), ring-3 data and 64-bit code, the TSS.
    Translation gdt = memory.translate(gpa::kGdt, kPage);
    Translation tss = memory.translate(gpa::kTss, kTssLimit + 1);
    Translation pml4 = memory.translate(gpa::kPml4, kPage);
    Translation pdpt = memory.translate(gpa::kPdpt, kPage);
    Translation pd = memory.translate(gpa::kPd, 4 * kPage);
    if (!gdt.ok || !tss.ok || !pml4.ok || !pdpt.ok || !pd.ok)
        return invalid("guest memory too small for the system tables");

    uint64_t *g = reinterpret_cast<uint64_t *>(gdt.bytes.data());
    g[0] = 0;
    g[1] = gdt_entry(0x9b, 0xa);  // ring-0 code, L=1
    g[2] = gdt_entry(0x93, 0xc);  // ring-0 data
    g[3] = gdt_entry(0xf3, 0xc);  // ring-3 data (DPL 3)
    g[4] = gdt_entry(0xfb, 0xa);  // ring-3 code, L=1 (DPL 3)
    const uint64_t tss_base = gpa::kTss;
    g[5] = (kTssLimit & 0xffff) | ((tss_base & 0xffffff) << 16) | (0x89ull << 40) |
           (((kTssLimit >> 16) & 0xf) << 48) | (((tss_base >> 24) & 0xff) << 56);
    g[6] = tss_base >> 32;

    uint8_t *t = tss.bytes.data();
    std::memset(t, 0, kTssBase);
    uint16_t iomap = kTssBase;
    std::memcpy(t + 102, &iomap, sizeof iomap);
    uint8_t *bitmap = t + kTssBase;
    std::memset(bitmap, 0xff, kIoBitmapBytes + 1);
    for (uint32_t port = kHypercallPortFirst; port <= kHypercallPortLast; port++)
        bitmap[port / 8] &= static_cast<uint8_t>(~(1u << (port % 8)));

    uint64_t *p4 = reinterpret_cast<uint64_t *>(pml4.bytes.data());
    uint64_t *p3 = reinterpret_cast<uint64_t *>(pdpt.bytes.data());
    uint64_t *p2 = reinterpret_cast<uint64_t *>(pd.bytes.data());
    std::memset(p4, 0, kPage);
    std::memset(p3, 0, kPage);
    std::memset(p2, 0, 4 * kPage);
    p4[0] = gpa::kPdpt | kTable;
    for (uint64_t i = 0; i < 4; i++) p3[i] = (gpa::kPd + i * kPage) | kTable;

    uint64_t next_pt = 0;
    for (uint64_t region = 0; region < l.mem_size / kLargePage; region++) {
        uint64_t start = region * kLargePage;
        if (region_is_plain_read_write(l, start)) {
            p2[region] = start | leaf_bits(PageAccess::kUserReadWrite) | kLarge;
            continue;
        }
        if (next_pt == kPtPages)
            return invalid("guest image needs more 4 KiB page tables than the system area holds",
                           E2BIG);
        uint64_t pt_gpa = gpa::kPt + next_pt++ * kPage;
        Translation pt = memory.translate(pt_gpa, kPage);
        if (!pt.ok) return invalid("page table outside guest memory");
        uint64_t *e = reinterpret_cast<uint64_t *>(pt.bytes.data());
        for (uint64_t i = 0; i < 512; i++) {
            uint64_t page = start + i * kPage;
            uint64_t bits = leaf_bits(l.access_at(page));
            e[i] = bits ? (page | bits) : 0;
        }
        p2[region] = pt_gpa | kTable;
    }
    return {};
}

void init_special_registers(kvm_sregs &s, bool xsave) {
    auto segment = [](kvm_segment &seg, uint16_t selector, uint8_t type, bool code) {
        seg = kvm_segment{};
        seg.selector = selector;
        seg.base = 0;
        seg.limit = 0xffffffff;
        seg.type = type;
        seg.present = 1;
        seg.dpl = 3;
        seg.s = 1;
        seg.l = code ? 1 : 0;
        seg.db = code ? 0 : 1;
        seg.g = 1;
    };
    segment(s.cs, kUserCodeSelector, 0xb, true);
    segment(s.ss, kUserDataSelector, 0x3, false);
    segment(s.ds, kUserDataSelector, 0x3, false);
    segment(s.es, kUserDataSelector, 0x3, false);
    segment(s.fs, kUserDataSelector, 0x3, false);
    segment(s.gs, kUserDataSelector, 0x3, false);

    s.tr = kvm_segment{};
    s.tr.selector = kTssSelector;
    s.tr.base = gpa::kTss;
    s.tr.limit = static_cast<uint32_t>(kTssLimit);
    s.tr.type = 0xb;  // busy 64-bit TSS
    s.tr.present = 1;
    s.ldt = kvm_segment{};
    s.ldt.unusable = 1;

    s.gdt.base = gpa::kGdt;
    s.gdt.limit = 7 * 8 - 1;
    // No IDT: any exception escalates to a triple fault, which KVM reports as a
    // shutdown; the monitor then names the cause (vmm/src/fault.cpp).
    s.idt.base = 0;
    s.idt.limit = 0;

    constexpr uint64_t kCr0Pe = 1ull << 0, kCr0Mp = 1ull << 1, kCr0Et = 1ull << 4,
                       kCr0Ne = 1ull << 5, kCr0Wp = 1ull << 16, kCr0Pg = 1ull << 31;
    constexpr uint64_t kCr4Pae = 1ull << 5, kCr4Osfxsr = 1ull << 9, kCr4Osxmmexcpt = 1ull << 10,
                       kCr4Osxsave = 1ull << 18;
    constexpr uint64_t kEferLme = 1ull << 8, kEferLma = 1ull << 10, kEferNxe = 1ull << 11;
    s.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Wp | kCr0Pg;
    s.cr2 = 0;
    s.cr3 = gpa::kPml4;
    s.cr4 = kCr4Pae | kCr4Osfxsr | kCr4Osxmmexcpt | (xsave ? kCr4Osxsave : 0);
    s.efer = kEferLme | kEferLma | kEferNxe;  // no SCE: `syscall` is #UD
    std::memset(s.interrupt_bitmap, 0, sizeof s.interrupt_bitmap);
}

kvm_regs initial_registers(uint64_t entry, uint64_t stack_top) {
    kvm_regs r{};
    r.rip = entry;
    r.rsp = stack_top;
    r.rdi = WISP_BOOT_INFO_GPA;
    // IOPL 0: hypercall ports pass through the TSS I/O bitmap; cli/sti/hlt fault.
    r.rflags = 0x2;
    return r;
}

static_assert(kMaxImageSegments <= snapshot::kMaxSegments,
              "every segment the ELF loader accepts must fit a snapshot's layout");

snapshot::LayoutState GuestLayout::save() const {
    snapshot::LayoutState s{};
    s.mem_size = mem_size;
    s.image_end = image_end;
    s.heap_end = heap_end;
    s.stack_top = stack_top;
    s.segment_count = static_cast<uint32_t>(segments.size());
    for (size_t i = 0; i < segments.size() && i < snapshot::kMaxSegments; i++) {
        const ElfSegment &e = segments[i];
        s.segments[i] = snapshot::SegmentState{
            e.vaddr, e.mem_size, e.file_offset, e.file_size,
            (e.writable ? snapshot::kSegmentWritable : 0u) | (e.executable ? snapshot::kSegmentExecutable : 0u), 0};
    }
    return s;
}

Result<GuestLayout> GuestLayout::restore(const snapshot::LayoutState &s) {
    if (s.segment_count == 0 || s.segment_count > snapshot::kMaxSegments)
        return invalid("layout: bad segment count");
    if (s.stack_top != s.mem_size || s.heap_end != image_load_limit(s.mem_size) ||
        s.image_end > s.heap_end || s.image_end <= WISP_IMAGE_BASE)
        return invalid("layout: memory map does not match the machine model");
    GuestLayout l;
    l.mem_size = s.mem_size;
    l.image_end = s.image_end;
    l.heap_end = s.heap_end;
    l.stack_top = s.stack_top;
    for (uint32_t i = 0; i < s.segment_count; i++) {
        const snapshot::SegmentState &g = s.segments[i];
        l.segments.push_back(ElfSegment{g.vaddr, g.mem_size, g.file_offset, g.file_size,
                                        (g.flags & snapshot::kSegmentWritable) != 0,
                                        (g.flags & snapshot::kSegmentExecutable) != 0});
    }
    return l;
}

Status check_restorable(const kvm_regs &regs, const kvm_sregs &s, uint64_t mem_size, bool xsave) {
    kvm_sregs want{};
    init_special_registers(want, xsave);
    auto segment_is = [](const kvm_segment &seg, const kvm_segment &w) {
        return seg.selector == w.selector && seg.base == w.base && seg.dpl == w.dpl &&
               seg.l == w.l && seg.present == w.present && seg.type == w.type && seg.s == w.s;
    };
    // A ring-3 guest may load the null selector or its data selector with any RPL
    // into ds/es/fs/gs; their bases stay 0 (no FSGSBASE, wrmsr faults).
    auto data_segment_ok = [](const kvm_segment &seg) {
        uint16_t index = seg.selector & ~3u;
        return (index == 0 || index == (kUserDataSelector & ~3u)) && seg.base == 0;
    };
    if (!segment_is(s.cs, want.cs)) return invalid("vCPU state: code segment is not the ring-3 64-bit one");
    if (!segment_is(s.ss, want.ss)) return invalid("vCPU state: stack segment is not the ring-3 one");
    if (!data_segment_ok(s.ds) || !data_segment_ok(s.es) || !data_segment_ok(s.fs) || !data_segment_ok(s.gs))
        return invalid("vCPU state: a data segment is not the null or ring-3 data selector");
    if (s.tr.selector != want.tr.selector || s.tr.base != want.tr.base || s.tr.limit != want.tr.limit)
        return invalid("vCPU state: task register is not the monitor's TSS");
    if (s.gdt.base != want.gdt.base || s.gdt.limit != want.gdt.limit || s.idt.base != 0 || s.idt.limit != 0)
        return invalid("vCPU state: descriptor tables are not the monitor's");
    if (s.cr0 != want.cr0 || s.cr3 != want.cr3 || s.cr4 != want.cr4 || s.efer != want.efer)
        return invalid("vCPU state: control registers differ from the machine model");
    constexpr uint64_t kIopl = 3ull << 12, kVm = 1ull << 17, kFixed1 = 1ull << 1;
    if ((regs.rflags & (kIopl | kVm)) != 0 || (regs.rflags & kFixed1) == 0)
        return invalid("vCPU state: RFLAGS grants I/O privilege or another mode");
    if (regs.rip >= mem_size) return invalid("vCPU state: rip is outside guest memory");
    return {};
}

}  // namespace wisp::vmm
