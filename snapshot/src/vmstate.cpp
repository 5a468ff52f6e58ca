#include "wisp/snapshot/vmstate.h"

#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstring>
#include <string>

#include "wisp_hypercall.h"

namespace wisp::snapshot {

namespace {

constexpr uint64_t kPage = WISP_PAGE_SIZE;
constexpr size_t kChecksumSize = sizeof(uint64_t);
constexpr uint32_t kSectionTags = 8;  // kInfo .. kRuns

size_t padded(size_t n) { return (n + 7) & ~size_t{7}; }

template <class T>
void append_section(std::vector<uint8_t> &out, SectionTag tag, const T *data, size_t count = 1) {
    SectionHeader h{static_cast<uint32_t>(tag), static_cast<uint32_t>(sizeof(T) * count)};
    size_t at = out.size();
    out.resize(at + sizeof h + padded(h.size), 0);
    std::memcpy(out.data() + at, &h, sizeof h);
    if (h.size) std::memcpy(out.data() + at + sizeof h, data, h.size);
}

const char *tag_name(uint32_t tag) {
    switch (static_cast<SectionTag>(tag)) {
        case SectionTag::kInfo: return "info";
        case SectionTag::kVcpu: return "vcpu";
        case SectionTag::kLayout: return "layout";
        case SectionTag::kIdentity: return "identity";
        case SectionTag::kClock: return "clock";
        case SectionTag::kMemory: return "memory";
        case SectionTag::kMonitor: return "monitor";
        case SectionTag::kRuns: return "runs";
    }
    return "unknown";
}

Error corrupt(const std::string &what) { return invalid("vmstate: " + what, EBADMSG); }

bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace

std::vector<uint8_t> encode_vmstate(const VmState &s) {
    std::vector<uint8_t> out(sizeof(FileHeader), 0);
    uint32_t sections = 7;
    append_section(out, SectionTag::kInfo, &s.info);
    append_section(out, SectionTag::kVcpu, &s.vcpu);
    append_section(out, SectionTag::kLayout, &s.layout);
    append_section(out, SectionTag::kIdentity, &s.identity);
    append_section(out, SectionTag::kClock, &s.clock);
    append_section(out, SectionTag::kMemory, &s.memory);
    append_section(out, SectionTag::kMonitor, &s.monitor);
    if (s.kind() == SnapshotKind::kDiff) {
        append_section(out, SectionTag::kRuns, s.runs.data(), s.runs.size());
        sections++;
    }
    FileHeader h{kMagic, kFormatVersion, WISP_ABI_VERSION, out.size() + kChecksumSize, sections,
                 sizeof(FileHeader)};
    std::memcpy(out.data(), &h, sizeof h);
    uint64_t sum = XXH3_64bits(out.data(), out.size());
    out.resize(out.size() + kChecksumSize);
    std::memcpy(out.data() + out.size() - kChecksumSize, &sum, kChecksumSize);
    return out;
}

Result<VmState> decode_vmstate(std::span<const uint8_t> file) {
    // Order matters for the message: first "is this a vmstate at all", then "can
    // this build read it", then "is it whole", then "is it intact".
    if (file.size() > kMaxVmstateSize)
        return invalid("vmstate: " + std::to_string(file.size()) + " bytes exceeds the " +
                           std::to_string(kMaxVmstateSize) + "-byte limit",
                       EFBIG);
    if (file.size() < sizeof(FileHeader) + kChecksumSize)
        return corrupt("truncated: " + std::to_string(file.size()) + " bytes is shorter than a header");
    FileHeader h;
    std::memcpy(&h, file.data(), sizeof h);
    if (h.magic != kMagic) return corrupt("not a wisp snapshot (bad magic)");
    if (h.format_version != kFormatVersion)
        return invalid("vmstate: format version " + std::to_string(h.format_version) +
                           ", this build reads version " + std::to_string(kFormatVersion),
                       EPROTONOSUPPORT);
    if (h.header_size != sizeof(FileHeader))
        return corrupt("header size " + std::to_string(h.header_size) + ", expected " +
                       std::to_string(sizeof(FileHeader)));
    if (h.abi_version != WISP_ABI_VERSION)
        return invalid("vmstate: guest ABI version " + std::to_string(h.abi_version) +
                           ", this monitor speaks version " + std::to_string(WISP_ABI_VERSION),
                       EPROTONOSUPPORT);
    if (h.file_size > file.size())
        return corrupt("truncated: header says " + std::to_string(h.file_size) + " bytes, file has " +
                       std::to_string(file.size()));
    if (h.file_size < file.size())
        return corrupt(std::to_string(file.size() - h.file_size) + " trailing bytes after the " +
                       std::to_string(h.file_size) + " the header declares");
    const size_t body_end = file.size() - kChecksumSize;
    uint64_t stored;
    std::memcpy(&stored, file.data() + body_end, kChecksumSize);
    if (XXH3_64bits(file.data(), body_end) != stored) return corrupt("checksum mismatch (the file is corrupt)");

    VmState s;
    bool seen[kSectionTags + 1] = {};
    size_t at = sizeof(FileHeader);
    std::span<const uint8_t> runs;
    for (uint32_t i = 0; i < h.section_count; i++) {
        if (body_end - at < sizeof(SectionHeader))
            return corrupt("section " + std::to_string(i) + " header runs past the end");
        SectionHeader sh;
        std::memcpy(&sh, file.data() + at, sizeof sh);
        at += sizeof sh;
        if (sh.tag == 0 || sh.tag > kSectionTags)
            return corrupt("unknown section tag " + std::to_string(sh.tag));
        if (seen[sh.tag]) return corrupt(std::string("duplicate ") + tag_name(sh.tag) + " section");
        seen[sh.tag] = true;
        if (padded(sh.size) > body_end - at)
            return corrupt(std::string(tag_name(sh.tag)) + " section of " + std::to_string(sh.size) +
                           " bytes runs past the end");
        const uint8_t *payload = file.data() + at;
        if (!all_zero(payload + sh.size, padded(sh.size) - sh.size))
            return corrupt(std::string(tag_name(sh.tag)) + " section padding is not zero");
        auto take = [&](auto &dst) -> Status {
            if (sh.size != sizeof dst)
                return corrupt(std::string(tag_name(sh.tag)) + " section is " + std::to_string(sh.size) +
                               " bytes, expected " + std::to_string(sizeof dst));
            std::memcpy(&dst, payload, sizeof dst);
            return {};
        };
        switch (static_cast<SectionTag>(sh.tag)) {
            case SectionTag::kInfo: WISP_RETURN_IF_ERROR(take(s.info)); break;
            case SectionTag::kVcpu: WISP_RETURN_IF_ERROR(take(s.vcpu)); break;
            case SectionTag::kLayout: WISP_RETURN_IF_ERROR(take(s.layout)); break;
            case SectionTag::kIdentity: WISP_RETURN_IF_ERROR(take(s.identity)); break;
            case SectionTag::kClock: WISP_RETURN_IF_ERROR(take(s.clock)); break;
            case SectionTag::kMemory: WISP_RETURN_IF_ERROR(take(s.memory)); break;
            case SectionTag::kMonitor: WISP_RETURN_IF_ERROR(take(s.monitor)); break;
            case SectionTag::kRuns:
                if (sh.size % sizeof(PageRun) != 0)
                    return corrupt("runs section of " + std::to_string(sh.size) +
                                   " bytes is not a whole number of runs");
                runs = std::span<const uint8_t>(payload, sh.size);
                break;
        }
        at += padded(sh.size);
    }
    if (at != body_end)
        return corrupt(std::to_string(body_end - at) + " bytes after the last section");
    for (uint32_t tag = 1; tag <= kSectionTags; tag++) {
        if (tag == static_cast<uint32_t>(SectionTag::kRuns)) continue;
        if (!seen[tag]) return corrupt(std::string("missing ") + tag_name(tag) + " section");
    }
    if (s.kind() == SnapshotKind::kDiff && !seen[static_cast<uint32_t>(SectionTag::kRuns)])
        return corrupt("diff snapshot without a runs section");
    if (s.kind() != SnapshotKind::kDiff && seen[static_cast<uint32_t>(SectionTag::kRuns)])
        return corrupt("runs section in a full snapshot");
    if (s.kind() == SnapshotKind::kDiff && runs.size() / sizeof(PageRun) != s.memory.run_count)
        return corrupt("runs section holds " + std::to_string(runs.size() / sizeof(PageRun)) +
                       " runs, memory section says " + std::to_string(s.memory.run_count));
    s.runs.resize(runs.size() / sizeof(PageRun));
    if (!runs.empty()) std::memcpy(s.runs.data(), runs.data(), runs.size());
    WISP_RETURN_IF_ERROR(validate(s));
    return s;
}

Status validate(const VmState &s) {
    // kind and identity of the snapshot
    const SnapshotInfo &info = s.info;
    bool diff = s.kind() == SnapshotKind::kDiff;
    if (!diff && s.kind() != SnapshotKind::kFull)
        return corrupt("unknown snapshot kind " + std::to_string(info.kind));
    if (all_zero(info.id, sizeof info.id)) return corrupt("snapshot id is zero");
    if (diff && all_zero(info.parent_id, sizeof info.parent_id))
        return corrupt("diff snapshot without a parent id");
    if (!diff && !all_zero(info.parent_id, sizeof info.parent_id))
        return corrupt("full snapshot with a parent id");

    // memory
    const MemoryState &m = s.memory;
    const uint64_t mem = m.mem_size;
    if (mem < WISP_MEM_MIN || mem > WISP_MEM_MAX || mem % (2ull << 20) != 0)
        return corrupt("guest memory size " + std::to_string(mem) +
                       " is not a multiple of 2 MiB within 8 MiB..4 GiB");
    if (m.data_bytes > mem || m.data_bytes % kPage != 0)
        return corrupt("memory data size " + std::to_string(m.data_bytes) + " is impossible");
    if (!diff && (m.run_count != 0 || m.run_pages != 0)) return corrupt("full snapshot with page runs");
    if (m.run_count > kMaxRuns)
        return corrupt(std::to_string(m.run_count) + " page runs exceed the limit of " +
                       std::to_string(kMaxRuns));

    // layout (the page tables in guest memory were built from it)
    const LayoutState &l = s.layout;
    if (l.mem_size != mem)
        return corrupt("layout memory size " + std::to_string(l.mem_size) + " differs from " +
                       std::to_string(mem));
    if (l.stack_top != mem) return corrupt("stack top " + hex(l.stack_top) + " is not the end of memory");
    if (l.heap_end != mem - WISP_STACK_SIZE - kPage)
        return corrupt("heap end " + hex(l.heap_end) + " is not the stack guard page");
    if (l.image_end % kPage != 0 || l.image_end <= WISP_IMAGE_BASE || l.image_end > l.heap_end)
        return corrupt("image end " + hex(l.image_end) + " is outside the image area");
    if (l.segment_count == 0 || l.segment_count > kMaxSegments)
        return corrupt(std::to_string(l.segment_count) + " image segments (1.." +
                       std::to_string(kMaxSegments) + " allowed)");
    uint64_t prev_end = WISP_IMAGE_BASE;
    for (uint32_t i = 0; i < l.segment_count; i++) {
        const SegmentState &seg = l.segments[i];
        uint64_t end;
        if (seg.flags & ~(kSegmentWritable | kSegmentExecutable))
            return corrupt("segment " + std::to_string(i) + " has unknown flags");
        if ((seg.flags & kSegmentWritable) && (seg.flags & kSegmentExecutable))
            return corrupt("segment " + std::to_string(i) + " is writable and executable");
        if (seg.mem_size == 0 || seg.file_size > seg.mem_size ||
            __builtin_add_overflow(seg.vaddr, seg.mem_size, &end))
            return corrupt("segment " + std::to_string(i) + " has impossible sizes");
        if ((seg.vaddr & ~(kPage - 1)) < prev_end || end > l.image_end)
            return corrupt("segment " + std::to_string(i) + " at " + hex(seg.vaddr) +
                           " overlaps another or leaves the image area");
        prev_end = (end + kPage - 1) & ~(kPage - 1);
    }
    for (uint32_t i = l.segment_count; i < kMaxSegments; i++)
        if (!all_zero(reinterpret_cast<const uint8_t *>(&l.segments[i]), sizeof(SegmentState)))
            return corrupt("unused segment slot " + std::to_string(i) + " is not zero");

    // network identity
    const IdentityState &id = s.identity;
    if (id.ip_family != 4 && id.ip_family != 6)
        return corrupt("ip family " + std::to_string(id.ip_family) + " is neither 4 nor 6");
    if (id.prefix_len > (id.ip_family == 4 ? 32 : 128))
        return corrupt("prefix length " + std::to_string(id.prefix_len) + " is too long");

    // clock, monitor
    if (s.clock.tsc_khz == 0) return corrupt("TSC rate is zero");
    if (s.clock.guest_tsc != s.vcpu.tsc) return corrupt("clock and vCPU disagree on the TSC");
    const MonitorState &mon = s.monitor;
    if (mon.flags & ~kMonitorFlagsAll) return corrupt("unknown monitor flags " + hex(mon.flags));
    if (mon.restore_count == UINT32_MAX) return corrupt("restore count exhausted");
    if ((mon.flags & kMonitorHeldAtReady) &&
        (mon.ready_arg_gpa < WISP_IMAGE_BASE || mon.ready_arg_gpa > mem - sizeof(wisp_hc_ready)))
        return corrupt("ready argument at " + hex(mon.ready_arg_gpa) + " is outside guest memory");

    // run list: sorted, disjoint, each non-empty and inside memory
    uint64_t pages = mem / kPage, next = 0, covered = 0;
    for (size_t i = 0; i < s.runs.size(); i++) {
        const PageRun &r = s.runs[i];
        if (r.page_count == 0 || r.first_page < next || r.first_page >= pages ||
            r.page_count > pages - r.first_page)
            return corrupt("page run " + std::to_string(i) + " (" + std::to_string(r.first_page) + "+" +
                           std::to_string(r.page_count) + ") is empty, unsorted, overlapping or outside memory");
        next = r.first_page + r.page_count;
        covered += r.page_count;
    }
    if (diff && covered != m.run_pages)
        return corrupt("runs cover " + std::to_string(covered) + " pages, memory section says " +
                       std::to_string(m.run_pages));
    if (m.data_bytes > (diff ? covered * kPage : mem))
        return corrupt("more memory data than pages it may cover");
    return {};
}

Result<VmState> read_vmstate(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return errno_error("fstat vmstate");
    if (!S_ISREG(st.st_mode)) return invalid("vmstate is not a regular file");
    if (static_cast<uint64_t>(st.st_size) > kMaxVmstateSize)
        return invalid("vmstate: " + std::to_string(st.st_size) + " bytes exceeds the " +
                           std::to_string(kMaxVmstateSize) + "-byte limit",
                       EFBIG);
    // One byte more than the size says, so a file that grew meanwhile is noticed.
    std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size) + 1);
    size_t got = 0;
    while (got < bytes.size()) {
        ssize_t n = pread(fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("read vmstate");
        if (n == 0) break;
        got += static_cast<size_t>(n);
    }
    bytes.resize(got);
    return decode_vmstate(bytes);
}

}  // namespace wisp::snapshot
