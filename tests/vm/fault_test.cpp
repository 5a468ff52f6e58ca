// Naming a guest's death from what the CPU left behind (pure classifier).
#include <gtest/gtest.h>

#include "wisp/vmm/fault.h"

using namespace wisp::vmm;

namespace {

GuestLayout layout() {
    ElfImage img;
    img.entry = 0x100000;
    img.segments = {{0x100000, 0x2000, 0, 0, false, true},
                    {0x102000, 0x1000, 0, 0, false, false},
                    {0x103000, 0x1000, 0, 0, true, false}};
    img.end = 0x104000;
    return make_layout(32ull << 20, img);
}

ShutdownState at_text(std::initializer_list<uint8_t> insn) {
    ShutdownState s;
    s.rip = 0x100010;
    s.rsp = 0x1ff0000;
    size_t i = 0;
    for (uint8_t b : insn) s.insn[i++] = b;
    s.insn_len = 15;
    return s;
}

}  // namespace

TEST(FaultClassifier, NamesPrivilegedInstructionsFromTheirBytes) {
    struct Case {
        std::initializer_list<uint8_t> insn;
        const char *name;
    } cases[] = {{{0xfa}, "cli"},       {{0xfb}, "sti"},       {{0xf4}, "hlt"},
                 {{0x0f, 0x30}, "wrmsr"}, {{0x0f, 0x32}, "rdmsr"}, {{0xec}, "in"},
                 {{0x66, 0xef}, "out"}, {{0x0f, 0x22, 0xd8}, "control register"},
                 {{0x0f, 0x01, 0x10}, "lgdt"}};
    for (const Case &c : cases) {
        ShutdownState s = at_text(c.insn);
        s.vector = 13;
        FaultReport r = classify_shutdown(s, layout());
        EXPECT_EQ(r.reason, WISP_EXIT_PRIVILEGED_INSTRUCTION) << c.name;
        EXPECT_NE(r.detail.find(c.name), std::string::npos) << r.detail;
        EXPECT_NE(r.detail.find("rip 0x100010"), std::string::npos) << r.detail;
    }
}

TEST(FaultClassifier, NamesPageFaultsByWhereTheyHit) {
    const GuestLayout l = layout();
    struct Case {
        uint64_t cr2;
        uint32_t error;
        wisp_exit_reason reason;
        const char *detail;
    } cases[] = {
        {l.guard_page() + 8, 0x6, WISP_EXIT_STACK_OVERFLOW, "stack guard page"},
        {0x102010, 0x7, WISP_EXIT_READ_ONLY_WRITE, "write to read-only page"},
        {0x100004, 0x7, WISP_EXIT_READ_ONLY_WRITE, "read-execute page"},
        {WISP_BOOT_INFO_GPA, 0x7, WISP_EXIT_READ_ONLY_WRITE, "0x1000"},
        {0x8, 0x4, WISP_EXIT_UNMAPPED_ACCESS, "null pointer"},
        {0x6000, 0x5, WISP_EXIT_UNMAPPED_ACCESS, "monitor-only"},
        {64ull << 20, 0x4, WISP_EXIT_UNMAPPED_ACCESS, "unmapped memory"},
        {0x103000, 0x15, WISP_EXIT_EXECUTE_VIOLATION, "instruction fetch"},
    };
    for (const Case &c : cases) {
        ShutdownState s = at_text({0x90});
        s.cr2 = c.cr2;
        s.vector = 14;
        s.error_code = c.error;
        FaultReport r = classify_shutdown(s, l);
        EXPECT_EQ(r.reason, c.reason) << r.detail;
        EXPECT_NE(r.detail.find(c.detail), std::string::npos) << r.detail;
    }
}

TEST(FaultClassifier, FallsBackToCr2AndBytesWithoutAnExceptionVector) {
    const GuestLayout l = layout();
    ShutdownState s = at_text({0x89, 0x07});
    s.cr2 = 0x102000;  // rodata, no vector: a write is assumed
    EXPECT_EQ(classify_shutdown(s, l).reason, WISP_EXIT_READ_ONLY_WRITE);
    ShutdownState priv = at_text({0xf4});
    EXPECT_EQ(classify_shutdown(priv, l).reason, WISP_EXIT_PRIVILEGED_INSTRUCTION);
    ShutdownState ud = at_text({0x0f, 0x0b});
    EXPECT_EQ(classify_shutdown(ud, l).reason, WISP_EXIT_INVALID_OPCODE);
    ShutdownState other = at_text({0x90});
    FaultReport r = classify_shutdown(other, l);
    EXPECT_EQ(r.reason, WISP_EXIT_TRIPLE_FAULT);
    EXPECT_NE(r.detail.find("triple fault"), std::string::npos);
}

TEST(FaultClassifier, AJumpOutOfTheTextIsAnExecuteViolation) {
    ShutdownState s;
    s.rip = 0x103010;  // data page
    s.vector = 13;
    FaultReport r = classify_shutdown(s, layout());
    EXPECT_EQ(r.reason, WISP_EXIT_EXECUTE_VIOLATION);
}
