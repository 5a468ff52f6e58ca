// SipHash-2-4 (guest/runtime/src/siphash.c) against the reference vectors of
// the SipHash paper: key 00 01 .. 0f, messages 00 01 .. (n-1).
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "wisp/siphash.h"

namespace {

uint64_t reference_hash(size_t len) {
    const uint64_t k0 = 0x0706050403020100ull, k1 = 0x0f0e0d0c0b0a0908ull;
    std::vector<uint8_t> msg(len);
    for (size_t i = 0; i < len; i++) msg[i] = static_cast<uint8_t>(i);
    return wisp_siphash24(k0, k1, msg.data(), msg.size());
}

TEST(SipHash, MatchesThePapersReferenceVectors) {
    EXPECT_EQ(reference_hash(0), 0x726fdb47dd0e0e31ull);
    EXPECT_EQ(reference_hash(1), 0x74f839c593dc67fdull);
    EXPECT_EQ(reference_hash(7), 0xab0200f58b01d137ull);
    EXPECT_EQ(reference_hash(8), 0x93f5f5799a932462ull);
    EXPECT_EQ(reference_hash(15), 0xa129ca6149be45e5ull);
    EXPECT_EQ(reference_hash(63), 0x958a324ceb064572ull);
}

TEST(SipHash, DifferentKeysGiveUnrelatedHashes) {
    const char msg[] = "198.18.0.2:80 198.18.0.1:41234";
    EXPECT_NE(wisp_siphash24(1, 2, msg, sizeof msg), wisp_siphash24(1, 3, msg, sizeof msg));
    EXPECT_NE(wisp_siphash24(1, 2, msg, sizeof msg), wisp_siphash24(1, 2, msg, sizeof msg - 1));
}

}  // namespace
