// The guest allocator (guest/runtime/src/heap.c), compiled for the host: the same
// code that sits behind malloc/free in every guest.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "wisp/heap.h"

namespace {

std::vector<std::string> g_corruptions;
void record_corruption(const char *what) { g_corruptions.emplace_back(what); }

class Heap : public ::testing::Test {
protected:
    static constexpr size_t kSize = 4 << 20;
    void SetUp() override {
        memory_.assign(kSize + 64, 0);
        wisp_heap_init(&heap_, memory_.data(), kSize);
        heap_.on_corruption = record_corruption;
        g_corruptions.clear();
    }
    void expect_consistent() {
        const char *problem = wisp_heap_check(&heap_);
        EXPECT_EQ(problem, nullptr) << problem;
    }
    std::vector<uint8_t> memory_;
    wisp_heap heap_{};
};

TEST_F(Heap, AllocationsAreAlignedDisjointAndWritable) {
    std::vector<std::pair<uint8_t *, size_t>> blocks;
    for (size_t size : {1, 7, 16, 17, 100, 1000, 1024, 1025, 5000, 70000}) {
        auto *p = static_cast<uint8_t *>(wisp_heap_alloc(&heap_, size));
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
        EXPECT_GE(wisp_heap_usable_size(p), size);
        memset(p, static_cast<int>(size & 0xff), size);
        blocks.emplace_back(p, size);
    }
    for (size_t i = 0; i < blocks.size(); i++)
        for (size_t j = i + 1; j < blocks.size(); j++) {
            auto [a, as] = blocks[i];
            auto [b, bs] = blocks[j];
            EXPECT_TRUE(a + as <= b || b + bs <= a) << "blocks " << i << " and " << j << " overlap";
        }
    for (auto [p, size] : blocks)
        for (size_t k = 0; k < size; k++) ASSERT_EQ(p[k], static_cast<uint8_t>(size & 0xff));
    expect_consistent();
}

TEST_F(Heap, FreeingEverythingGivesTheWholeHeapBack) {
    std::mt19937 rng(1);
    std::vector<void *> live;
    for (int i = 0; i < 2000; i++) {
        void *p = wisp_heap_alloc(&heap_, rng() % 3000 + 1);
        ASSERT_NE(p, nullptr);
        live.push_back(p);
    }
    std::shuffle(live.begin(), live.end(), rng);
    for (void *p : live) wisp_heap_free(&heap_, p);
    expect_consistent();
    auto stats = wisp_heap_stats(&heap_);
    EXPECT_EQ(stats.in_use, 0u);
    EXPECT_EQ(stats.free_chunks, 0u) << "free neighbours must merge all the way back into top";
    EXPECT_NE(wisp_heap_alloc(&heap_, kSize - 64), nullptr) << "one block as large as the heap";
}

TEST_F(Heap, RandomWorkloadKeepsContentsAndInvariants) {
    std::mt19937 rng(42);
    std::map<uint8_t *, std::pair<size_t, uint8_t>> live;
    auto fill = [](uint8_t *p, size_t n, uint8_t v) { memset(p, v, n); };
    auto intact = [](uint8_t *p, size_t n, uint8_t v) {
        for (size_t i = 0; i < n; i++)
            if (p[i] != v) return false;
        return true;
    };
    for (int step = 0; step < 20000; step++) {
        unsigned op = rng() % 10;
        if (op < 5 || live.empty()) {
            size_t size = (rng() % 4 == 0) ? rng() % 20000 : rng() % 200;
            auto *p = static_cast<uint8_t *>(wisp_heap_alloc(&heap_, size));
            if (!p) continue;  // the heap may be full; that is allowed
            ASSERT_EQ(live.count(p), 0u) << "pointer handed out twice";
            uint8_t v = static_cast<uint8_t>(rng());
            fill(p, size, v);
            live[p] = {size, v};
        } else {
            auto it = live.begin();
            std::advance(it, rng() % live.size());
            auto [p, meta] = *it;
            ASSERT_TRUE(intact(p, meta.first, meta.second)) << "contents changed at step " << step;
            live.erase(it);
            if (op < 8) {
                wisp_heap_free(&heap_, p);
            } else {
                size_t size = rng() % 30000;
                auto *q = static_cast<uint8_t *>(wisp_heap_realloc(&heap_, p, size));
                if (size == 0) continue;
                if (!q) {  // realloc failure leaves the block as it was
                    live[p] = meta;
                    continue;
                }
                ASSERT_TRUE(intact(q, std::min(size, meta.first), meta.second));
                fill(q, size, meta.second);
                live[q] = {size, meta.second};
            }
        }
        if (step % 1000 == 0) expect_consistent();
    }
    expect_consistent();
    EXPECT_TRUE(g_corruptions.empty());
}

TEST_F(Heap, FreedMemoryIsReusedBeforeNewMemoryIsTouched) {
    for (int i = 0; i < 100; i++) wisp_heap_free(&heap_, wisp_heap_alloc(&heap_, 4000));
    void *keep = wisp_heap_alloc(&heap_, 10);
    size_t touched = wisp_heap_stats(&heap_).touched;
    for (int round = 0; round < 1000; round++) {
        void *a = wisp_heap_alloc(&heap_, 300);
        void *b = wisp_heap_alloc(&heap_, 2000);
        wisp_heap_free(&heap_, a);
        wisp_heap_free(&heap_, b);
    }
    EXPECT_LE(wisp_heap_stats(&heap_).touched, touched + 4096);
    wisp_heap_free(&heap_, keep);
    expect_consistent();
}

TEST_F(Heap, ReallocGrowsInPlaceIntoAFreeNeighbourAndKeepsContents) {
    auto *a = static_cast<char *>(wisp_heap_alloc(&heap_, 100));
    void *b = wisp_heap_alloc(&heap_, 1000);
    void *guard = wisp_heap_alloc(&heap_, 10);
    strcpy(a, "payload");
    wisp_heap_free(&heap_, b);
    auto *grown = static_cast<char *>(wisp_heap_realloc(&heap_, a, 900));
    EXPECT_EQ(grown, a);
    EXPECT_STREQ(grown, "payload");
    auto *shrunk = static_cast<char *>(wisp_heap_realloc(&heap_, grown, 20));
    EXPECT_EQ(shrunk, a);
    EXPECT_STREQ(shrunk, "payload");
    auto *moved = static_cast<char *>(wisp_heap_realloc(&heap_, shrunk, 100000));
    ASSERT_NE(moved, nullptr);
    EXPECT_STREQ(moved, "payload");
    wisp_heap_free(&heap_, moved);
    wisp_heap_free(&heap_, guard);
    expect_consistent();
    EXPECT_EQ(wisp_heap_stats(&heap_).in_use, 0u);
}

TEST_F(Heap, CallocZeroesReusedMemory) {
    auto *p = static_cast<uint8_t *>(wisp_heap_alloc(&heap_, 5000));
    memset(p, 0xab, 5000);
    void *guard = wisp_heap_alloc(&heap_, 10);
    wisp_heap_free(&heap_, p);
    auto *z = static_cast<uint8_t *>(wisp_heap_alloc_zeroed(&heap_, 50, 100));
    ASSERT_NE(z, nullptr);
    for (int i = 0; i < 5000; i++) ASSERT_EQ(z[i], 0) << "byte " << i;
    wisp_heap_free(&heap_, guard);
    wisp_heap_free(&heap_, z);
    // Memory given back to top and handed out again is dirty too.
    auto *again = static_cast<uint8_t *>(wisp_heap_alloc_zeroed(&heap_, 1, 20000));
    for (int i = 0; i < 20000; i++) ASSERT_EQ(again[i], 0) << "byte " << i;
}

TEST(HeapTouch, CallocOfNeverUsedMemoryLeavesItsPagesUntouched) {
    // Fresh anonymous memory, like a guest's: mincore() shows which pages were written.
    constexpr size_t kLen = 8 << 20;
    void *region = mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(region, MAP_FAILED);
    wisp_heap heap{};
    wisp_heap_init(&heap, region, kLen);
    void *p = wisp_heap_alloc_zeroed(&heap, 1, 4 << 20);
    ASSERT_NE(p, nullptr);
    std::vector<unsigned char> resident(kLen / 4096);
    ASSERT_EQ(mincore(region, kLen, resident.data()), 0);
    size_t pages = 0;
    for (unsigned char r : resident) pages += r & 1;
    EXPECT_LE(pages, 2u) << "only the chunk header may be written";
    EXPECT_EQ(static_cast<uint8_t *>(p)[12345], 0);
    munmap(region, kLen);
}

TEST_F(Heap, ExhaustionReturnsNullAndTheHeapStaysUsable) {
    std::vector<void *> blocks;
    while (void *p = wisp_heap_alloc(&heap_, 100000)) blocks.push_back(p);
    EXPECT_GT(blocks.size(), 30u);
    EXPECT_EQ(wisp_heap_alloc(&heap_, 100000), nullptr);
    wisp_heap_free(&heap_, blocks[3]);
    EXPECT_NE(wisp_heap_alloc(&heap_, 90000), nullptr);
    expect_consistent();
}

TEST_F(Heap, ImpossibleSizesFailCleanly) {
    EXPECT_EQ(wisp_heap_alloc(&heap_, SIZE_MAX), nullptr);
    EXPECT_EQ(wisp_heap_alloc(&heap_, SIZE_MAX - 8), nullptr);
    EXPECT_EQ(wisp_heap_alloc_zeroed(&heap_, SIZE_MAX / 2, 4), nullptr) << "count * size overflows";
    EXPECT_EQ(wisp_heap_alloc_aligned(&heap_, 3, 10), nullptr) << "alignment not a power of two";
    EXPECT_EQ(wisp_heap_alloc_aligned(&heap_, 64, SIZE_MAX - 10), nullptr);
    expect_consistent();
}

TEST_F(Heap, DoubleAndWildFreesAreReported) {
    void *p = wisp_heap_alloc(&heap_, 64);
    void *guard = wisp_heap_alloc(&heap_, 64);
    wisp_heap_free(&heap_, p);
    wisp_heap_free(&heap_, p);
    ASSERT_EQ(g_corruptions.size(), 1u);
    EXPECT_NE(g_corruptions[0].find("double free"), std::string::npos);
    wisp_heap_free(&heap_, static_cast<char *>(guard) + 8);
    EXPECT_EQ(g_corruptions.size(), 2u);
    wisp_heap_free(&heap_, memory_.data() + kSize - 32);
    EXPECT_EQ(g_corruptions.size(), 3u);
    expect_consistent();
}

TEST_F(Heap, AlignedAllocationsHonourTheirAlignment) {
    std::vector<void *> blocks;
    for (size_t align : {16, 32, 64, 256, 4096, 65536}) {
        for (size_t size : {1, 100, 5000}) {
            void *p = wisp_heap_alloc_aligned(&heap_, align, size);
            ASSERT_NE(p, nullptr);
            EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << align;
            memset(p, 0x5a, size);
            blocks.push_back(p);
        }
        expect_consistent();
    }
    for (void *p : blocks) wisp_heap_free(&heap_, p);
    expect_consistent();
    EXPECT_EQ(wisp_heap_stats(&heap_).in_use, 0u);
}

}  // namespace
