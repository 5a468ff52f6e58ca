#include "wisp/vmm/boot_info.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace wisp::vmm {

static_assert(sizeof(wisp_boot_info) <= WISP_PAGE_SIZE, "boot info must fit its page");

Status check_identity(const GuestIdentity &id) {
    if (id.ip_family != 4 && id.ip_family != 6) return invalid("ip family must be 4 or 6");
    if (id.prefix_len > (id.ip_family == 4 ? 32 : 128)) return invalid("prefix length too long");
    return {};
}

snapshot::IdentityState GuestIdentity::save() const {
    snapshot::IdentityState s{};
    identity_to(*this, s);
    return s;
}

Result<GuestIdentity> GuestIdentity::restore(const snapshot::IdentityState &s) {
    GuestIdentity id = identity_from(s);
    WISP_RETURN_IF_ERROR(check_identity(id));
    return id;
}

wisp_boot_info make_boot_info(const GuestLayout &layout, const GuestIdentity &id,
                              const std::string &cmdline, const wisp_clock_info &clock) {
    wisp_boot_info bi{};
    bi.magic = WISP_BOOT_MAGIC;
    bi.abi_version = WISP_ABI_VERSION;
    bi.mem_size = layout.mem_size;
    bi.heap_start = layout.image_end;
    bi.heap_end = layout.heap_end;
    bi.stack_top = layout.stack_top;
    identity_to(id, bi);
    bi.clock = clock;
    bi.restore_count = 0;
    size_t n = std::min(cmdline.size(), size_t{WISP_CMDLINE_MAX - 1});
    std::memcpy(bi.cmdline, cmdline.data(), n);
    bi.cmdline_len = static_cast<uint32_t>(n);
    return bi;
}

Status write_clock_info(const GuestMemory &memory, const wisp_clock_info &clock) {
    const uint64_t at = WISP_BOOT_INFO_GPA + offsetof(wisp_boot_info, clock);
    Translation t = memory.translate(at, sizeof(wisp_clock_info));
    if (!t.ok) return invalid("boot info outside guest memory");
    auto *live = reinterpret_cast<wisp_clock_info *>(t.bytes.data());
    uint32_t seq = live->seq;
    __atomic_store_n(&live->seq, seq | 1u, __ATOMIC_RELEASE);
    wisp_clock_info next = clock;
    next.seq = seq | 1u;
    std::memcpy(live, &next, sizeof next);
    __atomic_store_n(&live->seq, (seq | 1u) + 1u, __ATOMIC_RELEASE);
    return {};
}

Result<wisp_clock_info> read_clock_info(const GuestMemory &memory) {
    wisp_clock_info info;
    if (!memory.read(WISP_BOOT_INFO_GPA + offsetof(wisp_boot_info, clock), &info))
        return invalid("boot info outside guest memory");
    return info;
}

Status write_restore_info(const GuestMemory &memory, uint32_t restore_count,
                          const GuestIdentity &id) {
    Translation t = memory.translate(WISP_BOOT_INFO_GPA, sizeof(wisp_boot_info));
    if (!t.ok) return invalid("boot info outside guest memory");
    auto *bi = reinterpret_cast<wisp_boot_info *>(t.bytes.data());
    identity_to(id, *bi);
    // Last: the guest treats a changed count as "re-read everything above".
    __atomic_store_n(&bi->restore_count, restore_count, __ATOMIC_RELEASE);
    return {};
}

}  // namespace wisp::vmm
