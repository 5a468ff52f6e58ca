// libFuzzer target: the ELF loader's validation must reject or accept any byte
// string without crashing, reading out of bounds or overflowing, and whatever it
// accepts must satisfy the loader's promises.
#include <cstdint>
#include <cstdlib>

#include "wisp/vmm/elf_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    constexpr uint64_t kLimit = (32ull << 20) - WISP_STACK_SIZE - WISP_PAGE_SIZE;
    auto image = wisp::vmm::parse_elf(std::span<const uint8_t>(data, size), kLimit);
    if (!image) return 0;
    uint64_t prev_end = 0;
    for (const auto &s : image->segments) {
        if (s.vaddr < WISP_IMAGE_BASE || s.vaddr + s.mem_size > kLimit || s.vaddr < prev_end ||
            s.file_offset + s.file_size > size || s.file_size > s.mem_size ||
            (s.writable && s.executable))
            std::abort();
        prev_end = s.vaddr + s.mem_size;
    }
    if (image->end > kLimit) std::abort();
    return 0;
}
