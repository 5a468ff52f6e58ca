// Hostile guests: each misbehaviour must end its VM with the named reason, a
// detail that says what happened, and leave the monitor healthy (the test
// process itself is the monitor here, and it runs every case in turn).
#include <gtest/gtest.h>

#include "vm_helpers.h"
#include "wisp/test/capabilities.h"

using wisp::test::run_guest;

namespace {

struct HostileCase {
    const char *mode;
    wisp_exit_reason reason;
    const char *detail;    // must appear in the exit detail
    uint32_t hypercall;    // hypercall being served when it ended
};

const HostileCase kCases[] = {
    {"bad-pointer", WISP_EXIT_BAD_POINTER, "console data range", WISP_HC_CONSOLE},
    {"bad-struct", WISP_EXIT_BAD_POINTER, "argument struct", WISP_HC_CLOCK},
    {"length-overflow", WISP_EXIT_LENGTH_OVERFLOW, "overflows", WISP_HC_CONSOLE},
    {"oversized-batch", WISP_EXIT_BAD_ARGUMENT, "exceeds 64", WISP_HC_NET_WRITE},
    {"unknown-hypercall", WISP_EXIT_UNKNOWN_HYPERCALL, "number 42", 42},
    {"port-in", WISP_EXIT_BAD_PORT_ACCESS, "in of 4 byte", 0},
    {"foreign-port", WISP_EXIT_PRIVILEGED_INSTRUCTION, "out (port outside", 0},
    {"cli", WISP_EXIT_PRIVILEGED_INSTRUCTION, "cli", 0},
    {"hlt", WISP_EXIT_PRIVILEGED_INSTRUCTION, "hlt", 0},
    {"wrmsr", WISP_EXIT_PRIVILEGED_INSTRUCTION, "wrmsr", 0},
    {"write-rodata", WISP_EXIT_READ_ONLY_WRITE, "write to read-only page", 0},
    {"write-text", WISP_EXIT_READ_ONLY_WRITE, "write to read-execute page", 0},
    {"write-boot-info", WISP_EXIT_READ_ONLY_WRITE, "0x1000", 0},
    {"read-page-tables", WISP_EXIT_UNMAPPED_ACCESS, "monitor-only memory at 0x6000", 0},
    {"null-deref", WISP_EXIT_UNMAPPED_ACCESS, "null pointer", 0},
    {"exec-stack", WISP_EXIT_EXECUTE_VIOLATION, "instruction fetch from read-write", 0},
    {"stack-overflow", WISP_EXIT_STACK_OVERFLOW, "stack guard page", 0},
    {"ud2", WISP_EXIT_INVALID_OPCODE, "ud2", 0},
    {"abort", WISP_EXIT_ABORT, "the guest gave up", WISP_HC_ABORT},
};

}  // namespace

TEST(HostileGuest, EachMisbehaviourEndsItsVmWithTheNamedReason) {
    WISP_REQUIRE_KVM();
    for (const HostileCase &c : kCases) {
        SCOPED_TRACE(c.mode);
        auto run = run_guest("vmtest_hostile", c.mode);
        EXPECT_EQ(run.exit.reason, c.reason) << run.summary;
        EXPECT_NE(run.summary.find(c.detail), std::string::npos) << run.summary;
        EXPECT_EQ(run.exit.hypercall, c.hypercall) << run.summary;
        EXPECT_NE(run.exit.rip, 0u) << "the exit names the guest's rip";
        EXPECT_NE(run.summary.find("rip 0x"), std::string::npos) << run.summary;
    }
    // The monitor (this process) is still healthy: a good guest runs after them all.
    auto good = run_guest("vmtest_hello", "status=3");
    EXPECT_EQ(good.exit.reason, WISP_EXIT_HALT) << good.summary;
    EXPECT_EQ(good.exit.status, 3);
}

TEST(HostileGuest, ConsoleSpamIsCutAtTheLogLimit) {
    WISP_REQUIRE_KVM();
    constexpr uint64_t kLimit = 64 * 1024;
    auto run = run_guest("vmtest_hostile", "console-spam chunks=512", 32ull << 20, kLimit);
    EXPECT_EQ(run.exit.reason, WISP_EXIT_HALT) << run.summary;
    EXPECT_EQ(run.stats.console_bytes, kLimit);
    EXPECT_EQ(run.stats.console_dropped, 512u * WISP_CONSOLE_MAX - kLimit);
    EXPECT_LE(run.console.size(), kLimit + 100) << "the log stays bounded";
    EXPECT_NE(run.console.find("console limit reached"), std::string::npos);
}
