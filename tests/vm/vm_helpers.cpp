#include "vm_helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "wisp/test/paths.h"
#include "wisp/vmm/elf_loader.h"

namespace wisp::test {

std::vector<uint8_t> read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void silence_tap(const ScopedTap &tap) {
    std::ofstream(std::string("/proc/sys/net/ipv6/conf/") + tap.name() + "/disable_ipv6") << "1";
    uint8_t frame[2048];
    while (read(tap.fd(), frame, sizeof frame) > 0) {
    }
}

GuestRun run_guest(const std::string &image, const std::string &cmdline, uint64_t mem_size,
                   uint64_t console_limit) {
    auto bytes = read_file(image_path(image));
    ScopedTap tap("gst");
    silence_tap(tap);
    UniqueFd console_fd(memfd_create("console", MFD_CLOEXEC));
    if (!console_fd) throw std::runtime_error("memfd_create failed");
    auto vmm = vmm::Vmm::create();
    if (!vmm) throw std::runtime_error(vmm.error().describe());
    auto st = (*vmm)->boot(test_boot_config(cmdline, mem_size), bytes, vmm::Tap(UniqueFd(dup(tap.fd()))),
                           vmm::ConsoleLog(UniqueFd(dup(console_fd.get())), console_limit));
    if (!st) throw std::runtime_error("boot: " + st.error().describe());
    GuestRun run;
    for (;;) {
        vmm::RunStop stop = (*vmm)->run();
        if (stop == vmm::RunStop::kExited) break;
        if (stop == vmm::RunStop::kReady) run.ready_calls++;
    }
    run.exit = (*vmm)->exit_info();
    run.summary = (*vmm)->exit_summary();
    run.stats = (*vmm)->stats();
    off_t size = lseek(console_fd.get(), 0, SEEK_END);
    run.console.resize(static_cast<size_t>(size));
    if (size > 0 && pread(console_fd.get(), run.console.data(), run.console.size(), 0) != size)
        throw std::runtime_error("reading the console memfd failed");
    return run;
}

MonitorProcess::MonitorProcess(const std::vector<std::string> &extra_args, bool with_control_fd) {
    int sv[2] = {-1, -1};
    if (with_control_fd && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        throw std::runtime_error("socketpair failed");
    char log_template[] = "/tmp/wisp-vmm-test-log-XXXXXX";
    int log_fd = mkstemp(log_template);
    if (log_fd < 0) throw std::runtime_error("mkstemp failed");
    log_path_ = log_template;
    std::vector<std::string> args = {binary_path("wisp-vmm"), "serve"};
    if (with_control_fd) args.insert(args.end(), {"--control-fd", "3"});
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        if (with_control_fd) dup2(sv[1], 3);  // dup2 clears FD_CLOEXEC on the copy
        dup2(log_fd, STDERR_FILENO);
        std::vector<char *> argv;
        for (auto &a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    close(log_fd);
    if (with_control_fd) {
        close(sv[1]);
        client_ = std::make_unique<vmm::control::ControlClient>(UniqueFd(sv[0]));
    }
}

MonitorProcess::~MonitorProcess() {
    if (pid_ > 0 && wait_exit(0) == -1) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    unlink(log_path_.c_str());
}

int MonitorProcess::wait_exit(int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        int status = 0;
        pid_t r = waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            return status;
        }
        if (std::chrono::steady_clock::now() >= deadline) return -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

std::string MonitorProcess::log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

vmm::BootConfig test_boot_config(const std::string &cmdline, uint64_t mem_size) {
    vmm::BootConfig c;
    c.mem_size = mem_size;
    c.cmdline = cmdline;
    c.identity.mac = {0x02, 0, 0, 0, 0, 0x10};
    c.identity.gw_mac = {0x02, 0, 0, 0, 0, 0x01};
    c.identity.ip = {198, 18, 0, 2};
    c.identity.gw_ip = {198, 18, 0, 1};
    c.identity.prefix_len = 24;
    return c;
}

wisp_ctl_boot test_boot(const std::string &cmdline, uint64_t mem_size, uint32_t flags) {
    return vmm::control::make_boot(test_boot_config(cmdline, mem_size), flags);
}

}  // namespace wisp::test
