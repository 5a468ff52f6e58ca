// wisp-vmm: one KVM monitor process per microVM.
//
//   wisp-vmm run --image app.elf --tap NAME [--mem 64M] [--cmdline ...] [identity] [--listen PATH]
//       for humans: console on stdout, exit code = the guest's halt status
//       (70 if the VM ended any other way; the reason is logged). With --listen
//       the control protocol is served too (e.g. `wisp-vmm snapshot` of it).
//   wisp-vmm restore --snapshot DIR [--base DIR] --tap NAME [identity] [--listen PATH]
//       like run, from a snapshot instead of an image.
//   wisp-vmm serve (--control-fd N | --listen PATH)...
//       for wispd: starts empty and waits for commands (docs/control-protocol.md).
//   wisp-vmm golden --image app.elf --out DIR [--mem] [--cmdline] [--ready-timeout S]
//       boot, wait for `ready`, write a golden snapshot, stop (a controller over a
//       `serve` child, as wispd does it).
//   wisp-vmm snapshot --socket PATH --out DIR [--diff] [--stop]
//       snapshot the VM behind a control socket.
//   wisp-vmm inspect DIR
//       print what a snapshot's vmstate says.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include <CLI/CLI.hpp>

#include "wisp/log.h"
#include "wisp/version.h"
#include "wisp/vmm/elf_loader.h"
#include "wisp/vmm/kick.h"
#include "wisp/vmm/monitor.h"
#include "wisp/vmm/options.h"
#include "wisp/snapshot/store.h"
#include "wisp/snapshot/vmstate.h"
#include "wisp/vmm/sandbox.h"
#include "wisp/vmm/snapshot_control.h"
#include "wisp/vmm/vmm.h"
#include "wisp_hypercall.h"

namespace {

using namespace wisp;
using namespace wisp::vmm;

constexpr int kExitVmFailed = 70;
constexpr int kExitSetupFailed = 1;

struct RunArgs {
    std::string image, tap, mem = "64M", cmdline, ip = "0.0.0.0", gateway_ip, mac = "02:77:69:73:70:01",
                gateway_mac, console_limit, listen;
    int prefix = 24;
};

struct RestoreArgs {
    std::string snapshot, base, tap, ip, gateway_ip, mac, gateway_mac, console_limit, listen;
    int prefix = -1;
};

struct GoldenArgs {
    RunArgs boot;
    std::string out;
    int ready_timeout_s = 60;
};

struct SnapshotArgs {
    std::string socket, out;
    bool diff = false, stop = false;
    int timeout_s = 60;
};

struct ServeArgs {
    int control_fd = -1;
    std::string listen, mem;
};

int fail(const std::string &what, const Error &e) {
    spdlog::error("{}: {}", what, e.describe());
    return kExitSetupFailed;
}

Result<BootConfig> boot_config_from(const RunArgs &a) {
    BootConfig c;
    auto mem = parse_size(a.mem);
    if (!mem) return std::move(mem).error();
    c.mem_size = *mem;
    c.cmdline = a.cmdline;
    auto ip = parse_ip(a.ip);
    if (!ip) return std::move(ip).error();
    c.identity.ip_family = ip->family;
    c.identity.ip = ip->bytes;
    if (a.prefix < 0 || a.prefix > 128) return invalid("bad prefix length");
    c.identity.prefix_len = static_cast<uint8_t>(a.prefix);
    if (!a.gateway_ip.empty()) {
        auto gw = parse_ip(a.gateway_ip);
        if (!gw) return std::move(gw).error();
        if (gw->family != ip->family) return invalid("gateway and guest IP families differ");
        c.identity.gw_ip = gw->bytes;
    }
    auto mac = parse_mac(a.mac);
    if (!mac) return std::move(mac).error();
    c.identity.mac = *mac;
    if (!a.gateway_mac.empty()) {
        auto gw_mac = parse_mac(a.gateway_mac);
        if (!gw_mac) return std::move(gw_mac).error();
        c.identity.gw_mac = *gw_mac;
    } else {
        // Default next hop: the host side of the tap.
        auto host = Tap::host_mac(a.tap);
        if (!host) return std::move(host).error();
        c.identity.gw_mac = *host;
    }
    WISP_RETURN_IF_ERROR(check_identity(c.identity));
    return c;
}

uint64_t console_limit_or(const std::string &text, uint64_t fallback, Status &st) {
    if (text.empty()) return fallback;
    auto l = parse_size(text);
    if (!l) {
        st = l.error();
        return 0;
    }
    return *l;
}

int exit_code_of(const Vmm &vmm) {
    const wisp_ctl_exited &e = vmm.exit_info();
    if (e.reason == WISP_EXIT_HALT) return static_cast<int>(e.status & 0xff);
    return kExitVmFailed;
}

// The run loop of `run` and `restore` once the guest is loaded: plain, or serving
// the control protocol on `listen` as well.
int run_loaded(std::unique_ptr<Vmm> vmm, ListenSocket listen) {
    if (listen.valid()) {
        Monitor monitor(std::move(vmm), UniqueFd(), std::move(listen), WISP_VM_RUNNING);
        (void)monitor.serve();
        return exit_code_of(monitor.vmm());
    }
    for (;;) {
        RunStop stop = vmm->run();
        if (stop == RunStop::kExited) break;
        if (stop == RunStop::kReady) spdlog::info("guest is ready");
        if (termination_requested()) vmm->stop(WISP_EXIT_STOPPED, "terminated by signal");
    }
    return exit_code_of(*vmm);
}

Result<ListenSocket> listen_if(const std::string &path) {
    if (path.empty()) return ListenSocket();
    return ListenSocket::bind(path);
}

int run_command(const RunArgs &args) {
    // 1. everything that needs the filesystem or privileges, before the sandbox
    auto tap = Tap::open_by_name(args.tap);
    if (!tap) return fail("tap " + args.tap, tap.error());
    auto config = boot_config_from(args);
    if (!config) return fail("bad arguments", config.error());
    UniqueFd image_fd(open(args.image.c_str(), O_RDONLY | O_CLOEXEC));
    if (!image_fd) return fail("open " + args.image, errno_error("open"));
    auto image = read_image_file(image_fd.get());
    if (!image) return fail("read " + args.image, image.error());
    Status limit_ok;
    uint64_t limit = console_limit_or(args.console_limit, ConsoleLog::kUnlimited, limit_ok);
    if (!limit_ok) return fail("--console-limit", limit_ok.error());
    auto vmm = Vmm::create();
    if (!vmm) return fail("create VM", vmm.error());
    auto listen = listen_if(args.listen);
    if (!listen) return fail("control socket", listen.error());

    // 2. sandbox, then boot and run
    install_kick_handlers();
    auto sandboxed = enter_sandbox(SandboxOptions{});
    if (!sandboxed) return fail("sandbox", sandboxed.error());
    auto booted = (*vmm)->boot(*config, *image, std::move(*tap),
                               ConsoleLog(UniqueFd(dup(STDOUT_FILENO)), limit));
    if (!booted) return fail("boot " + args.image, booted.error());
    image->clear();
    image->shrink_to_fit();
    spdlog::info("booted {} ({} MiB) on tap {}", args.image, config->mem_size >> 20, args.tap);
    return run_loaded(std::move(*vmm), std::move(*listen));
}

// The identity a restored guest gets: the snapshot's, with what the command line
// gives replaced; the next hop defaults to the new tap's host-side MAC.
Result<GuestIdentity> restore_identity(const RestoreArgs &a, const snapshot::IdentityState &saved) {
    auto id = GuestIdentity::restore(saved);
    if (!id) return id;
    if (!a.ip.empty()) {
        auto ip = parse_ip(a.ip);
        if (!ip) return std::move(ip).error();
        id->ip_family = ip->family;
        id->ip = ip->bytes;
    }
    if (a.prefix >= 0) {
        if (a.prefix > 128) return invalid("bad prefix length");
        id->prefix_len = static_cast<uint8_t>(a.prefix);
    }
    if (!a.gateway_ip.empty()) {
        auto gw = parse_ip(a.gateway_ip);
        if (!gw) return std::move(gw).error();
        if (gw->family != id->ip_family) return invalid("gateway and guest IP families differ");
        id->gw_ip = gw->bytes;
    }
    if (!a.mac.empty()) {
        auto mac = parse_mac(a.mac);
        if (!mac) return std::move(mac).error();
        id->mac = *mac;
    }
    if (!a.gateway_mac.empty()) {
        auto gw_mac = parse_mac(a.gateway_mac);
        if (!gw_mac) return std::move(gw_mac).error();
        id->gw_mac = *gw_mac;
    } else {
        auto host = Tap::host_mac(a.tap);
        if (!host) return std::move(host).error();
        id->gw_mac = *host;
    }
    WISP_RETURN_IF_ERROR(check_identity(*id));
    return id;
}

int restore_command(const RestoreArgs &args) {
    // 1. files, tap, KVM, control socket: everything that needs paths, before the sandbox
    auto files = snapshot::open_snapshot(args.snapshot);
    if (!files) return fail("snapshot " + args.snapshot, files.error());
    auto state = snapshot::read_vmstate(files->vmstate.get());
    if (!state) return fail("snapshot " + args.snapshot, state.error());
    RestoreFiles restore;
    restore.vmstate = std::move(files->vmstate);
    restore.memory = std::move(files->memory);
    if (state->kind() == snapshot::SnapshotKind::kDiff) {
        if (args.base.empty())
            return fail("snapshot " + args.snapshot,
                        invalid("this is a diff snapshot: name its full parent with --base"));
        auto base = snapshot::open_snapshot(args.base);
        if (!base) return fail("parent snapshot " + args.base, base.error());
        restore.base_vmstate = std::move(base->vmstate);
        restore.base_memory = std::move(base->memory);
    }
    auto tap = Tap::open_by_name(args.tap);
    if (!tap) return fail("tap " + args.tap, tap.error());
    auto identity = restore_identity(args, state->identity);
    if (!identity) return fail("bad arguments", identity.error());
    Status limit_ok;
    uint64_t limit = console_limit_or(args.console_limit, ConsoleLog::kUnlimited, limit_ok);
    if (!limit_ok) return fail("--console-limit", limit_ok.error());
    auto vmm = Vmm::create();
    if (!vmm) return fail("create VM", vmm.error());
    auto prepared = (*vmm)->prepare_memory(state->memory.mem_size);
    if (!prepared) return fail("prepare guest memory", prepared.error());
    auto listen = listen_if(args.listen);
    if (!listen) return fail("control socket", listen.error());

    // 2. sandbox, then restore and run
    install_kick_handlers();
    auto sandboxed = enter_sandbox(SandboxOptions{});
    if (!sandboxed) return fail("sandbox", sandboxed.error());
    auto restored = (*vmm)->restore_snapshot(std::move(restore), std::move(*tap),
                                             ConsoleLog(UniqueFd(dup(STDOUT_FILENO)), limit), *identity);
    if (!restored) return fail("restore " + args.snapshot, restored.error());
    spdlog::info("restored {} ({} MiB, restore #{}) on tap {}", args.snapshot,
                 (*vmm)->memory().size() >> 20, (*vmm)->restore_count(), args.tap);
    return run_loaded(std::move(*vmm), std::move(*listen));
}

// `serve --control-fd 3` of this very binary as a child, connected to us.
struct ServeChild {
    pid_t pid = -1;
    std::unique_ptr<control::ControlClient> client;
};

Result<ServeChild> spawn_serve_child(const std::string &log_level) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return errno_error("socketpair");
    ServeChild c;
    c.pid = fork();
    if (c.pid < 0) return errno_error("fork");
    if (c.pid == 0) {
        dup2(sv[1], 3);
        execl("/proc/self/exe", "wisp-vmm", "--log-level", log_level.c_str(), "serve", "--control-fd", "3",
              nullptr);
        _exit(127);
    }
    close(sv[1]);
    c.client = std::make_unique<control::ControlClient>(UniqueFd(sv[0]));
    auto hello = c.client->wait_for(WISP_CTL_EV_HELLO, 10000);
    if (!hello) return std::move(hello).error();
    return c;
}

std::string hex_id(const uint8_t *id) {
    char buf[33];
    for (int i = 0; i < 16; i++) std::snprintf(buf + 2 * i, 3, "%02x", id[i]);
    return buf;
}

int golden_command(const GoldenArgs &args, const std::string &log_level) {
    const RunArgs &b = args.boot;
    // A tap only to satisfy the monitor: the guest must reach `ready` without traffic.
    std::string tap_name = b.tap.empty() ? "wgold" + std::to_string(getpid() % 1000000) : b.tap;
    auto tap = Tap::open_by_name(tap_name);
    if (!tap) return fail("tap " + tap_name, tap.error());
    RunArgs with_tap = b;
    with_tap.tap = tap_name;
    auto config = boot_config_from(with_tap);
    if (!config) return fail("bad arguments", config.error());
    UniqueFd image(open(b.image.c_str(), O_RDONLY | O_CLOEXEC));
    if (!image) return fail("open " + b.image, errno_error("open"));
    auto child = spawn_serve_child(log_level);
    if (!child) return fail("start a monitor", child.error());
    auto finish = [&](int code) {
        (void)child->client->send(WISP_CTL_STOP);
        (void)child->client->wait_for(WISP_CTL_EV_EXITED, 10000);
        waitpid(child->pid, nullptr, 0);
        return code;
    };
    UniqueFd console(dup(STDOUT_FILENO));
    control::GoldenSpec spec;
    spec.boot = control::make_boot(*config, 0);
    spec.tap_fd = tap->fd();
    spec.image_fd = image.get();
    spec.log_fd = console.get();
    spec.dir = args.out;
    spec.ready_timeout_ms = args.ready_timeout_s * 1000;
    auto golden = control::golden_snapshot_to(*child->client, spec);
    if (!golden) return finish(fail("golden snapshot of " + b.image, golden.error()));
    const wisp_ctl_snapshotted &snap = golden->snapshot;
    std::printf("golden snapshot %s: id %s, %llu KiB of %llu MiB guest memory, ready %.1f ms after boot, "
                "written in %.1f ms\n",
                args.out.c_str(), hex_id(snap.id).c_str(), static_cast<unsigned long long>(snap.data_bytes >> 10),
                static_cast<unsigned long long>(snap.mem_size >> 20),
                (golden->ready.ready_ns - golden->started.command_ns) / 1e6, (snap.done_ns - snap.command_ns) / 1e6);
    std::fflush(stdout);
    return finish(0);
}

int snapshot_command(const SnapshotArgs &args) {
    auto client = control::ControlClient::connect(args.socket);
    if (!client) return fail("connect " + args.socket, client.error());
    auto hello = client->wait_for(WISP_CTL_EV_HELLO, 10000);
    if (!hello) return fail("monitor at " + args.socket, hello.error());
    auto snap = control::snapshot_to(*client, args.out, args.diff ? WISP_SNAPSHOT_DIFF : 0,
                                     args.timeout_s * 1000);
    if (!snap) return fail("snapshot to " + args.out, snap.error());
    std::printf("%s snapshot %s: id %s, %llu KiB of %llu MiB guest memory, written in %.1f ms\n",
                snap->kind == 2 ? "diff" : "full", args.out.c_str(), hex_id(snap->id).c_str(),
                static_cast<unsigned long long>(snap->data_bytes >> 10),
                static_cast<unsigned long long>(snap->mem_size >> 20),
                (snap->done_ns - snap->command_ns) / 1e6);
    std::fflush(stdout);
    if (args.stop) {
        auto st = client->send(WISP_CTL_STOP);
        if (!st) return fail("stop", st.error());
        (void)client->wait_for(WISP_CTL_EV_EXITED, 10000);
    }
    return 0;
}

int inspect_command(const std::string &dir) {
    auto files = snapshot::open_snapshot(dir);
    if (!files) return fail("snapshot " + dir, files.error());
    auto s = snapshot::read_vmstate(files->vmstate.get());
    if (!s) return fail("snapshot " + dir, s.error());
    bool diff = s->kind() == snapshot::SnapshotKind::kDiff;
    std::printf("kind          %s\n", diff ? "diff" : "full");
    std::printf("id            %s\n", hex_id(s->info.id).c_str());
    if (diff) std::printf("parent        %s\n", hex_id(s->info.parent_id).c_str());
    std::printf("format        %u (guest ABI %u)\n", snapshot::kFormatVersion, WISP_ABI_VERSION);
    std::printf("memory        %llu MiB, %llu KiB data\n",
                static_cast<unsigned long long>(s->memory.mem_size >> 20),
                static_cast<unsigned long long>(s->memory.data_bytes >> 10));
    if (diff)
        std::printf("runs          %u covering %llu pages\n", s->memory.run_count,
                    static_cast<unsigned long long>(s->memory.run_pages));
    std::printf("restores      %u before this snapshot\n", s->monitor.restore_count);
    std::printf("at ready      %s\n", (s->monitor.flags & snapshot::kMonitorHeldAtReady) ? "yes (golden)" : "no");
    std::printf("rip           0x%llx\n", static_cast<unsigned long long>(s->vcpu.regs.rip));
    return 0;
}

int serve_command(const ServeArgs &args) {
    if (args.control_fd < 0 && args.listen.empty()) {
        spdlog::error("serve needs --control-fd, --listen or both");
        return kExitSetupFailed;
    }
    // 1. the VM and vCPU exist before anyone asks for a guest (pre-forked pool),
    //    and with --mem its memory slot too
    auto vmm = Vmm::create();
    if (!vmm) return fail("create VM", vmm.error());
    if (!args.mem.empty()) {
        auto size = parse_size(args.mem);
        if (!size) return fail("--mem", size.error());
        auto prepared = (*vmm)->prepare_memory(*size);
        if (!prepared) return fail("prepare guest memory", prepared.error());
    }
    // 2. control channels
    UniqueFd conn;
    if (args.control_fd >= 0) {
        conn.reset(args.control_fd);
        fcntl(conn.get(), F_SETFD, FD_CLOEXEC);
    }
    ListenSocket listen;
    if (!args.listen.empty()) {
        auto l = ListenSocket::bind(args.listen);
        if (!l) return fail("control socket", l.error());
        listen = std::move(*l);
    }
    install_kick_handlers();
    Monitor monitor(std::move(*vmm), std::move(conn), std::move(listen));
    // 3. sandbox, then serve
    auto sandboxed = enter_sandbox(SandboxOptions{});
    if (!sandboxed) return fail("sandbox", sandboxed.error());
    return monitor.serve();
}

}  // namespace

int main(int argc, char **argv) {
    CLI::App app{"wisp-vmm - KVM monitor for ring-3 wisp unikernels"};
    app.set_version_flag("--version", std::string("wisp-vmm ") + WISP_VERSION + " (" +
                                          WISP_GIT_REVISION + ", guest ABI " +
                                          std::to_string(WISP_ABI_VERSION) + ")");
    app.require_subcommand(1);
    std::string level = "info";
    app.add_option("--log-level", level, "trace, debug, info, warn, error, off");

    RunArgs run;
    CLI::App *run_cmd = app.add_subcommand("run", "boot an image on a tap, console on stdout");
    run_cmd->add_option("--image", run.image, "guest ELF image")->required();
    run_cmd->add_option("--tap", run.tap, "tap device name (attached, or created if missing)")
        ->required();
    run_cmd->add_option("--mem", run.mem, "guest memory, 8M..4G in 2 MiB steps")->capture_default_str();
    run_cmd->add_option("--cmdline", run.cmdline, "command line for the guest");
    run_cmd->add_option("--ip", run.ip, "guest IPv4/IPv6 address")->capture_default_str();
    run_cmd->add_option("--prefix", run.prefix, "prefix length of the guest's network")
        ->capture_default_str();
    run_cmd->add_option("--gateway-ip", run.gateway_ip, "next-hop address");
    run_cmd->add_option("--mac", run.mac, "guest MAC")->capture_default_str();
    run_cmd->add_option("--gateway-mac", run.gateway_mac,
                        "next-hop MAC (default: the tap's host-side MAC)");
    run_cmd->add_option("--console-limit", run.console_limit,
                        "stop copying console output after this many bytes (default: no limit)");
    run_cmd->add_option("--listen", run.listen,
                        "also serve the control protocol on this socket (e.g. for `wisp-vmm snapshot`)");

    RestoreArgs restore;
    CLI::App *restore_cmd = app.add_subcommand("restore", "restore a snapshot on a tap, console on stdout");
    restore_cmd->add_option("--snapshot", restore.snapshot, "snapshot directory")->required();
    restore_cmd->add_option("--base", restore.base, "for a diff snapshot: its full parent snapshot");
    restore_cmd->add_option("--tap", restore.tap, "tap device name (attached, or created if missing)")
        ->required();
    restore_cmd->add_option("--ip", restore.ip, "guest address (default: the snapshot's)");
    restore_cmd->add_option("--prefix", restore.prefix, "prefix length (default: the snapshot's)");
    restore_cmd->add_option("--gateway-ip", restore.gateway_ip, "next-hop address (default: the snapshot's)");
    restore_cmd->add_option("--mac", restore.mac, "guest MAC (default: the snapshot's)");
    restore_cmd->add_option("--gateway-mac", restore.gateway_mac,
                            "next-hop MAC (default: the tap's host-side MAC)");
    restore_cmd->add_option("--console-limit", restore.console_limit,
                            "stop copying console output after this many bytes (default: no limit)");
    restore_cmd->add_option("--listen", restore.listen, "also serve the control protocol on this socket");

    GoldenArgs golden;
    CLI::App *golden_cmd = app.add_subcommand(
        "golden", "boot an image, wait for its ready, write a golden snapshot, stop");
    golden_cmd->add_option("--image", golden.boot.image, "guest ELF image")->required();
    golden_cmd->add_option("--out", golden.out, "snapshot directory to write (replaced atomically)")
        ->required();
    golden_cmd->add_option("--mem", golden.boot.mem, "guest memory, 8M..4G in 2 MiB steps")
        ->capture_default_str();
    golden_cmd->add_option("--cmdline", golden.boot.cmdline, "command line for the guest");
    golden_cmd->add_option("--ip", golden.boot.ip, "guest address")->capture_default_str();
    golden_cmd->add_option("--prefix", golden.boot.prefix, "prefix length")->capture_default_str();
    golden_cmd->add_option("--gateway-ip", golden.boot.gateway_ip, "next-hop address");
    golden_cmd->add_option("--mac", golden.boot.mac, "guest MAC")->capture_default_str();
    golden_cmd->add_option("--gateway-mac", golden.boot.gateway_mac, "next-hop MAC");
    golden_cmd->add_option("--tap", golden.boot.tap, "tap to boot on (default: a throw-away one)");
    golden_cmd->add_option("--ready-timeout", golden.ready_timeout_s, "seconds to wait for ready")
        ->capture_default_str();

    SnapshotArgs snap;
    CLI::App *snapshot_cmd =
        app.add_subcommand("snapshot", "snapshot the VM behind a control socket (run/restore --listen)");
    snapshot_cmd->add_option("--socket", snap.socket, "the monitor's control socket")->required();
    snapshot_cmd->add_option("--out", snap.out, "snapshot directory to write (replaced atomically)")
        ->required();
    snapshot_cmd->add_flag("--diff", snap.diff,
                           "only the pages changed since the full snapshot the VM was restored from");
    snapshot_cmd->add_flag("--stop", snap.stop, "stop the VM after the snapshot");
    snapshot_cmd->add_option("--timeout", snap.timeout_s, "seconds to wait for the monitor")
        ->capture_default_str();

    std::string inspect_dir;
    CLI::App *inspect_cmd = app.add_subcommand("inspect", "print what a snapshot's vmstate holds");
    inspect_cmd->add_option("dir", inspect_dir, "snapshot directory")->required();

    ServeArgs serve;
    CLI::App *serve_cmd = app.add_subcommand("serve", "start empty and wait for a controller");
    serve_cmd->add_option("--control-fd", serve.control_fd,
                          "inherited SOCK_SEQPACKET socket connected to the controller");
    serve_cmd->add_option("--listen", serve.listen,
                          "control socket path a (new) controller may connect to");
    serve_cmd->add_option("--mem", serve.mem,
                          "prepare guest memory of this size now: a boot or restore of that size "
                          "skips KVM's memory set-up (others still work)");

    CLI11_PARSE(app, argc, argv);
    wisp::log::init("wisp-vmm", level);
    // A controller or a console reader that went away must not kill the monitor.
    signal(SIGPIPE, SIG_IGN);
    if (run_cmd->parsed()) return run_command(run);
    if (restore_cmd->parsed()) return restore_command(restore);
    if (golden_cmd->parsed()) return golden_command(golden, level);
    if (snapshot_cmd->parsed()) return snapshot_command(snap);
    if (inspect_cmd->parsed()) return inspect_command(inspect_dir);
    return serve_command(serve);
}
