// libFuzzer target: any bytes handed to a restore as a vmstate file are decoded
// and validated - including the machine-model checks a restore makes before it
// touches KVM - or rejected, never crash.
#include <cstdint>

#include "wisp/snapshot/vmstate.h"
#include "wisp/vmm/boot_info.h"
#include "wisp/vmm/machine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    auto state = wisp::snapshot::decode_vmstate(std::span<const uint8_t>(data, size));
    if (!state) return 0;
    (void)wisp::vmm::check_restorable(state->vcpu.regs, state->vcpu.sregs, state->memory.mem_size, true);
    (void)wisp::vmm::GuestLayout::restore(state->layout);
    (void)wisp::vmm::GuestIdentity::restore(state->identity);
    (void)wisp::snapshot::encode_vmstate(*state);
    return 0;
}
