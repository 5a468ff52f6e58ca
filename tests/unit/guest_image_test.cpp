// Toolchain proof: guest images come out of the guest toolchain as the monitor's
// loader expects them — static, non-PIE ELF64 x86-64 executables, loaded at or above
// WISP_IMAGE_BASE, page-aligned segments, an entry point in an executable segment,
// no dynamic section or interpreter, and the wisp ABI note.
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

#include "wisp/test/paths.h"
#include "wisp_hypercall.h"

namespace {

struct ImageFacts {
    GElf_Ehdr ehdr{};
    std::vector<GElf_Phdr> phdrs;
    std::set<std::string> symbols;
    bool has_dynamic_section = false;
    bool has_interp = false;
    int abi_note_version = -1;
};

ImageFacts read_image(const std::string &path) {
    ImageFacts f;
    elf_version(EV_CURRENT);
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0) << "cannot open " << path;
    if (fd < 0) return f;
    Elf *elf = elf_begin(fd, ELF_C_READ, nullptr);
    EXPECT_NE(elf, nullptr);
    EXPECT_NE(gelf_getehdr(elf, &f.ehdr), nullptr);
    size_t n = 0;
    elf_getphdrnum(elf, &n);
    for (size_t i = 0; i < n; i++) {
        GElf_Phdr ph;
        gelf_getphdr(elf, static_cast<int>(i), &ph);
        f.phdrs.push_back(ph);
        if (ph.p_type == PT_INTERP) f.has_interp = true;
        if (ph.p_type == PT_DYNAMIC) f.has_dynamic_section = true;
    }
    Elf_Scn *scn = nullptr;
    while ((scn = elf_nextscn(elf, scn)) != nullptr) {
        GElf_Shdr sh;
        gelf_getshdr(scn, &sh);
        if (sh.sh_type == SHT_DYNAMIC) f.has_dynamic_section = true;
        Elf_Data *data = elf_getdata(scn, nullptr);
        if (sh.sh_type == SHT_SYMTAB && data) {
            for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
                GElf_Sym sym;
                gelf_getsym(data, static_cast<int>(i), &sym);
                f.symbols.insert(elf_strptr(elf, sh.sh_link, sym.st_name));
            }
        }
        if (sh.sh_type == SHT_NOTE && data) {
            size_t off = 0, name_off = 0, desc_off = 0;
            GElf_Nhdr nh;
            while ((off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
                const char *name = static_cast<const char *>(data->d_buf) + name_off;
                if (nh.n_type == WISP_NOTE_TYPE_ABI && nh.n_namesz == 5 &&
                    std::memcmp(name, WISP_NOTE_NAME, 5) == 0 && nh.n_descsz == 4) {
                    uint32_t v;
                    std::memcpy(&v, static_cast<const char *>(data->d_buf) + desc_off, 4);
                    f.abi_note_version = static_cast<int>(v);
                }
            }
        }
    }
    elf_end(elf);
    close(fd);
    return f;
}

void expect_loadable_guest(const ImageFacts &f) {
    EXPECT_EQ(f.ehdr.e_ident[EI_CLASS], ELFCLASS64);
    EXPECT_EQ(f.ehdr.e_machine, EM_X86_64);
    EXPECT_EQ(f.ehdr.e_type, ET_EXEC) << "PIE or shared object instead of a static executable";
    EXPECT_FALSE(f.has_dynamic_section);
    EXPECT_FALSE(f.has_interp);
    EXPECT_EQ(f.abi_note_version, WISP_ABI_VERSION);

    bool entry_in_exec_segment = false;
    int loads = 0;
    for (auto &ph : f.phdrs) {
        if (ph.p_type != PT_LOAD) continue;
        loads++;
        EXPECT_GE(ph.p_vaddr, WISP_IMAGE_BASE);
        EXPECT_EQ(ph.p_vaddr, ph.p_paddr) << "identity mapped: vaddr == paddr";
        EXPECT_EQ(ph.p_vaddr % WISP_PAGE_SIZE, 0u) << "segments start on a page";
        EXPECT_LE(ph.p_filesz, ph.p_memsz);
        EXPECT_FALSE((ph.p_flags & PF_W) && (ph.p_flags & PF_X)) << "no writable code";
        if ((ph.p_flags & PF_X) && f.ehdr.e_entry >= ph.p_vaddr &&
            f.ehdr.e_entry < ph.p_vaddr + ph.p_memsz)
            entry_in_exec_segment = true;
    }
    EXPECT_GE(loads, 2);
    EXPECT_TRUE(entry_in_exec_segment);
}

TEST(GuestToolchain, MinimalImageIsAStaticNonPieElfTheLoaderAccepts) {
    auto f = read_image(wisp::test::image_path("toolchain_probe"));
    expect_loadable_guest(f);
    EXPECT_TRUE(f.symbols.count("_start"));
    EXPECT_TRUE(f.symbols.count("main"));
}

TEST(GuestToolchain, LwipStaticLibraryLinksIntoAGuestImage) {
    auto f = read_image(wisp::test::image_path("lwip_probe"));
    expect_loadable_guest(f);
    for (const char *sym : {"lwip_init", "tcp_input", "tcp_listen_with_backlog", "ip4_input",
                            "ethernet_input", "sys_now"})
        EXPECT_TRUE(f.symbols.count(sym)) << sym << " missing from the image";
}

}  // namespace
