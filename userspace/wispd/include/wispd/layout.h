// Where wispd keeps things on disk. One place, so the operations guide, the API's
// log reader and the controller agree.
//
//   <state_dir>/wisp.db                          the SQLite store (+ -wal, -shm)
//   <state_dir>/wispd.lock                       flock: one wispd per state dir
//   <state_dir>/snapshots/<service>/<kind>-<ms>-r<replica>/   snapshot directories
//   <state_dir>/logs/<service>/<started-ms>-r<replica>.log    guest console logs
//   <runtime_dir>/wispd.sock                     API socket (default)
//   <runtime_dir>/monitors/                      monitors' control sockets
#pragma once

#include <cstdint>
#include <string>

#include "wispd/types.h"

namespace wisp::wispd {

struct Layout {
    std::string state_dir;
    std::string runtime_dir;

    std::string database() const { return state_dir + "/wisp.db"; }
    std::string lock_file() const { return state_dir + "/wispd.lock"; }
    std::string snapshots_root() const { return state_dir + "/snapshots"; }
    std::string logs_root() const { return state_dir + "/logs"; }
    std::string service_snapshots(const std::string &service) const {
        return snapshots_root() + "/" + service;
    }
    std::string snapshot_dir(const std::string &service, SnapshotKind kind, int64_t wall_ms,
                             ReplicaId replica) const {
        return service_snapshots(service) + "/" + to_string(kind) + "-" +
               std::to_string(wall_ms) + "-r" + std::to_string(replica);
    }
    std::string service_logs(const std::string &service) const {
        return logs_root() + "/" + service;
    }
    // Zero-padded start time first, so names sort chronologically.
    std::string console_log(const std::string &service, int64_t started_ms,
                            ReplicaId replica) const;
    std::string monitors_dir() const { return runtime_dir + "/monitors"; }
};

}  // namespace wisp::wispd
