// The ELF loader accepts real guest images and rejects every malformed one with a
// message naming the broken rule (table of cases over a synthesized image).
#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "wisp/test/paths.h"
#include "wisp/vmm/elf_loader.h"
#include "wisp/vmm/machine.h"

using namespace wisp::vmm;

namespace {

constexpr uint64_t kMem = 32ull << 20;

// A minimal valid image: text (RX) at 1 MiB, data (RW) at 1 MiB + 4 KiB with
// a bss tail, and the wisp ABI note.
struct Synth {
    Elf64_Ehdr eh{};
    Elf64_Phdr ph[3]{};
    struct {
        Elf64_Nhdr nh{5, 4, WISP_NOTE_TYPE_ABI};
        char name[8] = "wisp";
        uint32_t version = WISP_ABI_VERSION;
    } note;
    uint8_t text[16] = {0xeb, 0xfe};
    uint8_t data[16] = {1, 2, 3};

    std::vector<uint8_t> bytes() const {
        std::vector<uint8_t> out(sizeof *this);
        std::memcpy(out.data(), this, sizeof *this);
        return out;
    }
};

Synth synth() {
    Synth s;
    std::memcpy(s.eh.e_ident, ELFMAG, SELFMAG);
    s.eh.e_ident[EI_CLASS] = ELFCLASS64;
    s.eh.e_ident[EI_DATA] = ELFDATA2LSB;
    s.eh.e_ident[EI_VERSION] = EV_CURRENT;
    s.eh.e_type = ET_EXEC;
    s.eh.e_machine = EM_X86_64;
    s.eh.e_version = EV_CURRENT;
    s.eh.e_entry = 0x100000;
    s.eh.e_phoff = offsetof(Synth, ph);
    s.eh.e_phentsize = sizeof(Elf64_Phdr);
    s.eh.e_phnum = 3;
    s.eh.e_ehsize = sizeof(Elf64_Ehdr);
    s.ph[0] = {PT_LOAD, PF_R | PF_X, offsetof(Synth, text), 0x100000, 0x100000, 16, 16, 4096};
    s.ph[1] = {PT_LOAD, PF_R | PF_W, offsetof(Synth, data), 0x101000, 0x101000, 16, 8192, 4096};
    s.ph[2] = {PT_NOTE, PF_R, offsetof(Synth, note), 0, 0, sizeof s.note, sizeof s.note, 4};
    return s;
}

struct BadCase {
    const char *what;
    std::function<void(Synth &)> mutate;
    const char *message;  // part of the error message
};

}  // namespace

TEST(ElfLoader, AcceptsTheSynthesizedImageAndLoadsItsSegments) {
    auto bytes = synth().bytes();
    auto image = parse_elf(bytes, image_load_limit(kMem));
    ASSERT_TRUE(image.ok()) << image.error().message;
    EXPECT_EQ(image->entry, 0x100000u);
    ASSERT_EQ(image->segments.size(), 2u);
    EXPECT_TRUE(image->segments[0].executable);
    EXPECT_TRUE(image->segments[1].writable);
    EXPECT_EQ(image->end, 0x103000u);
    auto mem = GuestMemory::anonymous(kMem);
    ASSERT_TRUE(mem.ok());
    ASSERT_TRUE(load_elf(*image, bytes, *mem).ok());
    EXPECT_EQ(mem->host_base()[0x100000], 0xeb);
    EXPECT_EQ(mem->host_base()[0x101002], 3);
    EXPECT_EQ(mem->host_base()[0x101010], 0) << "bss is zero";
}

TEST(ElfLoader, AcceptsARealGuestImage) {
    auto path = wisp::test::image_path("vmtest_hello");
    FILE *f = std::fopen(path.c_str(), "rb");
    ASSERT_NE(f, nullptr) << path;
    std::vector<uint8_t> bytes(1 << 20);
    bytes.resize(std::fread(bytes.data(), 1, bytes.size(), f));
    std::fclose(f);
    auto image = parse_elf(bytes, image_load_limit(kMem));
    ASSERT_TRUE(image.ok()) << image.error().message;
    EXPECT_EQ(image->abi_version, uint32_t{WISP_ABI_VERSION});
    EXPECT_GE(image->segments.size(), 2u);
}

TEST(ElfLoader, RejectsMalformedImagesNamingTheRule) {
    const BadCase cases[] = {
        {"bad magic", [](Synth &s) { s.eh.e_ident[1] = 'X'; }, "not an ELF file"},
        {"32-bit", [](Synth &s) { s.eh.e_ident[EI_CLASS] = ELFCLASS32; }, "not a 64-bit"},
        {"big endian", [](Synth &s) { s.eh.e_ident[EI_DATA] = ELFDATA2MSB; }, "little endian"},
        {"aarch64", [](Synth &s) { s.eh.e_machine = EM_AARCH64; }, "not an x86-64"},
        {"PIE", [](Synth &s) { s.eh.e_type = ET_DYN; }, "ET_DYN"},
        {"relocatable", [](Synth &s) { s.eh.e_type = ET_REL; }, "not an executable"},
        {"phentsize", [](Synth &s) { s.eh.e_phentsize = 40; }, "program header size"},
        {"no phdrs", [](Synth &s) { s.eh.e_phnum = 0; }, "no program headers"},
        {"too many phdrs", [](Synth &s) { s.eh.e_phnum = 1000; }, "more than 64"},
        {"phdrs past the end", [](Synth &s) { s.eh.e_phoff = 1ull << 40; }, "program header table"},
        {"phoff overflows", [](Synth &s) { s.eh.e_phoff = ~0ull - 8; }, "program header table"},
        {"interpreter", [](Synth &s) { s.ph[2].p_type = PT_INTERP; }, "PT_INTERP"},
        {"dynamic", [](Synth &s) { s.ph[2].p_type = PT_DYNAMIC; }, "PT_DYNAMIC"},
        {"filesz > memsz", [](Synth &s) { s.ph[0].p_filesz = 32; s.ph[0].p_memsz = 16; },
         "file size exceeds"},
        {"data past the file", [](Synth &s) { s.ph[0].p_filesz = s.ph[0].p_memsz = 1 << 20; },
         "past the end of the file"},
        {"offset overflows", [](Synth &s) { s.ph[0].p_offset = ~0ull; }, "past the end of the file"},
        {"below the image base", [](Synth &s) { s.ph[0].p_vaddr = 0x1000; s.eh.e_entry = 0x1000; },
         "below the image base"},
        {"past guest memory", [](Synth &s) { s.ph[1].p_vaddr = kMem - 4096; }, "usable guest memory"},
        {"into the stack", [](Synth &s) { s.ph[1].p_vaddr = kMem - 0x30000; }, "usable guest memory"},
        {"vaddr + memsz overflows", [](Synth &s) { s.ph[1].p_vaddr = ~0ull - 100; }, "usable guest memory"},
        {"overlapping segments", [](Synth &s) { s.ph[1].p_vaddr = 0x100008; }, "overlap"},
        {"segments sharing a page", [](Synth &s) { s.ph[1].p_vaddr = 0x100800; }, "share a page"},
        {"writable and executable", [](Synth &s) { s.ph[0].p_flags = PF_R | PF_W | PF_X; },
         "writable and executable"},
        {"entry outside segments", [](Synth &s) { s.eh.e_entry = 0x500000; }, "entry point"},
        {"entry in data", [](Synth &s) { s.eh.e_entry = 0x101000; }, "entry point"},
        {"no loadable segment", [](Synth &s) { s.ph[0].p_type = s.ph[1].p_type = PT_NULL; },
         "no loadable segment"},
        {"no ABI note", [](Synth &s) { s.ph[2].p_type = PT_NULL; }, "no wisp ABI note"},
        {"note of another owner", [](Synth &s) { s.note.name[0] = 'x'; }, "no wisp ABI note"},
        {"wrong ABI version", [](Synth &s) { s.note.version = WISP_ABI_VERSION + 1; },
         "built for guest ABI"},
        {"note descriptor size", [](Synth &s) { s.note.nh.n_descsz = 8; }, "note"},
        {"truncated note", [](Synth &s) { s.note.nh.n_namesz = 1000; }, "truncated note"},
        {"note past the file", [](Synth &s) { s.ph[2].p_offset = 1 << 20; }, "PT_NOTE"},
    };
    for (const BadCase &c : cases) {
        Synth s = synth();
        c.mutate(s);
        auto bytes = s.bytes();
        auto r = parse_elf(bytes, image_load_limit(kMem));
        ASSERT_FALSE(r.ok()) << c.what << " was accepted";
        EXPECT_NE(r.error().message.find(c.message), std::string::npos)
            << c.what << ": " << r.error().message;
        EXPECT_NE(r.error().message.find("invalid guest image"), std::string::npos);
    }
    for (size_t len : {size_t{0}, size_t{10}, sizeof(Elf64_Ehdr) - 1}) {
        auto bytes = synth().bytes();
        bytes.resize(len);
        EXPECT_FALSE(parse_elf(bytes, image_load_limit(kMem)).ok()) << "truncated to " << len;
    }
}
