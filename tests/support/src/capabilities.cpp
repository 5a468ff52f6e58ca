#include "wisp/test/capabilities.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "wisp/unique_fd.h"

namespace wisp::test {

namespace {
constexpr long kBpfFsMagic = 0xcafe4a11;
}

std::string missing_root() { return geteuid() == 0 ? "" : "root (run the tests as root)"; }

std::string missing_kvm() {
    if (auto m = missing_root(); !m.empty()) return m;
    UniqueFd kvm(open("/dev/kvm", O_RDWR | O_CLOEXEC));
    if (!kvm) return "/dev/kvm cannot be opened";
    if (ioctl(kvm.get(), KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
        return "/dev/kvm has an unexpected API version";
    return "";
}

std::string missing_bpf() {
    if (auto m = missing_root(); !m.empty()) return m;
    struct statfs fs {};
    if (statfs("/sys/fs/bpf", &fs) != 0 || fs.f_type != kBpfFsMagic)
        return "bpffs is not mounted on /sys/fs/bpf (scripts/setup.sh mounts it)";
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) return "kernel BTF (/sys/kernel/btf/vmlinux)";
    return "";
}

std::string missing_netns() {
    if (auto m = missing_root(); !m.empty()) return m;
    if (access("/dev/net/tun", R_OK | W_OK) != 0) return "/dev/net/tun";
    if (access("/usr/bin/ip", X_OK) != 0 && access("/sbin/ip", X_OK) != 0 &&
        access("/usr/sbin/ip", X_OK) != 0)
        return "iproute2 (`ip`)";
    return "";
}

}  // namespace wisp::test
