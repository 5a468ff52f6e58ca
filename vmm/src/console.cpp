#include "wisp/vmm/console.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace wisp::vmm {

namespace {
constexpr char kMarker[] = "\n[wisp-vmm: console limit reached, further output dropped]\n";

// Writes all of `bytes` unless the fd refuses; returns bytes written.
uint64_t write_all(int fd, const uint8_t *bytes, uint64_t len) {
    uint64_t done = 0;
    while (done < len) {
        ssize_t n = ::write(fd, bytes + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<uint64_t>(n);
    }
    return done;
}
}  // namespace

void ConsoleLog::write(std::span<const uint8_t> bytes) {
    uint64_t room = limit_ > written_ ? limit_ - written_ : 0;
    uint64_t take = std::min<uint64_t>(room, bytes.size());
    uint64_t done = fd_ && take ? write_all(fd_.get(), bytes.data(), take) : 0;
    written_ += done;
    dropped_ += bytes.size() - done;
    if (done < bytes.size() && fd_ && !marked_ && limit_ != kUnlimited) {
        marked_ = true;
        write_all(fd_.get(), reinterpret_cast<const uint8_t *>(kMarker), sizeof kMarker - 1);
    }
}

}  // namespace wisp::vmm
