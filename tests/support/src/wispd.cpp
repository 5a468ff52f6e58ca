#include "wisp/test/wispd.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <tuple>
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

std::vector<pid_t> WispdProcess::monitors() const { return monitors_of(runtime_dir()); }

void WispdProcess::kill_monitors() const { kill_monitors_of(runtime_dir()); }

void kill_monitors_of(const std::string &runtime_dir) {
    for (pid_t pid : monitors_of(runtime_dir)) kill(pid, SIGKILL);
}

std::vector<pid_t> monitors_of(const std::string &runtime_dir) {
    // Each monitor's command line names its control socket under the runtime dir.
    std::string needle = runtime_dir + "/monitors/";
    std::vector<pid_t> pids;
    DIR *proc = opendir("/proc");
    if (!proc) return pids;
    while (dirent *e = readdir(proc)) {
        pid_t pid = static_cast<pid_t>(atoi(e->d_name));
        if (pid <= 0) continue;
        std::ifstream in("/proc/" + std::string(e->d_name) + "/cmdline", std::ios::binary);
        std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (cmdline.find("wisp-vmm") != std::string::npos &&
            cmdline.find(needle) != std::string::npos)
            pids.push_back(pid);
    }
    closedir(proc);
    return pids;
}



std::vector<std::string> WispdProcess::args() const {
    std::vector<std::string> a = {binary_path("wispd"),   "--uplink",      config_.uplink,
                                  "--state-dir",          state_dir(),     "--runtime-dir",
                                  runtime_dir(),          "--bpffs-root",  config_.bpffs_root,
                                  "--log-level",          config_.log_level};
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

namespace wisp::test {

namespace {

// A /30 of 198.18.128.0/17 per (process, fixture): host .1, client .2.
std::pair<std::string, std::string> client_subnet() {
    static unsigned counter = 0;
    uint32_t index = (static_cast<uint32_t>(getpid()) * 4 + counter++) % 8192;
    uint32_t base = 0xc6128000u + index * 4;
    auto text = [](uint32_t a) {
        return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." +
               std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
    };
    return {text(base + 1), text(base + 2)};
}

void must(const std::vector<std::string> &argv) {
    auto r = run(argv, 30);
    if (r.exit_code != 0) {
        std::string cmd;
        for (auto &a : argv) cmd += a + " ";
        throw std::runtime_error(cmd + "failed: " + r.output);
    }
}

}  // namespace

ClientNetwork::ClientNetwork(const std::string &tag) : ns(tag + "n"), veth(tag + "v") {
    std::tie(host_ip, client_ip) = client_subnet();
    veth.move_peer_to(ns);
    must({"ip", "addr", "add", host_ip + "/30", "dev", veth.host()});
    must({"ip", "-n", ns.name(), "addr", "add", client_ip + "/30", "dev", veth.peer()});
    must({"ip", "-n", ns.name(), "link", "set", "lo", "up"});
    must({"ip", "netns", "exec", ns.name(), "ethtool", "-K", veth.peer(), "tx", "off"});
}

std::string ClientNetwork::url(uint16_t port, const std::string &path) const {
    return "http://" + host_ip + ":" + std::to_string(port) + path;
}

ClientNetwork::Response ClientNetwork::curl(const std::string &url,
                                            const std::vector<std::string> &extra,
                                            int timeout_s) const {
    std::vector<std::string> argv = ns.exec_prefix();
    for (const char *a : {"curl", "-s", "-m"}) argv.push_back(a);
    argv.push_back(std::to_string(timeout_s));
    argv.push_back("-w");
    argv.push_back("\n@@ %{http_code} %{time_connect} %{time_total}");
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    auto r = run(argv, timeout_s + 5);
    Response out;
    out.exit_code = r.exit_code;
    auto mark = r.output.rfind("\n@@ ");
    if (mark == std::string::npos) {
        out.body = r.output;
        return out;
    }
    out.body = r.output.substr(0, mark);
    std::istringstream in(r.output.substr(mark + 4));
    in >> out.status >> out.connect_s >> out.total_s;
    return out;
}

UniqueFd ClientNetwork::tcp_socket() const {
    // A socket belongs to the namespace of the thread that creates it.
    UniqueFd out;
    int error = 0;
    std::thread t([&] {
        UniqueFd nsfd(open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC));
        if (!nsfd || setns(nsfd.get(), CLONE_NEWNET) != 0) {
            error = errno;
            return;
        }
        out.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!out) error = errno;
    });
    t.join();
    errno = error;
    return out;
}

}  // namespace wisp::test
