// Test guests on the real KVM, in-process through wisp::vmm_core: what a
// well-behaved guest sees (console, clocks, poll timeouts, ready, halt status).
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <sstream>

#include "vm_helpers.h"
#include "wisp/test/capabilities.h"
#include "wisp/test/paths.h"
#include "wisp/vmm/clock.h"

using wisp::test::run_guest;

TEST(Guest, ConsoleHelloReachesTheConsoleLog) {
    WISP_REQUIRE_KVM();
    auto run = run_guest("vmtest_hello", "");
    EXPECT_EQ(run.exit.reason, WISP_EXIT_HALT) << run.summary;
    EXPECT_EQ(run.console, "hello from a wisp guest\n");
    EXPECT_EQ(run.stats.console_bytes, run.console.size());
    EXPECT_EQ(run.ready_calls, 1);
}

TEST(Guest, HaltStatusPropagatesToTheExitInfo) {
    WISP_REQUIRE_KVM();
    auto run = run_guest("vmtest_hello", "status=42");
    EXPECT_EQ(run.exit.reason, WISP_EXIT_HALT) << run.summary;
    EXPECT_EQ(run.exit.status, 42);
    EXPECT_EQ(run.summary, "halt status 42");
}

TEST(Guest, BootsWithLargeAndSmallMemory) {
    WISP_REQUIRE_KVM();
    for (uint64_t mem : {8ull << 20, 1ull << 30, 4ull << 30}) {
        auto run = run_guest("vmtest_hello", "status=7", mem);
        EXPECT_EQ(run.exit.reason, WISP_EXIT_HALT) << mem << ": " << run.summary;
        EXPECT_EQ(run.exit.status, 7) << mem;
    }
}

TEST(Guest, ClocksAreMonotonicAndPlausible) {
    WISP_REQUIRE_KVM();
    uint64_t host_mono_before = wisp::vmm::host_monotonic_ns();
    uint64_t host_wall_before = wisp::vmm::host_realtime_ns();
    auto run = run_guest("vmtest_clocks", "");
    uint64_t host_mono_after = wisp::vmm::host_monotonic_ns();
    uint64_t host_wall_after = wisp::vmm::host_realtime_ns();
    ASSERT_EQ(run.exit.reason, WISP_EXIT_HALT) << run.summary << "\n" << run.console;
    EXPECT_EQ(run.exit.status, 0) << run.console;
    auto at = run.console.find("mono=");
    ASSERT_NE(at, std::string::npos) << run.console;
    uint64_t mono = 0, wall = 0;
    std::istringstream in(run.console.substr(at + 5));
    std::string wall_field;
    in >> mono >> wall_field;
    wall = std::stoull(wall_field.substr(5));
    // A fresh guest's monotonic clock is the host's.
    EXPECT_GE(mono, host_mono_before);
    EXPECT_LE(mono, host_mono_after);
    EXPECT_GE(wall, host_wall_before);
    EXPECT_LE(wall, host_wall_after);
    EXPECT_NE(run.console.find("SUCCESS"), std::string::npos);
}

TEST(Guest, PollTimeoutsWaitAboutAsLongAsAsked) {
    WISP_REQUIRE_KVM();
    auto run = run_guest("vmtest_poll_timeout", "");
    ASSERT_EQ(run.exit.reason, WISP_EXIT_HALT) << run.summary << "\n" << run.console;
    std::istringstream lines(run.console);
    std::string word;
    int checked = 0;
    while (lines >> word) {
        if (word == "slept") {
            uint64_t asked, took, events;
            lines >> asked >> took >> events;
            // Never early; late by at most 20 ms plus 50 % (the host is shared).
            EXPECT_GE(took, asked) << run.console;
            EXPECT_LE(took, asked + asked / 2 + 20000000) << run.console;
            EXPECT_EQ(events, uint64_t{WISP_POLL_TIMEOUT});
            checked++;
        } else if (word == "nonblocking") {
            uint64_t events;
            lines >> word >> events;
            EXPECT_EQ(events, 0u) << "a deadline of 0 never times out";
        }
    }
    EXPECT_EQ(checked, 4) << run.console;
}

// The hooks the snapshot code builds on: a guest stopped at `ready` moves to a
// brand-new VM — its vCPU state through Vcpu::save()/restore(), its memory as a
// private mapping of a file — and continues there to its halt.
TEST(Snapshotability, AGuestMovesToAFreshVmThroughVcpuStateAndAFileMapping) {
    WISP_REQUIRE_KVM();
    constexpr uint64_t kMem = 32ull << 20;
    auto image = wisp::test::read_file(wisp::test::image_path("vmtest_hello"));
    wisp::test::ScopedTap tap("snp");
    wisp::test::silence_tap(tap);
    auto first = wisp::vmm::Vmm::create();
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE((*first)->boot(wisp::test::test_boot_config("status=77", kMem), image,
                               wisp::vmm::Tap(wisp::UniqueFd(dup(tap.fd()))),
                               wisp::vmm::ConsoleLog())
                    .ok());
    ASSERT_EQ((*first)->run(), wisp::vmm::RunStop::kReady);
    ASSERT_TRUE((*first)->vcpu().complete_pending_io().ok());
    auto state = (*first)->vcpu().save();
    ASSERT_TRUE(state.ok()) << state.error().describe();
    wisp::UniqueFd file(memfd_create("guest-memory", MFD_CLOEXEC));
    ASSERT_EQ(ftruncate(file.get(), kMem), 0);
    ASSERT_EQ(pwrite(file.get(), (*first)->memory().host_base(), kMem, 0), ssize_t(kMem));
    wisp::vmm::GuestLayout layout = (*first)->layout();
    first->reset();  // the original VM is gone

    auto second = wisp::vmm::Vmm::create();
    ASSERT_TRUE(second.ok());
    auto memory = wisp::vmm::GuestMemory::map_file(file.get(), kMem);
    ASSERT_TRUE(memory.ok()) << memory.error().describe();
    ASSERT_TRUE((*second)->vm().set_memory(*memory).ok());
    (*second)->memory() = std::move(*memory);
    (*second)->layout() = layout;
    (*second)->tap() = wisp::vmm::Tap(wisp::UniqueFd(dup(tap.fd())));
    auto restored = (*second)->vcpu().restore(*state);
    ASSERT_TRUE(restored.ok()) << restored.error().describe();
    while ((*second)->run() != wisp::vmm::RunStop::kExited) {
    }
    EXPECT_EQ((*second)->exit_summary(), "halt status 77");
}
