// The snapshot format without KVM: every component state round-trips through the
// vmstate file; the decoder rejects damaged input with a message naming the
// problem; page-run logic; sparse memory files; crash-safe snapshot directories.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "wisp/snapshot/memory_file.h"
#include "wisp/snapshot/store.h"
#include "wisp/snapshot/vmstate.h"
#include "wisp/test/net.h"
#include "wisp/vmm/boot_info.h"
#include "wisp/vmm/clock.h"
#include "wisp/vmm/machine.h"

using namespace wisp;
using namespace wisp::snapshot;

namespace {

// A VmState with every field set to something recognisable and valid.
VmState sample_state(SnapshotKind kind = SnapshotKind::kFull) {
    VmState s;
    for (int i = 0; i < 16; i++) s.info.id[i] = static_cast<uint8_t>(0xa0 + i);
    if (kind == SnapshotKind::kDiff)
        for (int i = 0; i < 16; i++) s.info.parent_id[i] = static_cast<uint8_t>(0x10 + i);
    s.info.created_wall_ns = 1700000000123456789ull;
    s.info.cpuid_hash = 0x1234567887654321ull;
    s.info.kind = static_cast<uint32_t>(kind);
    s.vcpu.regs.rip = 0x100123;
    s.vcpu.regs.rsp = (64ull << 20) - 64;
    s.vcpu.regs.rax = 0xdeadbeef;
    s.vcpu.regs.rflags = 0x202;
    vmm::init_special_registers(s.vcpu.sregs, true);
    for (int i = 0; i < 1024; i++) s.vcpu.xsave.region[i] = static_cast<uint32_t>(i * 2654435761u);
    s.vcpu.xcrs.nr_xcrs = 1;
    s.vcpu.xcrs.xcrs[0].value = 7;
    s.vcpu.events.exception.nr = 0;
    s.vcpu.tsc = 987654321;
    s.vcpu.pat = 0x0007040600070406ull;
    s.layout.mem_size = 64ull << 20;
    s.layout.image_end = 0x180000;
    s.layout.heap_end = (64ull << 20) - WISP_STACK_SIZE - 4096;
    s.layout.stack_top = 64ull << 20;
    s.layout.segment_count = 2;
    s.layout.segments[0] = SegmentState{0x100000, 0x20000, 0x1000, 0x20000, kSegmentExecutable, 0};
    s.layout.segments[1] = SegmentState{0x120000, 0x40000, 0x21000, 0x1000, kSegmentWritable, 0};
    s.identity = IdentityState{{2, 0, 0, 0, 0, 9}, {2, 0, 0, 0, 0, 1}, 4, 24, {0, 0}, {198, 18, 0, 2}, {198, 18, 0, 1}};
    s.clock = ClockState{123456789000, 987654321, 1700000000000000000ull, 2445422, 0};
    s.memory.mem_size = 64ull << 20;
    s.memory.data_bytes = 40960;
    s.monitor = MonitorState{3, kMonitorHeldAtReady, (64ull << 20) - 256};
    if (kind == SnapshotKind::kDiff) {
        s.runs = {{1, 1}, {300, 16}, {16000, 2}};
        s.memory.run_count = 3;
        s.memory.run_pages = 19;
    }
    return s;
}

template <class T>
bool same(const T &a, const T &b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0;
}

void expect_same_state(const VmState &a, const VmState &b) {
    EXPECT_TRUE(same(a.info, b.info));
    EXPECT_TRUE(same(a.vcpu, b.vcpu));
    EXPECT_TRUE(same(a.layout, b.layout));
    EXPECT_TRUE(same(a.identity, b.identity));
    EXPECT_TRUE(same(a.clock, b.clock));
    EXPECT_TRUE(same(a.memory, b.memory));
    EXPECT_TRUE(same(a.monitor, b.monitor));
    EXPECT_EQ(a.runs, b.runs);
}

std::vector<uint8_t> reseal(std::vector<uint8_t> bytes) {
    uint64_t sum = XXH3_64bits(bytes.data(), bytes.size() - 8);
    std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
    return bytes;
}

std::string decode_error(const std::vector<uint8_t> &bytes) {
    auto r = decode_vmstate(bytes);
    return r.ok() ? std::string("(accepted)") : r.error().message;
}

}  // namespace

// ---- layout of the file structs ----------------------------------------------------

TEST(SnapshotFormat, FileStructsHaveFixedLayout) {
    EXPECT_EQ(sizeof(FileHeader), 32u);
    EXPECT_EQ(offsetof(FileHeader, format_version), 8u);
    EXPECT_EQ(offsetof(FileHeader, abi_version), 12u);
    EXPECT_EQ(offsetof(FileHeader, file_size), 16u);
    EXPECT_EQ(offsetof(FileHeader, section_count), 24u);
    EXPECT_EQ(sizeof(SectionHeader), 8u);
    EXPECT_EQ(sizeof(VcpuState), 5032u);
    EXPECT_EQ(offsetof(VcpuState, sregs), 144u);
    EXPECT_EQ(offsetof(VcpuState, xsave), 456u);
    EXPECT_EQ(offsetof(VcpuState, xcrs), 4552u);
    EXPECT_EQ(offsetof(VcpuState, events), 4944u);
    EXPECT_EQ(offsetof(VcpuState, tsc), 5008u);
    EXPECT_EQ(sizeof(SegmentState), 40u);
    EXPECT_EQ(sizeof(LayoutState), 2600u);
    EXPECT_EQ(offsetof(LayoutState, segments), 40u);
    EXPECT_EQ(sizeof(IdentityState), 48u);
    EXPECT_EQ(offsetof(IdentityState, ip), 16u);
    EXPECT_EQ(sizeof(ClockState), 32u);
    EXPECT_EQ(sizeof(MemoryState), 32u);
    EXPECT_EQ(sizeof(MonitorState), 16u);
    EXPECT_EQ(sizeof(SnapshotInfo), 56u);
    EXPECT_EQ(offsetof(SnapshotInfo, parent_id), 16u);
    EXPECT_EQ(offsetof(SnapshotInfo, kind), 48u);
    EXPECT_EQ(sizeof(PageRun), 16u);
    EXPECT_EQ(kMagic, 0x50414e5350534957ull);
    EXPECT_EQ(std::memcmp(&kMagic, "WISPSNAP", 8), 0);
    EXPECT_EQ(kFormatVersion, 1u);
}

// ---- round trips ------------------------------------------------------------------------

TEST(SnapshotFormat, AFullStateRoundTripsThroughTheVmstateFile) {
    VmState s = sample_state();
    auto bytes = encode_vmstate(s);
    auto back = decode_vmstate(bytes);
    ASSERT_TRUE(back.ok()) << back.error().message;
    expect_same_state(s, *back);
    EXPECT_EQ(encode_vmstate(*back), bytes) << "encoding is deterministic";
}

TEST(SnapshotFormat, ADiffStateRoundTripsWithItsRunList) {
    VmState s = sample_state(SnapshotKind::kDiff);
    auto back = decode_vmstate(encode_vmstate(s));
    ASSERT_TRUE(back.ok()) << back.error().message;
    expect_same_state(s, *back);
    EXPECT_EQ(back->kind(), SnapshotKind::kDiff);
}

TEST(SnapshotState, LayoutSavesAndRestoresExactly) {
    vmm::ElfImage image;
    image.entry = 0x100000;
    image.segments = {{0x100000, 0x3000, 0x1000, 0x3000, false, true},
                      {0x104000, 0x2000, 0x4000, 0x800, true, false}};
    image.end = 0x106000;
    vmm::GuestLayout layout = vmm::make_layout(64ull << 20, image);
    auto restored = vmm::GuestLayout::restore(layout.save());
    ASSERT_TRUE(restored.ok()) << restored.error().message;
    EXPECT_EQ(restored->mem_size, layout.mem_size);
    EXPECT_EQ(restored->image_end, layout.image_end);
    EXPECT_EQ(restored->heap_end, layout.heap_end);
    EXPECT_EQ(restored->stack_top, layout.stack_top);
    ASSERT_EQ(restored->segments.size(), 2u);
    for (size_t i = 0; i < 2; i++) {
        EXPECT_EQ(restored->segments[i].vaddr, layout.segments[i].vaddr);
        EXPECT_EQ(restored->segments[i].mem_size, layout.segments[i].mem_size);
        EXPECT_EQ(restored->segments[i].file_offset, layout.segments[i].file_offset);
        EXPECT_EQ(restored->segments[i].file_size, layout.segments[i].file_size);
        EXPECT_EQ(restored->segments[i].writable, layout.segments[i].writable);
        EXPECT_EQ(restored->segments[i].executable, layout.segments[i].executable);
    }
    // Every page answers the same access question as before.
    for (uint64_t gpa = 0; gpa < 0x110000; gpa += 4096)
        EXPECT_EQ(restored->access_at(gpa), layout.access_at(gpa)) << gpa;
    // And the vmstate validator accepts what save() produced.
    VmState s = sample_state();
    s.layout = layout.save();
    EXPECT_TRUE(validate(s).ok()) << validate(s).error().message;
}

TEST(SnapshotState, IdentitySavesAndRestoresAndIsChecked) {
    vmm::GuestIdentity id;
    id.mac = {2, 1, 2, 3, 4, 5};
    id.gw_mac = {2, 9, 8, 7, 6, 5};
    id.ip_family = 6;
    id.prefix_len = 64;
    id.ip = {0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    id.gw_ip = {0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    auto back = vmm::GuestIdentity::restore(id.save());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, id);
    IdentityState bad = id.save();
    bad.ip_family = 5;
    EXPECT_FALSE(vmm::GuestIdentity::restore(bad).ok());
}

TEST(SnapshotState, ClockContinuesFromTheSnapshotAndNeverBehindWhatTheGuestSaw) {
    // The guest's calibration ran ahead of the monitor's clock: the save takes it.
    vmm::GuestClock clock;
    uint64_t now = clock.monotonic_ns();
    wisp_clock_info live = vmm::make_clock_info(2000000, 1000, now + 5000000000ull, 0, 0);
    ClockState saved = clock.save(live, 1000 + 2000000ull * 1000, 2000000);  // 1 s of ticks later
    EXPECT_GE(saved.guest_mono_ns, now + 6000000000ull);
    EXPECT_EQ(saved.guest_tsc, 1000 + 2000000ull * 1000);
    EXPECT_EQ(saved.tsc_khz, 2000000u);
    // Restored: guest time continues from there, wall time is the host's.
    wisp_clock_info calibration{};
    uint64_t wall_before = vmm::host_realtime_ns();
    auto restored = vmm::GuestClock::restore(saved, 42, 3000000, calibration);
    uint64_t wall_after = vmm::host_realtime_ns();
    ASSERT_TRUE(restored.ok());
    EXPECT_GE(restored->monotonic_ns(), saved.guest_mono_ns);
    EXPECT_LT(restored->monotonic_ns(), saved.guest_mono_ns + 1000000000ull);
    EXPECT_EQ(calibration.tsc_base, 42u) << "calibrated against the new VM's TSC";
    EXPECT_EQ(calibration.mono_base_ns, saved.guest_mono_ns);
    EXPECT_EQ(calibration.tsc_hz, 3000000000ull);
    uint64_t wall = calibration.mono_base_ns + static_cast<uint64_t>(calibration.wall_offset_ns);
    EXPECT_GE(wall, wall_before);
    EXPECT_LE(wall, wall_after);
    wisp_clock_info unused;
    EXPECT_FALSE(vmm::GuestClock::restore(saved, 42, 0, unused).ok());
}

// ---- rejection ----------------------------------------------------------------------

TEST(SnapshotFormat, EveryTruncationIsRejectedNeverMisread) {
    auto bytes = encode_vmstate(sample_state(SnapshotKind::kDiff));
    for (size_t n = 0; n < bytes.size(); n++) {
        std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(n));
        auto r = decode_vmstate(cut);
        ASSERT_FALSE(r.ok()) << n;
        if (n >= sizeof(FileHeader) + 8) EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << n;
    }
}

TEST(SnapshotFormat, EveryFlippedBitIsCaughtByTheChecksum) {
    auto bytes = encode_vmstate(sample_state());
    for (size_t i = sizeof(FileHeader); i < bytes.size() - 8; i += 7) {
        auto bad = bytes;
        bad[i] ^= 0x01;
        EXPECT_NE(decode_error(bad).find("checksum mismatch"), std::string::npos) << i;
    }
}

TEST(SnapshotFormat, WrongMagicVersionsSizesAndStructureGiveClearErrors) {
    const auto good = encode_vmstate(sample_state());
    auto patch32 = [&](size_t at, uint32_t v) {
        auto b = good;
        std::memcpy(b.data() + at, &v, 4);
        return reseal(b);
    };
    auto magic = good;
    magic[0] = 'X';
    EXPECT_NE(decode_error(magic).find("bad magic"), std::string::npos);
    EXPECT_NE(decode_error(patch32(8, 2)).find("format version 2, this build reads version 1"), std::string::npos);
    EXPECT_NE(decode_error(patch32(12, 7)).find("guest ABI version 7"), std::string::npos);
    EXPECT_NE(decode_error(patch32(28, 40)).find("header size"), std::string::npos);
    auto longer = good;
    longer.push_back(0);
    EXPECT_NE(decode_error(longer).find("trailing bytes"), std::string::npos);
    EXPECT_NE(decode_error(std::vector<uint8_t>(kMaxVmstateSize + 1, 0)).find("exceeds"), std::string::npos);
    // Section structure: first section header sits right after the file header.
    const size_t first = sizeof(FileHeader);
    EXPECT_NE(decode_error(patch32(first, 99)).find("unknown section tag 99"), std::string::npos);
    const size_t second = first + sizeof(SectionHeader) + sizeof(SnapshotInfo);
    EXPECT_NE(decode_error(patch32(second, 1)).find("duplicate info"), std::string::npos);
    EXPECT_NE(decode_error(patch32(first + 4, 48)).find("info section is 48 bytes, expected 56"), std::string::npos);
    EXPECT_NE(decode_error(patch32(24, 6)).find("after the last section"), std::string::npos);
}

TEST(SnapshotFormat, FieldsOutsideTheMachineModelAreRejected) {
    struct Case {
        const char *what;
        void (*edit)(VmState &);
        const char *message;
    };
    const Case cases[] = {
        {"kind 3", [](VmState &s) { s.info.kind = 3; }, "unknown snapshot kind"},
        {"zero id", [](VmState &s) { std::memset(s.info.id, 0, 16); }, "id is zero"},
        {"full with parent", [](VmState &s) { s.info.parent_id[3] = 1; }, "full snapshot with a parent"},
        {"odd memory size", [](VmState &s) { s.memory.mem_size = s.layout.mem_size = (64ull << 20) + 4096; },
         "multiple of 2 MiB"},
        {"layout size differs", [](VmState &s) { s.layout.mem_size = 32ull << 20; }, "layout memory size"},
        {"stack top", [](VmState &s) { s.layout.stack_top -= 4096; }, "stack top"},
        {"image end past heap", [](VmState &s) { s.layout.image_end = s.layout.heap_end + 4096; }, "image end"},
        {"no segments", [](VmState &s) { s.layout.segment_count = 0; }, "image segments"},
        {"65 segments", [](VmState &s) { s.layout.segment_count = 65; }, "image segments"},
        {"W+X segment", [](VmState &s) { s.layout.segments[0].flags = 3; }, "writable and executable"},
        {"overlapping segments",
         [](VmState &s) { s.layout.segments[1].vaddr = 0x110000; }, "overlaps"},
        {"junk in unused slot", [](VmState &s) { s.layout.segments[5].vaddr = 1; }, "unused segment slot"},
        {"ip family 5", [](VmState &s) { s.identity.ip_family = 5; }, "ip family"},
        {"prefix 33", [](VmState &s) { s.identity.prefix_len = 33; }, "prefix length"},
        {"TSC rate 0", [](VmState &s) { s.clock.tsc_khz = 0; }, "TSC rate"},
        {"clock/vcpu TSC", [](VmState &s) { s.clock.guest_tsc++; }, "disagree on the TSC"},
        {"monitor flags", [](VmState &s) { s.monitor.flags = 0x80; }, "unknown monitor flags"},
        {"ready arg outside", [](VmState &s) { s.monitor.ready_arg_gpa = 64ull << 20; }, "ready argument"},
        {"data larger than memory", [](VmState &s) { s.memory.data_bytes = (64ull << 20) + 4096; }, "data size"},
        {"runs in a full snapshot", [](VmState &s) { s.memory.run_count = 1; }, "full snapshot with page runs"},
    };
    for (const Case &c : cases) {
        VmState s = sample_state();
        c.edit(s);
        Status st = validate(s);
        ASSERT_FALSE(st.ok()) << c.what;
        EXPECT_NE(st.error().message.find(c.message), std::string::npos) << c.what << ": " << st.error().message;
        // The decoder says the same about the file.
        EXPECT_NE(decode_error(encode_vmstate(s)).find(c.message), std::string::npos) << c.what;
    }
}

TEST(SnapshotFormat, BadRunListsAreRejected) {
    struct Case {
        const char *what;
        std::vector<PageRun> runs;
    };
    const uint64_t pages = (64ull << 20) / 4096;
    const Case cases[] = {
        {"empty run", {{5, 0}}},
        {"unsorted", {{10, 2}, {5, 1}}},
        {"overlapping", {{10, 5}, {12, 1}}},
        {"past the end", {{pages - 1, 2}}},
        {"starts past the end", {{pages, 1}}},
        {"wraps", {{2, UINT64_MAX}}},
    };
    for (const Case &c : cases) {
        VmState s = sample_state(SnapshotKind::kDiff);
        s.runs = c.runs;
        s.memory.run_count = static_cast<uint32_t>(c.runs.size());
        s.memory.run_pages = count_pages(c.runs);
        EXPECT_NE(decode_error(encode_vmstate(s)).find("page run"), std::string::npos) << c.what;
    }
    VmState s = sample_state(SnapshotKind::kDiff);
    s.memory.run_pages = 1;
    EXPECT_NE(decode_error(encode_vmstate(s)).find("runs cover 19 pages"), std::string::npos);
    s = sample_state(SnapshotKind::kDiff);
    std::memset(s.info.parent_id, 0, 16);
    EXPECT_NE(decode_error(encode_vmstate(s)).find("without a parent id"), std::string::npos);
}

TEST(SnapshotFormat, ReadingAFileCapsItsSize) {
    test::ScopedTempDir dir("fmt");
    std::string path = dir.path() + "/vmstate";
    {
        auto bytes = encode_vmstate(sample_state());
        std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char *>(bytes.data()),
                                                    static_cast<long>(bytes.size()));
    }
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    auto ok = read_vmstate(fd.get());
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    ASSERT_EQ(truncate(path.c_str(), off_t(kMaxVmstateSize + 1)), 0);
    auto big = read_vmstate(fd.get());
    ASSERT_FALSE(big.ok());
    EXPECT_EQ(big.error().code, EFBIG);
    UniqueFd dirfd(open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    EXPECT_FALSE(read_vmstate(dirfd.get()).ok());
}

// ---- page runs and memory files -------------------------------------------------------

TEST(MemoryFile, PagemapEntriesSelectResidentOrPrivatePages) {
    const uint64_t present = kPagemapPresent, file = kPagemapPresent | kPagemapFilePage, swapped = kPagemapSwapped;
    const std::vector<uint64_t> entries = {0, present, file, file, swapped, present, 0, file};
    std::vector<PageRun> resident, changed;
    collect_pages(entries, 100, PageFilter::kResident, resident);
    collect_pages(entries, 100, PageFilter::kPrivate, changed);
    EXPECT_EQ(resident, (std::vector<PageRun>{{101, 5}, {107, 1}}));
    EXPECT_EQ(changed, (std::vector<PageRun>{{101, 1}, {104, 2}}));
}

TEST(MemoryFile, RunListsMergeAndCoalesce) {
    std::vector<PageRun> a = {{0, 2}, {10, 5}, {40, 1}};
    std::vector<PageRun> b = {{1, 3}, {15, 2}, {30, 1}};
    EXPECT_EQ(merge_runs(a, b), (std::vector<PageRun>{{0, 4}, {10, 7}, {30, 1}, {40, 1}}));
    EXPECT_EQ(merge_runs(a, {}), a);
    EXPECT_EQ(coalesce_runs(a, 7, 100), (std::vector<PageRun>{{0, 2}, {10, 5}, {40, 1}}));
    EXPECT_EQ(coalesce_runs(a, 8, 100), (std::vector<PageRun>{{0, 15}, {40, 1}}));
    // The gap widens until the list is short enough.
    EXPECT_EQ(coalesce_runs(a, 0, 1), (std::vector<PageRun>{{0, 41}}));
    EXPECT_EQ(count_pages(a), 8u);
}

TEST(MemoryFile, ZeroPagesStayHolesAndDataLandsAtItsOffset) {
    test::ScopedTempDir dir("mem");
    const uint64_t size = 16ull << 20;
    std::vector<uint8_t> memory(size, 0);
    std::memset(memory.data() + 4096 * 3, 0x11, 4096);
    std::memset(memory.data() + 4096 * 4, 0x22, 4096);
    memory[4096 * 1000 + 17] = 0x33;
    UniqueFd fd(open((dir.path() + "/memory").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    // Only pages inside the runs are looked at: page 1000 is, page 3-4 are.
    std::vector<PageRun> runs = {{0, 8}, {1000, 1}, {2000, 100}};
    auto st = write_memory_pages(fd.get(), memory, runs);
    ASSERT_TRUE(st.ok()) << st.error().describe();
    EXPECT_EQ(st->data_bytes, 3u * 4096);
    EXPECT_EQ(st->pages_checked, 109u);
    struct stat sb{};
    ASSERT_EQ(fstat(fd.get(), &sb), 0);
    EXPECT_EQ(uint64_t(sb.st_size), size);
    auto data = file_data_runs(fd.get(), size);
    ASSERT_TRUE(data.ok());
    // Filesystems may allocate data in larger blocks; the written pages are covered
    // and the zero ones in between are not.
    ASSERT_FALSE(data->empty());
    EXPECT_LE(count_pages(*data), 64u) << "zero pages must stay holes";
    std::vector<uint8_t> back(size);
    ASSERT_EQ(pread(fd.get(), back.data(), size, 0), ssize_t(size));
    EXPECT_TRUE(back == memory);
    std::vector<PageRun> outside = {{4096, 1}};
    EXPECT_FALSE(write_memory_pages(fd.get(), memory, outside).ok());
}

// ---- snapshot directories ----------------------------------------------------------------

namespace {
std::string read_text(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}
int count_entries(const std::string &dir) {
    int n = 0;
    for (const auto &e : std::filesystem::directory_iterator(dir)) {
        (void)e;
        n++;
    }
    return n;
}
void write_fd(int fd, const std::string &text) {
    ASSERT_EQ(pwrite(fd, text.data(), text.size(), 0), ssize_t(text.size()));
}
}  // namespace

TEST(SnapshotStore, CommitPutsBothFilesInPlaceAndReplacesAPreviousSnapshotAtomically) {
    test::ScopedTempDir dir("store");
    const std::string snap = dir.path() + "/svc";
    {
        auto p = PendingSnapshot::create(snap);
        ASSERT_TRUE(p.ok()) << p.error().describe();
        write_fd(p->vmstate_fd(), "state-1");
        write_fd(p->memory_fd(), "memory-1");
        EXPECT_FALSE(std::filesystem::exists(snap)) << "nothing at the final path before commit";
        ASSERT_TRUE(p->commit().ok());
    }
    EXPECT_EQ(read_text(snap + "/vmstate"), "state-1");
    EXPECT_EQ(read_text(snap + "/memory"), "memory-1");
    auto opened = open_snapshot(snap);
    ASSERT_TRUE(opened.ok());  // held open across the replacement below
    {
        auto p = PendingSnapshot::create(snap);
        ASSERT_TRUE(p.ok());
        write_fd(p->vmstate_fd(), "state-2");
        write_fd(p->memory_fd(), "memory-2");
        EXPECT_EQ(read_text(snap + "/vmstate"), "state-1") << "the old one stays until commit";
        ASSERT_TRUE(p->commit().ok());
    }
    EXPECT_EQ(read_text(snap + "/vmstate"), "state-2");
    EXPECT_EQ(read_text(snap + "/memory"), "memory-2");
    EXPECT_EQ(count_entries(dir.path()), 1) << "the previous snapshot is removed";
    // A reader of the old snapshot keeps its files (a replica mapped them).
    char buf[16] = {};
    ASSERT_EQ(pread(opened->memory.get(), buf, 8, 0), 8);
    EXPECT_STREQ(buf, "memory-1");
}

TEST(SnapshotStore, AnUncommittedSnapshotLeavesNothingBehind) {
    test::ScopedTempDir dir("store");
    {
        auto p = PendingSnapshot::create(dir.path() + "/svc");
        ASSERT_TRUE(p.ok());
        write_fd(p->memory_fd(), "partial");
        EXPECT_EQ(count_entries(dir.path()), 1);  // the temporary directory
    }
    EXPECT_EQ(count_entries(dir.path()), 0);
    EXPECT_FALSE(PendingSnapshot::create(dir.path() + "/missing-parent/svc").ok());
    EXPECT_FALSE(PendingSnapshot::create("").ok());
}

TEST(SnapshotStore, AWriterKilledBeforeCommitLeavesTheOldSnapshotAndAnAbandonedTempDir) {
    test::ScopedTempDir dir("store");
    const std::string snap = dir.path() + "/svc";
    {
        auto p = PendingSnapshot::create(snap);
        ASSERT_TRUE(p.ok());
        write_fd(p->vmstate_fd(), "old");
        ASSERT_TRUE(p->commit().ok());
    }
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        auto p = PendingSnapshot::create(snap);
        if (!p) _exit(2);
        (void)!pwrite(p->vmstate_fd(), "new", 3, 0);
        kill(getpid(), SIGKILL);  // between write and rename
        _exit(3);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(read_text(snap + "/vmstate"), "old");
    EXPECT_EQ(count_entries(dir.path()), 2);
    // A live writer's directory is not abandoned; the dead one's is.
    auto live = PendingSnapshot::create(snap);
    ASSERT_TRUE(live.ok());
    auto removed = remove_abandoned(dir.path());
    ASSERT_TRUE(removed.ok());
    EXPECT_EQ(*removed, 1);
    EXPECT_TRUE(std::filesystem::exists(live->temp_path()));
    EXPECT_EQ(read_text(snap + "/vmstate"), "old");
}
