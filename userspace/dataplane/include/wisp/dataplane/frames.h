// Frames in and out of taps from userspace: replaying captured SYNs to a guest.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "wisp/dataplane/types.h"
#include "wisp/result.h"

namespace wisp::dataplane {

// Transmits one complete Ethernet frame on interface `ifindex` through an AF_PACKET
// socket. On a tap this hands the frame to the tap's reader (the VMM), exactly as if
// the data plane had redirected it there.
Status inject_frame(uint32_t ifindex, std::span<const uint8_t> frame);

// The same for several frames, in order, through one socket (a wake's buffered SYNs).
// Stops at the first failure.
Status inject_frames(uint32_t ifindex, std::span<const std::vector<uint8_t>> frames);

// The frame to replay into a replica's tap for a captured one: the IP packet of
// `frame` (which starts at `l3_offset`) behind a fresh Ethernet header from
// `host_mac` to `guest_mac`, without any VLAN tag. Fails if the frame is too short.
Result<std::vector<uint8_t>> replay_frame(std::span<const uint8_t> frame, uint16_t l3_offset,
                                          uint16_t l3_proto, const Mac &guest_mac,
                                          const Mac &host_mac);

// The same for a ring-buffer event; fails with EMSGSIZE when the capture was
// truncated (a partial datagram must not be replayed).
Result<std::vector<uint8_t>> replay_frame(const Event &event, const Mac &guest_mac,
                                          const Mac &host_mac);

}  // namespace wisp::dataplane
