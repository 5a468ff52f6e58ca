#include "wisp/dataplane/dataplane.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <xdp/libxdp.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "wisp/unique_fd.h"
#include "wisp_dataplane.skel.h"
#include "wisp_flow.h"

namespace wisp::dataplane {

namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;
// Our TC filter on a tap: a fixed handle and priority, so a restarted process can
// replace or delete exactly this filter.
constexpr uint32_t kTcHandle = 0x5749;
constexpr uint32_t kTcPriority = 1;

std::string ifname(uint32_t ifindex) {
    char buf[IF_NAMESIZE] = {};
    if (if_indextoname(ifindex, buf))
        return std::string(buf) + " (ifindex " + std::to_string(ifindex) + ")";
    return "ifindex " + std::to_string(ifindex);
}

Error libbpf_error(int err, std::string message) {
    return Error{err < 0 ? -err : (err ? err : EIO), std::move(message)};
}

void log_library_line(const char *library, int level_warn, const char *fmt, va_list args) {
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, fmt, args);
    size_t n = std::strlen(buf);
    while (n && buf[n - 1] == '\n') buf[--n] = '\0';
    if (level_warn)
        spdlog::warn("{}: {}", library, buf);
    else
        spdlog::debug("{}: {}", library, buf);
}

// Calls whose failures are expected and handled (libxdp probing for its dispatcher,
// creating a clsact qdisc that already exists) make libbpf print warnings; inside
// them those go to the debug level.
std::atomic<int> g_expected_libbpf_failures{0};

struct ExpectLibbpfFailures {
    ExpectLibbpfFailures() { g_expected_libbpf_failures++; }
    ~ExpectLibbpfFailures() { g_expected_libbpf_failures--; }
};

int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list args) {
    log_library_line("libbpf", level == LIBBPF_WARN && g_expected_libbpf_failures == 0, fmt, args);
    return 0;
}

// libxdp reports its expected fallback from the multi-program dispatcher to a single
// program as warnings on kernels that refuse the dispatcher: keep them at debug.
int libxdp_log(enum libxdp_print_level, const char *fmt, va_list args) {
    log_library_line("libxdp", 0, fmt, args);
    return 0;
}

void install_library_logging() {
    static std::once_flag once;
    std::call_once(once, [] {
        libbpf_set_print(libbpf_log);
        libxdp_set_print(libxdp_log);
    });
}

Status make_pin_root(const std::string &path) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return Error{ec.value(), "create pin root " + path};
    struct statfs fs {};
    if (statfs(path.c_str(), &fs) != 0) return errno_error("statfs " + path);
    if (fs.f_type != kBpfFsMagic)
        return invalid("pin root " + path +
                       " is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)");
    return {};
}

// max_entries of a map pinned at `path`, if there is one.
std::optional<uint32_t> pinned_max_entries(const std::string &path) {
    UniqueFd fd(bpf_obj_get(path.c_str()));
    if (!fd) return std::nullopt;
    bpf_map_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return std::nullopt;
    return info.max_entries;
}

Status validate_options(const Options &o) {
    const MapSizes &s = o.sizes;
    if (o.capture_limit < 64 || o.capture_limit > WISP_CAPTURE_MAX)
        return invalid("capture_limit must be 64.." + std::to_string(WISP_CAPTURE_MAX));
    if (s.services == 0 || s.flows == 0 || s.taps == 0 || s.replicas < 2)
        return invalid("map sizes must be positive (replicas >= 2: id 0 is never used)");
    if (o.flow_cache_slots == 0 || o.flow_cache_slots > (1u << 20) ||
        (o.flow_cache_slots & (o.flow_cache_slots - 1)) != 0)
        return invalid("flow_cache_slots must be a power of two up to 2^20");
    long page = sysconf(_SC_PAGESIZE);
    if (s.event_bytes < static_cast<uint32_t>(page) || (s.event_bytes & (s.event_bytes - 1)) != 0)
        return invalid("event_bytes must be a power of two and at least one page");
    return {};
}

Result<wisp_service_key> to_map_key(const ServiceKey &key) {
    if (key.protocol != Protocol::tcp && key.protocol != Protocol::udp)
        return invalid("service protocol must be tcp or udp");
    if (key.port == 0) return invalid("service port must not be 0");
    wisp_service_key k{};
    std::memcpy(k.vip, key.vip.bytes().data(), sizeof k.vip);
    k.port = htons(key.port);
    k.proto = static_cast<uint8_t>(key.protocol);
    return k;
}

ServiceKey from_map_key(const wisp_service_key &k) {
    std::array<uint8_t, 16> vip;
    std::memcpy(vip.data(), k.vip, vip.size());
    return ServiceKey{IpAddress(vip), ntohs(k.port), static_cast<Protocol>(k.proto)};
}

Service from_map_value(const wisp_service &v) {
    Service s{.id = v.id, .state = static_cast<ServiceState>(v.state), .replicas = {}};
    for (uint32_t id : v.replicas)
        if (id != WISP_REPLICA_NONE) s.replicas.push_back(id);
    return s;
}

Replica from_map_value(const wisp_replica &v) {
    Replica r;
    r.service_id = v.service_id;
    r.state = static_cast<ReplicaState>(v.state);
    r.tap_ifindex = v.tap_ifindex;
    r.egress_ifindex = v.egress_ifindex;
    std::memcpy(r.guest_mac.data(), v.guest_mac, 6);
    std::memcpy(r.host_mac.data(), v.host_mac, 6);
    std::array<uint8_t, 16> vip;
    std::memcpy(vip.data(), v.vip, vip.size());
    r.vip = IpAddress(vip);
    r.port = ntohs(v.port);
    r.protocol = static_cast<Protocol>(v.proto);
    r.generation = v.generation;
    return r;
}

// Same guest behind the same tap for the same service: a state change, not a new use.
bool same_incarnation(const wisp_replica &a, const wisp_replica &b) {
    return a.service_id == b.service_id && a.tap_ifindex == b.tap_ifindex &&
           a.egress_ifindex == b.egress_ifindex && std::memcmp(a.guest_mac, b.guest_mac, 6) == 0 &&
           std::memcmp(a.host_mac, b.host_mac, 6) == 0 && std::memcmp(a.vip, b.vip, 16) == 0 &&
           a.port == b.port && a.proto == b.proto;
}

struct SkeletonDeleter {
    void operator()(wisp_dataplane *skel) const { wisp_dataplane__destroy(skel); }
};
struct RingDeleter {
    void operator()(ring_buffer *ring) const { ring_buffer__free(ring); }
};
struct MultiprogCloser {
    void operator()(xdp_multiprog *mp) const { xdp_multiprog__close(mp); }
};
struct XdpProgramCloser {
    void operator()(xdp_program *prog) const { xdp_program__close(prog); }
};

}  // namespace

struct Dataplane::Impl {
    std::string pin_root;
    MapSizes sizes;
    bool reused = false;
    int possible_cpus = 0;
    // replica_counters_range(): per-CPU values of one batch, kept between calls.
    mutable std::vector<wisp_replica_stats> batch_values;
    mutable std::vector<uint32_t> batch_keys;
    uint32_t services_map_id = 0;
    std::unique_ptr<wisp_dataplane, SkeletonDeleter> skel;
    std::unique_ptr<ring_buffer, RingDeleter> ring;
    const EventHandler *handler = nullptr;

    bpf_map *map(Map m) const {
        auto &maps = skel->maps;
        switch (m) {
            case Map::services:
                return maps.wisp_services;
            case Map::replicas:
                return maps.wisp_replicas;
            case Map::replica_stats:
                return maps.wisp_rep_stats;
            case Map::flows:
                return maps.wisp_flows;
            case Map::taps:
                return maps.wisp_taps;
            case Map::ports:
                return maps.wisp_ports;
            case Map::events:
                return maps.wisp_events;
            case Map::stats:
                return maps.wisp_stats;
        }
        return nullptr;
    }
    int fd(Map m) const { return bpf_map__fd(map(m)); }

    // Is `prog_fd` a wisp_ingress working on our maps (loaded by us or by an earlier
    // process with the same pin root)?
    bool is_our_ingress(int prog_fd) const {
        bpf_prog_info info{};
        uint32_t len = sizeof info;
        if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return false;
        if (std::strncmp(info.name, "wisp_ingress", sizeof info.name) != 0) return false;
        std::vector<uint32_t> ids(info.nr_map_ids);
        bpf_prog_info with_maps{};
        with_maps.nr_map_ids = static_cast<uint32_t>(ids.size());
        with_maps.map_ids = reinterpret_cast<uint64_t>(ids.data());
        len = sizeof with_maps;
        if (bpf_obj_get_info_by_fd(prog_fd, &with_maps, &len) != 0) return false;
        ids.resize(std::min<size_t>(ids.size(), with_maps.nr_map_ids));
        return std::find(ids.begin(), ids.end(), services_map_id) != ids.end();
    }

    // Sets or clears the port-filter bit of (proto, port) so it is set exactly when
    // some service listens there. `known_used`: a service was just written there, so
    // the bit must be set and no scan of the services is needed (an upsert stays O(1)
    // however many services exist; only removals scan).
    Status refresh_port_bit(uint8_t proto, uint16_t port_host, bool known_used = false) {
        bool used = known_used;
        wisp_service_key cur{}, next{};
        wisp_service_key *prev = nullptr;
        while (!used && bpf_map_get_next_key(fd(Map::services), prev, &next) == 0) {
            if (next.proto == proto && ntohs(next.port) == port_host) {
                used = true;
                break;
            }
            cur = next;
            prev = &cur;
        }
        uint32_t word = wisp_port_word(proto, port_host);
        uint64_t bits = 0;
        if (bpf_map_lookup_elem(fd(Map::ports), &word, &bits) != 0)
            return errno_error("read port filter");
        uint64_t updated =
            used ? bits | wisp_port_bit(port_host) : bits & ~wisp_port_bit(port_host);
        if (updated != bits && bpf_map_update_elem(fd(Map::ports), &word, &updated, BPF_ANY) != 0)
            return errno_error("write port filter");
        return {};
    }

    Result<wisp_replica> read_replica(uint32_t id) const {
        if (id == WISP_REPLICA_NONE || id >= sizes.replicas)
            return invalid("replica id " + std::to_string(id) + " outside 1.." +
                           std::to_string(sizes.replicas - 1));
        wisp_replica r{};
        if (bpf_map_lookup_elem(fd(Map::replicas), &id, &r) != 0)
            return errno_error("read replica " + std::to_string(id));
        return r;
    }

    Status write_replica(uint32_t id, const wisp_replica &r) {
        if (bpf_map_update_elem(fd(Map::replicas), &id, &r, BPF_ANY) != 0)
            return errno_error("write replica " + std::to_string(id));
        return {};
    }

    Status zero_replica_stats(uint32_t id) {
        std::vector<wisp_replica_stats> zeros(static_cast<size_t>(possible_cpus));
        if (bpf_map_update_elem(fd(Map::replica_stats), &id, zeros.data(), BPF_ANY) != 0)
            return errno_error("reset counters of replica " + std::to_string(id));
        return {};
    }

    // Removes the tap -> replica mapping if it still points at `id`.
    void unmap_tap(uint32_t tap_ifindex, uint32_t id) {
        wisp_tap tap{};
        if (bpf_map_lookup_elem(fd(Map::taps), &tap_ifindex, &tap) == 0 && tap.replica_id == id)
            bpf_map_delete_elem(fd(Map::taps), &tap_ifindex);
    }

    static int on_record(void *ctx, void *data, size_t size) {
        auto *self = static_cast<Impl *>(ctx);
        wisp_event hdr{};
        if (size < sizeof hdr) {
            spdlog::warn("data plane: skipped a {}-byte ring-buffer record", size);
            return 0;
        }
        std::memcpy(&hdr, data, sizeof hdr);
        if (hdr.cap_len > size - sizeof hdr) {
            spdlog::warn("data plane: skipped a record claiming {} of {} bytes", hdr.cap_len, size);
            return 0;
        }
        Event event;
        event.type = static_cast<EventType>(hdr.type);
        event.service_id = hdr.service_id;
        event.timestamp_ns = hdr.timestamp_ns;
        event.ifindex = hdr.ifindex;
        event.orig_len = hdr.orig_len;
        event.l3_offset = hdr.l3_offset;
        event.l3_proto = hdr.l3_proto;
        event.frame =
            std::span<const uint8_t>(static_cast<const uint8_t *>(data) + sizeof hdr, hdr.cap_len);
        if (self->handler) (*self->handler)(event);
        return 0;
    }
};

Dataplane::Dataplane(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dataplane::~Dataplane() = default;

Result<std::unique_ptr<Dataplane>> Dataplane::open(const Options &options) {
    install_library_logging();
    WISP_RETURN_IF_ERROR(validate_options(options));
    WISP_RETURN_IF_ERROR(make_pin_root(options.pin_root));

    auto impl = std::make_unique<Impl>();
    impl->pin_root = options.pin_root;
    impl->sizes = options.sizes;

    // 1. open: parse the object; maps with pinning re-use <pin_root>/<name> on load.
    LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = impl->pin_root.c_str());
    impl->skel.reset(wisp_dataplane__open_opts(&open_opts));
    if (!impl->skel) return errno_error("open BPF object wisp_dataplane");
    auto *skel = impl->skel.get();

    // 2. load-time settings and map sizes (existing pins keep theirs).
    skel->rodata->wisp_capture_limit = options.capture_limit;
    skel->rodata->wisp_flow_cache_mask = options.flow_cache_slots - 1;
    int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return Error{-cpus, "libbpf: number of possible CPUs"};
    skel->rodata->wisp_nr_cpus = static_cast<uint32_t>(cpus);
    if (int err = bpf_map__set_max_entries(skel->maps.wisp_flow_cache, options.flow_cache_slots))
        return libbpf_error(err, "size map wisp_flow_cache");
    MapSizes &sizes = impl->sizes;
    // The replica array and its counters are indexed alike: one size for both.
    const std::pair<bpf_map *, uint32_t *> sized[] = {
        {skel->maps.wisp_services, &sizes.services},  {skel->maps.wisp_replicas, &sizes.replicas},
        {skel->maps.wisp_rep_stats, &sizes.replicas}, {skel->maps.wisp_flows, &sizes.flows},
        {skel->maps.wisp_taps, &sizes.taps},          {skel->maps.wisp_events, &sizes.event_bytes},
    };
    for (auto [map, size] : sized) {
        if (auto pinned = pinned_max_entries(impl->pin_root + "/" + bpf_map__name(map))) {
            impl->reused = true;
            if (*pinned != *size)
                spdlog::info("data plane: keeping size {} of pinned map {} (asked for {})", *pinned,
                             bpf_map__name(map), *size);
            *size = *pinned;
        }
    }
    for (auto [map, size] : sized) {
        if (int err = bpf_map__set_max_entries(map, *size))
            return libbpf_error(err, std::string("size map ") + bpf_map__name(map));
    }

    // 3. load: verify programs, create or re-use (and pin) maps.
    if (int err = wisp_dataplane__load(skel))
        return libbpf_error(err, "load data plane (pins under " + impl->pin_root +
                                     " from an incompatible version must be removed first)");

    impl->ring.reset(ring_buffer__new(bpf_map__fd(skel->maps.wisp_events), Impl::on_record,
                                      impl.get(), nullptr));
    if (!impl->ring) return errno_error("ring buffer on wisp_events");

    bpf_map_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(bpf_map__fd(skel->maps.wisp_services), &info, &len) != 0)
        return errno_error("map info of wisp_services");
    impl->services_map_id = info.id;
    impl->possible_cpus = libbpf_num_possible_cpus();
    if (impl->possible_cpus <= 0) return libbpf_error(impl->possible_cpus, "count possible CPUs");

    spdlog::debug("data plane {} under {}", impl->reused ? "re-opened" : "created", impl->pin_root);
    return std::unique_ptr<Dataplane>(new Dataplane(std::move(impl)));
}

const std::string &Dataplane::pin_root() const {
    return impl_->pin_root;
}
bool Dataplane::reused_pins() const {
    return impl_->reused;
}
const MapSizes &Dataplane::sizes() const {
    return impl_->sizes;
}
int Dataplane::map_fd(Map map) const {
    return impl_->fd(map);
}
int Dataplane::xdp_program_fd() const {
    return bpf_program__fd(impl_->skel->progs.wisp_ingress);
}
int Dataplane::tap_program_fd() const {
    return bpf_program__fd(impl_->skel->progs.wisp_tap_in);
}
int Dataplane::event_fd() const {
    return ring_buffer__epoll_fd(impl_->ring.get());
}

// --- attachments ---------------------------------------------------------------

namespace {

void log_attachment(uint32_t ifindex, XdpMode mode) {
    std::unique_ptr<xdp_multiprog, MultiprogCloser> mp(
        xdp_multiprog__get_from_ifindex(static_cast<int>(ifindex)));
    bool legacy = true;
    if (libxdp_get_error(mp.get()))
        mp.release();
    else if (mp)
        legacy = xdp_multiprog__is_legacy(mp.get());
    spdlog::info("data plane: wisp_ingress attached to {} in {} mode, {}", ifname(ifindex),
                 mode == XdpMode::native ? "native" : "generic",
                 legacy ? "as the only program (libxdp's dispatcher is unavailable here)"
                        : "through libxdp's dispatcher");
}

}  // namespace

Result<XdpMode> Dataplane::attach_uplink(uint32_t ifindex, XdpMode mode) {
    const int ifx = static_cast<int>(ifindex);
    const int prog_fd = xdp_program_fd();

    std::unique_ptr<xdp_multiprog, MultiprogCloser> attached(xdp_multiprog__get_from_ifindex(ifx));
    if (libxdp_get_error(attached.get())) {
        attached.release();  // an error pointer, nothing to close
    } else if (attached) {
        if (xdp_multiprog__is_legacy(attached.get())) {
            xdp_program *current = xdp_multiprog__main_prog(attached.get());
            if (!current || !impl_->is_our_ingress(xdp_program__fd(current)))
                return Error{EEXIST, "another XDP program (" +
                                         std::string(current ? xdp_program__name(current) : "?") +
                                         ") is attached to " + ifname(ifindex)};
            // A wisp_ingress from an earlier process: swap in ours atomically.
            bool skb = xdp_multiprog__attach_mode(attached.get()) == XDP_MODE_SKB;
            LIBBPF_OPTS(bpf_xdp_attach_opts, replace, .old_prog_fd = xdp_program__fd(current));
            uint32_t flags = XDP_FLAGS_REPLACE | (skb ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
            if (int err = bpf_xdp_attach(ifx, prog_fd, flags, &replace))
                return libbpf_error(err, "replace wisp_ingress on " + ifname(ifindex));
            spdlog::info("data plane: replaced wisp_ingress on {}", ifname(ifindex));
            return skb ? XdpMode::generic : XdpMode::native;
        }
        // A libxdp dispatcher: ours may already be one of its programs.
        for (xdp_program *p = xdp_multiprog__next_prog(nullptr, attached.get()); p;
             p = xdp_multiprog__next_prog(p, attached.get())) {
            if (impl_->is_our_ingress(xdp_program__fd(p)))
                return xdp_multiprog__attach_mode(attached.get()) == XDP_MODE_SKB ? XdpMode::generic
                                                                                  : XdpMode::native;
        }
    }

    std::unique_ptr<xdp_program, XdpProgramCloser> prog(xdp_program__from_fd(prog_fd));
    if (long err = libxdp_get_error(prog.get())) {
        prog.release();
        return libbpf_error(static_cast<int>(err), "libxdp handle for wisp_ingress");
    }
    ExpectLibbpfFailures dispatcher_probe;
    XdpMode attached_mode = XdpMode::generic;
    int err = -EOPNOTSUPP;
    if (mode == XdpMode::native) {
        err = xdp_program__attach(prog.get(), ifx, XDP_MODE_NATIVE, 0);
        if (err == 0)
            attached_mode = XdpMode::native;
        else if (err != -EOPNOTSUPP)
            return libbpf_error(err, "attach wisp_ingress (native XDP) to " + ifname(ifindex));
        else
            spdlog::warn(
                "data plane: {} has no native XDP; using generic (skb) mode, which is slower",
                ifname(ifindex));
    }
    if (err != 0 && (err = xdp_program__attach(prog.get(), ifx, XDP_MODE_SKB, 0)))
        return libbpf_error(err, "attach wisp_ingress (generic XDP) to " + ifname(ifindex));
    log_attachment(ifindex, attached_mode);
    return attached_mode;
}

Status Dataplane::detach_uplink(uint32_t ifindex) {
    const int ifx = static_cast<int>(ifindex);
    std::unique_ptr<xdp_multiprog, MultiprogCloser> attached(xdp_multiprog__get_from_ifindex(ifx));
    if (long err = libxdp_get_error(attached.get())) {
        attached.release();
        return libbpf_error(static_cast<int>(err), "no XDP program on " + ifname(ifindex));
    }
    if (!attached) return Error{ENOENT, "no XDP program on " + ifname(ifindex)};
    if (xdp_multiprog__is_legacy(attached.get())) {
        xdp_program *current = xdp_multiprog__main_prog(attached.get());
        if (!current || !impl_->is_our_ingress(xdp_program__fd(current)))
            return Error{ENOENT,
                         "the XDP program on " + ifname(ifindex) + " is not this data plane's"};
        if (int err = xdp_multiprog__detach(attached.get()))
            return libbpf_error(err, "detach wisp_ingress from " + ifname(ifindex));
        return {};
    }
    for (xdp_program *p = xdp_multiprog__next_prog(nullptr, attached.get()); p;
         p = xdp_multiprog__next_prog(p, attached.get())) {
        if (!impl_->is_our_ingress(xdp_program__fd(p))) continue;
        if (int err = xdp_program__detach(p, ifx, xdp_multiprog__attach_mode(attached.get()), 0))
            return libbpf_error(err, "detach wisp_ingress from " + ifname(ifindex));
        return {};
    }
    return Error{ENOENT, "wisp_ingress is not attached to " + ifname(ifindex)};
}

Status Dataplane::attach_tap(uint32_t ifindex) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex),
                .attach_point = BPF_TC_INGRESS);
    int err;
    {
        ExpectLibbpfFailures qdisc_may_exist;
        err = bpf_tc_hook_create(&hook);
    }
    if (err && err != -EEXIST) return libbpf_error(err, "clsact qdisc on " + ifname(ifindex));
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = tap_program_fd(), .flags = BPF_TC_F_REPLACE,
                .handle = kTcHandle, .priority = kTcPriority);
    if ((err = bpf_tc_attach(&hook, &opts)))
        return libbpf_error(err, "attach wisp_tap_in to " + ifname(ifindex));
    return {};
}

Status Dataplane::detach_tap(uint32_t ifindex) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex),
                .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kTcHandle, .priority = kTcPriority);
    if (int err = bpf_tc_detach(&hook, &opts))
        return libbpf_error(err, "detach wisp_tap_in from " + ifname(ifindex));
    return {};
}

// --- services ------------------------------------------------------------------

Status Dataplane::upsert_service(const ServiceKey &key, const Service &service) {
    auto k = to_map_key(key);
    if (!k) return std::move(k).error();
    if (service.replicas.size() > WISP_REPLICA_SLOTS)
        return invalid("a service has at most " + std::to_string(WISP_REPLICA_SLOTS) + " replicas");
    wisp_service v{};
    v.id = service.id;
    v.state = static_cast<uint32_t>(service.state);
    for (size_t i = 0; i < service.replicas.size(); i++) {
        uint32_t id = service.replicas[i];
        if (id == WISP_REPLICA_NONE || id >= impl_->sizes.replicas)
            return invalid("replica id " + std::to_string(id) + " out of range");
        v.replicas[i] = id;
    }
    if (bpf_map_update_elem(impl_->fd(Map::services), &*k, &v, BPF_ANY) != 0)
        return errno_error("write service " + key.vip.to_string() + ":" + std::to_string(key.port));
    return impl_->refresh_port_bit(k->proto, key.port, /*known_used=*/true);
}

Status Dataplane::remove_service(const ServiceKey &key) {
    auto k = to_map_key(key);
    if (!k) return std::move(k).error();
    if (bpf_map_delete_elem(impl_->fd(Map::services), &*k) != 0)
        return errno_error("remove service " + key.vip.to_string() + ":" +
                           std::to_string(key.port));
    return impl_->refresh_port_bit(k->proto, key.port);
}

Status Dataplane::set_service_state(const ServiceKey &key, ServiceState state) {
    auto k = to_map_key(key);
    if (!k) return std::move(k).error();
    wisp_service v{};
    if (bpf_map_lookup_elem(impl_->fd(Map::services), &*k, &v) != 0)
        return errno_error("read service " + key.vip.to_string() + ":" + std::to_string(key.port));
    v.state = static_cast<uint32_t>(state);
    if (bpf_map_update_elem(impl_->fd(Map::services), &*k, &v, BPF_EXIST) != 0)
        return errno_error("write service " + key.vip.to_string() + ":" + std::to_string(key.port));
    return {};
}

Result<Service> Dataplane::lookup_service(const ServiceKey &key) const {
    auto k = to_map_key(key);
    if (!k) return std::move(k).error();
    wisp_service v{};
    if (bpf_map_lookup_elem(impl_->fd(Map::services), &*k, &v) != 0)
        return errno_error("read service " + key.vip.to_string() + ":" + std::to_string(key.port));
    return from_map_value(v);
}

Result<std::vector<std::pair<ServiceKey, Service>>> Dataplane::list_services() const {
    std::vector<std::pair<ServiceKey, Service>> out;
    wisp_service_key cur{}, next{};
    wisp_service_key *prev = nullptr;
    while (bpf_map_get_next_key(impl_->fd(Map::services), prev, &next) == 0) {
        wisp_service v{};
        // An entry removed between the two calls is simply skipped.
        if (bpf_map_lookup_elem(impl_->fd(Map::services), &next, &v) == 0)
            out.emplace_back(from_map_key(next), from_map_value(v));
        cur = next;
        prev = &cur;
    }
    if (errno != ENOENT) return errno_error("list services");
    return out;
}

// --- replicas ------------------------------------------------------------------

Result<uint32_t> Dataplane::set_replica(uint32_t id, const Replica &replica) {
    if (replica.state == ReplicaState::free)
        return invalid("use remove_replica() to free a replica");
    if (replica.tap_ifindex == 0 || replica.egress_ifindex == 0)
        return invalid("a replica needs a tap and an egress interface");
    if (replica.protocol != Protocol::tcp && replica.protocol != Protocol::udp)
        return invalid("replica protocol must be tcp or udp");
    auto current = impl_->read_replica(id);
    if (!current) return std::move(current).error();

    wisp_replica next{};
    next.state = static_cast<uint32_t>(replica.state);
    next.service_id = replica.service_id;
    next.tap_ifindex = replica.tap_ifindex;
    next.egress_ifindex = replica.egress_ifindex;
    std::memcpy(next.guest_mac, replica.guest_mac.data(), 6);
    std::memcpy(next.host_mac, replica.host_mac.data(), 6);
    std::memcpy(next.vip, replica.vip.bytes().data(), 16);
    next.port = htons(replica.port);
    next.proto = static_cast<uint8_t>(replica.protocol);

    bool same_use = current->state != WISP_REPLICA_FREE && same_incarnation(*current, next);
    next.generation = same_use ? current->generation : current->generation + 1;
    if (!same_use) {
        WISP_RETURN_IF_ERROR(impl_->zero_replica_stats(id));
        if (current->state != WISP_REPLICA_FREE && current->tap_ifindex != next.tap_ifindex)
            impl_->unmap_tap(current->tap_ifindex, id);
    }
    WISP_RETURN_IF_ERROR(impl_->write_replica(id, next));
    wisp_tap tap{.replica_id = id};
    if (bpf_map_update_elem(impl_->fd(Map::taps), &next.tap_ifindex, &tap, BPF_ANY) != 0)
        return errno_error("map " + ifname(next.tap_ifindex) + " to replica " + std::to_string(id));
    return next.generation;
}

Status Dataplane::set_replica_state(uint32_t id, ReplicaState state) {
    if (state == ReplicaState::free) return remove_replica(id);
    auto current = impl_->read_replica(id);
    if (!current) return std::move(current).error();
    if (current->state == WISP_REPLICA_FREE)
        return Error{ENOENT, "replica " + std::to_string(id) + " is not set up"};
    current->state = static_cast<uint32_t>(state);
    return impl_->write_replica(id, *current);
}

Status Dataplane::remove_replica(uint32_t id) {
    auto current = impl_->read_replica(id);
    if (!current) return std::move(current).error();
    if (current->state == WISP_REPLICA_FREE) return {};
    impl_->unmap_tap(current->tap_ifindex, id);
    current->state = WISP_REPLICA_FREE;  // the generation stays: the next use bumps it
    return impl_->write_replica(id, *current);
}

Result<Replica> Dataplane::lookup_replica(uint32_t id) const {
    auto current = impl_->read_replica(id);
    if (!current) return std::move(current).error();
    return from_map_value(*current);
}

namespace {
// One replica's per-CPU counters as one: sums, and the newest stamps.
ReplicaCounters sum_over_cpus(const wisp_replica_stats *per_cpu, size_t cpus) {
    ReplicaCounters c;
    for (size_t cpu = 0; cpu < cpus; ++cpu) {
        const wisp_replica_stats &s = per_cpu[cpu];
        c.in_packets += s.in_packets;
        c.in_bytes += s.in_bytes;
        c.out_packets += s.out_packets;
        c.out_bytes += s.out_bytes;
        c.new_flows += s.new_flows;
        c.spoofed += s.spoofed;
        c.last_in_ns = std::max<uint64_t>(c.last_in_ns, s.last_in_ns);
        c.last_out_ns = std::max<uint64_t>(c.last_out_ns, s.last_out_ns);
    }
    return c;
}
}  // namespace

Result<ReplicaCounters> Dataplane::replica_counters(uint32_t id) const {
    if (id == WISP_REPLICA_NONE || id >= impl_->sizes.replicas)
        return invalid("replica id " + std::to_string(id) + " out of range");
    std::vector<wisp_replica_stats> per_cpu(static_cast<size_t>(impl_->possible_cpus));
    if (bpf_map_lookup_elem(impl_->fd(Map::replica_stats), &id, per_cpu.data()) != 0)
        return errno_error("read counters of replica " + std::to_string(id));
    return sum_over_cpus(per_cpu.data(), per_cpu.size());
}

Status Dataplane::replica_counters_range(uint32_t first, uint32_t count,
                                         std::vector<ReplicaCounters> &out) const {
    out.clear();
    if (first == WISP_REPLICA_NONE || first >= impl_->sizes.replicas || count == 0) return {};
    count = std::min(count, impl_->sizes.replicas - first);
    auto cpus = static_cast<size_t>(impl_->possible_cpus);
    // Per-CPU values come as value_size (64, a multiple of 8) per possible CPU.
    static_assert(sizeof(wisp_replica_stats) % 8 == 0);
    impl_->batch_values.resize(size_t{count} * cpus);
    impl_->batch_keys.resize(count);
    // An array's batch starts after the key in in_batch: first - 1 (ids start at 1).
    uint32_t in_batch = first - 1, out_batch = 0;
    uint32_t n = count;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int rc = bpf_map_lookup_batch(impl_->fd(Map::replica_stats), &in_batch, &out_batch,
                                  impl_->batch_keys.data(), impl_->batch_values.data(), &n, &opts);
    // ENOENT: the read reached the map's end; n says how many were read.
    if (rc != 0 && errno != ENOENT) return errno_error("batched read of replica counters");
    out.resize(n);
    for (uint32_t i = 0; i < n; ++i)
        out[i] = sum_over_cpus(&impl_->batch_values[size_t{i} * cpus], cpus);
    return {};
}

Result<std::optional<wisp_flow>> Dataplane::lookup_flow(const wisp_flow_key &key) const {
    wisp_flow flow{};
    if (bpf_map_lookup_elem(impl_->fd(Map::flows), &key, &flow) == 0) return std::optional(flow);
    if (errno == ENOENT) return std::optional<wisp_flow>();
    return errno_error("read flow table");
}

Result<Statistics> Dataplane::statistics() const {
    Statistics stats;
    std::vector<uint64_t> per_cpu(static_cast<size_t>(impl_->possible_cpus));
    for (uint32_t i = 0; i < WISP_STAT_MAX; i++) {
        if (bpf_map_lookup_elem(impl_->fd(Map::stats), &i, per_cpu.data()) != 0)
            return errno_error("read statistics");
        for (uint64_t v : per_cpu) stats.values[i] += v;
    }
    return stats;
}

// --- events --------------------------------------------------------------------

Result<int> Dataplane::consume_events(const EventHandler &handler) {
    impl_->handler = &handler;
    int n = ring_buffer__consume(impl_->ring.get());
    impl_->handler = nullptr;
    if (n < 0) return libbpf_error(n, "consume wisp_events");
    return n;
}

// --- teardown ------------------------------------------------------------------

Status Dataplane::unpin() {
    bpf_map *map;
    bpf_object__for_each_map(map, impl_->skel->obj) {
        if (!bpf_map__is_pinned(map)) continue;
        if (int err = bpf_map__unpin(map, nullptr))
            return libbpf_error(err, std::string("unpin ") + bpf_map__name(map));
    }
    // Only an empty directory goes; anything else there is not ours to delete.
    if (rmdir(impl_->pin_root.c_str()) != 0 && errno != ENOTEMPTY && errno != ENOENT)
        return errno_error("remove " + impl_->pin_root);
    return {};
}

}  // namespace wisp::dataplane
