// Loader for wisp guest images: static, non-PIE ELF64 x86-64 executables that
// carry the `wisp` ABI note. Validation is a pure function over the file bytes
// (fuzzed by tests/vm/elf_fuzzer.cpp); loading copies the validated segments into
// fresh guest memory.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "wisp/result.h"
#include "wisp/vmm/guest_memory.h"

namespace wisp::vmm {

struct ElfSegment {
    uint64_t vaddr = 0;        // == guest-physical address (identity map)
    uint64_t mem_size = 0;     // bytes in memory (the tail past file_size is zero)
    uint64_t file_offset = 0;
    uint64_t file_size = 0;
    bool writable = false;
    bool executable = false;
};

struct ElfImage {
    uint64_t entry = 0;
    uint32_t abi_version = 0;
    std::vector<ElfSegment> segments;  // sorted by vaddr, page ranges disjoint
    uint64_t end = 0;                  // first byte after the last segment, page aligned
};

// Most program headers (hence segments) an image may have.
constexpr uint16_t kMaxImageSegments = 64;

// Largest image file the monitor reads.
constexpr uint64_t kMaxImageFileSize = 256ull << 20;

// Validates `file` as a wisp guest image whose segments must lie within
// [WISP_IMAGE_BASE, load_limit): ELF64, little endian, x86-64, ET_EXEC, no
// interpreter or dynamic section, every PT_LOAD inside the file and the limit, no
// page shared by two segments, no writable+executable segment, entry inside an
// executable segment, and a `wisp` ABI note equal to WISP_ABI_VERSION. Every
// rejection says which rule failed.
Result<ElfImage> parse_elf(std::span<const uint8_t> file, uint64_t load_limit);

// Copies the segments of a parsed image into `memory` (assumed zeroed).
Status load_elf(const ElfImage &image, std::span<const uint8_t> file, const GuestMemory &memory);

// Reads a whole image file from `fd` (at most kMaxImageFileSize bytes).
Result<std::vector<uint8_t>> read_image_file(int fd);

}  // namespace wisp::vmm
