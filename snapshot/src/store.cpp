#include "wisp/snapshot/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace wisp::snapshot {

namespace {

std::atomic<unsigned> g_counter{0};

struct SplitPath {
    std::string parent, name;
};

Result<SplitPath> split(std::string dir) {
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    auto slash = dir.rfind('/');
    SplitPath p;
    p.parent = slash == std::string::npos ? "." : dir.substr(0, slash == 0 ? 1 : slash);
    p.name = slash == std::string::npos ? dir : dir.substr(slash + 1);
    if (p.name.empty() || p.name == "." || p.name == "..")
        return invalid("not a usable snapshot directory name: '" + dir + "'");
    return p;
}

Status fsync_fd(int fd, const std::string &what) {
    if (fsync(fd) != 0) return errno_error("fsync " + what);
    return {};
}

// Removes directory `name` under `parent_fd` with every regular file in it.
Status remove_dir_at(int parent_fd, const std::string &name) {
    int fd = openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) return {};
        return errno_error("open " + name);
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return errno_error("read directory " + name);
    }
    Status st;
    while (dirent *e = readdir(d)) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT) {
            st = errno_error("remove " + name + "/" + e->d_name);
            break;
        }
    }
    closedir(d);
    if (!st) return st;
    if (unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        return errno_error("remove directory " + name);
    return {};
}

}  // namespace

Result<PendingSnapshot> PendingSnapshot::create(const std::string &dir) {
    auto path = split(dir);
    if (!path) return std::move(path).error();
    PendingSnapshot p;
    p.parent_.reset(open(path->parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!p.parent_) return errno_error("open snapshot parent directory " + path->parent);
    p.name_ = path->name;
    p.final_path_ = path->parent + "/" + path->name;
    p.temp_name_ = "." + path->name + ".tmp-" + std::to_string(getpid()) + "-" +
                   std::to_string(g_counter.fetch_add(1));
    p.temp_path_ = path->parent + "/" + p.temp_name_;
    if (mkdirat(p.parent_.get(), p.temp_name_.c_str(), 0700) != 0)
        return errno_error("create " + p.temp_path_);
    UniqueFd tmp(openat(p.parent_.get(), p.temp_name_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!tmp) {
        Error e = errno_error("open " + p.temp_path_);
        (void)remove_dir_at(p.parent_.get(), p.temp_name_);
        return e;
    }
    p.vmstate_.reset(openat(tmp.get(), kVmstateFile, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    p.memory_.reset(openat(tmp.get(), kMemoryFile, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!p.vmstate_ || !p.memory_) {
        Error e = errno_error("create the files in " + p.temp_path_);
        (void)remove_dir_at(p.parent_.get(), p.temp_name_);
        return e;
    }
    return p;
}

PendingSnapshot::PendingSnapshot(PendingSnapshot &&o) noexcept
    : parent_(std::move(o.parent_)),
      vmstate_(std::move(o.vmstate_)),
      memory_(std::move(o.memory_)),
      name_(std::move(o.name_)),
      temp_name_(std::move(o.temp_name_)),
      temp_path_(std::move(o.temp_path_)),
      final_path_(std::move(o.final_path_)),
      done_(std::exchange(o.done_, true)) {}

PendingSnapshot::~PendingSnapshot() {
    if (done_ || !parent_) return;
    vmstate_.reset();
    memory_.reset();
    (void)remove_dir_at(parent_.get(), temp_name_);
}

Status PendingSnapshot::commit() {
    if (done_) return invalid("snapshot already committed", EALREADY);
    // 1. the data, then the directory entries of the temporary directory
    WISP_RETURN_IF_ERROR(fsync_fd(memory_.get(), temp_path_ + "/memory"));
    WISP_RETURN_IF_ERROR(fsync_fd(vmstate_.get(), temp_path_ + "/vmstate"));
    {
        UniqueFd tmp(openat(parent_.get(), temp_name_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!tmp) return errno_error("open " + temp_path_);
        WISP_RETURN_IF_ERROR(fsync_fd(tmp.get(), temp_path_));
    }
    // 2. into place: swap with a previous snapshot in one step, or a plain rename
    //    that refuses to overwrite something that appeared meanwhile.
    bool replaced = true;
    if (renameat2(parent_.get(), temp_name_.c_str(), parent_.get(), name_.c_str(), RENAME_EXCHANGE) != 0) {
        if (errno != ENOENT) return errno_error("exchange " + temp_path_ + " with " + final_path_);
        replaced = false;
        if (renameat2(parent_.get(), temp_name_.c_str(), parent_.get(), name_.c_str(), RENAME_NOREPLACE) != 0)
            return errno_error("rename " + temp_path_ + " to " + final_path_);
    }
    done_ = true;
    vmstate_.reset();
    memory_.reset();
    // 3. make the rename durable; the previous snapshot (now at the temporary
    //    name) goes only afterwards.
    WISP_RETURN_IF_ERROR(fsync_fd(parent_.get(), "the directory of " + final_path_));
    if (replaced) WISP_RETURN_IF_ERROR(remove_dir_at(parent_.get(), temp_name_));
    return {};
}

Result<SnapshotFiles> open_snapshot(const std::string &dir) {
    SnapshotFiles f;
    f.vmstate.reset(open((dir + "/" + kVmstateFile).c_str(), O_RDONLY | O_CLOEXEC));
    if (!f.vmstate) return errno_error("open " + dir + "/" + kVmstateFile);
    f.memory.reset(open((dir + "/" + kMemoryFile).c_str(), O_RDONLY | O_CLOEXEC));
    if (!f.memory) return errno_error("open " + dir + "/" + kMemoryFile);
    return f;
}

Result<int> remove_abandoned(const std::string &parent) {
    UniqueFd pfd(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!pfd) return errno_error("open " + parent);
    DIR *d = fdopendir(dup(pfd.get()));
    if (!d) return errno_error("read directory " + parent);
    std::vector<std::string> stale;
    while (dirent *e = readdir(d)) {
        std::string name = e->d_name;
        auto at = name.rfind(".tmp-");
        if (name.size() < 2 || name[0] != '.' || at == std::string::npos) continue;
        // ".<name>.tmp-<pid>-<n>": a writer that is still alive is not abandoned.
        pid_t pid = static_cast<pid_t>(std::atoi(name.c_str() + at + 5));
        if (pid > 0 && (pid == getpid() || kill(pid, 0) == 0)) continue;
        stale.push_back(name);
    }
    closedir(d);
    int removed = 0;
    for (const std::string &name : stale) {
        WISP_RETURN_IF_ERROR(remove_dir_at(pfd.get(), name));
        removed++;
    }
    return removed;
}

Status remove_snapshot(const std::string &dir) {
    auto path = split(dir);
    if (!path) return std::move(path).error();
    UniqueFd pfd(open(path->parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!pfd) return errno_error("open " + path->parent);
    return remove_dir_at(pfd.get(), path->name);
}

}  // namespace wisp::snapshot
