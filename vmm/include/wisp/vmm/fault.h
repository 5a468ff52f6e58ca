// Naming why a guest died. With no IDT every guest exception escalates to a
// triple fault (KVM_EXIT_SHUTDOWN); the monitor then inspects what the CPU left
// behind (exception vector and error code where KVM keeps them, CR2, the bytes at
// rip) and the guest's memory map to give the death a name. Pure logic, unit
// tested in tests/vm/fault_test.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "wisp/vmm/machine.h"
#include "wisp_control.h"

namespace wisp::vmm {

struct ShutdownState {
    uint64_t rip = 0;
    uint64_t rsp = 0;
    uint64_t cr2 = 0;
    // The exception that started the escalation, if KVM reported one.
    std::optional<uint8_t> vector;
    std::optional<uint32_t> error_code;
    // Up to 15 instruction bytes at rip (fewer if rip is near the end of memory
    // or not in executable guest memory).
    uint8_t insn[15] = {};
    size_t insn_len = 0;
};

struct FaultReport {
    wisp_exit_reason reason = WISP_EXIT_TRIPLE_FAULT;
    std::string detail;
};

FaultReport classify_shutdown(const ShutdownState &state, const GuestLayout &layout);

// The name of a ring-0-only instruction at the start of `insn`, or nullptr.
const char *privileged_instruction_name(const uint8_t *insn, size_t len);

}  // namespace wisp::vmm
