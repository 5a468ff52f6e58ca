// Control messages: encode/decode round trips and the exact-length rules.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <functional>

#include "wisp/vmm/control.h"

using namespace wisp::vmm;
using namespace wisp::vmm::control;

TEST(ControlCodec, EveryEventRoundTrips) {
    wisp_ctl_exited e{};
    e.status = -3;
    e.reason = WISP_EXIT_STACK_OVERFLOW;
    e.rip = 0x100123;
    std::snprintf(e.detail, sizeof e.detail, "stack overflow");
    auto packet = encode(WISP_CTL_EV_EXITED, e);
    EXPECT_EQ(packet.size(), sizeof(wisp_ctl_header) + sizeof e);
    auto m = decode(packet);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(m->type, uint32_t{WISP_CTL_EV_EXITED});
    auto back = payload_as<wisp_ctl_exited>(*m);
    EXPECT_EQ(std::memcmp(&back, &e, sizeof e), 0);
    for (uint32_t type : {WISP_CTL_EV_HELLO, WISP_CTL_EV_STARTED, WISP_CTL_EV_READY,
                          WISP_CTL_EV_STATS, WISP_CTL_EV_STATE, WISP_CTL_EV_ERROR,
                          WISP_CTL_EV_SNAPSHOT, WISP_CTL_EV_RESTORED, WISP_CTL_EV_RUNNING}) {
        std::vector<uint8_t> payload(*payload_size(type), 0x5a);
        auto bytes = encode(type, payload);
        auto d = decode(bytes);
        ASSERT_TRUE(d.ok()) << type_name(type);
        EXPECT_EQ(std::vector<uint8_t>(d->payload.begin(), d->payload.end()), payload);
    }
}

TEST(ControlCodec, BootCommandRoundTripsThroughItsValidation) {
    BootConfig c;
    c.mem_size = 128ull << 20;
    c.cmdline = "port=8080 name=hello";
    c.identity.mac = {2, 1, 2, 3, 4, 5};
    c.identity.gw_mac = {2, 9, 9, 9, 9, 9};
    c.identity.ip = {198, 18, 1, 2};
    c.identity.gw_ip = {198, 18, 1, 1};
    c.identity.prefix_len = 24;
    auto bytes = encode(WISP_CTL_BOOT, make_boot(c, WISP_BOOT_HOLD_AT_READY, 4096));
    auto m = decode(bytes);
    ASSERT_TRUE(m.ok());
    auto r = decode_boot(payload_as<wisp_ctl_boot>(*m), 2);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->config.mem_size, c.mem_size);
    EXPECT_EQ(r->config.cmdline, c.cmdline);
    EXPECT_EQ(r->config.identity.mac, c.identity.mac);
    EXPECT_EQ(r->config.identity.gw_mac, c.identity.gw_mac);
    EXPECT_EQ(r->config.identity.ip, c.identity.ip);
    EXPECT_EQ(r->config.identity.gw_ip, c.identity.gw_ip);
    EXPECT_EQ(r->config.identity.prefix_len, 24);
    EXPECT_EQ(r->flags, uint32_t{WISP_BOOT_HOLD_AT_READY});
    EXPECT_EQ(r->console_limit, 4096u);
}

TEST(ControlCodec, RestoreCommandRoundTripsWithAndWithoutAnIdentity) {
    GuestIdentity id;
    id.mac = {2, 0, 0, 0, 0, 0x42};
    id.gw_mac = {2, 0, 0, 0, 0, 0x01};
    id.ip = {198, 18, 7, 2};
    id.gw_ip = {198, 18, 7, 1};
    id.prefix_len = 24;
    auto bytes = encode(WISP_CTL_RESTORE, make_restore(WISP_RESTORE_DIFF | WISP_RESTORE_LOG_FD, &id, 8192));
    auto m = decode(bytes);
    ASSERT_TRUE(m.ok()) << m.error().message;
    auto r = decode_restore(payload_as<wisp_ctl_restore>(*m), 6);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->flags, uint32_t{WISP_RESTORE_DIFF | WISP_RESTORE_LOG_FD | WISP_RESTORE_IDENTITY});
    EXPECT_EQ(r->console_limit, 8192u);
    ASSERT_TRUE(r->identity.has_value());
    EXPECT_EQ(*r->identity, id);
    auto plain = decode_restore(make_restore(0, nullptr), 3);
    ASSERT_TRUE(plain.ok()) << plain.error().message;
    EXPECT_FALSE(plain->identity.has_value());
}

TEST(ControlCodec, SnapshotAndRestoreCommandsNeedTheirExactFds) {
    wisp_ctl_snapshot snap{};
    EXPECT_TRUE(decode_snapshot(snap, 2).ok());
    EXPECT_FALSE(decode_snapshot(snap, 1).ok()) << "memory file missing";
    EXPECT_FALSE(decode_snapshot(snap, 3).ok()) << "an extra fd";
    snap.flags = 0x80;
    EXPECT_FALSE(decode_snapshot(snap, 2).ok()) << "unknown flag";
    snap = wisp_ctl_snapshot{0, 1};
    EXPECT_FALSE(decode_snapshot(snap, 2).ok()) << "padding not zero";
    struct Case {
        const char *what;
        uint32_t flags;
        size_t fds;
        bool ok;
    };
    const Case cases[] = {
        {"tap, vmstate, memory", 0, 3, true},
        {"memory missing", 0, 2, false},
        {"a diff without its parent's files", WISP_RESTORE_DIFF, 3, false},
        {"a diff with its parent's files", WISP_RESTORE_DIFF, 5, true},
        {"a log fd", WISP_RESTORE_LOG_FD, 4, true},
        {"log flag without the fd", WISP_RESTORE_LOG_FD, 3, false},
        {"everything", WISP_RESTORE_DIFF | WISP_RESTORE_LOG_FD, 6, true},
        {"unknown flag", 0x40, 3, false},
    };
    for (const Case &c : cases) {
        wisp_ctl_restore r{};
        r.flags = c.flags;
        EXPECT_EQ(decode_restore(r, c.fds).ok(), c.ok) << c.what;
    }
    wisp_ctl_restore bad_identity = make_restore(0, nullptr);
    bad_identity.flags = WISP_RESTORE_IDENTITY;
    bad_identity.ip_family = 5;
    EXPECT_FALSE(decode_restore(bad_identity, 3).ok()) << "identity with ip family 5";
}

TEST(ControlCodec, TruncatedOversizedAndUnknownMessagesAreRejected) {
    struct Case {
        const char *what;
        std::vector<uint8_t> packet;
    };
    auto mismatched = encode(WISP_CTL_STOP);
    mismatched[4] = 1;
    auto short_boot = encode(WISP_CTL_BOOT, std::vector<uint8_t>(sizeof(wisp_ctl_boot) - 1, 0));
    auto long_boot = encode(WISP_CTL_BOOT, std::vector<uint8_t>(sizeof(wisp_ctl_boot) + 1, 0));
    std::vector<Case> cases = {
        {"empty", {}},
        {"half a header", {1, 0, 0, 0}},
        {"length field says 1, nothing follows", mismatched},
        {"boot payload one byte short", short_boot},
        {"boot payload one byte long", long_boot},
        {"stop with a payload", encode(WISP_CTL_STOP, std::vector<uint8_t>{0})},
        {"snapshot without its payload", encode(WISP_CTL_SNAPSHOT)},
        {"restore payload one byte short", encode(WISP_CTL_RESTORE, std::vector<uint8_t>(sizeof(wisp_ctl_restore) - 1, 0))},
        {"unknown type", encode(0x7777)},
        {"type 0", encode(WISP_CTL_RESERVED)},
        {"over the packet limit", std::vector<uint8_t>(WISP_CTL_MSG_MAX + 1, 0)},
    };
    for (const Case &c : cases) EXPECT_FALSE(decode(c.packet).ok()) << c.what;
}

TEST(ControlCodec, BootFieldsOutsideTheirRangesAreRejected) {
    BootConfig good;
    good.mem_size = 64ull << 20;
    auto base = make_boot(good, 0);
    ASSERT_TRUE(decode_boot(base, 2).ok());
    struct Case {
        const char *what;
        std::function<void(wisp_ctl_boot &)> mutate;
        size_t fds;
    };
    std::vector<Case> cases = {
        {"memory too small", [](wisp_ctl_boot &b) { b.mem_size = 4ull << 20; }, 2},
        {"memory too large", [](wisp_ctl_boot &b) { b.mem_size = 8ull << 30; }, 2},
        {"memory not 2 MiB aligned", [](wisp_ctl_boot &b) { b.mem_size = (64ull << 20) + 4096; }, 2},
        {"cmdline_len past the buffer", [](wisp_ctl_boot &b) { b.cmdline_len = 512; }, 2},
        {"NUL inside the cmdline", [](wisp_ctl_boot &b) { b.cmdline_len = 4; }, 2},
        {"unknown flag", [](wisp_ctl_boot &b) { b.flags = 0x80; }, 2},
        {"ip family 5", [](wisp_ctl_boot &b) { b.ip_family = 5; }, 2},
        {"prefix 33 for IPv4", [](wisp_ctl_boot &b) { b.prefix_len = 33; }, 2},
        {"one fd", [](wisp_ctl_boot &) {}, 1},
        {"three fds without the log flag", [](wisp_ctl_boot &) {}, 3},
        {"log flag with two fds", [](wisp_ctl_boot &b) { b.flags = WISP_BOOT_LOG_FD; }, 2},
    };
    for (const Case &c : cases) {
        wisp_ctl_boot b = base;
        c.mutate(b);
        EXPECT_FALSE(decode_boot(b, c.fds).ok()) << c.what;
    }
}
