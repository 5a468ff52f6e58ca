#include "wisp/vmm/fault.h"

#include <cstdio>

namespace wisp::vmm {

namespace {

constexpr uint8_t kVectorDivide = 0;
constexpr uint8_t kVectorInvalidOpcode = 6;
constexpr uint8_t kVectorGeneralProtection = 13;
constexpr uint8_t kVectorPageFault = 14;
constexpr uint32_t kPfWrite = 1u << 1;
constexpr uint32_t kPfFetch = 1u << 4;

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

// Skips legacy and REX prefixes; returns the opcode's offset.
size_t skip_prefixes(const uint8_t *insn, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint8_t b = insn[i];
        bool legacy = b == 0x66 || b == 0x67 || b == 0xf2 || b == 0xf3 || b == 0x2e ||
                      b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 || b == 0x65 || b == 0xf0;
        bool rex = (b & 0xf0) == 0x40;
        if (!legacy && !rex) break;
        i++;
    }
    return i;
}

FaultReport page_fault(const ShutdownState &s, const GuestLayout &l) {
    const uint64_t addr = s.cr2;
    const PageAccess access = l.access_at(addr);
    const bool fetch = s.error_code && (*s.error_code & kPfFetch);
    const bool write = s.error_code ? (*s.error_code & kPfWrite) != 0
                                    : access == PageAccess::kUserRead ||
                                          access == PageAccess::kUserReadExec;
    const uint64_t guard = l.guard_page();
    if (addr >= guard && addr < guard + WISP_PAGE_SIZE)
        return {WISP_EXIT_STACK_OVERFLOW,
                "access to the stack guard page at " + hex(addr) + " (rsp " +
                    hex(s.rsp) + ")"};
    if (fetch && access != PageAccess::kNone && access != PageAccess::kSupervisor)
        return {WISP_EXIT_EXECUTE_VIOLATION,
                "instruction fetch from " + std::string(page_access_name(access)) + " page at " +
                    hex(addr)};
    if (write && (access == PageAccess::kUserRead || access == PageAccess::kUserReadExec))
        return {WISP_EXIT_READ_ONLY_WRITE,
                "write to " + std::string(page_access_name(access)) + " page at " + hex(addr)};
    std::string what = addr < WISP_PAGE_SIZE ? "null pointer access" : "access to unmapped memory";
    if (access == PageAccess::kSupervisor) what = "access to monitor-only memory";
    return {WISP_EXIT_UNMAPPED_ACCESS,
            what + " at " + hex(addr) + (fetch ? " (instruction fetch)" : write ? " (write)" : "")};
}

}  // namespace

const char *privileged_instruction_name(const uint8_t *insn, size_t len) {
    size_t i = skip_prefixes(insn, len);
    if (i >= len) return nullptr;
    uint8_t op = insn[i];
    switch (op) {
        case 0xfa: return "cli";
        case 0xfb: return "sti";
        case 0xf4: return "hlt";
        case 0xe4: case 0xe5: case 0xec: case 0xed: return "in";
        case 0xe6: case 0xe7: case 0xee: case 0xef: return "out (port outside the hypercall range)";
        case 0x6c: case 0x6d: return "ins";
        case 0x6e: case 0x6f: return "outs";
        case 0xcc: return "int3 (no interrupt handlers)";
        case 0xcd: return "int (no interrupt handlers)";
        case 0xcf: return "iret";
        default: break;
    }
    if (op != 0x0f || i + 1 >= len) return nullptr;
    switch (insn[i + 1]) {
        case 0x30: return "wrmsr";
        case 0x32: return "rdmsr";
        case 0x06: return "clts";
        case 0x08: return "invd";
        case 0x09: return "wbinvd";
        case 0x20: case 0x22: return "mov to/from a control register";
        case 0x21: case 0x23: return "mov to/from a debug register";
        case 0x00: return "ltr/lldt/str/sldt";
        case 0x01: return "lgdt/lidt/invlpg (system instruction)";
        case 0x05: return "syscall (not enabled)";
        case 0x07: return "sysret";
        case 0x34: return "sysenter";
        case 0x35: return "sysexit";
        case 0x33: return "rdpmc";
        default: return nullptr;
    }
}

FaultReport classify_shutdown(const ShutdownState &s, const GuestLayout &l) {
    const PageAccess at_rip = l.access_at(s.rip);
    const std::string where = " at rip " + hex(s.rip);
    if (s.vector == kVectorPageFault || (!s.vector && s.cr2 != 0)) return page_fault(s, l);
    if (at_rip != PageAccess::kUserReadExec)
        return {WISP_EXIT_EXECUTE_VIOLATION,
                "jump to " + std::string(page_access_name(at_rip)) + " memory" + where};
    if (const char *name = privileged_instruction_name(s.insn, s.insn_len))
        return {WISP_EXIT_PRIVILEGED_INSTRUCTION, std::string(name) + " in ring 3" + where};
    size_t op = skip_prefixes(s.insn, s.insn_len);
    bool ud2 = op + 1 < s.insn_len && s.insn[op] == 0x0f && s.insn[op + 1] == 0x0b;
    if (ud2 || s.vector == kVectorInvalidOpcode)
        return {WISP_EXIT_INVALID_OPCODE, std::string(ud2 ? "ud2" : "invalid opcode") + where};
    if (s.vector == kVectorDivide) return {WISP_EXIT_TRIPLE_FAULT, "divide error" + where};
    if (s.vector == kVectorGeneralProtection)
        return {WISP_EXIT_TRIPLE_FAULT, "general protection fault" + where};
    return {WISP_EXIT_TRIPLE_FAULT,
            (s.vector ? "exception " + std::to_string(*s.vector) : std::string("triple fault")) +
                where};
}

}  // namespace wisp::vmm
