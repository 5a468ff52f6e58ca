// The boot-info page (struct wisp_boot_info at WISP_BOOT_INFO_GPA): what the guest
// learns about itself at entry — memory map, identity, clock calibration.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "wisp/result.h"
#include "wisp/snapshot/state.h"
#include "wisp/vmm/guest_memory.h"
#include "wisp/vmm/machine.h"

namespace wisp::vmm {

// Who the guest is on the network.
struct GuestIdentity {
    std::array<uint8_t, 6> mac{};
    std::array<uint8_t, 6> gw_mac{};
    uint8_t ip_family = 4;
    uint8_t prefix_len = 0;
    std::array<uint8_t, 16> ip{};
    std::array<uint8_t, 16> gw_ip{};

    bool operator==(const GuestIdentity &) const = default;

    // Snapshot state; restore() checks it like a boot command's identity.
    snapshot::IdentityState save() const;
    static Result<GuestIdentity> restore(const snapshot::IdentityState &state);
};

// Checks family (4 or 6) and prefix length (<= 32 or 128).
Status check_identity(const GuestIdentity &id);

// The identity fields of every plain struct that carries them under the same
// names (wisp_boot_info, wisp_ctl_boot, wisp_ctl_restore, snapshot::IdentityState).
template <class Plain>
void identity_to(const GuestIdentity &id, Plain &out) {
    std::memcpy(out.mac, id.mac.data(), 6);
    std::memcpy(out.gw_mac, id.gw_mac.data(), 6);
    out.ip_family = id.ip_family;
    out.prefix_len = id.prefix_len;
    std::memcpy(out.ip, id.ip.data(), 16);
    std::memcpy(out.gw_ip, id.gw_ip.data(), 16);
}
template <class Plain>
GuestIdentity identity_from(const Plain &in) {
    GuestIdentity id;
    std::memcpy(id.mac.data(), in.mac, 6);
    std::memcpy(id.gw_mac.data(), in.gw_mac, 6);
    id.ip_family = in.ip_family;
    id.prefix_len = in.prefix_len;
    std::memcpy(id.ip.data(), in.ip, 16);
    std::memcpy(id.gw_ip.data(), in.gw_ip, 16);
    return id;
}

wisp_boot_info make_boot_info(const GuestLayout &layout, const GuestIdentity &id,
                              const std::string &cmdline, const wisp_clock_info &clock);

// Rewrites the clock calibration of a live guest with the seqlock protocol of
// struct wisp_clock_info (seq odd while writing). Used after a restore.
Status write_clock_info(const GuestMemory &memory, const wisp_clock_info &clock);

// The calibration currently in the boot-info page.
Result<wisp_clock_info> read_clock_info(const GuestMemory &memory);

// After a restore: the new restore count and network identity. The guest notices
// the changed restore_count (guest/net re-applies its addressing then).
Status write_restore_info(const GuestMemory &memory, uint32_t restore_count,
                          const GuestIdentity &identity);

}  // namespace wisp::vmm
