#include "wisp/dataplane/selection.h"

#include <arpa/inet.h>

#include <cstring>

#include "wisp_flow.h"

namespace wisp::dataplane {

wisp_flow_key make_flow_key(const IpAddress &src, uint16_t sport, const IpAddress &dst,
                            uint16_t dport, Protocol protocol) {
    wisp_flow_key key{};
    std::memcpy(key.saddr, src.bytes().data(), sizeof key.saddr);
    std::memcpy(key.daddr, dst.bytes().data(), sizeof key.daddr);
    key.sport = htons(sport);
    key.dport = htons(dport);
    key.proto = static_cast<uint8_t>(protocol);
    return key;
}

uint32_t pick_replica(const wisp_flow_key &key, std::span<const uint32_t> ready) {
    uint64_t hash = wisp_flow_hash(&key);
    uint32_t best = WISP_REPLICA_NONE;
    uint64_t best_score = 0;
    for (uint32_t id : ready) {
        if (id == WISP_REPLICA_NONE) continue;
        uint64_t score = wisp_hrw_score(hash, id);
        // Equal 64-bit scores (odds ~2^-64) go to the lower id, so the order of `ready`
        // never matters; the kernel keeps the earlier slot instead.
        if (best == WISP_REPLICA_NONE || score > best_score || (score == best_score && id < best)) {
            best = id;
            best_score = score;
        }
    }
    return best;
}

}  // namespace wisp::dataplane
