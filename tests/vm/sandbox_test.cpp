// The seccomp allow-list: applied in a child, an allowed call works and a
// forbidden one kills the process with SIGSYS.
#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include "wisp/vmm/sandbox.h"

namespace {

// Runs `body` in a child after installing the filter; returns the wait status.
int in_filtered_child(const std::function<void()> &body) {
    pid_t pid = fork();
    if (pid == 0) {
        if (!wisp::vmm::install_seccomp_filter().ok()) _exit(100);
        body();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

}  // namespace

TEST(Seccomp, AllowedSyscallsStillWork) {
    int status = in_filtered_child([] {
        if (getpid() <= 0) _exit(1);
        if (write(STDERR_FILENO, "", 0) != 0) _exit(2);
    });
    ASSERT_TRUE(WIFEXITED(status)) << "signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Seccomp, AForbiddenSyscallKillsTheProcessWithSigsys) {
    for (auto forbidden : std::vector<std::function<void()>>{
             [] { (void)socket(AF_INET, SOCK_STREAM, 0); },
             [] { (void)syscall(SYS_openat, AT_FDCWD, "/etc/passwd", 0); },
             [] { (void)syscall(SYS_execve, "/bin/true", nullptr, nullptr); },
             [] { (void)syscall(SYS_ptrace, 0, 0, 0, 0); },
         }) {
        int status = in_filtered_child(forbidden);
        ASSERT_TRUE(WIFSIGNALED(status)) << "the child survived a forbidden syscall";
        EXPECT_EQ(WTERMSIG(status), SIGSYS);
    }
}

TEST(Seccomp, ExecutableMappingsAreForbidden) {
    int status = in_filtered_child([] {
        (void)syscall(SYS_mmap, nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    });
    ASSERT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(WTERMSIG(status), SIGSYS);
}
