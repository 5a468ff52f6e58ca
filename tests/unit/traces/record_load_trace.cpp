// wisp-record-load-trace: records a load trace for the autoscaler's unit tests
// (tests/unit/autoscaler_test.cpp) from a real guest behind the real data plane.
//
//   sudo build/bin/wisp-record-load-trace --pattern step|bursts --out FILE
//
// Set-up (all removed at exit): a client namespace behind a veth whose host end
// carries wisp_ingress (XDP) and the service VIP, a tap with wisp_tap_in (TC) and a
// `hello` guest on it (`wisp-vmm run`), one READY replica in the maps. wrk runs in
// the client namespace against the VIP with `Connection: close`, so every request
// is a new flow; a sampler reads the replica's wisp_rep_stats every millisecond
// and writes "t_ms,new_flows,in_packets" (cumulative) rows. traces/README.md says
// which command made which file.
//
// Not a test: it needs root, KVM and BPF, and what it records depends on the
// machine. The unit tests read the files it wrote, without privileges.
#include <arpa/inet.h>
#include <net/if.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "wisp/dataplane/dataplane.h"
#include "wisp/test/net.h"
#include "wisp/test/paths.h"
#include "wisp/test/process.h"

namespace {

using namespace wisp;
using namespace std::chrono_literals;

constexpr uint16_t kPort = 8080;
constexpr uint32_t kServiceId = 1;
constexpr uint32_t kReplicaId = 1;
const char *kGuestMac = "02:77:72:00:00:01";

std::string read_line(const std::string &path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

std::string ipv4_text(uint32_t host_order) {
    in_addr addr{htonl(host_order)};
    char text[INET_ADDRSTRLEN];
    return inet_ntop(AF_INET, &addr, text, sizeof text);
}

uint32_t ifindex_of(const std::string &name) {
    uint32_t index = if_nametoindex(name.c_str());
    if (!index) throw std::runtime_error("no interface " + name);
    return index;
}

template <class T>
T must(Result<T> r, const char *what) {
    if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().describe());
    return std::move(*r);
}

void must(Status s, const char *what) {
    if (!s.ok()) throw std::runtime_error(std::string(what) + ": " + s.error().describe());
}

// A persistent tap (so wisp-vmm can open it by name), deleted at the end.
class PersistentTap {
public:
    PersistentTap() : name_(test::unique_name("rt")) {
        test::run_or_throw({"ip", "tuntap", "add", "dev", name_, "mode", "tap"});
        test::run_or_throw({"ip", "link", "set", name_, "up"});
    }
    ~PersistentTap() { test::run({"ip", "link", "del", name_}, 30); }
    const std::string &name() const { return name_; }

private:
    std::string name_;
};

// A child process group killed at the end.
class Child {
public:
    Child(const std::vector<std::string> &argv, const std::string &log)
        : pid_(test::spawn_logged(argv, log)) {}
    ~Child() { stop(SIGKILL); }
    void stop(int sig) {
        if (pid_ <= 0) return;
        kill(-pid_, sig);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    bool running() { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

private:
    int pid_;
};

struct Row {
    double t_ms;
    uint64_t new_flows;
    uint64_t in_packets;
};

int record(const std::string &pattern, const std::string &out_path) {
    if (geteuid() != 0) throw std::runtime_error("needs root (BPF, namespaces, KVM)");
    test::ScopedBpffsDir pins("rec");
    test::ScopedNetns ns("rec");
    test::ScopedVeth veth("rec");
    veth.move_peer_to(ns);
    // A /30 of 198.18.128.0/17 for this process: host (the VIP) .1, client .2.
    uint32_t base = 0xc6128000u + (static_cast<uint32_t>(getpid()) % 8192) * 4;
    std::string vip = ipv4_text(base + 1), client = ipv4_text(base + 2);
    test::run_or_throw({"ip", "addr", "add", vip + "/30", "dev", veth.host()});
    test::run_or_throw({"ip", "-n", ns.name(), "addr", "add", client + "/30", "dev", veth.peer()});
    // The client's kernel would leave TCP checksums to an offload that never happens:
    // XDP hands the frame to the tap as it is, and the guest checks every checksum.
    test::run_or_throw(
        {"ip", "netns", "exec", ns.name(), "ethtool", "-K", veth.peer(), "tx", "off"});
    // The guest closes first, so it holds TIME_WAIT (30 s) while the client's port is
    // free again at once; a reused port then meets that TIME_WAIT and stalls. A wide
    // port range pushes that past the ~7000 connections a recording makes.
    test::run_or_throw({"ip", "netns", "exec", ns.name(), "sysctl", "-qw",
                        "net.ipv4.ip_local_port_range=1024 65000"});
    PersistentTap tap;

    auto dp = must(dataplane::Dataplane::open({.pin_root = pins.path() + "/wisp"}), "open");
    uint32_t uplink = ifindex_of(veth.host());
    uint32_t tap_index = ifindex_of(tap.name());
    must(dp->attach_uplink(uplink), "attach uplink");
    must(dp->attach_tap(tap_index), "attach tap");

    test::ScopedTempDir dir("rec");
    std::string tap_mac = read_line("/sys/class/net/" + tap.name() + "/address");
    // The guest answers from the VIP; /32 and the client as gateway, whose static
    // ARP entry is the tap's MAC: the guest never needs ARP (the data plane drops it).
    Child vm({test::binary_path("wisp-vmm"), "run", "--image", test::image_path("hello"), "--tap",
              tap.name(), "--mem", "64M", "--ip", vip, "--prefix", "32", "--gateway-ip", client,
              "--mac", kGuestMac, "--gateway-mac", tap_mac, "--cmdline",
              "port=" + std::to_string(kPort)},
             dir.path() + "/vm.log");
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (test::run({"grep", "-q", "guest is ready", dir.path() + "/vm.log"}).exit_code != 0) {
        if (!vm.running() || std::chrono::steady_clock::now() > deadline)
            throw std::runtime_error("the guest did not become ready; see " + dir.path());
        std::this_thread::sleep_for(20ms);
    }

    dataplane::Replica replica;
    replica.service_id = kServiceId;
    replica.state = dataplane::ReplicaState::ready;
    replica.tap_ifindex = tap_index;
    replica.egress_ifindex = uplink;
    replica.guest_mac = must(dataplane::parse_mac(kGuestMac), "guest MAC");
    replica.host_mac = must(dataplane::parse_mac(tap_mac), "tap MAC");
    replica.vip = must(dataplane::IpAddress::parse(vip), "VIP");
    replica.port = kPort;
    must(dp->set_replica(kReplicaId, replica), "set replica");
    dataplane::ServiceKey key{replica.vip, kPort, dataplane::Protocol::tcp};
    must(dp->upsert_service(key, {kServiceId, dataplane::ServiceState::ready, {kReplicaId}}),
         "upsert service");

    // Check the path once before recording.
    std::string url = "http://" + vip + ":" + std::to_string(kPort) + "/";
    auto probe = test::run({"ip", "netns", "exec", ns.name(), "curl", "-sS", "-m", "5", url}, 10);
    if (probe.exit_code != 0) {
        std::string why = "curl through the data plane failed: " + probe.output + "\ncounters:";
        if (auto stats = dp->statistics())
            for (size_t i = 0; i < stats->values.size(); ++i)
                if (stats->values[i])
                    why += std::string(" ") + dataplane::stat_name(wisp_stat(i)) + "=" +
                           std::to_string(stats->values[i]);
        auto log = test::run({"tail", "-20", dir.path() + "/vm.log"});
        throw std::runtime_error(why + "\nmonitor:\n" + log.output);
    }

    // Sampler: every millisecond, the replica's cumulative counters.
    std::vector<Row> rows;
    rows.reserve(20000);
    std::atomic<bool> done{false};
    auto t0 = std::chrono::steady_clock::now();
    std::thread sampler([&] {
        auto next = t0;
        while (!done.load()) {
            auto c = dp->replica_counters(kReplicaId);
            double t =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count();
            if (c) rows.push_back({t, c->new_flows, c->in_packets});
            next += 1ms;
            std::this_thread::sleep_until(next);
        }
    });

    // wrk runs for exactly `length`, stopped with SIGINT (wrk's -d takes whole seconds).
    std::string wrk_log = dir.path() + "/wrk.log";
    auto run_wrk = [&](const char *threads, const char *connections, auto length) {
        Child run({"ip", "netns", "exec", ns.name(), "wrk", threads, connections, "-d60s", "-H",
                   "Connection: close", "--timeout", "5s", url},
                  wrk_log);
        std::this_thread::sleep_for(length);
        run.stop(SIGINT);
    };
    std::string description;
    if (pattern == "step") {
        description = "1 s idle, wrk -t2 -c4 -H 'Connection: close' for 1.5 s, 2 s idle";
        std::this_thread::sleep_for(1s);
        run_wrk("-t2", "-c4", 1500ms);
        std::this_thread::sleep_for(2s);
    } else if (pattern == "bursts") {
        description = "0.5 s idle, 10 x (wrk -t1 -c2 -H 'Connection: close' started every "
                      "300 ms, stopped 150 ms later), 0.5 s idle";
        std::this_thread::sleep_for(500ms);
        auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < 10; ++i) {
            std::this_thread::sleep_until(start + i * 300ms);
            run_wrk("-t1", "-c2", 150ms);
        }
        std::this_thread::sleep_until(start + 10 * 300ms + 500ms);
    } else {
        throw std::runtime_error("unknown pattern " + pattern);
    }
    done = true;
    sampler.join();

    std::ofstream out(out_path);
    out << "# wisp load trace: one `hello` replica behind the data plane (XDP on a veth,\n"
        << "# TC on its tap), driven from a client namespace: " << description << ".\n"
        << "# Recorded with: sudo build/bin/wisp-record-load-trace --pattern " << pattern
        << "\n# Columns: ms since the start, wisp_rep_stats new_flows and in_packets of the\n"
        << "# replica (cumulative, summed over CPUs), sampled about every millisecond;\n"
        << "# while nothing changes, one row per 50 ms.\n"
        << "t_ms,new_flows,in_packets\n";
    const Row *last = nullptr;
    for (const Row &r : rows) {
        bool changed = !last || r.new_flows != last->new_flows || r.in_packets != last->in_packets;
        if (!changed && r.t_ms - last->t_ms < 50 && &r != &rows.back()) continue;
        last = &r;
        char line[96];
        std::snprintf(line, sizeof line, "%.1f,%llu,%llu\n", r.t_ms,
                      static_cast<unsigned long long>(r.new_flows),
                      static_cast<unsigned long long>(r.in_packets));
        out << line;
    }
    std::fprintf(stderr, "%zu samples, %llu new flows -> %s\n", rows.size(),
                 rows.empty() ? 0ull : static_cast<unsigned long long>(rows.back().new_flows),
                 out_path.c_str());
    vm.stop(SIGTERM);
    (void)dp->detach_uplink(uplink);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    CLI::App app{"records a load trace for the autoscaler's unit tests"};
    std::string pattern = "step", out;
    app.add_option("--pattern", pattern, "step or bursts")->capture_default_str();
    app.add_option("--out", out, "CSV file to write")->required();
    CLI11_PARSE(app, argc, argv);
    try {
        return record(pattern, out);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "wisp-record-load-trace: %s\n", e.what());
        return 1;
    }
}
