// Durable state of wispd: services, replicas, snapshots and the lifecycle event
// journal, in one SQLite database under the state directory.
//
// Contract:
//   * WAL journal, foreign keys on, one connection, used from the loop thread only.
//   * Every mutation is one transaction: a crash (kill -9, power loss) leaves either
//     the old or the new row set, never a mix.
//   * Changes a user asked for (create / update / delete service) are committed with
//     synchronous=FULL, so they survive power loss once the API has answered; the
//     runtime bookkeeping (replica rows, states, events) uses synchronous=NORMAL,
//     which survives a crash of wispd but may lose its last commits on power loss
//     (it is re-derived at start-up anyway: see Controller::recover).
//   * The schema is versioned (`schema_migrations`); opening an older database
//     migrates it forward, opening a newer one is refused.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wisp/result.h"
#include "wispd/types.h"

struct sqlite3;

namespace wisp::wispd {

// One step of the schema's history. Applied in order, each in its own transaction.
struct Migration {
    int version;
    const char *description;
    const char *sql;
};

// The whole history, oldest first. Never edit a released entry: append a new one.
const std::vector<Migration> &schema_migrations();
int latest_schema_version();

class Store {
public:
    // Opens (creating if needed) the database at `path` and migrates it to the
    // latest schema. Fails if the database comes from a newer wispd.
    static Result<std::unique_ptr<Store>> open(const std::string &path);
    ~Store();
    Store(const Store &) = delete;
    Store &operator=(const Store &) = delete;

    Result<int> schema_version();

    // Services. create_service() takes the smallest free id; a duplicate name or a
    // (vip, port, protocol) already in use fails with EEXIST and names the field
    // ("name: ..." / "port: ...").
    Result<ServiceRecord> create_service(const ServiceSpec &spec, ServiceState state,
                                         int64_t now_ms);
    Result<std::vector<ServiceRecord>> list_services();
    Result<std::optional<ServiceRecord>> find_service(std::string_view name);
    Result<std::optional<ServiceRecord>> get_service(ServiceId id);
    Status update_service_settings(ServiceId id, const ServiceSettings &settings,
                                   int64_t now_ms);
    Status set_service_state(ServiceId id, ServiceState state, const FailureInfo &failure,
                             int64_t now_ms);
    // Deletes the service with its replicas and snapshots (rows only; files are
    // the caller's).
    Status delete_service(ServiceId id);

    // Replicas. insert_replica() takes the smallest free id when record.id == 0.
    Result<ReplicaId> insert_replica(const ReplicaRecord &record);
    Status update_replica(const ReplicaRecord &record);
    Status delete_replica(ReplicaId id);
    // All replicas, or those of one service; ordered by id.
    Result<std::vector<ReplicaRecord>> list_replicas(std::optional<ServiceId> service = {});

    // Snapshots, newest last.
    Result<SnapshotRecord> add_snapshot(ServiceId service, SnapshotKind kind,
                                        const std::string &path,
                                        std::optional<SnapshotId> parent, int64_t now_ms);
    Result<std::vector<SnapshotRecord>> list_snapshots(ServiceId service);
    Status delete_snapshot(SnapshotId id);

    // The lifecycle journal keeps the newest `kEventsKept` entries.
    static constexpr int64_t kEventsKept = 10000;
    Status append_event(const EventRecord &event);
    // Newest first; optionally only one service's.
    Result<std::vector<EventRecord>> recent_events(size_t limit,
                                                   std::optional<std::string> service = {});

private:
    class Impl;
    explicit Store(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace wisp::wispd
