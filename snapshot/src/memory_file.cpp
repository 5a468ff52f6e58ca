#include "wisp/snapshot/memory_file.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace wisp::snapshot {

namespace {

// pwrite batches: contiguous non-zero pages go out in one call, up to this size.
constexpr uint64_t kMaxWriteBytes = 1ull << 20;
// pagemap entries read per pread (covers 32 MiB of guest memory).
constexpr size_t kPagemapBatch = 8192;

void add_page(std::vector<PageRun> &runs, uint64_t page) {
    if (!runs.empty() && runs.back().first_page + runs.back().page_count == page)
        runs.back().page_count++;
    else
        runs.push_back(PageRun{page, 1});
}

void add_run(std::vector<PageRun> &runs, PageRun r) {
    if (r.page_count == 0) return;
    if (!runs.empty()) {
        PageRun &last = runs.back();
        uint64_t last_end = last.first_page + last.page_count;
        if (r.first_page <= last_end) {
            last.page_count = std::max(last_end, r.first_page + r.page_count) - last.first_page;
            return;
        }
    }
    runs.push_back(r);
}

Status write_all(int fd, const uint8_t *data, uint64_t len, uint64_t offset) {
    while (len > 0) {
        ssize_t n = pwrite(fd, data, len, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("write snapshot memory");
        if (n == 0) return Error{ENOSPC, "write snapshot memory: no progress"};
        data += n;
        offset += static_cast<uint64_t>(n);
        len -= static_cast<uint64_t>(n);
    }
    return {};
}

}  // namespace

bool page_is_zero(const uint8_t *p) {
    // Word-wise OR; the compiler vectorizes it. Pages are page aligned.
    const uint64_t *w = reinterpret_cast<const uint64_t *>(p);
    uint64_t acc = 0;
    for (size_t i = 0; i < kPageSize / sizeof(uint64_t); i++) acc |= w[i];
    return acc == 0;
}

void collect_pages(std::span<const uint64_t> entries, uint64_t first_page, PageFilter filter,
                   std::vector<PageRun> &runs) {
    for (size_t i = 0; i < entries.size(); i++) {
        uint64_t e = entries[i];
        bool take = filter == PageFilter::kResident
                        ? (e & (kPagemapPresent | kPagemapSwapped)) != 0
                        : (e & kPagemapSwapped) != 0 ||
                              ((e & kPagemapPresent) != 0 && (e & kPagemapFilePage) == 0);
        if (take) add_page(runs, first_page + i);
    }
}

Result<std::vector<PageRun>> scan_pagemap(int pagemap_fd, const void *base, uint64_t size,
                                          PageFilter filter) {
    std::vector<PageRun> runs;
    std::vector<uint64_t> entries(kPagemapBatch);
    const uint64_t first_vpage = reinterpret_cast<uintptr_t>(base) / kPageSize;
    const uint64_t pages = size / kPageSize;
    for (uint64_t done = 0; done < pages;) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(kPagemapBatch, pages - done));
        ssize_t n;
        do {
            n = pread(pagemap_fd, entries.data(), want * sizeof(uint64_t),
                      static_cast<off_t>((first_vpage + done) * sizeof(uint64_t)));
        } while (n < 0 && errno == EINTR);
        if (n < 0) return errno_error("read /proc/self/pagemap");
        size_t got = static_cast<size_t>(n) / sizeof(uint64_t);
        if (got == 0) return Error{EIO, "read /proc/self/pagemap: no entries"};
        collect_pages(std::span<const uint64_t>(entries.data(), got), done, filter, runs);
        done += got;
    }
    return runs;
}

Result<std::vector<PageRun>> file_data_runs(int fd, uint64_t size) {
    std::vector<PageRun> runs;
    off_t at = 0;
    while (static_cast<uint64_t>(at) < size) {
        off_t data = lseek(fd, at, SEEK_DATA);
        if (data < 0 && errno == ENXIO) break;  // only a hole is left
        if (data < 0) return errno_error("SEEK_DATA in a memory file");
        if (static_cast<uint64_t>(data) >= size) break;
        off_t hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0) return errno_error("SEEK_HOLE in a memory file");
        uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), size);
        uint64_t first = static_cast<uint64_t>(data) / kPageSize;
        uint64_t last = (end + kPageSize - 1) / kPageSize;
        add_run(runs, PageRun{first, last - first});
        at = hole;
    }
    return runs;
}

std::vector<PageRun> merge_runs(std::span<const PageRun> a, std::span<const PageRun> b) {
    std::vector<PageRun> out;
    out.reserve(a.size() + b.size());
    size_t i = 0, j = 0;
    while (i < a.size() || j < b.size()) {
        bool from_a = j == b.size() || (i < a.size() && a[i].first_page <= b[j].first_page);
        add_run(out, from_a ? a[i++] : b[j++]);
    }
    return out;
}

std::vector<PageRun> coalesce_runs(std::vector<PageRun> runs, uint64_t max_gap, size_t max_runs) {
    for (;;) {
        std::vector<PageRun> out;
        out.reserve(runs.size());
        for (const PageRun &r : runs) {
            if (!out.empty()) {
                PageRun &last = out.back();
                uint64_t last_end = last.first_page + last.page_count;
                if (r.first_page - last_end <= max_gap) {
                    last.page_count = r.first_page + r.page_count - last.first_page;
                    continue;
                }
            }
            out.push_back(r);
        }
        if (out.size() <= max_runs || out.size() <= 1) return out;
        runs = std::move(out);
        max_gap = max_gap ? max_gap * 2 : 1;
    }
}

uint64_t count_pages(std::span<const PageRun> runs) {
    uint64_t n = 0;
    for (const PageRun &r : runs) n += r.page_count;
    return n;
}

Result<MemoryWriteStats> write_memory_pages(int fd, std::span<const uint8_t> memory,
                                            std::span<const PageRun> runs) {
    MemoryWriteStats stats;
    const uint64_t pages = memory.size() / kPageSize;
    for (const PageRun &r : runs) {
        if (r.first_page >= pages || r.page_count > pages - r.first_page)
            return invalid("page run outside guest memory");
        uint64_t pending_first = 0, pending_count = 0;  // contiguous non-zero pages not yet written
        auto flush = [&]() -> Status {
            if (pending_count == 0) return {};
            WISP_RETURN_IF_ERROR(write_all(fd, memory.data() + pending_first * kPageSize,
                                           pending_count * kPageSize, pending_first * kPageSize));
            stats.data_bytes += pending_count * kPageSize;
            pending_count = 0;
            return {};
        };
        for (uint64_t p = r.first_page; p < r.first_page + r.page_count; p++) {
            stats.pages_checked++;
            if (page_is_zero(memory.data() + p * kPageSize)) {
                WISP_RETURN_IF_ERROR(flush());
                continue;
            }
            if (pending_count == 0) pending_first = p;
            pending_count++;
            if (pending_count * kPageSize >= kMaxWriteBytes) WISP_RETURN_IF_ERROR(flush());
        }
        WISP_RETURN_IF_ERROR(flush());
    }
    if (ftruncate(fd, static_cast<off_t>(memory.size())) != 0)
        return errno_error("set the size of the snapshot memory file");
    return stats;
}

}  // namespace wisp::snapshot
