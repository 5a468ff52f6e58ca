// The machine the monitor builds, checked without KVM: guest memory's checked
// translation, the page tables (walked like the CPU would), the GDT/TSS and the
// I/O permission bitmap.
#include <gtest/gtest.h>

#include <cstring>

#include "wisp/vmm/boot_info.h"
#include "wisp/vmm/clock.h"
#include "wisp/vmm/kvm.h"
#include "wisp/vmm/machine.h"

using namespace wisp::vmm;

namespace {

constexpr uint64_t kMem = 64ull << 20;

ElfImage test_image() {
    ElfImage img;
    img.entry = 0x100000;
    img.segments = {{0x100000, 0x3000, 0, 0, false, true},   // text 12 KiB
                    {0x103000, 0x1000, 0, 0, false, false},  // rodata
                    {0x104000, 0x2000, 0, 0, true, false}};  // data + bss
    img.end = 0x106000;
    return img;
}

struct Walk {
    bool present = false, writable = false, user = false, exec = false;
    uint64_t phys = 0;
};

// A 4-level walk of the identity map as the CPU does it.
Walk walk(const GuestMemory &mem, uint64_t va) {
    auto entry = [&](uint64_t table, uint64_t index) {
        uint64_t e = 0;
        EXPECT_TRUE(mem.read(table + index * 8, &e));
        return e;
    };
    Walk w{true, true, true, true, 0};
    uint64_t table = gpa::kPml4;
    for (int level = 3; level >= 0; level--) {
        uint64_t e = entry(table, (va >> (12 + 9 * level)) & 511);
        if (!(e & 1)) return Walk{};
        w.writable &= (e >> 1) & 1;
        w.user &= (e >> 2) & 1;
        w.exec &= !(e >> 63);
        uint64_t addr = e & 0x000ffffffffff000ull;
        if (level == 1 && (e & 0x80)) {
            w.phys = (addr & ~((2ull << 20) - 1)) + (va & ((2ull << 20) - 1));
            return w;
        }
        if (level == 0) {
            w.phys = addr + (va & 4095);
            return w;
        }
        table = addr;
    }
    return w;
}

}  // namespace

TEST(GuestMemory, TranslationRejectsOutOfRangeAndOverflowingRanges) {
    auto mem = GuestMemory::anonymous(kMem);
    ASSERT_TRUE(mem.ok());
    EXPECT_TRUE(mem->translate(0, kMem).ok);
    EXPECT_TRUE(mem->translate(kMem, 0).ok);
    EXPECT_TRUE(mem->translate(kMem - 1, 1).ok);
    auto past = mem->translate(kMem - 1, 2);
    EXPECT_FALSE(past.ok);
    EXPECT_EQ(past.error, RangeError::kOutOfRange);
    EXPECT_FALSE(mem->translate(kMem + 1, 0).ok);
    auto wrap = mem->translate(~0ull - 10, 100);
    EXPECT_FALSE(wrap.ok);
    EXPECT_EQ(wrap.error, RangeError::kOverflow);
    EXPECT_FALSE(mem->translate(16, ~0ull).ok);
    EXPECT_FALSE(GuestMemory::anonymous(7ull << 20).ok());
    EXPECT_FALSE(GuestMemory::anonymous((8ull << 30)).ok());
    EXPECT_FALSE(GuestMemory::anonymous((64ull << 20) + 4096).ok());
}

TEST(Machine, PageTablesGiveEachRegionItsPermissions) {
    auto mem = GuestMemory::anonymous(kMem);
    ASSERT_TRUE(mem.ok());
    GuestLayout layout = make_layout(kMem, test_image());
    ASSERT_TRUE(build_system_tables(layout, *mem).ok());
    struct Expect {
        uint64_t va;
        bool present, writable, user, exec;
    };
    const uint64_t guard = layout.guard_page();
    const Expect cases[] = {
        {0x0, false, false, false, false},                // null page
        {WISP_BOOT_INFO_GPA, true, false, true, false},   // boot info: user read-only
        {gpa::kGdt, true, true, false, false},            // system: supervisor only
        {gpa::kPml4 + 8, true, true, false, false},
        {0x100000, true, false, true, true},              // text: RX
        {0x102fff, true, false, true, true},
        {0x103000, true, false, true, false},             // rodata: R
        {0x104000, true, true, true, false},              // data: RW NX
        {0x106000, true, true, true, false},              // heap
        {0x400000, true, true, true, false},              // heap, 2 MiB page
        {guard, false, false, false, false},              // stack guard page
        {guard + 4096, true, true, true, false},          // stack
        {kMem - 8, true, true, true, false},              // top of the stack
        {kMem, false, false, false, false},               // past memory
    };
    for (const Expect &e : cases) {
        Walk w = walk(*mem, e.va);
        SCOPED_TRACE(e.va);
        EXPECT_EQ(w.present, e.present);
        if (!e.present) continue;
        EXPECT_EQ(w.phys, e.va) << "identity map";
        EXPECT_EQ(w.writable, e.writable);
        EXPECT_EQ(w.user, e.user);
        EXPECT_EQ(w.exec, e.exec);
    }
    EXPECT_EQ(layout.access_at(guard), PageAccess::kNone);
    EXPECT_EQ(layout.access_at(0x103000), PageAccess::kUserRead);
}

TEST(Machine, IoBitmapOpensOnlyTheHypercallPorts) {
    auto mem = GuestMemory::anonymous(kMem);
    ASSERT_TRUE(mem.ok());
    ASSERT_TRUE(build_system_tables(make_layout(kMem, test_image()), *mem).ok());
    uint16_t iomap = 0;
    ASSERT_TRUE(mem->read(gpa::kTss + 102, &iomap));
    auto allowed = [&](uint32_t port) {
        uint8_t byte = 0xff;
        EXPECT_TRUE(mem->read(gpa::kTss + iomap + port / 8, &byte));
        return (byte & (1u << (port % 8))) == 0;
    };
    for (uint32_t port = 0; port < 65536; port++)
        ASSERT_EQ(allowed(port), port >= kHypercallPortFirst && port <= kHypercallPortLast) << port;
    uint8_t terminator = 0;
    ASSERT_TRUE(mem->read(gpa::kTss + iomap + 8192, &terminator));
    EXPECT_EQ(terminator, 0xff);
}

TEST(Machine, RegistersEnterRing3WithoutIoPrivilege) {
    kvm_sregs s{};
    init_special_registers(s, true);
    EXPECT_EQ(s.cs.dpl, 3);
    EXPECT_EQ(s.cs.selector & 3, 3);
    EXPECT_EQ(s.ss.selector & 3, 3);
    EXPECT_EQ(s.cs.l, 1);
    EXPECT_TRUE(s.efer & (1 << 10)) << "LMA";
    EXPECT_TRUE(s.efer & (1 << 11)) << "NXE";
    EXPECT_TRUE(s.cr4 & (1 << 18)) << "OSXSAVE";
    EXPECT_TRUE(s.cr4 & (1 << 9)) << "OSFXSR";
    EXPECT_EQ(s.idt.limit, 0) << "no IDT: faults end the VM";
    kvm_regs r = initial_registers(0x100000, kMem);
    EXPECT_EQ(r.rflags & 0x3000, 0u) << "IOPL 0";
    EXPECT_EQ(r.rsp % 16, 0u);
}

TEST(BootInfo, CarriesTheLayoutIdentityAndCommandLine) {
    GuestLayout layout = make_layout(kMem, test_image());
    GuestIdentity id;
    id.mac = {2, 0, 0, 0, 0, 7};
    id.ip = {198, 18, 0, 7};
    id.prefix_len = 24;
    auto clock = make_clock_info(3000000, 12345, 1000, 5, 0);
    wisp_boot_info bi = make_boot_info(layout, id, "port=80", clock);
    EXPECT_EQ(bi.magic, WISP_BOOT_MAGIC);
    EXPECT_EQ(bi.mem_size, kMem);
    EXPECT_EQ(bi.heap_start, 0x106000u);
    EXPECT_EQ(bi.heap_end, layout.guard_page());
    EXPECT_EQ(bi.stack_top, kMem);
    EXPECT_EQ(bi.stack_top - WISP_STACK_SIZE, bi.heap_end + WISP_PAGE_SIZE);
    EXPECT_STREQ(bi.cmdline, "port=80");
    EXPECT_EQ(bi.cmdline_len, 7u);
    EXPECT_EQ(bi.mac[5], 7);
    EXPECT_EQ(bi.ip[3], 7);
}

TEST(Clock, CalibrationConvertsTicksToNanoseconds) {
    auto c = make_clock_info(2500000, 0, 0, 0, 0);  // 2.5 GHz
    EXPECT_EQ(c.tsc_hz, 2500000000u);
    EXPECT_NEAR(static_cast<double>(clock_info_ns(c, 2500000000ull)), 1e9, 2);
    // An hour of ticks: the 128-bit product neither overflows nor drifts.
    EXPECT_NEAR(static_cast<double>(clock_info_ns(c, 2500000000ull * 3600)), 3600e9, 3600 * 2);
}

TEST(Clock, RewritingTheCalibrationBumpsTheSequence) {
    auto mem = GuestMemory::anonymous(kMem);
    ASSERT_TRUE(mem.ok());
    ASSERT_TRUE(write_clock_info(*mem, make_clock_info(1000000, 1, 2, 3, 0)).ok());
    wisp_boot_info bi{};
    ASSERT_TRUE(mem->read(WISP_BOOT_INFO_GPA, &bi));
    EXPECT_EQ(bi.clock.seq, 2u) << "even after writing, changed from 0";
    EXPECT_EQ(bi.clock.mono_base_ns, 2u);
    ASSERT_TRUE(write_clock_info(*mem, make_clock_info(1000000, 1, 9, 3, 0)).ok());
    ASSERT_TRUE(mem->read(WISP_BOOT_INFO_GPA, &bi));
    EXPECT_EQ(bi.clock.seq, 4u);
    EXPECT_EQ(bi.clock.mono_base_ns, 9u);
}

TEST(KvmIoctls, FlexibleArrayCallsUseTheKernelsNumbers) {
    // The values C computes from <linux/kvm.h> (struct sizes without the tail).
    EXPECT_EQ(kvm_ioctl::kGetSupportedCpuid, 0xc008ae05ul);
    EXPECT_EQ(kvm_ioctl::kSetCpuid2, 0x4008ae90ul);
    EXPECT_EQ(kvm_ioctl::kGetMsrs, 0xc008ae88ul);
    EXPECT_EQ(kvm_ioctl::kSetMsrs, 0x4008ae89ul);
    EXPECT_EQ(kvm_ioctl::kGetXsave, 0x9000aea4ul);
    EXPECT_EQ(kvm_ioctl::kSetXsave, 0x5000aea5ul);
}
