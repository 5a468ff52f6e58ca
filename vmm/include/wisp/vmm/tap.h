// The guest's network device: a tap (IFF_TAP | IFF_NO_PI) file descriptor, handed
// over by the controller or opened by name in `wisp-vmm run`. Frames move
// directly between the tap and guest buffers (no copy when they fit).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "wisp/result.h"
#include "wisp/unique_fd.h"

namespace wisp::vmm {

class Tap {
public:
    Tap() = default;
    explicit Tap(UniqueFd fd) : fd_(std::move(fd)) {}

    // Attaches to tap `name` (creating a non-persistent one if none exists).
    static Result<Tap> open_by_name(const std::string &name);
    // The MAC address of the host side of tap `name`.
    static Result<std::array<uint8_t, 6>> host_mac(const std::string &name);

    // Makes the fd non-blocking and checks it is a tap (TUNGETIFF).
    Status prepare();

    int fd() const { return fd_.get(); }
    bool valid() const { return fd_.valid(); }

    enum class ReadResult { kFrame, kEmpty, kTooLarge, kError };
    // Reads one frame into `dst`. kTooLarge: the frame did not fit and was
    // dropped. `len` is set for kFrame.
    ReadResult read_frame(std::span<uint8_t> dst, uint32_t &len);
    // Writes one frame; false if the tap refused it (full queue, link down).
    bool write_frame(std::span<const uint8_t> frame);

private:
    UniqueFd fd_;
};

}  // namespace wisp::vmm
