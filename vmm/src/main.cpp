// wisp-vmm: one KVM monitor process per microVM.
//
//   wisp-vmm run --image app.elf --tap NAME [--mem 64M] [--cmdline ...] [identity]
//       for humans: console on stdout, exit code = the guest's halt status
//       (70 if the VM ended any other way; the reason is logged).
//   wisp-vmm serve (--control-fd N | --listen PATH)...
//       for wispd: starts empty and waits for commands (docs/control-protocol.md).
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "wisp/log.h"
#include "wisp/version.h"
#include "wisp/vmm/elf_loader.h"
#include "wisp/vmm/kick.h"
#include "wisp/vmm/monitor.h"
#include "wisp/vmm/options.h"
#include "wisp/vmm/sandbox.h"
#include "wisp/vmm/vmm.h"
#include "wisp_hypercall.h"

namespace {

using namespace wisp;
using namespace wisp::vmm;

constexpr int kExitVmFailed = 70;
constexpr int kExitSetupFailed = 1;

struct RunArgs {
    std::string image, tap, mem = "64M", cmdline, ip = "0.0.0.0", gateway_ip, mac = "02:77:69:73:70:01",
                gateway_mac, console_limit;
    int prefix = 24;
};

struct ServeArgs {
    int control_fd = -1;
    std::string listen;
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
    uint64_t limit = ConsoleLog::kUnlimited;
    if (!args.console_limit.empty()) {
        auto l = parse_size(args.console_limit);
        if (!l) return fail("--console-limit", l.error());
        limit = *l;
    }
    auto vmm = Vmm::create();
    if (!vmm) return fail("create VM", vmm.error());

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
    for (;;) {
        RunStop stop = (*vmm)->run();
        if (stop == RunStop::kExited) break;
        if (stop == RunStop::kReady) spdlog::info("guest is ready");
        if (termination_requested()) (*vmm)->stop(WISP_EXIT_STOPPED, "terminated by signal");
    }
    const wisp_ctl_exited &e = (*vmm)->exit_info();
    if (e.reason == WISP_EXIT_HALT) return static_cast<int>(e.status & 0xff);
    return kExitVmFailed;
}

int serve_command(const ServeArgs &args) {
    if (args.control_fd < 0 && args.listen.empty()) {
        spdlog::error("serve needs --control-fd, --listen or both");
        return kExitSetupFailed;
    }
    // 1. the VM and vCPU exist before anyone asks for a guest (pre-forked pool)
    auto vmm = Vmm::create();
    if (!vmm) return fail("create VM", vmm.error());
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

    ServeArgs serve;
    CLI::App *serve_cmd = app.add_subcommand("serve", "start empty and wait for a controller");
    serve_cmd->add_option("--control-fd", serve.control_fd,
                          "inherited SOCK_SEQPACKET socket connected to the controller");
    serve_cmd->add_option("--listen", serve.listen,
                          "control socket path a (new) controller may connect to");

    CLI11_PARSE(app, argc, argv);
    wisp::log::init("wisp-vmm", level);
    // A controller or a console reader that went away must not kill the monitor.
    signal(SIGPIPE, SIG_IGN);
    if (run_cmd->parsed()) return run_command(run);
    return serve_command(serve);
}
