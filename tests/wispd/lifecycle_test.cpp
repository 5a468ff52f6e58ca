// The pure lifecycle pieces: transition table, backoff, wake buffer.
#include "wispd/lifecycle.h"

#include <gtest/gtest.h>

#include <set>

namespace {

using namespace wisp::wispd;
using S = ServiceState;

TEST(Lifecycle, TransitionTableMatchesTheDiagram) {
    const S all[] = {S::kCreating, S::kBooting, S::kSnapshotting, S::kStandby,
                     S::kWaking,   S::kRunning, S::kDraining,     S::kFailed};
    std::set<std::pair<S, S>> allowed = {
        {S::kCreating, S::kBooting},     {S::kCreating, S::kStandby},
        {S::kBooting, S::kSnapshotting},
        {S::kSnapshotting, S::kStandby}, {S::kStandby, S::kWaking},
        {S::kWaking, S::kRunning},       {S::kRunning, S::kDraining},
        {S::kRunning, S::kStandby},      {S::kDraining, S::kStandby},
        {S::kFailed, S::kCreating},      {S::kFailed, S::kStandby},
    };
    for (S from : all)
        for (S to : all) {
            bool want = allowed.count({from, to}) || to == S::kFailed;
            EXPECT_EQ(transition_allowed(from, to), want)
                << to_string(from) << " -> " << to_string(to);
        }
}

TEST(Lifecycle, BackoffDoublesUpToItsCap) {
    Backoff b({100, 1000, 3});
    EXPECT_EQ(b.record_failure(), 100u);
    EXPECT_EQ(b.record_failure(), 200u);
    EXPECT_EQ(b.record_failure(), 400u);
    EXPECT_EQ(b.record_failure(), 800u);
    EXPECT_EQ(b.record_failure(), 1000u);
    EXPECT_EQ(b.record_failure(), 1000u);
    for (int i = 0; i < 100; ++i) (void)b.record_failure();
    EXPECT_EQ(b.record_failure(), 1000u) << "no overflow after many failures";
}

TEST(Lifecycle, CrashLoopAfterThresholdUntilASuccess) {
    Backoff b({100, 1000, 3});
    (void)b.record_failure();
    (void)b.record_failure();
    EXPECT_FALSE(b.crash_loop());
    (void)b.record_failure();
    EXPECT_TRUE(b.crash_loop());
    b.record_success();
    EXPECT_FALSE(b.crash_loop());
    EXPECT_EQ(b.consecutive_failures(), 0u);
    EXPECT_EQ(b.record_failure(), 100u);
}

TEST(Lifecycle, BackoffResumesFromARecordedFailureCount) {
    Backoff b({100, 1000, 3}, 4);
    EXPECT_TRUE(b.crash_loop());
    EXPECT_EQ(b.record_failure(), 1000u);
}

TEST(Lifecycle, WakeBufferKeepsOrderAndTheFirstCaptureTime) {
    WakeBuffer w;
    EXPECT_EQ(w.first_captured_ns(), 0u);
    ASSERT_TRUE(w.add({50, {1}}));
    ASSERT_TRUE(w.add({70, {2}}));
    EXPECT_EQ(w.first_captured_ns(), 50u);
    auto frames = w.take();
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].bytes[0], 1);
    EXPECT_EQ(frames[1].bytes[0], 2);
    EXPECT_EQ(w.frames(), 0u);
    EXPECT_EQ(w.first_captured_ns(), 0u);
}

TEST(Lifecycle, WakeBufferIsBoundedInFramesAndCountsDrops) {
    WakeBuffer w;
    for (size_t i = 0; i < WakeBuffer::kMaxFrames + 10; ++i) (void)w.add({i + 1, {0}});
    EXPECT_EQ(w.frames(), WakeBuffer::kMaxFrames);
    EXPECT_EQ(w.dropped(), 10u);
    EXPECT_EQ(w.first_captured_ns(), 1u);
}

TEST(Lifecycle, WakeBufferIsBoundedInBytes) {
    WakeBuffer w;
    std::vector<uint8_t> big(WakeBuffer::kMaxBytes / 2 + 1);
    EXPECT_TRUE(w.add({1, big}));
    EXPECT_FALSE(w.add({2, big}));
    EXPECT_TRUE(w.add({3, {1, 2, 3}}));
    EXPECT_LE(w.bytes(), WakeBuffer::kMaxBytes);
}

TEST(IdAllocator, HandsOutTheSmallestFreeIdAndReusesReleasedOnes) {
    IdAllocator ids(1, 5);
    EXPECT_EQ(ids.take(), 1u);
    EXPECT_EQ(ids.take(), 2u);
    EXPECT_EQ(ids.take(), 3u);
    ids.release(2);
    EXPECT_FALSE(ids.in_use(2));
    EXPECT_EQ(ids.take(), 2u);
    ids.release(3);
    ids.release(1);
    EXPECT_EQ(ids.take(), 1u);
    EXPECT_EQ(ids.take(), 3u);
    EXPECT_EQ(ids.take(), 4u);
}

TEST(IdAllocator, ReturnsZeroWhenEveryIdIsTaken) {
    IdAllocator ids(1, 2);
    EXPECT_EQ(ids.take(), 1u);
    EXPECT_EQ(ids.take(), 2u);
    EXPECT_EQ(ids.take(), 0u);
    ids.release(1);
    EXPECT_EQ(ids.take(), 1u);
}

TEST(IdAllocator, ReservedIdsFromARestartAreSkipped) {
    IdAllocator ids(1, 100);
    ids.reserve(3);
    ids.reserve(7);
    ids.reserve(500);  // out of range: ignored
    std::vector<uint32_t> got;
    for (int i = 0; i < 6; ++i) got.push_back(ids.take());
    EXPECT_EQ(got, (std::vector<uint32_t>{1, 2, 4, 5, 6, 8}));
    EXPECT_TRUE(ids.in_use(3));
    EXPECT_TRUE(ids.in_use(7));
    ids.release(8);
    ids.release(7);
    EXPECT_EQ(ids.take(), 7u);
}

}  // namespace
