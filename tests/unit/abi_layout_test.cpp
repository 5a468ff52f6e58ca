// Pins the layout of the guest <-> monitor ABI (vmm/abi/wisp_hypercall.h): a guest
// built against one version of the header and a monitor built against another must
// agree byte for byte, so any layout change must be deliberate (and bump
// WISP_ABI_VERSION).
#include <gtest/gtest.h>

#include <cstddef>

#include "wisp_hypercall.h"

#define EXPECT_FIELD(type, field, off) EXPECT_EQ(offsetof(type, field), size_t{off}) << #field

TEST(HypercallAbi, ArgumentStructsHaveFixedLayout) {
    EXPECT_EQ(sizeof(wisp_hc_console), 16u);
    EXPECT_FIELD(wisp_hc_console, len, 8);
    EXPECT_EQ(sizeof(wisp_hc_clock), 16u);
    EXPECT_FIELD(wisp_hc_clock, wall_ns, 8);
    EXPECT_EQ(sizeof(wisp_frame), 16u);
    EXPECT_FIELD(wisp_frame, cap, 8);
    EXPECT_FIELD(wisp_frame, len, 12);
    EXPECT_EQ(sizeof(wisp_hc_net_batch), 16u);
    EXPECT_FIELD(wisp_hc_net_batch, count, 8);
    EXPECT_FIELD(wisp_hc_net_batch, done, 12);
    EXPECT_EQ(sizeof(wisp_hc_poll), 48u);
    EXPECT_FIELD(wisp_hc_poll, tx, 8);
    EXPECT_FIELD(wisp_hc_poll, rx, 16);
    EXPECT_FIELD(wisp_hc_poll, tx_count, 24);
    EXPECT_FIELD(wisp_hc_poll, rx_count, 28);
    EXPECT_FIELD(wisp_hc_poll, tx_done, 32);
    EXPECT_FIELD(wisp_hc_poll, rx_done, 36);
    EXPECT_FIELD(wisp_hc_poll, events, 40);
    EXPECT_EQ(sizeof(wisp_hc_ready), 16u);
    EXPECT_EQ(sizeof(wisp_hc_halt), 8u);
    EXPECT_EQ(sizeof(wisp_hc_abort), 16u);
}

TEST(HypercallAbi, BootInfoPageHasFixedLayoutAndFitsOnePage) {
    EXPECT_EQ(sizeof(wisp_clock_info), 48u);
    EXPECT_FIELD(wisp_clock_info, tsc_mult, 8);
    EXPECT_FIELD(wisp_clock_info, tsc_base, 16);
    EXPECT_FIELD(wisp_clock_info, mono_base_ns, 24);
    EXPECT_FIELD(wisp_clock_info, wall_offset_ns, 32);
    EXPECT_FIELD(wisp_clock_info, tsc_hz, 40);

    EXPECT_FIELD(wisp_boot_info, abi_version, 4);
    EXPECT_FIELD(wisp_boot_info, mem_size, 8);
    EXPECT_FIELD(wisp_boot_info, heap_start, 16);
    EXPECT_FIELD(wisp_boot_info, heap_end, 24);
    EXPECT_FIELD(wisp_boot_info, stack_top, 32);
    EXPECT_FIELD(wisp_boot_info, mac, 40);
    EXPECT_FIELD(wisp_boot_info, gw_mac, 46);
    EXPECT_FIELD(wisp_boot_info, ip_family, 52);
    EXPECT_FIELD(wisp_boot_info, prefix_len, 53);
    EXPECT_FIELD(wisp_boot_info, ip, 56);
    EXPECT_FIELD(wisp_boot_info, gw_ip, 72);
    EXPECT_FIELD(wisp_boot_info, clock, 88);
    EXPECT_FIELD(wisp_boot_info, restore_count, 136);
    EXPECT_FIELD(wisp_boot_info, cmdline_len, 140);
    EXPECT_FIELD(wisp_boot_info, cmdline, 144);
    EXPECT_EQ(sizeof(wisp_boot_info), 656u);
    EXPECT_LE(sizeof(wisp_boot_info), WISP_PAGE_SIZE);
}

TEST(HypercallAbi, HypercallNumbersMapToDistinctPortsBelowMax) {
    EXPECT_EQ(WISP_HC_RESERVED, 0);
    EXPECT_EQ(WISP_HYPERCALL_PORT(WISP_HC_CONSOLE), 0x501);
    EXPECT_EQ(WISP_HC_MAX, WISP_HC_ABORT + 1);
}
