#include "wisp/test/net.h"

#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "wisp/test/process.h"

namespace wisp::test {

namespace {

std::string base36(unsigned long v) {
    const char *digits = "0123456789abcdefghijklmnopqrstuvwxyz";
    std::string s;
    do {
        s.insert(s.begin(), digits[v % 36]);
        v /= 36;
    } while (v);
    return s;
}

void must(const std::vector<std::string> &argv) { run_or_throw(argv, 30); }

void remove_tree(const std::string &path) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
}

}  // namespace

std::string unique_name(const std::string &tag) {
    static std::atomic<unsigned> counter{0};
    if (tag.empty() || tag.size() > 6) throw std::invalid_argument("tag must be 1..6 chars");
    std::string name = "w" + tag + base36(static_cast<unsigned long>(getpid())) +
                       base36(counter++ % (36 * 36));
    if (name.size() > 15) throw std::length_error("interface name too long: " + name);
    return name;
}

ScopedNetns::ScopedNetns(const std::string &tag) : name_(unique_name(tag)) {
    must({"ip", "netns", "add", name_});
    must({"ip", "-n", name_, "link", "set", "lo", "up"});
}

ScopedNetns::~ScopedNetns() { run({"ip", "netns", "del", name_}, 30); }

std::vector<std::string> ScopedNetns::exec_prefix() const { return {"ip", "netns", "exec", name_}; }

ScopedVeth::ScopedVeth(const std::string &tag) : host_(unique_name(tag)), peer_(unique_name(tag)) {
    must({"ip", "link", "add", host_, "type", "veth", "peer", "name", peer_});
    must({"ip", "link", "set", host_, "up"});
}

ScopedVeth::~ScopedVeth() {
    // Deleting one end removes both, wherever the peer lives.
    run({"ip", "link", "del", host_}, 30);
}

void ScopedVeth::move_peer_to(const ScopedNetns &ns) {
    must({"ip", "link", "set", peer_, "netns", ns.name()});
    must({"ip", "-n", ns.name(), "link", "set", peer_, "up"});
}

ScopedTap::ScopedTap(const std::string &tag) : name_(unique_name(tag)) {
    fd_.reset(open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
    if (!fd_) throw std::runtime_error("open /dev/net/tun: " + std::string(strerror(errno)));
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, name_.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd_.get(), TUNSETIFF, &ifr) != 0)
        throw std::runtime_error("TUNSETIFF " + name_ + ": " + strerror(errno));
    must({"ip", "link", "set", name_, "up"});
}

int ScopedTap::ifindex() const { return static_cast<int>(if_nametoindex(name_.c_str())); }

ScopedBpffsDir::ScopedBpffsDir(const std::string &tag)
    : path_("/sys/fs/bpf/" + unique_name(tag)) {
    if (mkdir(path_.c_str(), 0700) != 0)
        throw std::runtime_error("mkdir " + path_ + ": " + strerror(errno));
}

ScopedBpffsDir::~ScopedBpffsDir() { remove_tree(path_); }

ScopedTempDir::ScopedTempDir(const std::string &tag) {
    std::string templ = "/tmp/wisp-test-" + tag + "-XXXXXX";
    if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp: " + std::string(strerror(errno)));
    path_ = templ;
}

ScopedTempDir::~ScopedTempDir() { remove_tree(path_); }

}  // namespace wisp::test
