#include "wisp/test/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <cerrno>
#include <stdexcept>
#include <unistd.h>

#include "wisp/unique_fd.h"

namespace wisp::test {

double monotonic_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

CommandResult run(const std::vector<std::string> &argv, int timeout_s) {
    CommandResult result;
    int pipefd[2];
    if (argv.empty() || pipe2(pipefd, O_CLOEXEC) != 0) return result;
    UniqueFd read_end(pipefd[0]), write_end(pipefd[1]);
    pid_t pid = fork();
    if (pid < 0) return result;
    if (pid == 0) {
        setpgid(0, 0);
        dup2(write_end.get(), 1);
        dup2(write_end.get(), 2);
        std::vector<char *> args;
        for (auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    write_end.reset();
    double deadline = monotonic_seconds() + timeout_s;
    bool timed_out = false;
    char buf[4096];
    for (;;) {
        double left = deadline - monotonic_seconds();
        if (left <= 0) {
            timed_out = true;
            kill(-pid, SIGKILL);
            break;
        }
        pollfd p{read_end.get(), POLLIN, 0};
        int n = poll(&p, 1, static_cast<int>(left * 1000) + 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) continue;
        ssize_t got = read(read_end.get(), buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        result.output.append(buf, static_cast<size_t>(got));
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    if (timed_out) result.output += "\n[killed after " + std::to_string(timeout_s) + " s]";
    return result;
}

CommandResult run_shell(const std::string &command, int timeout_s) {
    return run({"/bin/sh", "-c", command}, timeout_s);
}

void run_or_throw(const std::vector<std::string> &argv, int timeout_s) {
    auto r = run(argv, timeout_s);
    if (r.exit_code != 0) {
        std::string cmd;
        for (auto &a : argv) cmd += a + " ";
        throw std::runtime_error("command failed: " + cmd + "\n" + r.output);
    }
}

int spawn_logged(const std::vector<std::string> &argv, const std::string &log_path) {
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        std::vector<char *> args;
        for (auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    return pid;
}

}  // namespace wisp::test
