#include "wispd/monitor_pool.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

namespace wisp::wispd {

namespace ctl = wisp::vmm::control;

namespace {

int pidfd_open(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int pidfd_send_signal(int pidfd, int sig) {
    return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

std::string exited_detail(const wisp_ctl_exited &e) {
    std::string detail(e.detail, strnlen(e.detail, sizeof e.detail));
    if (e.reason == WISP_EXIT_HALT)
        return "guest halted with status " + std::to_string(e.status);
    std::string reason = vmm::exit_reason_name(e.reason);
    return detail.empty() ? reason : reason + ": " + detail;
}

// The (device, vmstate inode, memory inode) of a snapshot's open files.
std::optional<std::array<uint64_t, 3>> inode_key(const snapshot::SnapshotFiles &f) {
    struct stat vm {}, mem {};
    if (fstat(f.vmstate.get(), &vm) != 0 || fstat(f.memory.get(), &mem) != 0) return std::nullopt;
    return std::array<uint64_t, 3>{static_cast<uint64_t>(mem.st_dev),
                                   static_cast<uint64_t>(vm.st_ino),
                                   static_cast<uint64_t>(mem.st_ino)};
}

// Who the guest is after a restore or boot: the replica's MAC, the VIP as its only
// address, and the tap as its gateway (the TC program sends its replies on).
Result<vmm::GuestIdentity> identity_for(const LaunchRequest &r, const std::string &gateway_ipv4) {
    vmm::GuestIdentity id;
    id.mac = r.guest_mac.bytes;
    id.gw_mac = r.tap.mac.bytes;
    if (inet_pton(AF_INET, r.vip.c_str(), id.ip.data()) == 1) {
        id.ip_family = 4;
        id.prefix_len = 32;
        if (inet_pton(AF_INET, gateway_ipv4.c_str(), id.gw_ip.data()) != 1)
            return invalid("gateway address " + gateway_ipv4);
        return id;
    }
    if (inet_pton(AF_INET6, r.vip.c_str(), id.ip.data()) == 1) {
        id.ip_family = 6;
        id.prefix_len = 128;
        inet_pton(AF_INET6, "fe80::1", id.gw_ip.data());
        return id;
    }
    return invalid("vip: not an IP address: " + r.vip);
}

}  // namespace

VmmMonitorPool::VmmMonitorPool(Config config, EventLoop &loop, BackgroundWorker &worker,
                               MonitorEventSink &sink)
    : config_(std::move(config)), loop_(loop), worker_(worker), sink_(sink) {}

VmmMonitorPool::~VmmMonitorPool() {
    loop_.cancel(refill_timer_);
    for (auto &spare : spare_logs_) unlink(spare.path.c_str());
    for (auto &[key, m] : monitors_) {
        loop_.cancel(m.kill_timer);
        if (m.control.fd() >= 0) loop_.unwatch(m.control.fd());
        if (m.pidfd) loop_.unwatch(m.pidfd.get());
    }
}

std::string VmmMonitorPool::next_socket_path() const {
    return config_.sockets_dir + "/vmm-" + std::to_string(getpid()) + "-" +
           std::to_string(next_socket_++) + ".sock";
}

Result<VmmMonitorPool::Spawned> VmmMonitorPool::spawn() const {
    Spawned out;
    out.socket = next_socket_path();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return errno_error("socketpair");
    UniqueFd ours(sv[0]), theirs(sv[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, theirs.get(), 3);
    // Nothing else of wispd's (API socket, taps, maps) may leak into a monitor.
    posix_spawn_file_actions_addclosefrom_np(&actions, 4);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Its own session: it outlives wispd and no signal to wispd's group reaches it.
    // wispd blocks and ignores signals the monitor needs: give it defaults.
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) sigaddset(&defaults, s);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    std::vector<std::string> args = {config_.binary, "--log-level", config_.log_level,
                                     "serve", "--control-fd", "3", "--listen", out.socket};
    if (config_.prepared_mem_mib) {
        args.push_back("--mem");
        args.push_back(std::to_string(config_.prepared_mem_mib) + "M");
    }
    std::vector<char *> argv;
    for (auto &a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int err = posix_spawn(&out.pid, config_.binary.c_str(), &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (err != 0) return Error{err, "spawning " + config_.binary};
    out.pidfd.reset(pidfd_open(out.pid));
    if (!out.pidfd) {
        Error e = errno_error("pidfd_open");
        kill(out.pid, SIGKILL);
        waitpid(out.pid, nullptr, 0);
        return e;
    }
    int flags = fcntl(ours.get(), F_GETFL);
    fcntl(ours.get(), F_SETFL, flags | O_NONBLOCK);
    out.control = std::move(ours);
    return out;
}

VmmMonitorPool::Monitor &VmmMonitorPool::add(Spawned spawned, Phase phase, bool child) {
    uint64_t key = next_key_++;
    Monitor &m = monitors_[key];
    m.key = key;
    m.pid = spawned.pid;
    m.child = child;
    m.pidfd = std::move(spawned.pidfd);
    m.control = ctl::ControlClient(std::move(spawned.control));
    m.socket = std::move(spawned.socket);
    m.phase = phase;
    if (phase == Phase::kStarting) ++starting_;
    if (phase == Phase::kIdle) idle_.push_back(key);
    auto st = loop_.watch(m.control.fd(), EPOLLIN, [this, key](uint32_t) { on_control(key); });
    if (st) st = loop_.watch(m.pidfd.get(), EPOLLIN, [this, key](uint32_t) { on_exit(key); });
    if (!st) spdlog::error("monitor {}: watching: {}", m.pid, st.error().describe());
    return m;
}

Result<VmmMonitorPool::SpareLog> VmmMonitorPool::console_log(const std::string &path) {
    if (!spare_logs_.empty()) {
        SpareLog spare = std::move(spare_logs_.front());
        spare_logs_.pop_front();
        return spare;
    }
    SpareLog log{UniqueFd(open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)),
                 path};
    if (!log.fd) return errno_error("console log " + path);
    return log;
}

void VmmMonitorPool::name_console_log(const SpareLog &log, const std::string &path) {
    if (log.path == path) return;
    // The monitor's fd stays valid across the rename, done with the next refill.
    renames_.emplace_back(log.path, path);
}

void VmmMonitorPool::schedule_refill() {
    if (refill_timer_) return;
    refill_timer_ = loop_.schedule_after_ms(config_.refill_delay_ms, [this] {
        refill_timer_ = 0;
        fill();
    });
}

void VmmMonitorPool::fill() {
    if (!renames_.empty()) {
        worker_.submit([renames = std::move(renames_)] {
            for (auto &[from, to] : renames)
                if (rename(from.c_str(), to.c_str()) != 0)
                    spdlog::warn("console log {}: rename from {}: {}", to, from, strerror(errno));
        });
        renames_.clear();
    }
    while (!config_.spare_logs_dir.empty() &&
           spare_logs_.size() + spare_logs_in_flight_ < config_.size) {
        ++spare_logs_in_flight_;
        worker_.submit([this] {
            SpareLog spare;
            spare.path = config_.spare_logs_dir + "/" + std::to_string(getpid()) + "-" +
                         std::to_string(next_spare_++) + ".log";
            spare.fd.reset(open(spare.path.c_str(),
                                O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
            auto shared = std::make_shared<SpareLog>(std::move(spare));
            loop_.post([this, shared] {
                --spare_logs_in_flight_;
                if (shared->fd) spare_logs_.push_back(std::move(*shared));
                else spdlog::warn("spare console log {}: {}", shared->path, strerror(errno));
            });
        });
    }
    if (loop_.now_ns() < retry_after_ns_) return;
    while (idle_.size() + starting_ < config_.size) {
        ++starting_;
        worker_.submit([this] {
            auto spawned = spawn();
            auto shared = std::make_shared<Result<Spawned>>(std::move(spawned));
            loop_.post([this, shared] {
                --starting_;
                if (!*shared) {
                    spdlog::error("monitor pool: {}; retrying in 1 s", shared->error().describe());
                    retry_after_ns_ = loop_.now_ns() + 1'000'000'000;
                    loop_.schedule_at(retry_after_ns_, [this] { fill(); });
                    return;
                }
                add(std::move(**shared), Phase::kStarting, true);
            });
        });
    }
}

VmmMonitorPool::Monitor *VmmMonitorPool::by_replica(ReplicaId replica) {
    auto it = replicas_.find(replica);
    if (it == replicas_.end()) return nullptr;
    auto m = monitors_.find(it->second);
    return m == monitors_.end() ? nullptr : &m->second;
}

Result<const snapshot::SnapshotFiles *> VmmMonitorPool::files(const std::string &dir) {
    auto it = files_.find(dir);
    if (it != files_.end()) return it->second.get();
    auto opened = snapshot::open_snapshot(dir);
    if (!opened) return std::move(opened).error();
    auto inode = inode_key(*opened);
    if (!inode) return errno_error("stat snapshot " + dir);
    if (auto same = files_by_inode_[*inode].lock())
        return files_.emplace(dir, std::move(same)).first->second.get();
    // Read the memory into the page cache now, not page by page under a guest.
    posix_fadvise(opened->memory.get(), 0, 0, POSIX_FADV_WILLNEED);
    auto shared = std::make_shared<const snapshot::SnapshotFiles>(std::move(*opened));
    files_by_inode_[*inode] = shared;
    return files_.emplace(dir, std::move(shared)).first->second.get();
}

void VmmMonitorPool::keep_snapshot(const std::string &dir) {
    auto f = files(dir);
    if (!f) spdlog::warn("snapshot {}: {}", dir, f.error().describe());
}

void VmmMonitorPool::release_snapshot(const std::string &dir) {
    auto it = files_.find(dir);
    if (it == files_.end()) return;
    auto inode = inode_key(*it->second);
    bool last = it->second.use_count() == 1;
    files_.erase(it);
    // The last directory of those inodes: forget the expired entry too.
    if (last && inode) files_by_inode_.erase(*inode);
}

Result<MonitorHandle> VmmMonitorPool::launch(LaunchRequest r) {
    // Everything that can fail comes before a monitor is taken from the pool.
    auto identity = identity_for(r, config_.gateway_ipv4);
    if (!identity) return std::move(identity).error();
    UniqueFd image;
    const snapshot::SnapshotFiles *top = nullptr, *base = nullptr;
    if (r.mode == LaunchRequest::Mode::kBoot) {
        image.reset(open(r.image.c_str(), O_RDONLY | O_CLOEXEC));
        if (!image) return errno_error("image " + r.image);
    } else {
        if (r.snapshots.empty() || r.snapshots.size() > 2)
            return invalid("a restore takes a snapshot, or a base and a diff");
        auto t = files(r.snapshots.back());
        if (!t) return std::move(t).error();
        top = *t;
        if (r.snapshots.size() == 2) {
            auto b = files(r.snapshots.front());
            if (!b) return std::move(b).error();
            base = *b;
        }
    }
    auto log = console_log(r.console_log);
    if (!log) return std::move(log).error();

    Monitor *m = nullptr;
    while (!idle_.empty() && !m) {
        auto it = monitors_.find(idle_.front());
        idle_.pop_front();
        if (it != monitors_.end()) m = &it->second;
    }
    if (!m) {
        // The pool is empty (a burst): this launch waits for one fork/exec. The
        // command queues in the socket until the monitor is set up.
        spdlog::warn("monitor pool empty: spawning a monitor on the wake path");
        auto spawned = spawn();
        if (!spawned) return std::move(spawned).error();
        m = &add(std::move(*spawned), Phase::kIdle, true);
        idle_.pop_back();
    }

    Status sent;
    if (r.mode == LaunchRequest::Mode::kBoot) {
        vmm::BootConfig boot;
        boot.mem_size = uint64_t{r.memory_mib} << 20;
        boot.cmdline = r.cmdline;
        boot.identity = *identity;
        sent = m->control.boot(ctl::make_boot(boot, WISP_BOOT_HOLD_AT_READY | WISP_BOOT_LOG_FD,
                                              config_.console_limit),
                               r.tap.fd.get(), image.get(), log->fd.get());
        m->phase = Phase::kBooting;
    } else {
        ctl::ControlClient::RestoreFds fds;
        fds.tap = r.tap.fd.get();
        fds.vmstate = top->vmstate.get();
        fds.memory = top->memory.get();
        if (base) {
            fds.base_vmstate = base->vmstate.get();
            fds.base_memory = base->memory.get();
        }
        fds.log = log->fd.get();
        uint32_t flags = WISP_RESTORE_LOG_FD | (base ? WISP_RESTORE_DIFF : 0);
        sent = m->control.restore(ctl::make_restore(flags, &*identity, config_.console_limit),
                                  fds);
        m->phase = Phase::kRestoring;
    }
    name_console_log(*log, r.console_log);
    schedule_refill();
    if (!sent) {
        // The command may be half in: this monitor is not reused. The caller has
        // the error; no event follows.
        m->phase = Phase::kStopping;
        if (!m->control.send(WISP_CTL_STOP)) kill_now(*m);
        return std::move(sent).error();
    }
    m->replica = r.replica;
    replicas_[r.replica] = m->key;
    return MonitorHandle{m->pid, m->socket};
}

Status VmmMonitorPool::snapshot(ReplicaId replica, const SnapshotRequest &req) {
    Monitor *m = by_replica(replica);
    if (!m) return Error{ESRCH, "no monitor runs replica " + std::to_string(replica)};
    if (m->pending) return Error{EBUSY, "a snapshot of replica " + std::to_string(replica) +
                                            " is being written"};
    auto pending = snapshot::PendingSnapshot::create(req.dir);
    if (!pending) return std::move(pending).error();
    uint32_t flags = req.kind == SnapshotKind::kDiff ? WISP_SNAPSHOT_DIFF : 0;
    WISP_RETURN_IF_ERROR(m->control.snapshot(flags, pending->vmstate_fd(), pending->memory_fd()));
    m->pending.emplace(std::move(*pending));
    m->pending_kind = req.kind;
    m->pending_dir = req.dir;
    return {};
}

Status VmmMonitorPool::stop(ReplicaId replica) {
    Monitor *m = by_replica(replica);
    if (!m) return Error{ESRCH, "no monitor runs replica " + std::to_string(replica)};
    m->phase = Phase::kStopping;
    auto st = m->control.send(WISP_CTL_STOP);
    if (!st) {
        kill_now(*m);
        return {};
    }
    uint64_t key = m->key;
    loop_.cancel(m->kill_timer);
    m->kill_timer = loop_.schedule_after_ms(config_.kill_after_ms, [this, key] {
        auto it = monitors_.find(key);
        if (it == monitors_.end()) return;
        it->second.kill_timer = 0;
        spdlog::warn("monitor {} ignored stop for {} ms: killing it", it->second.pid,
                     config_.kill_after_ms);
        kill_now(it->second);
    });
    return {};
}

void VmmMonitorPool::kill_now(Monitor &m) {
    if (pidfd_send_signal(m.pidfd.get(), SIGKILL) != 0 && errno != ESRCH)
        spdlog::error("killing monitor {}: {}", m.pid, strerror(errno));
}

void VmmMonitorPool::report(Monitor &m, MonitorEvent event) {
    event.replica = m.replica;
    if (m.replica == 0) return;
    sink_.on_monitor_event(event);
}

void VmmMonitorPool::refused(Monitor &m, const std::string &what) {
    spdlog::warn("monitor {}: {}", m.pid, what);
    MonitorEvent ev;
    ev.type = MonitorEvent::Type::kExited;
    ev.detail = what;
    ReplicaId replica = m.replica;
    replicas_.erase(replica);
    m.replica = 0;
    m.phase = Phase::kStopping;
    if (!m.control.send(WISP_CTL_STOP)) kill_now(m);
    ev.replica = replica;
    if (replica) sink_.on_monitor_event(ev);
}

void VmmMonitorPool::on_control(uint64_t key) {
    for (;;) {
        auto it = monitors_.find(key);
        if (it == monitors_.end()) return;
        Monitor &m = it->second;
        auto packet = ctl::receive_packet(m.control.fd());
        if (!packet) {
            if (packet.error().code == EAGAIN) return;
            // The monitor closes it as it exits (after its exited event, or when
            // stopped). Otherwise we cannot control it any more and it must not
            // linger. Either way its pidfd reports the end.
            loop_.unwatch(m.control.fd());
            m.control = ctl::ControlClient(UniqueFd());
            pollfd gone{m.pidfd.get(), POLLIN, 0};
            if (poll(&gone, 1, 0) == 1) return on_exit(key);  // killed: report it now
            if (m.exit_detail.empty() && m.phase != Phase::kStopping) {
                spdlog::warn("monitor {}: control connection lost ({}); killing it", m.pid,
                             packet.error().describe());
                kill_now(m);
            }
            return;
        }
        if (packet->truncated) {
            spdlog::warn("monitor {}: oversized event ignored", m.pid);
            continue;
        }
        auto msg = ctl::decode(packet->bytes);
        if (!msg) {
            spdlog::warn("monitor {}: bad event: {}", m.pid, msg.error().describe());
            continue;
        }
        handle_event(m, *msg);
    }
}

void VmmMonitorPool::handle_event(Monitor &m, const ctl::Message &msg) {
    MonitorEvent ev;
    switch (msg.type) {
        case WISP_CTL_EV_HELLO:
            if (m.phase == Phase::kStarting) {
                --starting_;
                m.phase = Phase::kIdle;
                idle_.push_back(m.key);
            }
            return;
        case WISP_CTL_EV_STARTED: return;
        case WISP_CTL_EV_READY:
            if (m.phase != Phase::kBooting) return;
            m.phase = Phase::kRunning;
            ev.type = MonitorEvent::Type::kGuestReady;
            return report(m, ev);
        case WISP_CTL_EV_RESTORED: {
            if (m.phase != Phase::kRestoring) return;
            auto restored = ctl::payload_as<wisp_ctl_restored>(msg);
            m.phase = Phase::kRunning;
            ev.type = MonitorEvent::Type::kRunning;
            ev.command_ns = restored.command_ns;
            ev.guest_ns = restored.entry_ns;
            return report(m, ev);
        }
        case WISP_CTL_EV_RUNNING:
            ev.type = MonitorEvent::Type::kFirstHypercall;
            ev.guest_ns = ctl::payload_as<wisp_ctl_running>(msg).first_hypercall_ns;
            return report(m, ev);
        case WISP_CTL_EV_SNAPSHOT: {
            if (!m.pending) return;
            auto st = m.pending->commit();
            m.pending.reset();
            if (!st) {
                ev.type = MonitorEvent::Type::kSnapshotFailed;
                ev.detail = "committing " + m.pending_dir + ": " + st.error().describe();
                return report(m, ev);
            }
            ev.type = MonitorEvent::Type::kSnapshotWritten;
            ev.snapshot_kind = m.pending_kind;
            ev.snapshot_dir = m.pending_dir;
            return report(m, ev);
        }
        case WISP_CTL_EV_ERROR: {
            auto err = ctl::payload_as<wisp_ctl_error>(msg);
            std::string text(err.message, strnlen(err.message, sizeof err.message));
            std::string what = std::string("monitor refused ") + ctl::type_name(err.command) +
                               ": " + text;
            if (err.command == WISP_CTL_SNAPSHOT && m.pending) {
                m.pending.reset();
                ev.type = MonitorEvent::Type::kSnapshotFailed;
                ev.detail = what;
                return report(m, ev);
            }
            if (err.command == WISP_CTL_BOOT || err.command == WISP_CTL_RESTORE)
                return refused(m, what);
            spdlog::warn("monitor {}: {}", m.pid, what);
            return;
        }
        case WISP_CTL_EV_EXITED:
            m.exit_detail = exited_detail(ctl::payload_as<wisp_ctl_exited>(msg));
            return;
        default: return;
    }
}

void VmmMonitorPool::on_exit(uint64_t key) {
    auto it = monitors_.find(key);
    if (it == monitors_.end()) return;
    Monitor &m = it->second;
    MonitorEvent ev;
    ev.type = MonitorEvent::Type::kExited;
    siginfo_t info{};
    if (m.child && waitid(P_PIDFD, static_cast<id_t>(m.pidfd.get()), &info, WEXITED | WNOHANG) == 0 &&
        info.si_pid != 0) {
        if (info.si_code == CLD_EXITED) {
            ev.exit_status = info.si_status;
        } else {
            ev.exit_status = 128 + info.si_status;
            m.exit_detail = "monitor killed by signal " + std::to_string(info.si_status) + " (" +
                            sigabbrev_np(info.si_status) + ")";
        }
    }
    if (m.exit_detail.empty())
        m.exit_detail = m.child ? "monitor exited with status " + std::to_string(ev.exit_status)
                                : "monitor exited";
    ev.detail = m.exit_detail;
    bool was_pool = m.phase == Phase::kStarting || m.phase == Phase::kIdle;
    if (m.phase == Phase::kStarting) {
        --starting_;
        // A monitor that dies before its hello is broken (binary, KVM): do not spin.
        spdlog::error("monitor {} died while starting: {}", m.pid, ev.detail);
        retry_after_ns_ = loop_.now_ns() + 1'000'000'000;
        loop_.schedule_at(retry_after_ns_, [this] { fill(); });
    } else if (m.phase != Phase::kIdle) {
        spdlog::debug("monitor {} (replica {}) ended: {}", m.pid, m.replica, ev.detail);
    }
    if (m.replica) {
        ReplicaId replica = m.replica;
        replicas_.erase(replica);
        ev.replica = replica;
        forget(key);
        sink_.on_monitor_event(ev);
    } else {
        forget(key);
    }
    if (was_pool) fill();
}

void VmmMonitorPool::forget(uint64_t key) {
    auto it = monitors_.find(key);
    if (it == monitors_.end()) return;
    Monitor &m = it->second;
    loop_.cancel(m.kill_timer);
    if (m.control.fd() >= 0) loop_.unwatch(m.control.fd());
    if (m.pidfd) loop_.unwatch(m.pidfd.get());
    std::erase(idle_, key);
    monitors_.erase(it);
}

void VmmMonitorPool::stop_idle() {
    for (uint64_t key : std::deque<uint64_t>(idle_)) {
        auto it = monitors_.find(key);
        if (it == monitors_.end()) continue;
        it->second.phase = Phase::kStopping;
        if (!it->second.control.send(WISP_CTL_STOP)) kill_now(it->second);
    }
    idle_.clear();
}

std::vector<ReplicaId> VmmMonitorPool::adopt(const std::vector<ReplicaRecord> &known) {
    std::vector<ReplicaId> alive;
    std::unordered_map<std::string, const ReplicaRecord *> claimed;
    for (auto &r : known)
        if (!r.control_socket.empty()) claimed[r.control_socket] = &r;

    DIR *dir = opendir(config_.sockets_dir.c_str());
    if (!dir) return alive;
    std::vector<std::string> sockets;
    while (dirent *e = readdir(dir)) {
        std::string name = e->d_name;
        if (name.size() > 5 && name.compare(name.size() - 5, 5, ".sock") == 0)
            sockets.push_back(config_.sockets_dir + "/" + name);
    }
    closedir(dir);

    for (auto &path : sockets) {
        auto client = ctl::ControlClient::connect(path);
        if (!client) {
            // Nobody listens: the monitor is gone (its socket file stayed).
            if (client.error().code == ECONNREFUSED) unlink(path.c_str());
            continue;
        }
        auto hello = client->wait_for(WISP_CTL_EV_HELLO, 2000);
        if (!hello) {
            spdlog::warn("monitor at {}: no hello: {}", path, hello.error().describe());
            continue;
        }
        auto h = hello->as<wisp_ctl_hello>();
        Spawned s;
        s.pid = static_cast<pid_t>(h.pid);
        s.pidfd.reset(pidfd_open(s.pid));
        s.socket = path;
        UniqueFd fd(dup(client->fd()));
        int flags = fcntl(fd.get(), F_GETFL);
        fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
        s.control = std::move(fd);
        client = ctl::ControlClient(UniqueFd());
        if (!s.pidfd) continue;
        auto owner = claimed.find(path);
        bool busy = h.state == WISP_VM_RUNNING || h.state == WISP_VM_PAUSED;
        if (owner != claimed.end() && busy &&
            (owner->second->monitor_pid == 0 || owner->second->monitor_pid == s.pid)) {
            Monitor &m = add(std::move(s), Phase::kRunning, false);
            m.replica = owner->second->id;
            replicas_[m.replica] = m.key;
            alive.push_back(m.replica);
            spdlog::info("re-adopted monitor {} of replica {}", m.pid, m.replica);
        } else if (h.state == WISP_VM_EMPTY) {
            Monitor &m = add(std::move(s), Phase::kIdle, false);
            spdlog::info("re-adopted idle monitor {} into the pool", m.pid);
        } else {
            // A guest nobody claims (its replica was never recorded, or deleted).
            spdlog::info("stopping unclaimed monitor {} ({})", s.pid, path);
            (void)ctl::send_packet(s.control.get(), ctl::encode(WISP_CTL_STOP));
        }
    }
    return alive;
}

}  // namespace wisp::wispd
