#include "wispd/dataplane_adapter.h"

#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstring>

namespace wisp::wispd {

namespace dp = wisp::dataplane;

namespace {

dp::ServiceState to_dp(DpServiceState s) {
    switch (s) {
        case DpServiceState::kZero: return dp::ServiceState::zero;
        case DpServiceState::kWaking: return dp::ServiceState::waking;
        case DpServiceState::kReady: return dp::ServiceState::ready;
        case DpServiceState::kDraining: return dp::ServiceState::draining;
    }
    return dp::ServiceState::zero;
}

dp::Mac to_dp(const MacAddress &m) { return m.bytes; }

bool all_zero(const MacAddress &m) {
    return std::all_of(m.bytes.begin(), m.bytes.end(), [](uint8_t b) { return b == 0; });
}

// The MAC of an interface, by index (replicas adopted after a restart).
Result<MacAddress> interface_mac(int ifindex) {
    ifreq ifr{};
    if (!if_indextoname(static_cast<unsigned>(ifindex), ifr.ifr_name))
        return errno_error("interface " + std::to_string(ifindex));
    UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) return errno_error("socket");
    if (ioctl(sock.get(), SIOCGIFHWADDR, &ifr) != 0)
        return errno_error(std::string("SIOCGIFHWADDR ") + ifr.ifr_name);
    MacAddress mac;
    std::memcpy(mac.bytes.data(), ifr.ifr_hwaddr.sa_data, 6);
    return mac;
}

}  // namespace

Result<std::unique_ptr<BpfDataPlane>> BpfDataPlane::open(const Config &config) {
    std::unique_ptr<BpfDataPlane> self(new BpfDataPlane());
    self->uplink_ifindex_ = if_nametoindex(config.uplink.c_str());
    if (self->uplink_ifindex_ == 0) return errno_error("uplink " + config.uplink);
    dp::Options options;
    options.pin_root = config.pin_root;
    auto loaded = dp::Dataplane::open(options);
    if (!loaded) return std::move(loaded).error();
    self->dp_ = std::move(loaded).value();
    auto mode = self->dp_->attach_uplink(self->uplink_ifindex_);
    if (!mode) return std::move(mode).error();
    timespec res{};
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    self->stamp_resolution_ns_ = static_cast<uint64_t>(res.tv_sec) * 1'000'000'000 +
                                 static_cast<uint64_t>(res.tv_nsec);
    self->description_ = "XDP on " + config.uplink +
                         (*mode == dp::XdpMode::native ? " (native)" : " (generic)") +
                         ", pins under " + config.pin_root +
                         (self->dp_->reused_pins() ? " (re-used)" : " (created)");
    return self;
}

Result<BpfDataPlane::ServiceEntry *> BpfDataPlane::entry(ServiceId id) {
    auto it = services_.find(id);
    if (it == services_.end())
        return Error{ENOENT, "service id " + std::to_string(id) + " is not in the data plane"};
    return &it->second;
}

Status BpfDataPlane::upsert_service(const DpService &s) {
    auto vip = dp::IpAddress::parse(s.vip);
    if (!vip) return std::move(vip).error();
    dp::ServiceKey key{*vip, s.port,
                       s.protocol == Protocol::kTcp ? dp::Protocol::tcp : dp::Protocol::udp};
    auto [it, inserted] = services_.try_emplace(s.id);
    ServiceEntry &e = it->second;
    if (inserted || !(e.key == key)) {
        e.key = key;
        e.slots.clear();
        // A restart: keep the replicas a previous wispd put there, so forwarding to
        // adopted replicas never pauses (set_replicas() settles them next).
        if (auto existing = dp_->lookup_service(key); existing && existing->id == s.id)
            e.slots = existing->replicas;
    }
    return dp_->upsert_service(e.key, {s.id, to_dp(s.state), e.slots});
}

Status BpfDataPlane::set_service_state(ServiceId id, DpServiceState state) {
    auto e = entry(id);
    if (!e) return std::move(e).error();
    return dp_->set_service_state((*e)->key, to_dp(state));
}

Status BpfDataPlane::remove_replica(uint32_t id) {
    auto st = dp_->remove_replica(id);
    if (!st) spdlog::warn("data plane: removing replica {}: {}", id, st.error().describe());
    return st;
}

Status BpfDataPlane::remove_service(ServiceId id) {
    auto it = services_.find(id);
    if (it == services_.end()) {
        // Not written by this process: a stale entry of an earlier wispd. Find its
        // key (start-up only, so a scan is fine).
        auto all = dp_->list_services();
        if (!all) return std::move(all).error();
        for (auto &[key, svc] : *all) {
            if (svc.id != id) continue;
            for (uint32_t rid : svc.replicas) (void)remove_replica(rid);
            return dp_->remove_service(key);
        }
        return {};
    }
    // New flows stop first; then the replicas go (their existing flows with them).
    Status st = dp_->remove_service(it->second.key);
    for (uint32_t rid : it->second.slots) (void)remove_replica(rid);
    services_.erase(it);
    return st;
}

Status BpfDataPlane::set_replicas(ServiceId id, const std::vector<DpReplica> &replicas) {
    auto found = entry(id);
    if (!found) return std::move(found).error();
    ServiceEntry &e = **found;
    if (replicas.size() > WISP_REPLICA_SLOTS)
        return invalid("a service has at most " + std::to_string(WISP_REPLICA_SLOTS) +
                       " replicas in the data plane");
    std::vector<uint32_t> slots;
    for (const DpReplica &r : replicas) {
        dp::Replica rep;
        rep.service_id = id;
        rep.state = r.state == DpReplicaState::kReady ? dp::ReplicaState::ready
                                                      : dp::ReplicaState::draining;
        rep.tap_ifindex = static_cast<uint32_t>(r.tap_ifindex);
        rep.egress_ifindex = uplink_ifindex_;
        rep.guest_mac = to_dp(r.guest_mac);
        MacAddress tap_mac = r.tap_mac;
        if (all_zero(tap_mac)) {
            auto mac = interface_mac(r.tap_ifindex);
            if (!mac) return std::move(mac).error();
            tap_mac = *mac;
        }
        rep.host_mac = to_dp(tap_mac);
        rep.vip = e.key.vip;
        rep.port = e.key.port;
        rep.protocol = e.key.protocol;
        auto gen = dp_->set_replica(r.id, rep);
        if (!gen) return std::move(gen).error();
        slots.push_back(r.id);
    }
    // The state is the data plane's too (it CASes ZERO -> WAKING): keep what is there.
    auto current = dp_->lookup_service(e.key);
    if (!current) return std::move(current).error();
    std::vector<uint32_t> gone;
    for (uint32_t old : e.slots)
        if (std::find(slots.begin(), slots.end(), old) == slots.end()) gone.push_back(old);
    e.slots = std::move(slots);
    WISP_RETURN_IF_ERROR(dp_->upsert_service(e.key, {id, current->state, e.slots}));
    for (uint32_t rid : gone) (void)remove_replica(rid);
    return {};
}

Status BpfDataPlane::attach_tap(int ifindex, ReplicaId) { return attach_tap_program(ifindex); }

Status BpfDataPlane::attach_tap_program(int ifindex) const {
    return dp_->attach_tap(static_cast<uint32_t>(ifindex));
}

Result<uint64_t> BpfDataPlane::last_activity_ns(ReplicaId replica) {
    auto c = dp_->replica_counters(replica);
    if (!c) return std::move(c).error();
    uint64_t last = c->last_activity_ns();
    // The stamps come from CLOCK_MONOTONIC_COARSE: the packet came up to one tick
    // (4 ms at HZ=250) after its stamp. Half a tick centres the error, so an idle
    // timeout is detected within half a tick of the packet's real age.
    return last ? last + stamp_resolution_ns_ / 2 : 0;
}

Status BpfDataPlane::replica_loads(std::span<const ReplicaId> ids,
                                   std::vector<DpReplicaLoad> &out) {
    out.assign(ids.size(), DpReplicaLoad{});
    // Batched reads over runs of nearby ids: one syscall per run. A batch costs
    // about 1 µs per entry read on a 2-core VM, a single lookup about 5 µs, so a
    // gap of up to kMaxGap unwanted ids is cheaper to read through than to split
    // at. Ids are small and reused smallest first, so the replicas of autoscaled
    // services usually form one run; an autoscaled service among many others
    // does not pay for reading all of theirs.
    constexpr ReplicaId kMaxGap = 8;
    by_id_.clear();
    for (size_t i = 0; i < ids.size(); ++i) by_id_.emplace_back(ids[i], i);
    std::sort(by_id_.begin(), by_id_.end());
    for (size_t begin = 0; begin < by_id_.size();) {
        size_t end = begin + 1;
        while (end < by_id_.size() && by_id_[end].first - by_id_[end - 1].first <= kMaxGap) ++end;
        ReplicaId first = by_id_[begin].first;
        WISP_RETURN_IF_ERROR(
            dp_->replica_counters_range(first, by_id_[end - 1].first - first + 1, range_));
        for (size_t k = begin; k < end; ++k) {
            size_t at = by_id_[k].first - first;
            if (at >= range_.size()) continue;
            const auto &c = range_[at];
            uint64_t last = c.last_activity_ns();
            out[by_id_[k].second] = {c.new_flows, c.in_packets,
                                     last ? last + stamp_resolution_ns_ / 2 : 0};
        }
        begin = end;
    }
    return {};
}

Result<std::vector<ServiceId>> BpfDataPlane::list_services() {
    auto all = dp_->list_services();
    if (!all) return std::move(all).error();
    std::vector<ServiceId> ids;
    ids.reserve(all->size());
    for (auto &[key, svc] : *all) ids.push_back(svc.id);
    return ids;
}

std::vector<DpCounter> BpfDataPlane::counters() {
    std::vector<DpCounter> out;
    auto stats = dp_->statistics();
    if (!stats) {
        spdlog::warn("data plane statistics: {}", stats.error().describe());
        return out;
    }
    for (uint32_t i = 0; i < WISP_STAT_MAX; ++i) {
        auto stat = static_cast<wisp_stat>(i);
        out.push_back({dp::stat_name(stat), (*stats)[stat]});
    }
    return out;
}

int BpfDataPlane::event_fd() { return dp_->event_fd(); }

Status BpfDataPlane::drain_events(const std::function<void(const DpEvent &)> &sink) {
    DpEvent ev;
    auto n = dp_->consume_events([&](const dp::Event &e) {
        if (e.truncated() || e.l3_offset >= e.frame.size()) {
            // A partial datagram cannot be replayed; its sender retries.
            if (truncated_++ % 1000 == 0)
                spdlog::warn("data plane: dropped a truncated capture of {} bytes for service {} "
                             "({} so far)",
                             e.orig_len, e.service_id, truncated_);
            return;
        }
        ev.type = e.type == dp::EventType::wake ? DpEvent::Type::kWake : DpEvent::Type::kBuffered;
        ev.service = e.service_id;
        ev.timestamp_ns = e.timestamp_ns;
        ev.packet.assign(e.frame.begin() + e.l3_offset, e.frame.end());
        sink(ev);
    });
    if (!n) return std::move(n).error();
    return {};
}

}  // namespace wisp::wispd
