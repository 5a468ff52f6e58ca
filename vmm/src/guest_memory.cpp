#include "wisp/vmm/guest_memory.h"

#include <sys/mman.h>

#include <utility>

namespace wisp::vmm {

namespace {
constexpr uint64_t kLargePage = 2ull << 20;
}

GuestMemory::~GuestMemory() { release(); }

GuestMemory::GuestMemory(GuestMemory &&other) noexcept
    : base_(std::exchange(other.base_, nullptr)), size_(std::exchange(other.size_, 0)) {}

GuestMemory &GuestMemory::operator=(GuestMemory &&other) noexcept {
    if (this != &other) {
        release();
        base_ = std::exchange(other.base_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

void GuestMemory::release() {
    if (base_) munmap(base_, size_);
    base_ = nullptr;
    size_ = 0;
}

Status GuestMemory::check_size(uint64_t size) {
    if (size < WISP_MEM_MIN || size > WISP_MEM_MAX)
        return invalid("guest memory " + std::to_string(size) + " bytes is outside 8 MiB..4 GiB");
    // 2 MiB granularity: the page tables map everything past the image with 2 MiB
    // pages, and the stack sits at the very top.
    if (size % kLargePage != 0)
        return invalid("guest memory " + std::to_string(size) + " bytes is not a multiple of 2 MiB");
    return {};
}

namespace {
// mmap at `at` without replacing anything (MAP_FIXED_NOREPLACE), or anywhere.
Result<uint8_t *> map_at(uint8_t *at, uint64_t size, int flags, int fd, const char *what) {
    if (at) flags |= MAP_FIXED_NOREPLACE;
    void *p = mmap(at, size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (p == MAP_FAILED) return errno_error(what);
    if (at && p != at) {  // a kernel without MAP_FIXED_NOREPLACE treats it as a hint
        munmap(p, size);
        return Error{EEXIST, std::string(what) + ": the prepared range is taken"};
    }
    return static_cast<uint8_t *>(p);
}
}  // namespace

Result<GuestMemory> GuestMemory::anonymous(uint64_t size, uint8_t *at) {
    WISP_RETURN_IF_ERROR(check_size(size));
    auto p = map_at(at, size, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, "mmap guest memory");
    if (!p) return std::move(p).error();
    return GuestMemory(*p, size);
}

Result<GuestMemory> GuestMemory::map_file(int fd, uint64_t size, uint8_t *at) {
    WISP_RETURN_IF_ERROR(check_size(size));
    auto p = map_at(at, size, MAP_PRIVATE | MAP_NORESERVE, fd, "mmap guest memory file");
    if (!p) return std::move(p).error();
    return GuestMemory(*p, size);
}

Status GuestMemory::overlay_file(int fd, std::span<const snapshot::PageRun> runs) {
    const uint64_t pages = size_ / WISP_PAGE_SIZE;
    for (const snapshot::PageRun &r : runs) {
        if (r.first_page >= pages || r.page_count > pages - r.first_page)
            return invalid("overlay run outside guest memory");
        const uint64_t offset = r.first_page * WISP_PAGE_SIZE;
        void *p = mmap(base_ + offset, r.page_count * WISP_PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED, fd, static_cast<off_t>(offset));
        if (p == MAP_FAILED) return errno_error("mmap diff memory over the full snapshot");
    }
    return {};
}

}  // namespace wisp::vmm
