#include "wispd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "wisp/test/paths.h"
#include "wisp/test/process.h"

namespace wisp::test {

namespace {

bool socket_answers(const std::string &path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    bool ok = connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0;
    close(fd);
    return ok;
}

}  // namespace

WispdProcess::WispdProcess(Config config) : config_(std::move(config)) {}

WispdProcess::~WispdProcess() {
    if (running()) stop(SIGKILL, 10);
}

std::vector<std::string> WispdProcess::args() const {
    std::vector<std::string> a = {binary_path("wispd"),   "--uplink",      config_.uplink,
                                  "--state-dir",          state_dir(),     "--runtime-dir",
                                  runtime_dir(),          "--bpffs-root",  config_.bpffs_root,
                                  "--log-level",          "debug"};
    a.insert(a.end(), config_.extra_args.begin(), config_.extra_args.end());
    return a;
}

bool WispdProcess::spawn() {
    auto argv_strings = args();
    std::string log_path = config_.root + "/wispd.log";
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
        // Dies with the test, even if the test process is killed.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(log, 1);
        dup2(log, 2);
        for (auto &e : config_.extra_env) putenv(const_cast<char *>(e.c_str()));
        std::vector<char *> argv;
        for (auto &a : argv_strings) argv.push_back(const_cast<char *>(a.c_str()));
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    return true;
}

bool WispdProcess::start() {
    if (!spawn()) return false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
        if (!running()) return false;
        if (socket_answers(socket())) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

int WispdProcess::run_to_exit(int timeout_s) {
    if (!spawn()) return -1;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
        if (!running()) return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
}

bool WispdProcess::running() {
    if (pid_ <= 0) return false;
    pid_t r = waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
        pid_ = -1;
        return false;
    }
    return true;
}

int WispdProcess::stop(int sig, int timeout_s) {
    if (!running()) return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
    kill(pid_, sig);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
        if (!running()) return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
    pid_ = -1;
    return -1;
}

std::string WispdProcess::log() const {
    std::ifstream in(config_.root + "/wispd.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

WispdProcess::Cli WispdProcess::cli(const std::vector<std::string> &args) const {
    std::vector<std::string> argv = {binary_path("wisp"), "--socket", socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv, 60);
    return {r.exit_code, r.output};
}

std::string assign_test_address(const std::string &interface) {
    unsigned pid = static_cast<unsigned>(getpid());
    std::string address = "198.19." + std::to_string((pid >> 8) & 0xff) + "." +
                          std::to_string(pid & 0xff);
    run({"ip", "addr", "add", address + "/32", "dev", interface}, 30);
    return address;
}

}  // namespace wisp::test
