// wisp-bench-dataplane: what the XDP data plane costs per packet.
//
// Each case runs wisp_ingress through bpf_prog_test_run_opts with a large repeat count
// and, in the same round, a pass-only XDP program on the same frame; the table shows
// medians over the rounds and their ratio (the machine is shared and noisy, so only
// same-run ratios mean much). New-flow cases go through a small driver program that
// rewrites the source address and port before every run and tail-calls the program
// under test, so every run is a new flow; their baseline is the same driver
// tail-calling the pass-only program.
//
//   sudo build/bin/wisp-bench-dataplane [--rounds 7] [--repeat 1000000]
#include <bpf/bpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "wisp/dataplane/dataplane.h"
#include "wisp/test/packet.h"
#include "wisp_bench.skel.h"

namespace {

using namespace wisp::dataplane;
using wisp::test::FrameBuilder;
using Frame = std::vector<uint8_t>;

const wisp::test::MacBytes kUplinkMac = {0x02, 0, 0, 0, 0, 0x01},
                           kRouterMac = {0x02, 0, 0, 0, 0, 0x02};
const char *kVip = "198.18.0.1";

[[noreturn]] void die(const std::string &what) {
    std::fprintf(stderr, "wisp-bench-dataplane: %s\n", what.c_str());
    std::exit(1);
}

template <class T>
T must(wisp::Result<T> r, const char *what) {
    if (!r) die(std::string(what) + ": " + r.error().describe());
    return std::move(r).value();
}

void must(wisp::Status s, const char *what) {
    if (!s) die(std::string(what) + ": " + s.error().describe());
}

// Mean ns per run of `repeat` runs of `prog` on `frame` (one kernel call).
double run_repeated(int prog, const Frame &frame, uint32_t repeat, int verdict) {
    Frame out(frame.size() + 64);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()),
                .data_size_out = static_cast<uint32_t>(out.size()),
                .repeat = static_cast<int>(repeat));
    if (int err = bpf_prog_test_run_opts(prog, &opts))
        die("bpf_prog_test_run_opts: " + std::string(strerror(-err)));
    if (static_cast<int>(opts.retval) != verdict)
        die("unexpected verdict " + std::to_string(opts.retval) + " (wanted " +
            std::to_string(verdict) + ")");
    return opts.duration;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

struct Row {
    std::string name;
    std::vector<double> wisp, base;
};

Frame syn(const char *src, uint16_t sport, uint16_t dport) {
    return FrameBuilder()
        .macs(kUplinkMac, kRouterMac)
        .ip(src, kVip)
        .tcp(sport, dport, wisp::test::kTcpSyn)
        .build();
}

Replica replica_for(uint32_t service_id, uint32_t id, uint16_t port) {
    Replica r;
    r.service_id = service_id;
    r.state = ReplicaState::ready;
    r.tap_ifindex = 1000 + id;
    r.egress_ifindex = 100;
    r.guest_mac = {0x02, 0x77, 0x73, 0, 0, static_cast<uint8_t>(id)};
    r.host_mac = {0x02, 0x77, 0x73, 0xff, 0, static_cast<uint8_t>(id)};
    r.vip = *IpAddress::parse(kVip);
    r.port = port;
    return r;
}

}  // namespace

int main(int argc, char **argv) {
    CLI::App app{
        "wisp data plane: ns/packet through bpf_prog_test_run, next to a pass-only XDP program"};
    int rounds = 7;
    uint32_t repeat = 1000000, flows = 100000;
    app.add_option("--rounds", rounds, "rounds per case (the median is reported)")
        ->check(CLI::Range(1, 100));
    app.add_option("--repeat", repeat, "runs per kernel call")
        ->check(CLI::Range(1000u, 100000000u));
    app.add_option("--flows", flows, "new flows per round and case (all stay in the flow table)")
        ->check(CLI::Range(1000u, 1000000u));
    CLI11_PARSE(app, argc, argv);
    if (geteuid() != 0) die("needs root (BPF)");

    // Set-up order: baselines and driver, data plane on a private pin root, services.
    std::unique_ptr<wisp_bench, void (*)(wisp_bench *)> bench(wisp_bench__open_and_load(),
                                                              wisp_bench__destroy);
    if (!bench) die("load the benchmark programs");
    const int pass = bpf_program__fd(bench->progs.wisp_bench_pass);
    const int driver = bpf_program__fd(bench->progs.wisp_bench_flow);
    const int next = bpf_map__fd(bench->maps.wisp_bench_next);

    Options options;
    options.pin_root = "/sys/fs/bpf/wisp-bench-" + std::to_string(getpid());
    // Every new flow of every round stays in the table: no eviction in the numbers.
    options.sizes.flows = 2 * flows * static_cast<uint32_t>(rounds) + 1024;
    options.sizes.event_bytes = 16u << 20;
    auto dp = must(Dataplane::open(options), "open the data plane");
    const int prog = dp->xdp_program_fd();
    const IpAddress vip = *IpAddress::parse(kVip);

    // web: 2 READY replicas; wide: 16 READY replicas; cold: WAKING (every SYN buffered).
    for (uint32_t id = 1; id <= 2; id++)
        must(dp->set_replica(id, replica_for(1, id, 8080)), "replica");
    std::vector<uint32_t> wide_ids;
    for (uint32_t id = 10; id < 26; id++) {
        must(dp->set_replica(id, replica_for(2, id, 8081)), "replica");
        wide_ids.push_back(id);
    }
    must(dp->upsert_service({vip, 8080, Protocol::tcp}, Service{1, ServiceState::ready, {1, 2}}),
         "service");
    must(dp->upsert_service({vip, 8081, Protocol::tcp}, Service{2, ServiceState::ready, wide_ids}),
         "service");
    must(dp->upsert_service({vip, 9090, Protocol::tcp}, Service{3, ServiceState::waking, {}}),
         "service");

    const Frame host_syn = syn("198.18.0.2", 40000, 22);
    const Frame flow_ack = FrameBuilder()
                               .macs(kUplinkMac, kRouterMac)
                               .ip("198.18.0.2", kVip)
                               .tcp(40000, 8080, wisp::test::kTcpAck)
                               .payload(64)
                               .build();
    run_repeated(prog, syn("198.18.0.2", 40000, 8080), 1, XDP_REDIRECT);  // creates the flow
    const Frame web_syn = syn("198.18.0.2", 1, 8080), wide_syn = syn("198.18.0.2", 1, 8081);
    const Frame cold_syn = syn("198.18.0.2", 40000, 9090);
    const uint32_t capture_repeat = std::min<uint32_t>(repeat, 50000);  // fits the ring

    auto set_next = [&](int fd) {
        uint32_t zero = 0;
        if (bpf_map_update_elem(next, &zero, &fd, BPF_ANY) != 0) die("set the driver's tail call");
    };
    Row pass_row{"non-service pass-through (SYN to port 22)", {}, {}};
    Row fwd_row{"forward, existing flow (ACK, 64 B payload)", {}, {}};
    Row new2_row{"new flow, 2 READY replicas (SYN)", {}, {}};
    Row new16_row{"new flow, 16 READY replicas (SYN)", {}, {}};
    Row wake_row{"wake capture (SYN to a waking service)", {}, {}};
    for (int r = 0; r < rounds; r++) {
        pass_row.base.push_back(run_repeated(pass, host_syn, repeat, XDP_PASS));
        pass_row.wisp.push_back(run_repeated(prog, host_syn, repeat, XDP_PASS));

        fwd_row.base.push_back(run_repeated(pass, flow_ack, repeat, XDP_PASS));
        fwd_row.wisp.push_back(run_repeated(prog, flow_ack, repeat, XDP_REDIRECT));

        set_next(pass);
        new2_row.base.push_back(run_repeated(driver, web_syn, flows, XDP_PASS));
        new16_row.base.push_back(run_repeated(driver, wide_syn, flows, XDP_PASS));
        set_next(prog);
        new2_row.wisp.push_back(run_repeated(driver, web_syn, flows, XDP_REDIRECT));
        new16_row.wisp.push_back(run_repeated(driver, wide_syn, flows, XDP_REDIRECT));

        wake_row.base.push_back(run_repeated(pass, cold_syn, capture_repeat, XDP_PASS));
        wake_row.wisp.push_back(run_repeated(prog, cold_syn, capture_repeat, XDP_DROP));
        must(dp->consume_events([](const Event &) {}), "drain the ring buffer");
    }

    auto stats = must(dp->statistics(), "statistics");
    utsname un{};
    uname(&un);
    std::printf("wisp data plane, ns per packet (bpf_prog_test_run, median of %d rounds)\n",
                rounds);
    std::printf(
        "kernel %s, %ld CPUs; %u runs per call, %u new flows per round and new-flow case\n\n",
        un.release, sysconf(_SC_NPROCESSORS_ONLN), repeat, flows);
    std::printf("%-44s %12s %10s %8s\n", "case", "wisp_ingress", "pass-only", "ratio");
    for (const Row *row : {&pass_row, &fwd_row, &new2_row, &new16_row, &wake_row}) {
        double w = median(row->wisp), b = median(row->base);
        std::printf("%-44s %12.1f %10.1f %7.2fx\n", row->name.c_str(), w, b, w / b);
    }
    double fwd = median(fwd_row.wisp), fwd_ratio = fwd / median(fwd_row.base);
    std::printf(
        "\ngoal, forward on an existing flow: %.1f ns (<= 80 ns: %s), %.2fx pass-only (<= 2x: "
        "%s)\n",
        fwd, fwd <= 80 ? "met" : "NOT met", fwd_ratio, fwd_ratio <= 2 ? "met" : "NOT met");
    std::printf("new flows: %llu, captures lost to a full ring: %llu (must be 0)\n",
                static_cast<unsigned long long>(stats[WISP_STAT_NEW_FLOWS]),
                static_cast<unsigned long long>(stats[WISP_STAT_RINGBUF_FULL]));

    must(dp->unpin(), "remove the benchmark's pins");
    return 0;
}
