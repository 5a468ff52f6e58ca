// libFuzzer target: any packet a controller (or an attacker with access to the
// control socket) sends is decoded or rejected without crashing.
#include <cstdint>

#include "wisp/vmm/control.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    using namespace wisp::vmm::control;
    auto m = decode(std::span<const uint8_t>(data, size));
    if (!m) return 0;
    if (m->type == WISP_CTL_BOOT) {
        for (size_t fds = 0; fds < 4; fds++) (void)decode_boot(payload_as<wisp_ctl_boot>(*m), fds);
    }
    if (m->type == WISP_CTL_SNAPSHOT) {
        for (size_t fds = 0; fds < 4; fds++) (void)decode_snapshot(payload_as<wisp_ctl_snapshot>(*m), fds);
    }
    if (m->type == WISP_CTL_RESTORE) {
        for (size_t fds = 0; fds < 8; fds++) (void)decode_restore(payload_as<wisp_ctl_restore>(*m), fds);
    }
    return 0;
}
