// libFuzzer target: any bytes handed to a restore as a vmstate file are decoded
// and validated - including the machine-model checks a restore makes before it
// touches KVM - or rejected, never crash. Each input is tried as is and once
// more "resealed" (declared size and checksum made to match), so mutations reach
// the section parser and the field checks behind the checksum.
#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "wisp/snapshot/vmstate.h"
#include "wisp/vmm/boot_info.h"
#include "wisp/vmm/machine.h"

namespace {
void try_decode(std::span<const uint8_t> bytes) {
    auto state = wisp::snapshot::decode_vmstate(bytes);
    if (!state) return;
    (void)wisp::vmm::check_restorable(state->vcpu.regs, state->vcpu.sregs, state->memory.mem_size, true);
    (void)wisp::vmm::GuestLayout::restore(state->layout);
    (void)wisp::vmm::GuestIdentity::restore(state->identity);
    (void)wisp::snapshot::encode_vmstate(*state);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    try_decode(std::span<const uint8_t>(data, size));
    if (size < sizeof(wisp::snapshot::FileHeader) + 8 || size > wisp::snapshot::kMaxVmstateSize) return 0;
    std::vector<uint8_t> sealed(data, data + size);
    uint64_t file_size = size;
    std::memcpy(sealed.data() + offsetof(wisp::snapshot::FileHeader, file_size), &file_size, 8);
    uint64_t sum = XXH3_64bits(sealed.data(), size - 8);
    std::memcpy(sealed.data() + size - 8, &sum, 8);
    try_decode(sealed);
    return 0;
}
