#include "wisp/vmm/sandbox.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <string>

namespace wisp::vmm {

namespace {

// An empty root: a fresh directory that is removed right after we enter it, so
// nothing can be created inside and nothing is left behind.
Status chroot_into_empty_directory() {
    char dir[] = "/tmp/wisp-vmm-root-XXXXXX";
    if (!mkdtemp(dir)) return errno_error("mkdtemp for the sandbox root");
    if (chdir(dir) != 0) return errno_error(std::string("chdir ") + dir);
    if (rmdir(dir) != 0) return errno_error(std::string("rmdir ") + dir);
    if (chroot(".") != 0) return errno_error("chroot into the empty directory");
    if (chdir("/") != 0) return errno_error("chdir / in the sandbox");
    return {};
}

Status drop_capabilities() {
    for (int cap = 0; cap <= 63; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL) break;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
        return errno_error("clear ambient capabilities");
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capset, &header, data) != 0) return errno_error("capset (drop all)");
    return {};
}

}  // namespace

Status enter_sandbox(const SandboxOptions &options) {
    // Log timestamps need the time zone; load it while /etc/localtime is visible
    // (afterwards the file is neither reachable nor openable).
    tzset();
    if (options.chroot_empty) WISP_RETURN_IF_ERROR(chroot_into_empty_directory());
    WISP_RETURN_IF_ERROR(drop_capabilities());
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno_error("PR_SET_NO_NEW_PRIVS");
    return install_seccomp_filter();
}

}  // namespace wisp::vmm
