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

wisp_boot_info make_boot_info(const GuestLayout &layout, const GuestIdentity &id,
                              const std::string &cmdline, const wisp_clock_info &clock) {
    wisp_boot_info bi{};
    bi.magic = WISP_BOOT_MAGIC;
    bi.abi_version = WISP_ABI_VERSION;
    bi.mem_size = layout.mem_size;
    bi.heap_start = layout.image_end;
    bi.heap_end = layout.heap_end;
    bi.stack_top = layout.stack_top;
    std::memcpy(bi.mac, id.mac.data(), 6);
    std::memcpy(bi.gw_mac, id.gw_mac.data(), 6);
    bi.ip_family = id.ip_family;
    bi.prefix_len = id.prefix_len;
    std::memcpy(bi.ip, id.ip.data(), 16);
    std::memcpy(bi.gw_ip, id.gw_ip.data(), 16);
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

}  // namespace wisp::vmm
