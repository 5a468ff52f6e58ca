// Helpers for the VM tests: run a test guest in-process on the real KVM, start
// `wisp-vmm serve` as a child with a control connection, read files.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "wisp/test/net.h"
#include "wisp/vmm/control.h"
#include "wisp/vmm/vmm.h"

namespace wisp::test {

struct GuestRun {
    wisp_ctl_exited exit{};
    std::string summary;  // Vmm::exit_summary()
    std::string console;
    wisp_ctl_stats stats{};
    int ready_calls = 0;
};

// Boots build/images/<image>.elf in this process with `cmdline`, a fresh tap and
// a console captured in memory, and runs it to its end.
GuestRun run_guest(const std::string &image, const std::string &cmdline,
                   uint64_t mem_size = 32ull << 20,
                   uint64_t console_limit = vmm::ConsoleLog::kUnlimited);

std::vector<uint8_t> read_file(const std::string &path);

// Turns IPv6 off on the tap and drops what the kernel already queued (router
// solicitations, MLD reports), so a guest sees only the frames a test sends.
void silence_tap(const ScopedTap &tap);

// `wisp-vmm serve --control-fd 3 [extra args]` as a child; killed (SIGKILL) and
// reaped when destroyed if still running.
class MonitorProcess {
public:
    explicit MonitorProcess(const std::vector<std::string> &extra_args = {},
                            bool with_control_fd = true);
    ~MonitorProcess();
    MonitorProcess(const MonitorProcess &) = delete;
    MonitorProcess &operator=(const MonitorProcess &) = delete;

    vmm::control::ControlClient &client() { return *client_; }
    pid_t pid() const { return pid_; }
    // Waits up to `timeout_ms` for the process to exit; its wait status, or -1.
    int wait_exit(int timeout_ms);
    std::string log() const;  // the monitor's stderr so far

private:
    pid_t pid_ = -1;
    std::unique_ptr<vmm::control::ControlClient> client_;
    std::string log_path_;
};

// The test identity (MAC 02::10, 198.18.0.2/24, gateway 198.18.0.1 / 02::01).
vmm::BootConfig test_boot_config(const std::string &cmdline, uint64_t mem_size = 32ull << 20);

// A boot command for a test image with the test identity.
wisp_ctl_boot test_boot(const std::string &cmdline, uint64_t mem_size = 32ull << 20,
                        uint32_t flags = 0);

}  // namespace wisp::test
