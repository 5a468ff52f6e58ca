#include "snap_fixture.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "wisp/test/paths.h"
#include "wisp/vmm/clock.h"

namespace wisp::test {

ConsoleFile::ConsoleFile() : dir_("con"), path_(dir_.path() + "/console.log") {
    fd_.reset(open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0600));
    if (!fd_) throw std::runtime_error("cannot create " + path_);
}

std::string ConsoleFile::text() const {
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool ConsoleFile::wait_for(const std::string &needle, int timeout_ms) const {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
        if (text().find(needle) != std::string::npos) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return text().find(needle) != std::string::npos;
}

void boot_held_at_ready(MonitorProcess &m, const std::string &image, const std::string &cmdline,
                        uint64_t mem_size, int tap_fd, int log_fd) {
    auto &c = m.client();
    ASSERT_TRUE(c.wait_for(WISP_CTL_EV_HELLO, kSnapTimeoutMs).ok());
    UniqueFd img(open(image_path(image).c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(img.valid()) << image;
    auto st = c.boot(test_boot(cmdline, mem_size, WISP_BOOT_HOLD_AT_READY | WISP_BOOT_LOG_FD), tap_fd,
                     img.get(), log_fd);
    ASSERT_TRUE(st.ok()) << st.error().describe();
    auto ready = c.wait_for(WISP_CTL_EV_READY, 120000);
    ASSERT_TRUE(ready.ok()) << ready.error().describe() << "\n" << m.log();
    ASSERT_EQ(ready->as<wisp_ctl_ready>().held, 1u);
}

RestoredMonitor::RestoredMonitor(int tap_fd, const std::string &dir, const std::string &base,
                                 const std::optional<vmm::GuestIdentity> &identity) {
    EXPECT_TRUE(monitor.client().wait_for(WISP_CTL_EV_HELLO, kSnapTimeoutMs).ok());
    vmm::control::RestoreSpec spec;
    spec.dir = dir;
    spec.base_dir = base;
    spec.tap_fd = tap_fd;
    spec.log_fd = console.fd();
    spec.identity = identity;
    command_ns = vmm::host_monotonic_ns();
    restored = vmm::control::restore_from(monitor.client(), spec, kSnapTimeoutMs);
}

Result<wisp_ctl_snapshotted> RestoredMonitor::snapshot(const std::string &dir, uint32_t flags) {
    return vmm::control::snapshot_to(monitor.client(), dir, flags, kSnapTimeoutMs);
}

wisp_ctl_exited RestoredMonitor::wait_exit() {
    auto ev = monitor.client().wait_for(WISP_CTL_EV_EXITED, kSnapTimeoutMs);
    EXPECT_TRUE(ev.ok()) << ev.error().describe() << "\n" << console.text() << monitor.log();
    return ev.ok() ? ev->as<wisp_ctl_exited>() : wisp_ctl_exited{};
}

void RestoredMonitor::stop() {
    (void)monitor.client().send(WISP_CTL_STOP);
    (void)monitor.client().wait_for(WISP_CTL_EV_EXITED, kSnapTimeoutMs);
}

namespace {

void must(const std::vector<std::string> &argv) {
    auto r = run(argv, 30);
    if (r.exit_code != 0) {
        std::string cmd;
        for (const auto &a : argv) cmd += a + " ";
        throw std::runtime_error("failed: " + cmd + "\n" + r.output);
    }
}

// Opens persistent tap `name` of namespace `ns` and reads its MAC, from a thread
// that joined the namespace (the fd keeps the device wherever it is used).
void attach_tap(const std::string &ns, const std::string &name, UniqueFd &fd, std::array<uint8_t, 6> &mac) {
    std::string error;
    std::thread t([&] {
        UniqueFd nsfd(open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
        if (!nsfd || setns(nsfd.get(), CLONE_NEWNET) != 0) {
            error = "setns " + ns + ": " + std::strerror(errno);
            return;
        }
        fd.reset(open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
        ifreq ifr{};
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
        std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
        if (!fd || ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
            error = "attach tap " + name + ": " + std::strerror(errno);
            return;
        }
        UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        ifreq hw{};
        std::strncpy(hw.ifr_name, name.c_str(), IFNAMSIZ - 1);
        if (!sock || ioctl(sock.get(), SIOCGIFHWADDR, &hw) != 0) {
            error = "MAC of " + name + ": " + std::strerror(errno);
            return;
        }
        std::memcpy(mac.data(), hw.ifr_hwaddr.sa_data, 6);
    });
    t.join();
    if (!error.empty()) throw std::runtime_error(error);
}

}  // namespace

TestNet::TestNet() : ns_("snp") {}

TestNet::Port TestNet::port(int i, bool attach) {
    if (i < 1 || i > 250) throw std::runtime_error("port index out of range");
    Port p;
    p.tap = "wsp" + std::to_string(i);
    std::string net = "198.18." + std::to_string(i) + ".";
    must({"ip", "-n", netns(), "tuntap", "add", "dev", p.tap, "mode", "tap"});
    must({"ip", "-n", netns(), "addr", "add", net + "1/24", "dev", p.tap});
    must({"ip", "-n", netns(), "link", "set", p.tap, "up"});
    std::array<uint8_t, 6> host_mac{};
    if (attach) attach_tap(netns(), p.tap, p.fd, host_mac);
    p.guest_ip = net + "2";
    p.identity.mac = {0x02, 0x73, 0x6e, 0x70, 0x00, static_cast<uint8_t>(i)};
    p.identity.gw_mac = host_mac;
    p.identity.ip_family = 4;
    p.identity.prefix_len = 24;
    p.identity.ip = {198, 18, static_cast<uint8_t>(i), 2};
    p.identity.gw_ip = {198, 18, static_cast<uint8_t>(i), 1};
    return p;
}

CommandResult TestNet::run_in(const std::vector<std::string> &argv, int timeout_s) const {
    std::vector<std::string> full = ns_.exec_prefix();
    full.insert(full.end(), argv.begin(), argv.end());
    return run(full, timeout_s);
}

CommandResult TestNet::curl(const std::string &url, const std::vector<std::string> &extra,
                            int timeout_s) const {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", std::to_string(timeout_s),
                                     "-w", "\n%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    return run_in(argv, timeout_s + 10);
}

Http parse_curl(const CommandResult &r) {
    Http h;
    auto nl = r.output.rfind('\n');
    if (nl == std::string::npos) return h;
    try {
        h.status = std::stoi(r.output.substr(nl + 1));
    } catch (...) {
        h.status = 0;
    }
    h.body = r.output.substr(0, nl);
    return h;
}

std::string field_after(const std::string &text, const std::string &key) {
    auto at = text.find(key);
    if (at == std::string::npos) return "";
    at += key.size();
    size_t end = at;
    while (end < text.size() && std::isxdigit(static_cast<unsigned char>(text[end]))) end++;
    return text.substr(at, end - at);
}

}  // namespace wisp::test
