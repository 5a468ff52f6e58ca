// Shared set-up of the data-plane packet tests: a Dataplane on its own pin root and
// runners for bpf_prog_test_run_opts on its two programs.
#pragma once

#include <bpf/bpf.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "wisp/dataplane/dataplane.h"
#include "wisp/test/net.h"
#include "wisp/test/packet.h"

namespace wisp::test {

// The data-plane vocabulary every test here speaks.
using dataplane::Dataplane;
using dataplane::EventType;
using dataplane::IpAddress;
using dataplane::Mac;
using dataplane::Protocol;
using dataplane::Replica;
using dataplane::ReplicaState;
using dataplane::Service;
using dataplane::ServiceKey;
using dataplane::ServiceState;

struct RunResult {
    int verdict = -1;
    std::vector<uint8_t> output;
};

// A copy of one ring-buffer record (Event only borrows the ring's memory).
struct CapturedEvent {
    dataplane::EventType type;
    uint32_t service_id;
    uint64_t timestamp_ns;
    uint32_t orig_len;
    uint16_t l3_offset;
    uint16_t l3_proto;
    std::vector<uint8_t> frame;
};

inline RunResult run_prog(int prog_fd, const std::vector<uint8_t> &in, void *ctx = nullptr,
                          size_t ctx_size = 0) {
    RunResult r;
    r.output.resize(in.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = r.output.data(),
                .data_size_in = static_cast<uint32_t>(in.size()),
                .data_size_out = static_cast<uint32_t>(r.output.size()), .ctx_in = ctx,
                .ctx_size_in = static_cast<uint32_t>(ctx_size), .repeat = 1);
    int err = bpf_prog_test_run_opts(prog_fd, &opts);
    EXPECT_EQ(err, 0) << "bpf_prog_test_run_opts: " << strerror(-err);
    r.verdict = static_cast<int>(opts.retval);
    r.output.resize(opts.data_size_out);
    return r;
}

inline RunResult run_xdp(dataplane::Dataplane &dp, const std::vector<uint8_t> &in) {
    return run_prog(dp.xdp_program_fd(), in);
}

// Runs wisp_tap_in as if `in` had been written into the tap with `tap_ifindex`.
inline RunResult run_tap(dataplane::Dataplane &dp, const std::vector<uint8_t> &in,
                         uint32_t tap_ifindex) {
    __sk_buff ctx{};
    ctx.ingress_ifindex = tap_ifindex;
    return run_prog(dp.tap_program_fd(), in, &ctx, sizeof ctx);
}

inline std::vector<CapturedEvent> drain_events(dataplane::Dataplane &dp) {
    std::vector<CapturedEvent> out;
    auto n = dp.consume_events([&](const dataplane::Event &e) {
        out.push_back({e.type, e.service_id, e.timestamp_ns, e.orig_len, e.l3_offset, e.l3_proto,
                       std::vector<uint8_t>(e.frame.begin(), e.frame.end())});
    });
    EXPECT_TRUE(n.ok()) << n.error().describe();
    return out;
}

inline dataplane::Statistics statistics(dataplane::Dataplane &dp) {
    auto s = dp.statistics();
    EXPECT_TRUE(s.ok()) << s.error().describe();
    return s.ok() ? *s : dataplane::Statistics{};
}

// A Dataplane on a fresh pin root that is removed at the end.
class DataplaneFixture {
  public:
    explicit DataplaneFixture(dataplane::Options options = {}) : pins_("dp") {
        options.pin_root = pins_.path() + "/wisp";
        auto dp = dataplane::Dataplane::open(options);
        if (!dp) throw std::runtime_error("Dataplane::open: " + dp.error().describe());
        dp_ = std::move(*dp);
    }
    dataplane::Dataplane &dp() { return *dp_; }
    const std::string &pin_root() const { return dp_->pin_root(); }

  private:
    ScopedBpffsDir pins_;
    std::unique_ptr<dataplane::Dataplane> dp_;
};

}  // namespace wisp::test
