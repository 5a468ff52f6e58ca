// Networking through a real tap: the test injects frames on the host side of the
// tap (AF_PACKET), the guest receives them with the poll hypercall and echoes
// them back (MACs swapped), and the test reads the echoes from the tap.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <future>
#include <set>

#include "vm_helpers.h"
#include "wisp/test/capabilities.h"
#include "wisp/test/paths.h"
#include "wisp/test/process.h"

namespace {

constexpr uint16_t kEtherType = 0x88b5;  // IEEE local experimental
constexpr int kFrames = 40;

std::vector<uint8_t> test_frame(int seq, size_t len) {
    std::vector<uint8_t> f(len, 0);
    const uint8_t guest_mac[6] = {0x02, 0, 0, 0, 0, 0x10};
    const uint8_t host_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
    std::memcpy(f.data(), guest_mac, 6);
    std::memcpy(f.data() + 6, host_mac, 6);
    f[12] = kEtherType >> 8;
    f[13] = kEtherType & 0xff;
    f[14] = static_cast<uint8_t>(seq);
    for (size_t i = 15; i < len; i++) f[i] = static_cast<uint8_t>(i * 7 + seq);
    return f;
}

}  // namespace

TEST(Net, GuestEchoesFramesWrittenIntoARealTap) {
    WISP_REQUIRE_KVM();
    WISP_REQUIRE_NETNS();
    wisp::test::ScopedTap tap("echo");
    wisp::test::silence_tap(tap);
    wisp::UniqueFd sock(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(kEtherType)));
    ASSERT_TRUE(sock.valid()) << strerror(errno);
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(kEtherType);
    addr.sll_ifindex = tap.ifindex();
    ASSERT_EQ(bind(sock.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);

    auto image = wisp::test::read_file(wisp::test::image_path("vmtest_echo"));
    auto vmm = wisp::vmm::Vmm::create();
    ASSERT_TRUE(vmm.ok()) << vmm.error().describe();
    wisp::vmm::BootConfig config;
    config.cmdline = "count=" + std::to_string(kFrames);
    config.identity.mac = {0x02, 0, 0, 0, 0, 0x10};
    config.identity.gw_mac = {0x02, 0, 0, 0, 0, 0x01};
    auto booted = (*vmm)->boot(config, image, wisp::vmm::Tap(wisp::UniqueFd(dup(tap.fd()))),
                               wisp::vmm::ConsoleLog());
    ASSERT_TRUE(booted.ok()) << booted.error().describe();
    std::set<int> pending;
    for (int seq = 0; seq < kFrames; seq++) {
        auto f = test_frame(seq, 60 + seq * 30);  // 60..1230 bytes
        ASSERT_EQ(send(sock.get(), f.data(), f.size(), 0), static_cast<ssize_t>(f.size()));
        pending.insert(seq);
    }
    // The frames wait in the tap's queue: the guest then receives them in batches.
    auto *raw = vmm->get();
    auto guest = std::async(std::launch::async, [raw] {
        while (raw->run() != wisp::vmm::RunStop::kExited) {
        }
        return raw->exit_summary();
    });

    uint8_t buf[2048];
    while (!pending.empty()) {
        pollfd p{sock.get(), POLLIN, 0};
        ASSERT_EQ(poll(&p, 1, 10000), 1) << pending.size() << " echoes missing";
        sockaddr_ll from{};
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(sock.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&from),
                             &fromlen);
        ASSERT_GT(n, 14);
        if (from.sll_pkttype == PACKET_OUTGOING) continue;  // our own injection
        int seq = buf[14];
        auto expect = test_frame(seq, 60 + seq * 30);
        ASSERT_EQ(static_cast<size_t>(n), expect.size());
        // MACs swapped, payload intact.
        EXPECT_EQ(std::memcmp(buf, expect.data() + 6, 6), 0);
        EXPECT_EQ(std::memcmp(buf + 6, expect.data(), 6), 0);
        EXPECT_EQ(std::memcmp(buf + 12, expect.data() + 12, expect.size() - 12), 0);
        EXPECT_EQ(pending.erase(seq), 1u) << "duplicate echo of " << seq;
    }
    ASSERT_EQ(guest.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    EXPECT_EQ(guest.get(), "halt status 0");
    auto stats = (*vmm)->stats();
    EXPECT_EQ(stats.rx_frames, uint64_t{kFrames});
    EXPECT_EQ(stats.tx_frames, uint64_t{kFrames});
    // Batching: far fewer exits than frames in + frames out (8 per poll here).
    EXPECT_LT(stats.hypercalls, uint64_t{kFrames});
}
