// Fixtures for snapshot tests: `wisp-vmm serve` monitors driven as wispd drives
// them (vm_helpers.h), console logs in files, and a test network namespace with
// one tap per replica so restored guests answer real curl.
//
// Addressing: port i (1..250) is tap "wsp<i>" with 198.18.i.1/24 on the host side;
// its guest is 198.18.i.2 with MAC 02:73:6e:70:00:<i>.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "vm_helpers.h"
#include "wisp/test/net.h"
#include "wisp/test/process.h"
#include "wisp/vmm/snapshot_control.h"

namespace wisp::test {

inline constexpr int kSnapTimeoutMs = 30000;

// A console log file a monitor writes and the test reads.
class ConsoleFile {
public:
    ConsoleFile();
    int fd() const { return fd_.get(); }
    std::string text() const;
    // Waits until the log contains `needle` (up to timeout_ms); true if it does.
    bool wait_for(const std::string &needle, int timeout_ms = kSnapTimeoutMs) const;

private:
    ScopedTempDir dir_;
    std::string path_;
    UniqueFd fd_;
};

// Boots `image` in monitor `m` with HOLD_AT_READY, waits for ready: the golden point.
void boot_held_at_ready(MonitorProcess &m, const std::string &image, const std::string &cmdline,
                        uint64_t mem_size, int tap_fd, int log_fd);

// A fresh `wisp-vmm serve` monitor that restored `dir` (and `base`, the parent of
// a diff) on the tap `tap_fd`, the console going to a file. `restored` holds the
// restored event, or why the monitor refused.
struct RestoredMonitor {
    ConsoleFile console;
    MonitorProcess monitor;
    Result<wisp_ctl_restored> restored = Error{EINVAL, "not restored"};
    uint64_t command_ns = 0;  // when the restore command was sent

    RestoredMonitor(int tap_fd, const std::string &dir, const std::string &base = "",
                    const std::optional<vmm::GuestIdentity> &identity = std::nullopt);
    Result<wisp_ctl_snapshotted> snapshot(const std::string &dir, uint32_t flags = 0);
    wisp_ctl_exited wait_exit();
    void stop();
};

class TestNet {
public:
    TestNet();
    struct Port {
        std::string tap;
        UniqueFd fd;  // attached to the tap (inside the namespace)
        std::string guest_ip;
        vmm::GuestIdentity identity;  // guest 198.18.i.2, MAC ..:<i>, gateway = the tap
    };
    // Creates port `i` (1..250) in the namespace; `attach`: open an fd on the tap
    // (a tap takes one reader: leave it unattached for a `wisp-vmm restore --tap`).
    Port port(int i, bool attach = true);
    const std::string &netns() const { return ns_.name(); }
    // curl inside the namespace; returns its exit code and "<status>\n<body>".
    CommandResult curl(const std::string &url, const std::vector<std::string> &extra = {},
                       int timeout_s = 30) const;
    // Runs argv inside the namespace.
    CommandResult run_in(const std::vector<std::string> &argv, int timeout_s = 60) const;

private:
    ScopedNetns ns_;
};

// The HTTP status and body from TestNet::curl's output.
struct Http {
    int status = 0;
    std::string body;
};
Http parse_curl(const CommandResult &r);

// The number after `key` (e.g. "\"checksum\":\"") up to the next non-hex/digit char.
std::string field_after(const std::string &text, const std::string &key);

}  // namespace wisp::test
