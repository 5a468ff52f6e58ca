// Toolchain proof: an XDP program built by wisp_bpf_object(), loaded through its
// generated skeleton, and run on crafted packets with bpf_prog_test_run_opts.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <memory>

#include "toolchain_probe.skel.h"
#include "wisp/test/capabilities.h"

namespace {

struct SkelDeleter {
    void operator()(toolchain_probe *s) const { toolchain_probe__destroy(s); }
};

std::array<uint8_t, 64> frame_with_ethertype(uint16_t ethertype) {
    std::array<uint8_t, 64> f{};
    f[12] = static_cast<uint8_t>(ethertype >> 8);
    f[13] = static_cast<uint8_t>(ethertype & 0xff);
    return f;
}

int run_once(int prog_fd, std::array<uint8_t, 64> &frame) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<__u32>(frame.size()),
                .repeat = 1);
    int err = bpf_prog_test_run_opts(prog_fd, &opts);
    EXPECT_EQ(err, 0) << std::strerror(-err);
    return static_cast<int>(opts.retval);
}

TEST(BpfToolchain, SkeletonLoadsAndXdpVerdictsFollowTheEthertype) {
    WISP_REQUIRE_BPF();
    std::unique_ptr<toolchain_probe, SkelDeleter> skel(toolchain_probe__open_and_load());
    ASSERT_TRUE(skel) << "skeleton failed to load: " << std::strerror(errno);
    int prog = bpf_program__fd(skel->progs.wisp_probe);

    auto ipv4 = frame_with_ethertype(ETH_P_IP);
    auto arp = frame_with_ethertype(ETH_P_ARP);
    EXPECT_EQ(run_once(prog, ipv4), XDP_PASS);
    EXPECT_EQ(run_once(prog, arp), XDP_DROP);
    EXPECT_EQ(run_once(prog, ipv4), XDP_PASS);

    int map = bpf_map__fd(skel->maps.wisp_probe_cnt);
    uint32_t key = 1;
    uint64_t passed = 0, dropped = 0;
    ASSERT_EQ(bpf_map_lookup_elem(map, &key, &passed), 0);
    key = 0;
    ASSERT_EQ(bpf_map_lookup_elem(map, &key, &dropped), 0);
    EXPECT_EQ(passed, 2u);
    EXPECT_EQ(dropped, 1u);
}

}  // namespace
