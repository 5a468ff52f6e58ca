// Transfers to and from a guest stay intact when the tap loses packets: a test-
// only TC program (loss.bpf.c) drops a fraction of TCP frames in both directions
// and lwIP's retransmissions must repair every gap.
#include <net/if.h>

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>

#include <bpf/libbpf.h>

#include "guest_fixture.h"
#include "guest_loss.skel.h"
#include "wisp/test/capabilities.h"

namespace wisp::test {
namespace {

constexpr uint32_t kDropPerMille = 30;  // 3 %: every transfer below loses dozens of frames

// Loads the loss program and attaches it to the guest's tap (both directions).
class LossyTap {
public:
    explicit LossyTap(const RunningGuest &guest) {
        skel_ = guest_loss__open();
        if (!skel_) throw std::runtime_error("open loss program");
        skel_->rodata->drop_per_mille = kDropPerMille;
        if (guest_loss__load(skel_) != 0) throw std::runtime_error("load loss program");
        run_in_netns(guest.netns(), [&] {
            bpf_tc_hook hook{};
            hook.sz = sizeof hook;
            hook.ifindex = static_cast<int>(if_nametoindex(guest.tap().c_str()));
            hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
            ASSERT_GT(hook.ifindex, 0);
            ASSERT_EQ(bpf_tc_hook_create(&hook), 0);
            for (auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
                hook.attach_point = point;
                bpf_tc_opts opts{};
                opts.sz = sizeof opts;
                opts.prog_fd = bpf_program__fd(skel_->progs.wisp_loss);
                ASSERT_EQ(bpf_tc_attach(&hook, &opts), 0);
            }
            attached_ = true;
        });
    }
    // The qdisc and filters go away with the namespace.
    ~LossyTap() { guest_loss__destroy(skel_); }
    bool attached() const { return attached_; }
    uint64_t count(uint32_t key) const {
        uint64_t v = 0;
        bpf_map__lookup_elem(skel_->maps.wisp_loss_count, &key, sizeof key, &v, sizeof v, 0);
        return v;
    }
    uint64_t dropped() const { return count(1); }
    uint64_t passed() const { return count(0); }

private:
    guest_loss *skel_ = nullptr;
    bool attached_ = false;
};

TEST(GuestLoss, A1MiBResponseArrivesIntactDespiteLostFrames) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    WISP_REQUIRE_BPF();
    RunningGuest guest({"hello", ""});
    LossyTap loss(guest);
    ASSERT_TRUE(loss.attached());
    for (int i = 0; i < 3; i++) {
        auto r = curl(guest, "/bytes/1048576", {"--retry", "0"}, 120);
        ASSERT_EQ(r.status, 200) << r.curl_output;
        ASSERT_EQ(r.body.size(), 1048576u);
        EXPECT_TRUE(r.body == pattern_bytes(1048576)) << "transfer " << i << " corrupted";
    }
    EXPECT_GT(loss.dropped(), 10u) << "the loss program must really have dropped frames";
    RecordProperty("frames_dropped", static_cast<int>(loss.dropped()));
    RecordProperty("frames_passed", static_cast<int>(loss.passed()));
}

TEST(GuestLoss, A64KiBUploadIsStoredIntactDespiteLostFrames) {
    WISP_REQUIRE_GUEST_ENVIRONMENT();
    WISP_REQUIRE_BPF();
    RunningGuest guest({"kv", ""});
    LossyTap loss(guest);
    ASSERT_TRUE(loss.attached());
    ScopedTempDir dir("loss");
    std::mt19937 rng(11);
    for (int i = 0; i < 4; i++) {
        std::string value(64 * 1024, '\0');
        for (char &c : value) c = static_cast<char>(rng());
        std::string file = dir.path() + "/v" + std::to_string(i);
        std::ofstream(file, std::ios::binary).write(value.data(), static_cast<long>(value.size()));
        std::string key = "/kv/v" + std::to_string(i);
        auto put = curl(guest, key, {"-X", "PUT", "--data-binary", "@" + file}, 120);
        ASSERT_EQ(put.status, 201) << put.curl_output;
        auto get = curl(guest, key, {}, 120);
        ASSERT_EQ(get.status, 200) << get.curl_output;
        EXPECT_TRUE(get.body == value) << "value " << i << " corrupted";
    }
    EXPECT_GT(loss.dropped(), 3u) << "the loss program must really have dropped frames";
}

}  // namespace
}  // namespace wisp::test
