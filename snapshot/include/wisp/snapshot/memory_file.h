// The `memory` file of a snapshot: which guest pages a snapshot must write, and
// writing them so that zero pages stay holes.
//
// The monitor finds the pages that can differ from what lies underneath its guest
// mapping through /proc/self/pagemap (no exits, no dirty logging): in an anonymous
// mapping only resident (or swapped) pages can be non-zero; in a private mapping of
// a snapshot's memory file, the pages the guest or the monitor wrote are exactly the
// resident pages that are no longer file pages (copy-on-write made them anonymous).
// The page-list logic here is pure and unit tested; the scanning and writing
// functions are thin loops over pread/pwrite/lseek.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "wisp/result.h"
#include "wisp/snapshot/state.h"

namespace wisp::snapshot {

inline constexpr uint64_t kPageSize = 4096;

// /proc/self/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
inline constexpr uint64_t kPagemapPresent = 1ull << 63;
inline constexpr uint64_t kPagemapSwapped = 1ull << 62;
inline constexpr uint64_t kPagemapFilePage = 1ull << 61;

enum class PageFilter {
    kResident,  // present or swapped: every page touched since the mapping was made
    kPrivate,   // present and anonymous, or swapped: pages written since then
};

// Appends the pages among `entries` (pagemap entries of consecutive pages, the
// first being page `first_page`) that pass `filter` to `runs`, extending the last
// run where they are adjacent.
void collect_pages(std::span<const uint64_t> entries, uint64_t first_page, PageFilter filter,
                   std::vector<PageRun> &runs);

// Scans /proc/self/pagemap (open at `pagemap_fd`) for the mapping [base, base + size).
// Pages are numbered from `base`.
Result<std::vector<PageRun>> scan_pagemap(int pagemap_fd, const void *base, uint64_t size,
                                          PageFilter filter);

// The pages of file `fd` below `size` that hold data (SEEK_DATA / SEEK_HOLE).
Result<std::vector<PageRun>> file_data_runs(int fd, uint64_t size);

// The union of two sorted, disjoint run lists.
std::vector<PageRun> merge_runs(std::span<const PageRun> a, std::span<const PageRun> b);

// Joins runs separated by at most `max_gap` pages; doubles the gap until at most
// `max_runs` runs remain. Fewer runs mean fewer mappings when a diff is restored;
// the pages bridged over are written too (with their current content).
std::vector<PageRun> coalesce_runs(std::vector<PageRun> runs, uint64_t max_gap, size_t max_runs);

uint64_t count_pages(std::span<const PageRun> runs);

struct MemoryWriteStats {
    uint64_t data_bytes = 0;     // bytes written (non-zero pages)
    uint64_t pages_checked = 0;  // pages looked at
};

// Writes every non-zero page of `memory` that lies in `runs` to `fd`, at the page's
// own offset, then sets the file's size to memory.size(). Zero pages and pages
// outside `runs` are never written, so they stay holes in a fresh file.
Result<MemoryWriteStats> write_memory_pages(int fd, std::span<const uint8_t> memory,
                                            std::span<const PageRun> runs);

// True if the page at `p` (kPageSize bytes) is all zero.
bool page_is_zero(const uint8_t *p);

}  // namespace wisp::snapshot
