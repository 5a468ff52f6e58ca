// Guest memory: one host mapping of guest-physical [0, size), and the one checked
// translation every guest-supplied (address, length) pair goes through.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "wisp/result.h"
#include "wisp/snapshot/state.h"
#include "wisp_hypercall.h"

namespace wisp::vmm {

// Why a translation failed; maps onto the VM's exit reason.
enum class RangeError {
    kOutOfRange,  // the range leaves guest memory
    kOverflow,    // gpa + len wraps around
};

// The result of a translation: a host span, or why there is none.
struct Translation {
    std::span<uint8_t> bytes;
    bool ok = false;
    RangeError error = RangeError::kOutOfRange;
};

class GuestMemory {
public:
    GuestMemory() = default;
    ~GuestMemory();
    GuestMemory(GuestMemory &&other) noexcept;
    GuestMemory &operator=(GuestMemory &&other) noexcept;
    GuestMemory(const GuestMemory &) = delete;
    GuestMemory &operator=(const GuestMemory &) = delete;

    // Fresh zeroed memory: anonymous, private, lazily backed (MAP_NORESERVE).
    // `size` must be a multiple of 2 MiB within WISP_MEM_MIN..WISP_MEM_MAX.
    // With `at`, exactly there (a range KVM already knows, see
    // Vmm::prepare_memory); EEXIST if something else is mapped there.
    static Result<GuestMemory> anonymous(uint64_t size, uint8_t *at = nullptr);

    // A private copy-on-write mapping of `fd` (e.g. a snapshot's memory file):
    // pages load lazily and writes never reach the file. `at` as above.
    static Result<GuestMemory> map_file(int fd, uint64_t size, uint8_t *at = nullptr);

    // Maps the given page runs of `fd` (a diff snapshot's memory file, laid out at
    // guest-physical offsets) privately over this mapping, each at its own offset:
    // the pages of a diff replace those of the full snapshot underneath, still
    // lazily and copy-on-write. Only before KVM uses the memory.
    Status overlay_file(int fd, std::span<const snapshot::PageRun> runs);

    // The size rule for both constructors.
    static Status check_size(uint64_t size);

    uint64_t size() const { return size_; }
    uint8_t *host_base() const { return base_; }
    bool valid() const { return base_ != nullptr; }

    // The one checked translation: guest-physical [gpa, gpa + len) to host bytes.
    // Rejects ranges that overflow or leave guest memory. len == 0 is valid if
    // gpa <= size.
    Translation translate(uint64_t gpa, uint64_t len) const {
        Translation t;
        uint64_t end;
        if (__builtin_add_overflow(gpa, len, &end)) {
            t.error = RangeError::kOverflow;
            return t;
        }
        if (end > size_) {
            t.error = RangeError::kOutOfRange;
            return t;
        }
        t.bytes = std::span<uint8_t>(base_ + gpa, len);
        t.ok = true;
        return t;
    }

    // Copies a trivially copyable struct out of / into guest memory; false if the
    // range is bad. Copies (not references) so the guest cannot change a value
    // between the monitor's check and its use.
    template <class T>
    bool read(uint64_t gpa, T *out) const {
        static_assert(std::is_trivially_copyable_v<T>);
        Translation t = translate(gpa, sizeof(T));
        if (!t.ok) return false;
        std::memcpy(out, t.bytes.data(), sizeof(T));
        return true;
    }
    template <class T>
    bool write(uint64_t gpa, const T &value) const {
        static_assert(std::is_trivially_copyable_v<T>);
        Translation t = translate(gpa, sizeof(T));
        if (!t.ok) return false;
        std::memcpy(t.bytes.data(), &value, sizeof(T));
        return true;
    }

private:
    GuestMemory(uint8_t *base, uint64_t size) : base_(base), size_(size) {}
    void release();

    uint8_t *base_ = nullptr;
    uint64_t size_ = 0;
};

}  // namespace wisp::vmm
