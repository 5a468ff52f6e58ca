// Load-step benchmark (not a test): what autoscaling does for a client when the
// load on a service jumps, next to the same step on a service pinned to 1 replica.
//
//   tools/bench/scale/run.sh [--max N] [--target T] [--connections C] [--quick] ...
//
// The real wispd (its own state, runtime and bpffs directories) on a veth uplink;
// the client in a network namespace at the other end (198.18.42.0/24, used by no
// test or other benchmark), timing every request itself. Two services of the same
// `hello` image, measured one after the other in the same run:
//
//   ON    --min 1 --max N --target T: wispd's autoscaler decides the replica count
//         (T by default: the OFF step's throughput on 1 replica over N + 2)
//   OFF   --min 1 --max 1 (`wisp service scale NAME 1`): the baseline
//
// Each goes through the same load: a few requests per second for a while, a step to
// C connections in a closed loop (every request a new connection, `Connection:
// close`: new flows are what the data plane spreads over replicas), then no load
// until the service is back to 1 replica. Meanwhile two samplers record:
//
//   every 1 ms   the data plane's view, from the pinned maps: the service's replica
//                slots, each replica's state (STARTING/READY/DRAINING) and its
//                new-flow counter (so "serving" means READY and receiving flows);
//   every 10 ms  wispd's view through its API (GET /v1/services/NAME): replicas by
//                state (restoring, ready, draining, ...) and their start stamps.
//
// Derived per service: when the replica count was decided after the step (wispd's
// start stamp of the first new replica, or its first sight in the maps/API, or a
// scale event in the journal, whichever is first), when a new replica was READY and
// took its first flow, latency percentiles in the first second of the step and over
// the whole step, errors, and the time back to 1 replica once the load is gone.
// A few more short steps on ON give the decision and serving times a median.
// Samples go to a JSON file for tools/bench/scale/plot.py; docs/autoscale.md
// ("Benchmark") explains the figures.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "wisp/test/net.h"
#include "wisp/test/paths.h"
#include "wisp/test/process.h"
#include "wisp/test/wispd.h"
#include "wisp_abi.h"

using nlohmann::json;
using namespace wisp;
using namespace wisp::test;

namespace {

// This benchmark's /24 (198.18.0.0/15 is the benchmarking range): host end of the
// uplink (the services' VIP) .1, client addresses .10 to .17 (8 x 64,512 source
// ports: no 5-tuple is used twice in a run). Fixed, so one run at a time (a lock
// file says so).
constexpr const char *kVip = "198.18.42.1";
const std::vector<std::string> kClients = {"198.18.42.10", "198.18.42.11", "198.18.42.12",
                                           "198.18.42.13", "198.18.42.14", "198.18.42.15",
                                           "198.18.42.16", "198.18.42.17"};
constexpr const char *kLockFile = "/run/wisp-bench-scale.lock";
constexpr uint64_t kMs = 1'000'000;

std::atomic<bool> g_interrupted{false};

struct Interrupted : std::runtime_error {
    Interrupted() : std::runtime_error("interrupted") {}
};

void check_interrupt() {
    if (g_interrupted.load()) throw Interrupted();
}

uint64_t clock_ns(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}
uint64_t now_ns() { return clock_ns(CLOCK_MONOTONIC); }

void sleep_until_ns(uint64_t t) {
    timespec ts{static_cast<time_t>(t / 1'000'000'000u), static_cast<long>(t % 1'000'000'000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

// Sleeps `ms` in small steps so Ctrl-C is seen quickly.
void sleep_ms(uint64_t ms) {
    uint64_t end = now_ns() + ms * kMs;
    while (now_ns() < end) {
        check_interrupt();
        sleep_until_ns(std::min(end, now_ns() + 20 * kMs));
    }
}

double pct(std::vector<double> v, double p) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

double ms_between(uint64_t from, uint64_t to) {
    return (static_cast<double>(to) - static_cast<double>(from)) / 1e6;
}

struct Options {
    uint32_t max_replicas = 4;
    uint32_t target = 0;  // new flows/s per replica; 0: from the OFF run's throughput
    int connections = 32;
    double light_rps = 20;
    uint64_t light_ms = 2000, heavy_ms = 6000, scale_in_wait_ms = 15000;
    std::string only;  // "", "on" or "off"
    int steps = 6;     // ON steps for the decision times: the main one and short ones
    std::string samples;
};

// ---- the client network -----------------------------------------------------------

class ClientNet {
public:
    ClientNet() : ns_("sbn"), veth_("sbv") {
        veth_.move_peer_to(ns_);
        run_or_throw({"ip", "addr", "add", std::string(kVip) + "/24", "dev", veth_.host()});
        for (auto &c : kClients)
            run_or_throw({"ip", "-n", ns_.name(), "addr", "add", c + "/24", "dev", veth_.peer()});
        run_or_throw({"ip", "-n", ns_.name(), "link", "set", "lo", "up"});
        // XDP hands the client's frames to the guest as they are, and the guest checks
        // every checksum: nothing may be left to a TX offload that never happens.
        run_or_throw({"ip", "netns", "exec", ns_.name(), "ethtool", "-K", veth_.peer(), "tx", "off"});
    }
    const std::string &uplink() const { return veth_.host(); }
    const std::string &ns() const { return ns_.name(); }

    // Moves the calling thread into the client namespace (its sockets live there).
    void enter() const {
        UniqueFd fd(open(("/run/netns/" + ns_.name()).c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd || setns(fd.get(), CLONE_NEWNET) != 0)
            throw std::runtime_error("setns " + ns_.name() + ": " + strerror(errno));
    }

private:
    ScopedNetns ns_;
    ScopedVeth veth_;
};

// ---- the load driver ----------------------------------------------------------------

enum Phase : uint8_t { kLight = 0, kHeavy = 1 };

struct Request {
    uint64_t start_ns = 0, connected_ns = 0, done_ns = 0;
    int status = 0;     // HTTP status of the response, 0 if none
    int error = 0;      // errno of a socket error, ETIMEDOUT after the request timeout
    uint16_t replica = 0;
    Phase phase = kLight;
    bool ok() const { return error == 0 && status >= 200 && status < 300; }
    double ms() const { return ms_between(start_ns, done_ns); }
};

struct LoadPlan {
    double light_rps;
    uint64_t light_ms, heavy_ms;
    int connections;
};

struct LoadResult {
    std::vector<Request> requests;
    uint64_t light_start_ns = 0, step_ns = 0, heavy_end_ns = 0, last_done_ns = 0;
};

// Client (address, port) pairs, handed out in order. One allocator for the whole
// run, so no 5-tuple is used twice: the guest keeps each closed connection in
// TIME_WAIT for a moment (a SYN meeting one stalls); --reuse-ports shows what
// reused 5-tuples do to the step.
class SourcePorts {
public:
    // Binds `fd` to the next free pair.
    void bind_next(int fd) {
        while (client_ < kClients.size()) {
            sockaddr_in src{};
            src.sin_family = AF_INET;
            inet_pton(AF_INET, kClients[client_].c_str(), &src.sin_addr);
            src.sin_port = htons(next_port_);
            if (++next_port_ == 0) {
                next_port_ = 1024;
                ++client_;
            }
            if (bind(fd, reinterpret_cast<sockaddr *>(&src), sizeof src) == 0) return;
            if (errno != EADDRINUSE) throw std::runtime_error("bind: " + std::string(strerror(errno)));
        }
        throw std::runtime_error("out of client ports (shorten the steps)");
    }
    // --reuse-ports: start again from the first pair (reproduces clients that reuse
    // 5-tuples still in the flow table).
    void rewind() { client_ = 0, next_port_ = 1024; }

private:
    size_t client_ = 0;
    uint16_t next_port_ = 1024;
};

// One epoll thread in the client namespace; every request a new connection.
class Driver {
public:
    Driver(const ClientNet &net, uint16_t port, SourcePorts &ports) : net_(net), port_(port), ports_(ports) {}
    // When the step began (0 before), for other threads.
    uint64_t step_ns() const { return step_ns_.load(); }

    LoadResult run(const LoadPlan &plan) {
        LoadResult result;
        std::string error;
        std::thread t([&] {
            try {
                net_.enter();
                result = drive(plan);
            } catch (const std::exception &e) {
                error = e.what();
            }
        });
        t.join();
        if (!error.empty()) {
            if (g_interrupted.load()) throw Interrupted();
            throw std::runtime_error("load driver: " + error);
        }
        return result;
    }

private:
    static constexpr uint64_t kTimeoutNs = 5'000'000'000u;
    static constexpr size_t kBufSize = 512;

    struct Conn {
        int fd = -1;
        size_t request = 0;
        size_t len = 0;
        char buf[kBufSize];
    };

    LoadResult drive(const LoadPlan &plan) {
        LoadResult r;
        r.requests.reserve(static_cast<size_t>(plan.light_rps * plan.light_ms / 1000) +
                           static_cast<size_t>(plan.heavy_ms) * 20 + 1024);
        UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
        if (!ep) throw std::runtime_error("epoll_create1");
        ep_ = ep.get();
        sockaddr_in dst{};
        dst.sin_family = AF_INET;
        dst.sin_port = htons(port_);
        inet_pton(AF_INET, kVip, &dst.sin_addr);
        dst_ = dst;

        requests_ = &r.requests;
        r.light_start_ns = now_ns();
        uint64_t step = r.light_start_ns + plan.light_ms * kMs;
        uint64_t end = step + plan.heavy_ms * kMs;
        uint64_t light_interval = static_cast<uint64_t>(1e9 / std::max(plan.light_rps, 0.1));
        uint64_t next_light = r.light_start_ns;
        epoll_event events[256];
        for (;;) {
            uint64_t now = now_ns();
            if (g_interrupted.load()) break;
            if (now < step) {
                while (next_light <= now) {
                    launch(kLight);
                    next_light += light_interval;
                }
            } else if (now < end) {
                if (!r.step_ns) step_ns_ = r.step_ns = now;
                // (a connect() that fails at once is a request too: at most C per turn)
                for (int k = 0; k < plan.connections && static_cast<int>(open_.size()) < plan.connections; ++k)
                    launch(kHeavy);
            } else {
                if (!r.heavy_end_ns) r.heavy_end_ns = now;
                if (open_.empty()) break;
            }
            uint64_t wake = now < step ? std::min(next_light, step) : now < end ? end : now + 5 * kMs;
            int timeout_ms = static_cast<int>(std::clamp<int64_t>(
                (static_cast<int64_t>(wake) - static_cast<int64_t>(now) + 999'999) / 1'000'000, 0, 5));
            int n = epoll_wait(ep_, events, 256, timeout_ms);
            for (int i = 0; i < n; ++i) progress(events[i].data.fd, events[i].events);
            expire(now_ns());
        }
        for (auto &[fd, c] : open_) close(fd);
        open_.clear();
        for (auto &q : r.requests) r.last_done_ns = std::max(r.last_done_ns, q.done_ns);
        if (!r.heavy_end_ns) r.heavy_end_ns = now_ns();
        return r;
    }

    void launch(Phase phase) {
        requests_->push_back({});
        Request &q = requests_->back();
        q.phase = phase;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) throw std::runtime_error("socket: " + std::string(strerror(errno)));
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        try {
            ports_.bind_next(fd);
        } catch (...) {
            close(fd);
            throw;
        }
        q.start_ns = now_ns();
        if (connect(fd, reinterpret_cast<const sockaddr *>(&dst_), sizeof dst_) != 0 &&
            errno != EINPROGRESS) {
            q.error = errno;
            q.done_ns = now_ns();
            close(fd);
            return;
        }
        Conn &c = open_[fd];
        c.fd = fd;
        c.request = requests_->size() - 1;
        c.len = 0;
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.fd = fd;
        epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    }

    void finish(Conn &c, int error) {
        Request &q = (*requests_)[c.request];
        q.done_ns = now_ns();
        q.error = error;
        if (!error) {
            // "HTTP/1.1 200 ..."
            std::string_view head(c.buf, c.len);
            if (head.size() > 12 && head.substr(0, 5) == "HTTP/") q.status = std::atoi(c.buf + 9);
        }
        int fd = c.fd;
        close(fd);
        open_.erase(fd);
    }

    void progress(int fd, uint32_t events) {
        auto it = open_.find(fd);
        if (it == open_.end()) return;
        Conn &c = it->second;
        Request &q = (*requests_)[c.request];
        if (!q.connected_ns) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) return finish(c, err);
            if (!(events & EPOLLOUT)) return;
            q.connected_ns = now_ns();
            static constexpr char kReq[] = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
            if (send(fd, kReq, sizeof kReq - 1, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof kReq - 1))
                return finish(c, errno ? errno : EIO);
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLRDHUP;
            ev.data.fd = fd;
            epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
            return;
        }
        for (;;) {
            char scratch[kBufSize];
            char *dst = c.len < kBufSize ? c.buf + c.len : scratch;
            size_t room = c.len < kBufSize ? kBufSize - c.len : sizeof scratch;
            ssize_t n = recv(fd, dst, room, 0);
            if (n > 0) {
                if (dst == c.buf + c.len) c.len += static_cast<size_t>(n);
                continue;
            }
            if (n == 0) return finish(c, 0);  // the server closed: the response is complete
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            return finish(c, errno);
        }
    }

    void expire(uint64_t now) {
        std::vector<int> late;
        for (auto &[fd, c] : open_)
            if (now - (*requests_)[c.request].start_ns > kTimeoutNs) late.push_back(fd);
        for (int fd : late) finish(open_[fd], ETIMEDOUT);
    }

    const ClientNet &net_;
    uint16_t port_;
    int ep_ = -1;
    sockaddr_in dst_{};
    std::vector<Request> *requests_ = nullptr;
    std::map<int, Conn> open_;
    SourcePorts &ports_;
    std::atomic<uint64_t> step_ns_{0};
};

// ---- wispd: its API and its pinned maps ------------------------------------------------

// The data plane's view of one service, read like XDP reads it.
struct MapSample {
    uint64_t t_ns = 0;
    uint32_t service_state = 0;
    struct Rep {
        uint32_t id, state;
        uint64_t new_flows;
    };
    std::vector<Rep> replicas;  // in slot order
    int count(uint32_t state) const {
        return static_cast<int>(std::count_if(replicas.begin(), replicas.end(),
                                              [&](const Rep &r) { return r.state == state; }));
    }
};

class Maps {
public:
    explicit Maps(const std::string &pin_root) : cpus_(libbpf_num_possible_cpus()) {
        auto open_pin = [&](const char *name) {
            UniqueFd fd(bpf_obj_get((pin_root + "/" + name).c_str()));
            if (!fd) throw std::runtime_error(std::string("open pinned ") + name + ": " + strerror(errno));
            return fd;
        };
        services_ = open_pin("wisp_services");
        replicas_ = open_pin("wisp_replicas");
        stats_ = open_pin("wisp_rep_stats");
        per_cpu_.resize(static_cast<size_t>(std::max(cpus_, 1)));
    }

    bool sample(uint16_t port, MapSample &out) {
        wisp_service_key key{};
        key.vip[10] = key.vip[11] = 0xff;
        inet_pton(AF_INET, kVip, key.vip + 12);
        key.port = htons(port);
        key.proto = IPPROTO_TCP;
        wisp_service svc{};
        out.t_ns = now_ns();
        out.replicas.clear();
        if (bpf_map_lookup_elem(services_.get(), &key, &svc) != 0) return false;
        out.service_state = svc.state;
        for (uint32_t id : svc.replicas) {
            if (id == WISP_REPLICA_NONE) continue;
            wisp_replica rep{};
            if (bpf_map_lookup_elem(replicas_.get(), &id, &rep) != 0) continue;
            uint64_t flows = 0;
            if (bpf_map_lookup_elem(stats_.get(), &id, per_cpu_.data()) == 0)
                for (auto &s : per_cpu_) flows += s.new_flows;
            out.replicas.push_back({id, rep.state, flows});
        }
        return true;
    }

private:
    int cpus_;
    UniqueFd services_, replicas_, stats_;
    std::vector<wisp_replica_stats> per_cpu_;
};

struct ApiReplica {
    uint32_t id;
    std::string state;
    uint64_t started_ms;
};
struct ApiSample {
    uint64_t t_ns;
    std::vector<ApiReplica> replicas;
    int count(const std::string &state) const {
        return static_cast<int>(std::count_if(replicas.begin(), replicas.end(),
                                              [&](const ApiReplica &r) { return r.state == state; }));
    }
};

class Wispd {
public:
    Wispd(const ClientNet &net, const std::string &root, const std::string &bpffs, int pool)
        : process_({root, net.uplink(), bpffs + "/wisp", {"--monitor-pool-size", std::to_string(pool)}, {}}),
          pin_root_(bpffs + "/wisp") {
        if (!process_.start()) throw std::runtime_error("wispd did not start:\n" + process_.log());
    }
    ~Wispd() {
        process_.stop(SIGTERM, 10);
        process_.kill_monitors();
    }

    const std::string &pin_root() const { return pin_root_; }

    json get(const std::string &path) {
        httplib::Client c(process_.socket());
        c.set_address_family(AF_UNIX);
        c.set_read_timeout(30);
        auto res = c.Get(path.c_str());
        if (!res) throw std::runtime_error("API " + path + ": " + httplib::to_string(res.error()));
        return json::parse(res->body);
    }

    void patch(const std::string &path, const json &body) {
        httplib::Client c(process_.socket());
        c.set_address_family(AF_UNIX);
        auto res = c.Patch(path.c_str(), body.dump(), "application/json");
        if (!res || res->status != 200)
            throw std::runtime_error("API PATCH " + path + ": " + (res ? res->body : httplib::to_string(res.error())));
    }

    void cli(const std::vector<std::string> &args) {
        auto r = process_.cli(args);
        if (r.exit_code != 0) {
            std::string cmd;
            for (auto &a : args) cmd += " " + a;
            throw std::runtime_error("wisp" + cmd + ": " + r.output);
        }
    }

    // Waits until the service runs exactly `n` replicas, all READY, also in the maps.
    void wait_ready(const std::string &name, uint16_t port, size_t n, Maps &maps, int timeout_ms) {
        uint64_t deadline = now_ns() + static_cast<uint64_t>(timeout_ms) * kMs;
        MapSample m;
        while (now_ns() < deadline) {
            check_interrupt();
            json s = get("/v1/services/" + name);
            size_t ready = 0;
            for (auto &r : s["replicas"]) ready += r["state"] == "ready";
            if (ready == n && s["replicas"].size() == n && maps.sample(port, m) &&
                m.replicas.size() == n && m.count(WISP_REPLICA_READY) == static_cast<int>(n))
                return;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        throw std::runtime_error(name + ": never had " + std::to_string(n) + " READY replica(s):\n" +
                                 get("/v1/services/" + name).dump(1));
    }


private:
    WispdProcess process_;
    std::string pin_root_;
};

// Both samplers, running while one service is measured.
class Recorder {
public:
    Recorder(Wispd &w, Maps &maps, const std::string &name, uint16_t port)
        : w_(w), maps_(maps), name_(name), port_(port) {
        map_samples_.reserve(60'000);
        map_thread_ = std::thread([this] { map_loop(); });
        api_thread_ = std::thread([this] { api_loop(); });
    }
    ~Recorder() { stop(); }

    void stop() {
        done_ = true;
        if (map_thread_.joinable()) map_thread_.join();
        if (api_thread_.joinable()) api_thread_.join();
    }

    // Thread-safe copies for the waits while recording.
    std::optional<ApiSample> last_api() {
        std::lock_guard lock(mu_);
        if (api_samples_.empty()) return std::nullopt;
        return api_samples_.back();
    }

    std::vector<MapSample> map_samples_;
    std::vector<ApiSample> api_samples_;
    std::string api_error_;

private:
    void map_loop() {
        uint64_t next = now_ns();
        MapSample s;
        while (!done_) {
            if (maps_.sample(port_, s)) map_samples_.push_back(s);
            next += kMs;
            uint64_t now = now_ns();
            if (next < now) next = now;
            sleep_until_ns(next);
        }
    }
    void api_loop() {
        uint64_t next = now_ns();
        while (!done_) {
            try {
                json s = w_.get("/v1/services/" + name_);
                ApiSample a{now_ns(), {}};  // when the answer is in: "seen by then"
                for (auto &r : s["replicas"])
                    a.replicas.push_back({r["id"].get<uint32_t>(), r["state"].get<std::string>(),
                                          r["started_at_ms"].get<uint64_t>()});
                std::lock_guard lock(mu_);
                api_samples_.push_back(std::move(a));
            } catch (const std::exception &e) {
                std::lock_guard lock(mu_);
                api_error_ = e.what();
            }
            next += 10 * kMs;
            uint64_t now = now_ns();
            if (next < now) next = now;
            sleep_until_ns(next);
        }
    }

    Wispd &w_;
    Maps &maps_;
    std::string name_;
    uint16_t port_;
    std::atomic<bool> done_{false};
    std::mutex mu_;
    std::thread map_thread_, api_thread_;
};

// ---- one configuration's run and what it shows --------------------------------------------

struct Figures {
    // ms after the step; NAN when it did not happen
    double decision = NAN, decision_stamp = NAN, decision_seen_maps = NAN, decision_seen_api = NAN,
           decision_event = NAN;
    double new_ready = NAN, new_first_flow = NAN, all_ready = NAN;
    std::string decision_source = "-";
    // Upper bound of the decision: wispd's stamps are whole milliseconds (the
    // decision lies in [stamp, stamp + 1)); sightings are upper bounds themselves.
    double decision_hi = NAN;
    int decisions = 0;  // scale events in the journal during the step
    int max_ready = 0, max_total = 0;
    // ms after the load ended (last response)
    double drain_start = NAN, scale_in = NAN;
    // latency (ms): first second of the step, whole step
    std::vector<double> first_s, whole;
    size_t requests = 0, ok = 0, socket_errors = 0, non_2xx = 0, heavy_done = 0;
    std::map<std::string, int> errors;  // by errno name
    double step_rps = 0;
};

struct Run {
    std::string label, service;
    uint16_t port;
    uint32_t min_replicas;
    LoadResult load;
    std::vector<MapSample> maps;
    std::vector<ApiSample> api;
    json events;
    int64_t wall_minus_mono_ns = 0;
    Figures f;
};

Figures derive(const Run &run) {
    Figures f;
    const LoadResult &L = run.load;
    uint64_t step = L.step_ns;
    auto after_step = [&](uint64_t t) { return ms_between(step, t); };

    // Replicas present when the step began (from the maps).
    std::set<uint32_t> initial;
    for (auto &m : run.maps) {
        if (m.t_ns > step) break;
        initial.clear();
        for (auto &r : m.replicas) initial.insert(r.id);
    }
    auto is_new = [&](uint32_t id) { return !initial.count(id); };

    for (auto &m : run.maps) {
        if (m.t_ns < step) continue;
        f.max_ready = std::max(f.max_ready, m.count(WISP_REPLICA_READY));
        f.max_total = std::max(f.max_total, static_cast<int>(m.replicas.size()));
        if (m.t_ns > L.heavy_end_ns) continue;
        for (auto &r : m.replicas) {
            if (!is_new(r.id)) continue;
            if (std::isnan(f.decision_seen_maps)) f.decision_seen_maps = after_step(m.t_ns);
            if (r.state == WISP_REPLICA_READY && std::isnan(f.new_ready)) f.new_ready = after_step(m.t_ns);
            if (r.new_flows > 0 && std::isnan(f.new_first_flow)) f.new_first_flow = after_step(m.t_ns);
        }
    }
    if (f.max_ready > 1)
        for (auto &m : run.maps)
            if (m.t_ns >= step && m.count(WISP_REPLICA_READY) == f.max_ready) {
                f.all_ready = after_step(m.t_ns);
                break;
            }
    // wispd's start stamp of new replicas (wall clock, ms), on our monotonic clock.
    double started = NAN;
    for (auto &a : run.api) {
        if (a.t_ns < step || a.t_ns > L.heavy_end_ns) continue;
        for (auto &r : a.replicas) {
            if (!is_new(r.id)) continue;
            if (std::isnan(f.decision_seen_api)) f.decision_seen_api = after_step(a.t_ns);
            double mono = static_cast<double>(r.started_ms) * 1e6 - static_cast<double>(run.wall_minus_mono_ns);
            double ms = (mono - static_cast<double>(step)) / 1e6;
            if (ms > -1 && (std::isnan(started) || ms < started)) started = ms;  // 1 ms stamps
        }
    }
    // A scale event in the journal (wispd with the fast loop records its decisions).
    for (auto &e : run.events) {
        if (e.value("kind", "") != "scale") continue;
        double mono = e.value("at_ms", 0.0) * 1e6 - static_cast<double>(run.wall_minus_mono_ns);
        double ms = (mono - static_cast<double>(step)) / 1e6;
        if (ms > -1 && ms < ms_between(step, L.heavy_end_ns)) {
            ++f.decisions;
            if (std::isnan(f.decision_event) || ms < f.decision_event) f.decision_event = ms;
        }
    }
    f.decision_stamp = started;
    struct Candidate {
        double ms;
        const char *source;
        bool stamp;  // wispd's own whole-millisecond stamp, else our sighting
    };
    for (Candidate c : {Candidate{started, "wispd's start stamp of the first new replica", true},
                        Candidate{f.decision_event, "the scale event in the journal", true},
                        Candidate{f.decision_seen_maps, "first sight in the maps (1 ms sampling)", false},
                        Candidate{f.decision_seen_api, "first sight in the API (10 ms polling)", false}}) {
        if (std::isnan(c.ms)) continue;
        double hi = c.stamp ? c.ms + 1 : c.ms;
        if (std::isnan(f.decision_hi) || hi < f.decision_hi) f.decision_hi = hi;
        if (!std::isnan(f.decision) && c.ms >= f.decision) continue;
        f.decision = std::max(c.ms, 0.0);
        f.decision_source = c.source;
    }

    // Scale-in: after the load, the first drain, and back to min in wispd's view.
    uint64_t end = L.last_done_ns ? L.last_done_ns : L.heavy_end_ns;
    if (f.max_total > static_cast<int>(run.min_replicas)) {
        for (auto &a : run.api) {
            if (a.t_ns < end) continue;
            bool draining = false;
            for (auto &r : a.replicas) draining |= r.state != "ready" && r.state != "restoring";
            if (draining && std::isnan(f.drain_start)) f.drain_start = ms_between(end, a.t_ns);
            if (a.replicas.size() <= run.min_replicas) {
                f.scale_in = ms_between(end, a.t_ns);
                break;
            }
        }
    }

    for (auto &q : L.requests) {
        ++f.requests;
        if (q.ok()) ++f.ok;
        else if (q.error) {
            ++f.socket_errors;
            ++f.errors[strerrorname_np(q.error) ? strerrorname_np(q.error) : std::to_string(q.error)];
        } else {
            ++f.non_2xx;
        }
        if (q.phase != kHeavy || !q.ok()) continue;
        f.whole.push_back(q.ms());
        ++f.heavy_done;
        if (q.start_ns < step + 1000 * kMs) f.first_s.push_back(q.ms());
    }
    f.step_rps = static_cast<double>(f.heavy_done) / (ms_between(step, L.heavy_end_ns) / 1000);
    return f;
}

SourcePorts g_ports;
bool g_reuse_ports = false;

Run measure(Wispd &w, Maps &maps, const ClientNet &net, const LoadPlan &plan, uint64_t scale_in_wait_ms,
            const std::string &label, const std::string &service, uint16_t port, bool verbose = true) {
    Run run;
    if (g_reuse_ports) g_ports.rewind();
    run.label = label;
    run.service = service;
    run.port = port;
    run.min_replicas = 1;
    w.wait_ready(service, port, 1, maps, 30'000);
    run.wall_minus_mono_ns = static_cast<int64_t>(clock_ns(CLOCK_REALTIME)) - static_cast<int64_t>(now_ns());

    if (verbose)
        std::printf("  %s: %.0f req/s for %.1f s, %d connections for %.1f s, then none ...\n", label.c_str(),
                    plan.light_rps, plan.light_ms / 1e3, plan.connections, plan.heavy_ms / 1e3);
    std::fflush(stdout);
    Recorder rec(w, maps, service, port);
    Driver driver(net, port, g_ports);
    run.load = driver.run(plan);
    check_interrupt();

    // No load: wait for wispd to come back to min (it has nothing to do when pinned).
    uint64_t deadline = now_ns() + scale_in_wait_ms * kMs;
    uint64_t settle = now_ns() + 300 * kMs;
    while (now_ns() < deadline) {
        sleep_ms(20);
        auto a = rec.last_api();
        if (a && a->replicas.size() <= run.min_replicas && now_ns() > settle) break;
    }
    sleep_ms(50);
    rec.stop();
    run.maps = std::move(rec.map_samples_);
    run.api = std::move(rec.api_samples_);
    if (!rec.api_error_.empty()) std::printf("    (API poll error seen: %s)\n", rec.api_error_.c_str());
    run.events = w.get("/v1/events?service=" + service + "&limit=500").value("events", json::array());
    run.f = derive(run);
    return run;
}

// ---- report ---------------------------------------------------------------------------------

std::string fmt(double v, const char *unit = "", int prec = 1) {
    if (std::isnan(v)) return "-";
    char b[64];
    std::snprintf(b, sizeof b, "%.*f%s", prec, v, unit);
    return b;
}

std::string ratio(double on, double off) {
    if (std::isnan(on) || std::isnan(off) || off == 0) return "-";
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", on / off);
    return b;
}

void row(const char *what, const std::string &on, const std::string &off, const std::string &r = "") {
    std::printf("  %-50s %14s %14s %8s\n", what, on.c_str(), off.c_str(), r.c_str());
}

json run_json(const Run &r) {
    uint64_t step = r.load.step_ns;
    auto rel = [&](uint64_t t) { return std::round(ms_between(step, t) * 1000) / 1000; };
    json reqs = json::array();
    for (auto &q : r.load.requests)
        reqs.push_back({rel(q.start_ns), std::round(q.ms() * 1000) / 1000, q.ok() ? 1 : 0});
    // The maps' view: every change, and one sample per 50 ms in between.
    json maps = json::array();
    const MapSample *last = nullptr;
    for (auto &m : r.maps) {
        bool changed = !last || m.count(WISP_REPLICA_READY) != last->count(WISP_REPLICA_READY) ||
                       m.replicas.size() != last->replicas.size() ||
                       m.count(WISP_REPLICA_STARTING) != last->count(WISP_REPLICA_STARTING);
        if (!changed && m.t_ns - last->t_ns < 50 * kMs && &m != &r.maps.back()) continue;
        last = &m;
        maps.push_back({rel(m.t_ns), m.count(WISP_REPLICA_READY), m.count(WISP_REPLICA_STARTING),
                        m.count(WISP_REPLICA_DRAINING)});
    }
    // Around the step, every sample: READY replicas and new flows (all replicas).
    json zoom = json::array();
    for (auto &m : r.maps) {
        double t = ms_between(step, m.t_ns);
        if (t < -50 || t > 300) continue;
        uint64_t flows = 0;
        for (auto &rep : m.replicas) flows += rep.new_flows;
        zoom.push_back({rel(m.t_ns), m.count(WISP_REPLICA_READY), flows});
    }
    json api = json::array();
    for (auto &a : r.api) {
        int starting = a.count("restoring") + a.count("booting");
        int ready = a.count("ready");
        int leaving = static_cast<int>(a.replicas.size()) - starting - ready;
        api.push_back({rel(a.t_ns), ready, starting, leaving});
    }
    const Figures &f = r.f;
    auto num = [](double v) { return std::isnan(v) ? json(nullptr) : json(v); };
    return {{"label", r.label},
            {"service", r.service},
            {"light_start_ms", rel(r.load.light_start_ns)},
            {"heavy_end_ms", rel(r.load.heavy_end_ns)},
            {"last_done_ms", rel(r.load.last_done_ns)},
            {"requests", reqs},
            {"maps", maps},
            {"zoom", zoom},
            {"api", api},
            {"markers",
             {{"decision", num(f.decision)}, {"new_ready", num(f.new_ready)},
              {"new_first_flow", num(f.new_first_flow)},
              {"scale_in", std::isnan(f.scale_in) ? json(nullptr)
                                                   : json(ms_between(step, r.load.last_done_ns) + f.scale_in)}}}};
}

void report(const Options &o, const Run *on, const Run *off, const std::vector<Run> &repeats) {
    static const Figures none;
    const Figures &a = on ? on->f : none;
    const Figures &b = off ? off->f : none;
    std::printf("\nwisp scale benchmark: hello, load step (light %.0f req/s for %.1f s -> %d connections "
                "in a closed loop,\nevery request a new connection, for %.1f s -> none)\n",
                o.light_rps, o.light_ms / 1e3, o.connections, o.heavy_ms / 1e3);
    char on_title[64];
    std::snprintf(on_title, sizeof on_title, "(max %u, target %u)", o.max_replicas, o.target);
    std::printf("  %-50s %14s %14s %8s\n", "", "autoscale ON", "OFF (1 repl.)", "ON/OFF");
    std::printf("  %-50s %14s\n", "", on_title);
    auto i = [](size_t v) { return std::to_string(v); };
    row("requests", i(a.requests), i(b.requests));
    row("  socket errors", i(a.socket_errors), i(b.socket_errors));
    row("  non-2xx responses", i(a.non_2xx), i(b.non_2xx));
    row("throughput during the step (req/s)", fmt(a.step_rps, "", 0), fmt(b.step_rps, "", 0),
        ratio(a.step_rps, b.step_rps));
    row("latency, first second of the step: p50 (ms)", fmt(pct(a.first_s, .5), "", 2),
        fmt(pct(b.first_s, .5), "", 2), ratio(pct(a.first_s, .5), pct(b.first_s, .5)));
    row("                                   p99 (ms)", fmt(pct(a.first_s, .99), "", 2),
        fmt(pct(b.first_s, .99), "", 2), ratio(pct(a.first_s, .99), pct(b.first_s, .99)));
    row("latency, whole step: p50 (ms)", fmt(pct(a.whole, .5), "", 2), fmt(pct(b.whole, .5), "", 2),
        ratio(pct(a.whole, .5), pct(b.whole, .5)));
    row("                     p99 (ms)", fmt(pct(a.whole, .99), "", 2), fmt(pct(b.whole, .99), "", 2),
        ratio(pct(a.whole, .99), pct(b.whole, .99)));
    row("replicas READY at most (data plane)", i(static_cast<size_t>(a.max_ready)),
        i(static_cast<size_t>(b.max_ready)));
    std::printf("\n  ms after the step (first heavy connect())\n");
    row("scale decision", fmt(a.decision, "", 1), fmt(b.decision, "", 1));
    row("  wispd's start stamp of the first new replica", fmt(a.decision_stamp), fmt(b.decision_stamp));
    row("  first new replica seen in the maps (1 ms)", fmt(a.decision_seen_maps), fmt(b.decision_seen_maps));
    row("  first new replica seen in the API (10 ms)", fmt(a.decision_seen_api), fmt(b.decision_seen_api));
    row("  scale event in the journal", fmt(a.decision_event), fmt(b.decision_event));
    row("a new replica READY in the data plane", fmt(a.new_ready), fmt(b.new_ready));
    row("a new replica took its first flow", fmt(a.new_first_flow), fmt(b.new_first_flow));
    row("all replicas READY (the most seen)", fmt(a.all_ready), fmt(b.all_ready));
    std::printf("  decision taken from: %s\n", a.decision_source.c_str());
    std::printf("\n  ms after the load stopped (last response)\n");
    row("first replica leaving (draining/stopping)", fmt(a.drain_start, "", 0), fmt(b.drain_start, "", 0));
    row("back to 1 replica (wispd's view)", fmt(a.scale_in, "", 0), fmt(b.scale_in, "", 0));
    for (auto *r : {on, off})
        if (r && !r->f.errors.empty()) {
            std::printf("  %s socket errors:", r->label.c_str());
            for (auto &[k, v] : r->f.errors) std::printf(" %s=%d", k.c_str(), v);
            std::printf("\n");
        }

    if (on) {
        std::printf("\n  ON: wispd's scale events (journal, ms after the step)\n");
        std::vector<std::pair<double, std::string>> lines;
        for (auto &e : on->events) {
            if (e.value("kind", "") != "scale") continue;
            double mono = e.value("at_ms", 0.0) * 1e6 - static_cast<double>(on->wall_minus_mono_ns);
            double ms = (mono - static_cast<double>(on->load.step_ns)) / 1e6;
            if (ms >= -1000) lines.emplace_back(ms, e.value("message", ""));
        }
        std::sort(lines.begin(), lines.end());
        for (auto &[ms, message] : lines) std::printf("  %10.0f  %s\n", ms, message.c_str());
    }

    // The decision and serving times again over more steps (the first is the one above).
    std::vector<const Run *> steps;
    if (on) steps.push_back(on);
    for (auto &r : repeats) steps.push_back(&r);
    std::vector<double> dec, dec_hi, ready, flow, serving_hi, all;
    if (steps.size() > 1) {
        std::printf("\n  ON, %zu steps (%s, then %zu short ones: %.1f s of %d connections): ms after "
                    "the step\n",
                    steps.size(), "the one above", repeats.size(),
                    repeats.empty() ? 0.0 : ms_between(repeats[0].load.step_ns, repeats[0].load.heavy_end_ns) / 1e3,
                    o.connections);
        std::printf("  %6s %10s %12s %12s %12s %14s %9s %10s\n", "step", "decision", "new READY",
                    "first flow", "all READY", "READY at most", "events", "scale-in");
    }
    for (size_t k = 0; k < steps.size(); ++k) {
        const Figures &f = steps[k]->f;
        dec.push_back(f.decision);
        dec_hi.push_back(f.decision_hi);
        ready.push_back(f.new_ready);
        flow.push_back(f.new_first_flow);
        all.push_back(f.all_ready);
        // Serving after the decision, at most: the decision is no earlier than its stamp.
        serving_hi.push_back(f.new_first_flow - f.decision);
        if (steps.size() > 1)
            std::printf("  %6zu %10s %12s %12s %12s %14d %9d %10s\n", k + 1, fmt(f.decision).c_str(),
                        fmt(f.new_ready).c_str(), fmt(f.new_first_flow).c_str(), fmt(f.all_ready).c_str(),
                        f.max_ready, f.decisions, fmt(f.scale_in, "", 0).c_str());
    }
    auto finite = [](std::vector<double> v) {
        v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
        return v;
    };
    if (steps.size() > 1)
        std::printf("  %6s %10s %12s %12s %12s\n", "median", fmt(pct(finite(dec), .5)).c_str(),
                    fmt(pct(finite(ready), .5)).c_str(), fmt(pct(finite(flow), .5)).c_str(),
                    fmt(pct(finite(all), .5)).c_str());

    auto verdict = [](bool ok) { return ok ? "met" : "MISSED"; };
    size_t scaled = finite(dec).size();
    double d_hi = pct(finite(dec_hi), .5), serve = pct(finite(serving_hi), .5);
    std::printf("\n goals on this machine (autoscale ON; medians over %zu of %zu steps that scaled out;\n"
                " wispd stamps whole ms, so the decision counts at its stamp + 1 ms)\n",
                scaled, steps.size());
    std::printf("  %-50s %10s   %s\n", "scale decision <= 10 ms after the step", fmt(d_hi, " ms").c_str(),
                verdict(d_hi <= 10));
    std::printf("  %-50s %10s   %s\n", "new replica serving (first flow) <= 5 ms later",
                fmt(serve, " ms").c_str(), verdict(serve <= 5));
    size_t bad = a.socket_errors + a.non_2xx + b.socket_errors + b.non_2xx;
    for (auto &r : repeats) bad += r.f.socket_errors + r.f.non_2xx;
    std::printf("  %-50s %10zu   %s\n", "no socket error, no non-2xx (every run)", bad, verdict(bad == 0));
    if (on && scaled < steps.size())
        std::printf("  (%zu step(s) without a scale-out: a wispd without the autoscaler's fast loop, or "
                    "a step below its panic threshold)\n",
                    steps.size() - scaled);
}

void on_signal(int) { g_interrupted = true; }

int bench(Options o) {
    UniqueFd lock(open(kLockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock || flock(lock.get(), LOCK_EX | LOCK_NB) != 0)
        throw std::runtime_error(std::string("another scale benchmark holds ") + kLockFile +
                                 " (its client /24 is fixed)");
    ScopedTempDir tmp("bscale");
    MonitorReaper reaper{tmp.path() + "/run"};
    ScopedBpffsDir bpffs("bscale");
    ClientNet net;
    std::printf("setting up: wispd on %s, services hello-on (--min 1 --max %u) and hello-off "
                "(scale 1) ...\n",
                net.uplink().c_str(), o.max_replicas);
    std::fflush(stdout);
    Wispd w(net, tmp.path(), bpffs.path(), static_cast<int>(std::max<uint32_t>(o.max_replicas, 2)));
    Maps maps(w.pin_root());
    const std::string image = image_path("hello");
    // Long idle timeouts: only the autoscaler scales the ON service in.
    w.cli({"service", "create", "hello-on", "--image", image, "-p", "8090", "--cmdline", "port=8090",
           "--idle-timeout", "10m", "--min", "1", "--max", std::to_string(o.max_replicas), "--target",
           std::to_string(o.target ? o.target : 500)});
    w.cli({"service", "create", "hello-off", "--image", image, "-p", "8091", "--cmdline", "port=8091",
           "--idle-timeout", "10m", "--min", "1", "--max", "1"});
    w.cli({"service", "scale", "hello-off", "1"});

    std::optional<Run> off, on;
    std::printf("measuring (OFF first, then ON; the other service idles on 1 replica) ...\n");
    const LoadPlan plan{o.light_rps, o.light_ms, o.heavy_ms, o.connections};
    if (o.only != "on") off = measure(w, maps, net, plan, o.scale_in_wait_ms, "OFF", "hello-off", 8091);
    if (o.only != "off") {
        if (!o.target) {
            // The step's flow rate on 1 replica, over (max + 2): the step asks for more
            // than --max replicas and is well past the panic threshold (2x).
            double rps = off ? off->f.step_rps : 0;
            o.target = rps > 0 ? std::max(50u, static_cast<uint32_t>(rps / (o.max_replicas + 2) / 50) * 50)
                               : 500;
            std::printf("  target per replica: %u new flows/s (OFF step: %.0f req/s on 1 replica)\n",
                        o.target, rps);
            w.patch("/v1/services/hello-on", {{"target_per_replica", o.target}});
        }
        on = measure(w, maps, net, plan, o.scale_in_wait_ms, "ON", "hello-on", 8090);
    }
    std::vector<Run> repeats;
    if (on && o.steps > 1) {
        const LoadPlan short_plan{o.light_rps, 500, 1000, o.connections};
        std::printf("  ON: %d more steps of %.1f s, each once the service is back at 1 replica ...\n",
                    o.steps - 1, short_plan.heavy_ms / 1e3);
        std::fflush(stdout);
        for (int k = 1; k < o.steps; ++k)
            repeats.push_back(measure(w, maps, net, short_plan, o.scale_in_wait_ms, "ON", "hello-on", 8090, false));
    }

    report(o, on ? &*on : nullptr, off ? &*off : nullptr, repeats);
    json samples = {{"options",
                     {{"max", o.max_replicas}, {"target", o.target}, {"connections", o.connections},
                      {"light_rps", o.light_rps}, {"light_ms", o.light_ms}, {"heavy_ms", o.heavy_ms}}},
                    {"runs", json::array()}};
    if (on) samples["runs"].push_back(run_json(*on));
    if (off) samples["runs"].push_back(run_json(*off));
    samples["more_steps"] = json::array();
    for (auto &r : repeats) {
        json j = run_json(r);
        j.erase("requests");
        samples["more_steps"].push_back(j);
    }
    std::string dir = o.samples.substr(0, o.samples.rfind('/'));
    run({"mkdir", "-p", dir});
    std::ofstream(o.samples) << samples.dump() << "\n";
    std::printf("\nsamples: %s\n", o.samples.c_str());
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    Options o;
    o.samples = build_dir() + "/bench/scale-samples.json";
    auto num = [&](int &i) {
        if (i + 1 >= argc) throw std::runtime_error(std::string(argv[i]) + " needs a value");
        return std::atof(argv[++i]);
    };
    try {
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            if (a == "--max") o.max_replicas = static_cast<uint32_t>(num(i));
            else if (a == "--target") o.target = static_cast<uint32_t>(num(i));
            else if (a == "--connections") o.connections = static_cast<int>(num(i));
            else if (a == "--light-rps") o.light_rps = num(i);
            else if (a == "--light-ms") o.light_ms = static_cast<uint64_t>(num(i));
            else if (a == "--heavy-ms") o.heavy_ms = static_cast<uint64_t>(num(i));
            else if (a == "--scale-in-wait-ms") o.scale_in_wait_ms = static_cast<uint64_t>(num(i));
            else if (a == "--reuse-ports") g_reuse_ports = true;
            else if (a == "--steps") o.steps = std::max(1, static_cast<int>(num(i)));
            else if (a == "--only" && i + 1 < argc) o.only = argv[++i];
            else if (a == "--quick") o.light_ms = 1000, o.heavy_ms = 3000, o.scale_in_wait_ms = 8000, o.steps = 3;
            else if (a == "--samples" && i + 1 < argc) o.samples = argv[++i];
            else
                throw std::runtime_error(
                    "usage: wisp-bench-scale [--max N] [--target T] [--connections C] [--light-rps R] "
                    "[--light-ms MS] [--heavy-ms MS] [--scale-in-wait-ms MS] [--steps N] [--only on|off] [--quick] "
                    "[--reuse-ports] "
                    "[--samples FILE]");
        }
        if (o.max_replicas < 1 || o.max_replicas > WISP_REPLICA_SLOTS || o.connections < 1)
            throw std::runtime_error("--max must be 1..16 and --connections >= 1");
        if (geteuid() != 0) throw std::runtime_error("run as root (namespaces, XDP, KVM)");
        signal(SIGPIPE, SIG_IGN);
        struct sigaction sa{};
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, nullptr);
        sigaction(SIGTERM, &sa, nullptr);
        return bench(o);
    } catch (const Interrupted &) {
        std::fprintf(stderr, "wisp-bench-scale: interrupted; everything it created is removed\n");
        return 130;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "wisp-bench-scale: %s\n", e.what());
        return 1;
    }
}
