#include "wispd/preflight.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "wisp/unique_fd.h"

namespace wisp::wispd {

namespace {
constexpr long kBpfFsMagic = 0xcafe4a11;
}

Result<uint64_t> raise_fd_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return errno_error("getrlimit RLIMIT_NOFILE");
    if (lim.rlim_cur != lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0) return errno_error("setrlimit RLIMIT_NOFILE");
    }
    return static_cast<uint64_t>(lim.rlim_cur);
}

Status check_root() {
    if (geteuid() == 0) return {};
    return Error{EPERM, "wispd must run as root (it loads BPF programs, creates taps and "
                        "starts KVM monitors)"};
}

Status check_kvm(const std::string &device) {
    UniqueFd kvm(open(device.c_str(), O_RDWR | O_CLOEXEC));
    if (!kvm)
        return errno_error(device + " cannot be opened: is KVM enabled (kvm_intel/kvm_amd "
                                    "loaded, or a nested/software KVM available)?");
    int version = ioctl(kvm.get(), KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        return Error{ENOTSUP, device + " speaks KVM API version " + std::to_string(version) +
                                  ", wisp needs " + std::to_string(KVM_API_VERSION)};
    return {};
}

Status check_bpffs(const std::string &pin_root) {
    std::filesystem::path p(pin_root);
    std::error_code ec;
    while (!p.empty() && !std::filesystem::exists(p, ec)) p = p.parent_path();
    struct statfs fs {};
    if (p.empty() || statfs(p.c_str(), &fs) != 0)
        return errno_error("cannot inspect the bpffs pin root " + pin_root);
    if (static_cast<long>(fs.f_type) != kBpfFsMagic)
        return Error{ENOTSUP, "the pin root " + pin_root + " is not on a bpffs mount (" +
                                  p.string() + " is not bpffs): mount it with "
                                  "`mount -t bpf bpf /sys/fs/bpf`"};
    return {};
}

Status check_btf(const std::string &path) {
    if (access(path.c_str(), R_OK) == 0) return {};
    return errno_error("kernel BTF " + path +
                       " is not readable: the kernel needs CONFIG_DEBUG_INFO_BTF=y");
}

Status check_tun(const std::string &path) {
    UniqueFd tun(open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (tun) return {};
    return errno_error(path + " cannot be opened: load the tun module (`modprobe tun`)");
}

Status check_uplink(const std::string &name) {
    if (name.empty())
        return Error{EINVAL, "no uplink interface configured: pass --uplink IFNAME or set "
                             "uplink = \"IFNAME\" in the config file"};
    if (if_nametoindex(name.c_str()) == 0)
        return errno_error("uplink interface '" + name + "' does not exist (see `ip link`)");
    UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) return errno_error("socket for interface flags");
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0)
        return errno_error("reading the flags of uplink '" + name + "'");
    if (!(ifr.ifr_flags & IFF_UP))
        return Error{ENETDOWN, "uplink interface '" + name + "' is down (`ip link set " + name +
                                   " up`)"};
    return {};
}

Status check_directory(const std::string &path, const std::string &what) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return Error{ec.value(), "cannot create the " + what + " " + path};
    if (!std::filesystem::is_directory(path, ec))
        return Error{ENOTDIR, "the " + what + " " + path + " is not a directory"};
    if (access(path.c_str(), W_OK | X_OK) != 0)
        return errno_error("the " + what + " " + path + " is not writable");
    return {};
}

Status check_monitor_binary(const std::string &path) {
    if (access(path.c_str(), X_OK) != 0)
        return Error{errno, "monitor binary " + path + " is not executable (set monitor_binary, "
                            "or install wisp-vmm next to wispd)"};
    return {};
}

Status run_preflight(const Options &o) {
    std::vector<Status> results = {
        check_root(),
        check_kvm(),
        check_tun(),
        check_btf(),
        check_bpffs(o.bpffs_root),
        check_uplink(o.uplink),
        check_monitor_binary(monitor_binary_path(o)),
        check_directory(o.state_dir, "state directory"),
        check_directory(o.runtime_dir, "runtime directory"),
    };
    std::string problems;
    int first_code = 0;
    for (auto &r : results) {
        if (r) continue;
        if (!first_code) first_code = r.error().code;
        problems += "\n  - " + r.error().describe();
    }
    if (problems.empty()) return {};
    return Error{first_code, "preflight checks failed:" + problems};
}

}  // namespace wisp::wispd
