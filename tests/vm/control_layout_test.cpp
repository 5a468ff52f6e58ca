// Pins the layout of the wispd <-> wisp-vmm control protocol
// (vmm/abi/wisp_control.h): a controller and a monitor built from different
// trees must agree byte for byte, so any change must be deliberate (and bump
// WISP_CONTROL_VERSION).
#include <gtest/gtest.h>

#include <cstddef>

#include "wisp_control.h"
#include "wisp_hypercall.h"

#define EXPECT_FIELD(type, field, off) EXPECT_EQ(offsetof(type, field), size_t{off}) << #field

TEST(ControlAbi, HeaderIsTypeThenLength) {
    EXPECT_EQ(sizeof(wisp_ctl_header), 8u);
    EXPECT_FIELD(wisp_ctl_header, length, 4);
    EXPECT_EQ(WISP_CTL_MSG_MAX, 4096);
}

TEST(ControlAbi, MessageNumbersAreStable) {
    EXPECT_EQ(WISP_CTL_BOOT, 1);
    EXPECT_EQ(WISP_CTL_PAUSE, 2);
    EXPECT_EQ(WISP_CTL_RESUME, 3);
    EXPECT_EQ(WISP_CTL_STOP, 4);
    EXPECT_EQ(WISP_CTL_STATS, 5);
    EXPECT_EQ(WISP_CTL_SNAPSHOT, 6);
    EXPECT_EQ(WISP_CTL_RESTORE, 7);
    EXPECT_EQ(WISP_CTL_STATUS, 8);
    EXPECT_EQ(WISP_CTL_EV_HELLO, 0x100);
    EXPECT_EQ(WISP_CTL_EV_ERROR, 0x106);
    EXPECT_EQ(WISP_CTL_EV_SNAPSHOT, 0x107);
    EXPECT_EQ(WISP_CTL_EV_RESTORED, 0x108);
    EXPECT_EQ(WISP_CTL_EV_RUNNING, 0x109);
    EXPECT_EQ(WISP_CONTROL_VERSION, 2);
    EXPECT_EQ(WISP_EXIT_HALT, 1);
    EXPECT_EQ(WISP_EXIT_MONITOR_ERROR, 17);
}

TEST(ControlAbi, BootCommandHasFixedLayoutAndFitsOnePacket) {
    EXPECT_EQ(sizeof(wisp_ctl_boot), 584u);
    EXPECT_FIELD(wisp_ctl_boot, console_limit, 8);
    EXPECT_FIELD(wisp_ctl_boot, flags, 16);
    EXPECT_FIELD(wisp_ctl_boot, cmdline_len, 20);
    EXPECT_FIELD(wisp_ctl_boot, mac, 24);
    EXPECT_FIELD(wisp_ctl_boot, gw_mac, 30);
    EXPECT_FIELD(wisp_ctl_boot, ip_family, 36);
    EXPECT_FIELD(wisp_ctl_boot, prefix_len, 37);
    EXPECT_FIELD(wisp_ctl_boot, ip, 40);
    EXPECT_FIELD(wisp_ctl_boot, gw_ip, 56);
    EXPECT_FIELD(wisp_ctl_boot, cmdline, 72);
    EXPECT_EQ(WISP_CTL_CMDLINE_MAX, WISP_CMDLINE_MAX);
    EXPECT_LE(sizeof(wisp_ctl_header) + sizeof(wisp_ctl_boot), size_t{WISP_CTL_MSG_MAX});
}

TEST(ControlAbi, SnapshotAndRestoreCommandsHaveFixedLayout) {
    EXPECT_EQ(sizeof(wisp_ctl_snapshot), 8u);
    EXPECT_FIELD(wisp_ctl_snapshot, pad0, 4);
    EXPECT_EQ(WISP_SNAPSHOT_DIFF, 1);
    EXPECT_EQ(sizeof(wisp_ctl_restore), 64u);
    EXPECT_FIELD(wisp_ctl_restore, flags, 8);
    EXPECT_FIELD(wisp_ctl_restore, mac, 16);
    EXPECT_FIELD(wisp_ctl_restore, gw_mac, 22);
    EXPECT_FIELD(wisp_ctl_restore, ip_family, 28);
    EXPECT_FIELD(wisp_ctl_restore, prefix_len, 29);
    EXPECT_FIELD(wisp_ctl_restore, ip, 32);
    EXPECT_FIELD(wisp_ctl_restore, gw_ip, 48);
    EXPECT_EQ(WISP_RESTORE_LOG_FD, 1);
    EXPECT_EQ(WISP_RESTORE_DIFF, 2);
    EXPECT_EQ(WISP_RESTORE_IDENTITY, 4);
}

TEST(ControlAbi, SnapshotEventsHaveFixedLayout) {
    EXPECT_EQ(sizeof(wisp_ctl_snapshotted), 80u);
    EXPECT_FIELD(wisp_ctl_snapshotted, done_ns, 8);
    EXPECT_FIELD(wisp_ctl_snapshotted, mem_size, 16);
    EXPECT_FIELD(wisp_ctl_snapshotted, data_bytes, 24);
    EXPECT_FIELD(wisp_ctl_snapshotted, run_pages, 32);
    EXPECT_FIELD(wisp_ctl_snapshotted, vmstate_bytes, 40);
    EXPECT_FIELD(wisp_ctl_snapshotted, kind, 44);
    EXPECT_FIELD(wisp_ctl_snapshotted, id, 48);
    EXPECT_FIELD(wisp_ctl_snapshotted, parent_id, 64);
    EXPECT_EQ(sizeof(wisp_ctl_restored), 56u);
    EXPECT_FIELD(wisp_ctl_restored, entry_ns, 8);
    EXPECT_FIELD(wisp_ctl_restored, mem_size, 16);
    EXPECT_FIELD(wisp_ctl_restored, rip, 24);
    EXPECT_FIELD(wisp_ctl_restored, restore_count, 32);
    EXPECT_FIELD(wisp_ctl_restored, kind, 36);
    EXPECT_FIELD(wisp_ctl_restored, id, 40);
    EXPECT_EQ(sizeof(wisp_ctl_running), 8u);
}

TEST(ControlAbi, EventPayloadsHaveFixedLayout) {
    EXPECT_EQ(sizeof(wisp_ctl_hello), 16u);
    EXPECT_FIELD(wisp_ctl_hello, abi_version, 4);
    EXPECT_FIELD(wisp_ctl_hello, pid, 8);
    EXPECT_FIELD(wisp_ctl_hello, state, 12);
    EXPECT_EQ(sizeof(wisp_ctl_started), 32u);
    EXPECT_FIELD(wisp_ctl_started, entry_ns, 8);
    EXPECT_FIELD(wisp_ctl_started, mem_size, 16);
    EXPECT_FIELD(wisp_ctl_started, entry_rip, 24);
    EXPECT_EQ(sizeof(wisp_ctl_ready), 24u);
    EXPECT_FIELD(wisp_ctl_ready, ready_ns, 8);
    EXPECT_FIELD(wisp_ctl_ready, held, 16);
    EXPECT_EQ(sizeof(wisp_ctl_exited), 288u);
    EXPECT_FIELD(wisp_ctl_exited, reason, 8);
    EXPECT_FIELD(wisp_ctl_exited, hypercall, 12);
    EXPECT_FIELD(wisp_ctl_exited, rip, 16);
    EXPECT_FIELD(wisp_ctl_exited, detail_len, 24);
    EXPECT_FIELD(wisp_ctl_exited, detail, 32);
    EXPECT_EQ(sizeof(wisp_ctl_stats), 96u);
    EXPECT_FIELD(wisp_ctl_stats, rx_frames, 32);
    EXPECT_FIELD(wisp_ctl_stats, tx_frames, 56);
    EXPECT_FIELD(wisp_ctl_stats, max_rss_kib, 80);
    EXPECT_FIELD(wisp_ctl_stats, state, 88);
    EXPECT_EQ(sizeof(wisp_ctl_state), 8u);
    EXPECT_EQ(sizeof(wisp_ctl_error), 272u);
    EXPECT_FIELD(wisp_ctl_error, error, 4);
    EXPECT_FIELD(wisp_ctl_error, message_len, 8);
    EXPECT_FIELD(wisp_ctl_error, message, 16);
}
