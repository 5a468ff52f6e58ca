// The `vmstate` file: encoding and the validating decoder (docs/snapshot-format.md).
//
//   FileHeader                 magic "WISPSNAP", format version, guest ABI version,
//                              file size, section count
//   { SectionHeader, payload } one per component state (state.h), 8-byte aligned
//   uint64_t checksum          XXH3-64 of every byte before it
//
// The decoder is pure and assumes hostile input: it checks the size cap, the magic,
// both versions, the declared size, the checksum, then every section (known tag,
// exact size, no duplicate, none missing) and finally the meaning of every field
// (validate()). Each rejection says what was wrong. It is fuzzed by
// tests/snapshot/vmstate_fuzzer.cpp.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "wisp/result.h"
#include "wisp/snapshot/state.h"

namespace wisp::snapshot {

inline constexpr uint64_t kMagic = 0x50414e5350534957ull;  // "WISPSNAP" in file order
// Version of this file format, independent of wisp's product version: bumped on
// any change a reader of the previous version would misread.
inline constexpr uint32_t kFormatVersion = 1;
// The largest vmstate a reader accepts (a full one is ~8 KiB; a diff's run list
// is bounded by kMaxRuns).
inline constexpr uint64_t kMaxVmstateSize = 1ull << 20;
inline constexpr uint32_t kMaxRuns = 16384;

struct FileHeader {
    uint64_t magic;
    uint32_t format_version;
    uint32_t abi_version;  // WISP_ABI_VERSION of the guest ABI the guest was running
    uint64_t file_size;    // every byte of the file, header and checksum included
    uint32_t section_count;
    uint32_t header_size;  // sizeof(FileHeader)
};
static_assert(sizeof(FileHeader) == 32);

enum class SectionTag : uint32_t {
    kInfo = 1,      // SnapshotInfo
    kVcpu = 2,      // VcpuState
    kLayout = 3,    // LayoutState
    kIdentity = 4,  // IdentityState
    kClock = 5,     // ClockState
    kMemory = 6,    // MemoryState
    kMonitor = 7,   // MonitorState
    kRuns = 8,      // PageRun[memory.run_count] (diff snapshots only)
};

struct SectionHeader {
    uint32_t tag;   // SectionTag
    uint32_t size;  // payload bytes that follow (then zero padding to 8 bytes)
};
static_assert(sizeof(SectionHeader) == 8);

// The file bytes for `state` (checksum included).
std::vector<uint8_t> encode_vmstate(const VmState &state);

// Parses and validates a whole vmstate file.
Result<VmState> decode_vmstate(std::span<const uint8_t> file);

// The field-level checks decode_vmstate() ends with: kinds and ids, memory size,
// layout (segments sorted, disjoint, inside the image area), identity, clock,
// monitor flags, the run list (sorted, disjoint, non-empty runs inside memory;
// present exactly for diffs).
Status validate(const VmState &state);

// Reads and decodes the vmstate file open at `fd` (at most kMaxVmstateSize bytes).
Result<VmState> read_vmstate(int fd);

}  // namespace wisp::snapshot
