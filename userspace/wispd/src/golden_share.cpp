#include "wispd/golden_share.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "wisp/snapshot/store.h"
#include "wisp/unique_fd.h"

namespace wisp::wispd {

namespace {

struct MdCtxFree {
    void operator()(EVP_MD_CTX *c) const { EVP_MD_CTX_free(c); }
};

Result<std::string> sha256_of(int fd, const std::string &path) {
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
        return Error{ENOMEM, "sha256 context"};
    std::vector<unsigned char> buf(1 << 16);
    for (;;) {
        ssize_t n = read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("read " + path);
        if (n == 0) break;
        EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &len);
    static const char *hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

Status fsync_path(const std::string &path) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return errno_error("open " + path);
    if (fsync(fd.get()) != 0) return errno_error("fsync " + path);
    return {};
}

}  // namespace

Result<std::string> GoldenShare::key_of(const ServiceSpec &spec) {
    UniqueFd fd(open(spec.image.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return errno_error("image " + spec.image);
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) return errno_error("stat " + spec.image);
    int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    CachedDigest &c = digests_[spec.image];
    if (c.sha256.empty() || c.dev != st.st_dev || c.ino != st.st_ino || c.size != st.st_size ||
        c.mtime_ns != mtime_ns) {
        auto digest = sha256_of(fd.get(), spec.image);
        if (!digest) {
            digests_.erase(spec.image);
            return std::move(digest).error();
        }
        c = {st.st_dev, st.st_ino, st.st_size, mtime_ns, *digest};
    }
    // The command line is free text: its length keeps the fields apart.
    return c.sha256 + "/" + std::to_string(spec.memory_mib) + "M/" +
           std::to_string(spec.cmdline.size()) + ":" + spec.cmdline;
}

void GoldenShare::add_donor(const std::string &key, ServiceId id) {
    remove(id);
    donors_[key].insert(id);
    key_of_donor_[id] = key;
}

void GoldenShare::remove(ServiceId id) {
    auto it = key_of_donor_.find(id);
    if (it == key_of_donor_.end()) return;
    auto d = donors_.find(it->second);
    if (d != donors_.end()) {
        d->second.erase(id);
        if (d->second.empty()) donors_.erase(d);
    }
    key_of_donor_.erase(it);
}

std::optional<ServiceId> GoldenShare::donor(const std::string &key) const {
    auto d = donors_.find(key);
    if (d == donors_.end() || d->second.empty()) return std::nullopt;
    return *d->second.begin();
}

Status link_snapshot(const std::string &from, const std::string &to) {
    namespace fs = std::filesystem;
    fs::path final_path(to);
    fs::path parent = final_path.parent_path();
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) return Error{ec.value(), "create directory " + parent.string()};
    fs::path temp = parent / ("." + final_path.filename().string() + ".tmp-" +
                              std::to_string(getpid()) + "-0");
    fs::remove_all(temp, ec);
    if (!fs::create_directory(temp, ec)) return Error{ec ? ec.value() : EEXIST, "mkdir " + temp.string()};
    for (const char *name : {snapshot::kVmstateFile, snapshot::kMemoryFile}) {
        std::string src = from + "/" + name, dst = (temp / name).string();
        if (link(src.c_str(), dst.c_str()) != 0) {
            Error e = errno_error("link " + src + " -> " + dst);
            fs::remove_all(temp, ec);
            return e;
        }
    }
    Status st = fsync_path(temp.string());
    if (st && rename(temp.c_str(), to.c_str()) != 0) st = errno_error("rename to " + to);
    if (st) st = fsync_path(parent.string());
    if (!st) fs::remove_all(temp, ec);
    return st;
}

}  // namespace wisp::wispd
