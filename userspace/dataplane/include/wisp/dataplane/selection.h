// Flow keys and new-flow replica selection exactly as the XDP program computes them
// (both sides use bpf/wisp_flow.h), so userspace can predict where a flow goes.
#pragma once

#include <cstdint>
#include <span>

#include "wisp/dataplane/types.h"
#include "wisp_abi.h"

namespace wisp::dataplane {

// The flow-table key of a packet from (src, sport) to (dst, dport); ports in host
// byte order.
wisp_flow_key make_flow_key(const IpAddress &src, uint16_t sport, const IpAddress &dst,
                            uint16_t dport, Protocol protocol);

// The replica a new flow gets among the service's READY replica ids (rendezvous
// hashing); WISP_REPLICA_NONE when `ready` is empty. The order of `ready` does not
// matter.
uint32_t pick_replica(const wisp_flow_key &key, std::span<const uint32_t> ready);

}  // namespace wisp::dataplane
