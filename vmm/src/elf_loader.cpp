#include "wisp/vmm/elf_loader.h"

#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace wisp::vmm {

namespace {

constexpr uint64_t kPage = WISP_PAGE_SIZE;
constexpr uint16_t kMaxPhdrs = kMaxImageSegments;

uint64_t page_down(uint64_t v) { return v & ~(kPage - 1); }

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

Error bad(const std::string &why) { return invalid("invalid guest image: " + why, ENOEXEC); }

// Copies a struct out of the file at `offset` if it fits.
template <class T>
bool file_read(std::span<const uint8_t> file, uint64_t offset, T *out) {
    if (offset > file.size() || file.size() - offset < sizeof(T)) return false;
    std::memcpy(out, file.data() + offset, sizeof(T));
    return true;
}

// Walks the notes in [offset, offset + size) of the file looking for the wisp ABI
// note; returns its version or 0.
Result<uint32_t> find_abi_note(std::span<const uint8_t> file, uint64_t offset, uint64_t size) {
    uint64_t end;
    if (__builtin_add_overflow(offset, size, &end) || end > file.size())
        return bad("PT_NOTE segment extends past the end of the file");
    auto align4 = [](uint64_t v) { return (v + 3) & ~uint64_t{3}; };
    uint64_t pos = offset;
    while (end - pos >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        std::memcpy(&nh, file.data() + pos, sizeof nh);
        uint64_t name_at = pos + sizeof nh;
        uint64_t desc_at = name_at + align4(nh.n_namesz);  // n_namesz is 32-bit: no overflow
        uint64_t next = desc_at + align4(nh.n_descsz);
        if (desc_at > end || next > end) return bad("truncated note in PT_NOTE segment");
        if (nh.n_namesz == sizeof(WISP_NOTE_NAME) && nh.n_type == WISP_NOTE_TYPE_ABI &&
            std::memcmp(file.data() + name_at, WISP_NOTE_NAME, sizeof(WISP_NOTE_NAME)) == 0) {
            if (nh.n_descsz != sizeof(uint32_t)) return bad("wisp ABI note has the wrong size");
            uint32_t version;
            std::memcpy(&version, file.data() + desc_at, sizeof version);
            return version;
        }
        pos = next;
    }
    return uint32_t{0};
}

}  // namespace

Result<ElfImage> parse_elf(std::span<const uint8_t> file, uint64_t load_limit) {
    Elf64_Ehdr eh;
    if (!file_read(file, 0, &eh)) return bad("file is shorter than an ELF header");
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return bad("not an ELF file");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64) return bad("not a 64-bit ELF file");
    if (eh.e_ident[EI_DATA] != ELFDATA2LSB) return bad("not little endian");
    if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT)
        return bad("unknown ELF version");
    if (eh.e_machine != EM_X86_64) return bad("not an x86-64 executable");
    if (eh.e_type != ET_EXEC)
        return bad(eh.e_type == ET_DYN ? "position-independent (ET_DYN); link it static non-PIE"
                                       : "not an executable (e_type " +
                                             std::to_string(eh.e_type) + ")");
    if (eh.e_phentsize != sizeof(Elf64_Phdr)) return bad("unexpected program header size");
    if (eh.e_phnum == 0) return bad("no program headers");
    if (eh.e_phnum > kMaxPhdrs) return bad("more than 64 program headers");

    ElfImage image;
    image.entry = eh.e_entry;
    bool note_seen = false;
    for (uint16_t i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        uint64_t at;
        if (__builtin_add_overflow(eh.e_phoff, uint64_t{i} * sizeof(Elf64_Phdr), &at) ||
            !file_read(file, at, &ph))
            return bad("program header table extends past the end of the file");
        const std::string which = "program header " + std::to_string(i);
        switch (ph.p_type) {
            case PT_INTERP:
                return bad("has an interpreter (PT_INTERP): only static executables run");
            case PT_DYNAMIC:
                return bad("is dynamically linked (PT_DYNAMIC): only static executables run");
            case PT_NOTE: {
                auto version = find_abi_note(file, ph.p_offset, ph.p_filesz);
                if (!version) return std::move(version).error();
                if (*version != 0) {
                    image.abi_version = *version;
                    note_seen = true;
                }
                break;
            }
            case PT_LOAD: {
                if (ph.p_memsz == 0) break;
                if (ph.p_filesz > ph.p_memsz) return bad(which + ": file size exceeds memory size");
                uint64_t file_end, mem_end;
                if (__builtin_add_overflow(ph.p_offset, ph.p_filesz, &file_end) ||
                    file_end > file.size())
                    return bad(which + ": segment data extends past the end of the file");
                if (__builtin_add_overflow(ph.p_vaddr, ph.p_memsz, &mem_end) ||
                    mem_end > load_limit)
                    return bad(which + ": segment [" + hex(ph.p_vaddr) + ", +" +
                               hex(ph.p_memsz) + ") extends past usable guest memory (" +
                               hex(load_limit) + ")");
                if (ph.p_vaddr < WISP_IMAGE_BASE)
                    return bad(which + ": segment at " + hex(ph.p_vaddr) +
                               " is below the image base " + hex(WISP_IMAGE_BASE));
                if ((ph.p_flags & PF_W) && (ph.p_flags & PF_X))
                    return bad(which + ": segment is writable and executable");
                image.segments.push_back(ElfSegment{ph.p_vaddr, ph.p_memsz, ph.p_offset,
                                                    ph.p_filesz, (ph.p_flags & PF_W) != 0,
                                                    (ph.p_flags & PF_X) != 0});
                break;
            }
            default:
                break;  // GNU_STACK, GNU_PROPERTY and friends carry nothing we load
        }
    }
    if (image.segments.empty()) return bad("no loadable segment");
    if (!note_seen) return bad("no wisp ABI note (link with the wisp guest runtime)");
    if (image.abi_version != WISP_ABI_VERSION)
        return bad("built for guest ABI " + std::to_string(image.abi_version) +
                   ", this monitor runs ABI " + std::to_string(WISP_ABI_VERSION));

    // Permissions are per page, so no page may hold two segments.
    std::sort(image.segments.begin(), image.segments.end(),
              [](const ElfSegment &a, const ElfSegment &b) { return a.vaddr < b.vaddr; });
    for (size_t i = 1; i < image.segments.size(); i++) {
        const ElfSegment &prev = image.segments[i - 1];
        if (page_down(image.segments[i].vaddr) < prev.vaddr + prev.mem_size)
            return bad("segments at " + hex(prev.vaddr) + " and " +
                       hex(image.segments[i].vaddr) + " overlap or share a page");
    }
    bool entry_ok = false;
    for (const ElfSegment &s : image.segments)
        if (s.executable && image.entry >= s.vaddr && image.entry < s.vaddr + s.mem_size)
            entry_ok = true;
    if (!entry_ok) return bad("entry point " + hex(image.entry) + " is not in an executable segment");
    const ElfSegment &last = image.segments.back();
    image.end = (last.vaddr + last.mem_size + kPage - 1) & ~(kPage - 1);
    if (image.end > load_limit) return bad("image end exceeds usable guest memory");
    return image;
}

Status load_elf(const ElfImage &image, std::span<const uint8_t> file, const GuestMemory &memory) {
    for (const ElfSegment &s : image.segments) {
        Translation dst = memory.translate(s.vaddr, s.mem_size);
        if (!dst.ok || s.file_offset > file.size() || file.size() - s.file_offset < s.file_size)
            return bad("segment at " + hex(s.vaddr) + " does not fit guest memory");
        std::memcpy(dst.bytes.data(), file.data() + s.file_offset, s.file_size);
    }
    return {};
}

Result<std::vector<uint8_t>> read_image_file(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return errno_error("fstat guest image");
    if (!S_ISREG(st.st_mode)) return invalid("guest image is not a regular file");
    if (static_cast<uint64_t>(st.st_size) > kMaxImageFileSize)
        return invalid("guest image is larger than 256 MiB", EFBIG);
    std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("read guest image");
        if (n == 0) return invalid("guest image shrank while being read");
        done += static_cast<size_t>(n);
    }
    return bytes;
}

}  // namespace wisp::vmm
