#include "wispd/store.h"

#include <sqlite3.h>

#include <chrono>
#include <functional>
#include <utility>
#include <unordered_map>

namespace wisp::wispd {

namespace {

// ---------------------------------------------------------------------------------
// Schema history. Version 1 is the first layout; version 2 added the event journal
// and the failure bookkeeping that `inspect` shows (crash loops, backoff).
const std::vector<Migration> kMigrations = {
    {1, "services, replicas and snapshots", R"sql(
CREATE TABLE services (
    id                 INTEGER PRIMARY KEY,
    name               TEXT    NOT NULL UNIQUE,
    image              TEXT    NOT NULL,
    memory_mib         INTEGER NOT NULL CHECK (memory_mib BETWEEN 8 AND 4096),
    port               INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    protocol           TEXT    NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    vip                TEXT    NOT NULL,
    cmdline            TEXT    NOT NULL DEFAULT '',
    idle_timeout_ms    INTEGER NOT NULL DEFAULT 1000,
    stateful           INTEGER NOT NULL DEFAULT 0,
    min_replicas       INTEGER NOT NULL DEFAULT 0,
    max_replicas       INTEGER NOT NULL DEFAULT 1,
    target_per_replica INTEGER NOT NULL DEFAULT 0,
    state              TEXT    NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL,
    UNIQUE (vip, port, protocol),
    CHECK (min_replicas <= max_replicas)
);
CREATE TABLE snapshots (
    id            INTEGER PRIMARY KEY,
    service_id    INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL CHECK (kind IN ('golden', 'stateful', 'diff')),
    path          TEXT    NOT NULL UNIQUE,
    parent_id     INTEGER REFERENCES snapshots(id) ON DELETE CASCADE,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX snapshots_by_service ON snapshots(service_id);
CREATE TABLE replicas (
    id             INTEGER PRIMARY KEY,
    service_id     INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    state          TEXT    NOT NULL,
    tap            TEXT    NOT NULL DEFAULT '',
    tap_ifindex    INTEGER NOT NULL DEFAULT 0,
    guest_mac      TEXT    NOT NULL DEFAULT '',
    monitor_pid    INTEGER NOT NULL DEFAULT 0,
    control_socket TEXT    NOT NULL DEFAULT '',
    snapshot_id    INTEGER REFERENCES snapshots(id) ON DELETE SET NULL,
    started_at_ms  INTEGER NOT NULL,
    ready_at_ms    INTEGER NOT NULL DEFAULT 0,
    updated_at_ms  INTEGER NOT NULL
);
CREATE INDEX replicas_by_service ON replicas(service_id);
)sql"},
    {2, "lifecycle event journal and failure bookkeeping", R"sql(
ALTER TABLE services ADD COLUMN failure_reason       TEXT    NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE services ADD COLUMN last_failure_ms      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE services ADD COLUMN next_attempt_ms      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE services ADD COLUMN crash_loop           INTEGER NOT NULL DEFAULT 0;
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      INTEGER NOT NULL,
    service    TEXT    NOT NULL DEFAULT '',
    replica_id INTEGER,
    kind       TEXT    NOT NULL,
    message    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_by_service ON events(service, id);
)sql"},
};

struct DbClose {
    void operator()(sqlite3 *db) const { sqlite3_close_v2(db); }
};
struct StmtFinalize {
    void operator()(sqlite3_stmt *s) const { sqlite3_finalize(s); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

// SQLite result codes are not errnos; map the ones a caller can act on.
int errno_of(int rc) {
    switch (rc & 0xff) {
        case SQLITE_CONSTRAINT: return EEXIST;
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return EBUSY;
        case SQLITE_FULL: return ENOSPC;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH: return EACCES;
        case SQLITE_CANTOPEN: return ENOENT;
        case SQLITE_NOMEM: return ENOMEM;
        default: return EIO;
    }
}

// A prepared statement in use: binds by 1-based index, steps, reads columns and
// resets itself (keeping the cached preparation) when it goes out of scope.
class Query {
public:
    Query(sqlite3 *db, sqlite3_stmt *stmt) : db_(db), stmt_(stmt) {}
    ~Query() {
        if (!stmt_) return;
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    Query(Query &&other) noexcept : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}
    Query(const Query &) = delete;
    Query &operator=(const Query &) = delete;
    Query &operator=(Query &&) = delete;

    Query &bind(int i, int64_t v) {
        sqlite3_bind_int64(stmt_, i, v);
        return *this;
    }
    Query &bind(int i, const std::string &v) {
        sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Query &bind(int i, const char *v) { return bind(i, std::string(v)); }
    template <class T>
    Query &bind(int i, const std::optional<T> &v) {
        if (v) return bind(i, static_cast<int64_t>(*v));
        sqlite3_bind_null(stmt_, i);
        return *this;
    }

    // True for a row, false when done; an error otherwise.
    Result<bool> step() {
        int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        return Error{errno_of(rc), std::string("sqlite: ") + sqlite3_errmsg(db_)};
    }
    Status run() {
        auto r = step();
        if (!r) return std::move(r).error();
        return {};
    }

    int64_t i64(int col) const { return sqlite3_column_int64(stmt_, col); }
    std::string text(int col) const {
        auto p = reinterpret_cast<const char *>(sqlite3_column_text(stmt_, col));
        return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
    }
    bool null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

private:
    sqlite3 *db_;
    sqlite3_stmt *stmt_;
};

constexpr const char *kServiceColumns =
    "id, name, image, memory_mib, port, protocol, vip, cmdline, idle_timeout_ms, stateful, "
    "min_replicas, max_replicas, target_per_replica, state, created_at_ms, updated_at_ms, "
    "failure_reason, consecutive_failures, last_failure_ms, next_attempt_ms, crash_loop";

ServiceRecord service_from(const Query &q) {
    ServiceRecord r;
    r.id = static_cast<ServiceId>(q.i64(0));
    r.spec.name = q.text(1);
    r.spec.image = q.text(2);
    r.spec.memory_mib = static_cast<uint32_t>(q.i64(3));
    r.spec.port = static_cast<uint16_t>(q.i64(4));
    r.spec.protocol = parse_protocol(q.text(5)).value_or(Protocol::kTcp);
    r.spec.vip = q.text(6);
    r.spec.cmdline = q.text(7);
    r.spec.idle_timeout_ms = static_cast<uint32_t>(q.i64(8));
    r.spec.stateful = q.i64(9) != 0;
    r.spec.min_replicas = static_cast<uint32_t>(q.i64(10));
    r.spec.max_replicas = static_cast<uint32_t>(q.i64(11));
    r.spec.target_per_replica = static_cast<uint32_t>(q.i64(12));
    r.state = parse_service_state(q.text(13)).value_or(ServiceState::kFailed);
    r.created_ms = q.i64(14);
    r.updated_ms = q.i64(15);
    r.failure.reason = q.text(16);
    r.failure.consecutive_failures = static_cast<uint32_t>(q.i64(17));
    r.failure.last_failure_ms = q.i64(18);
    r.failure.next_attempt_ms = q.i64(19);
    r.failure.crash_loop = q.i64(20) != 0;
    return r;
}

constexpr const char *kReplicaColumns =
    "id, service_id, state, tap, tap_ifindex, guest_mac, monitor_pid, control_socket, "
    "snapshot_id, started_at_ms, ready_at_ms, updated_at_ms";

ReplicaRecord replica_from(const Query &q) {
    ReplicaRecord r;
    r.id = static_cast<ReplicaId>(q.i64(0));
    r.service = static_cast<ServiceId>(q.i64(1));
    r.state = parse_replica_state(q.text(2)).value_or(ReplicaState::kStopping);
    r.tap = q.text(3);
    r.tap_ifindex = static_cast<int32_t>(q.i64(4));
    r.guest_mac = q.text(5);
    r.monitor_pid = static_cast<pid_t>(q.i64(6));
    r.control_socket = q.text(7);
    if (!q.null(8)) r.snapshot = q.i64(8);
    r.started_ms = q.i64(9);
    r.ready_ms = q.i64(10);
    r.updated_ms = q.i64(11);
    return r;
}

SnapshotRecord snapshot_from(const Query &q) {
    SnapshotRecord r;
    r.id = q.i64(0);
    r.service = static_cast<ServiceId>(q.i64(1));
    r.kind = parse_snapshot_kind(q.text(2)).value_or(SnapshotKind::kGolden);
    r.path = q.text(3);
    if (!q.null(4)) r.parent = q.i64(4);
    r.created_ms = q.i64(5);
    return r;
}

int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

const std::vector<Migration> &schema_migrations() { return kMigrations; }
int latest_schema_version() { return kMigrations.back().version; }

class Store::Impl {
public:
    explicit Impl(DbPtr db) : db_(std::move(db)) {}

    sqlite3 *db() { return db_.get(); }

    // A statement prepared once per SQL text and reused (the wake path writes
    // replica rows; re-parsing SQL there would be wasted time).
    Result<Query> query(const char *sql) {
        auto it = cache_.find(sql);
        if (it == cache_.end()) {
            sqlite3_stmt *raw = nullptr;
            int rc = sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw,
                                        nullptr);
            if (rc != SQLITE_OK)
                return Error{errno_of(rc), std::string("sqlite prepare: ") +
                                               sqlite3_errmsg(db_.get())};
            it = cache_.emplace(sql, StmtPtr(raw)).first;
        }
        return Query(db_.get(), it->second.get());
    }

    Status exec(const std::string &sql) {
        char *msg = nullptr;
        int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &msg);
        if (rc == SQLITE_OK) return {};
        std::string text = msg ? msg : sqlite3_errstr(rc);
        sqlite3_free(msg);
        return Error{errno_of(rc), "sqlite: " + text};
    }

    // Runs `body` in one IMMEDIATE transaction; rolls back if it fails. `durable`
    // selects synchronous=FULL for this commit (see the contract in store.h).
    Status transaction(const std::function<Status()> &body, bool durable = false) {
        if (durable) WISP_RETURN_IF_ERROR(exec("PRAGMA synchronous=FULL"));
        auto status = [&]() -> Status {
            WISP_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
            auto s = body();
            if (!s) {
                (void)exec("ROLLBACK");
                return s;
            }
            auto c = exec("COMMIT");
            if (!c) (void)exec("ROLLBACK");
            return c;
        }();
        if (durable) (void)exec("PRAGMA synchronous=NORMAL");
        return status;
    }

    // Smallest positive id not used in `table` (ids index fixed-size BPF maps).
    Result<int64_t> smallest_free_id(const char *sql) {
        auto q = query(sql);
        if (!q) return std::move(q).error();
        auto row = q->step();
        if (!row) return std::move(row).error();
        return q->i64(0);
    }

private:
    DbPtr db_;
    std::unordered_map<const char *, StmtPtr> cache_;
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const std::string &path) {
    sqlite3 *raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    DbPtr db(raw);
    if (rc != SQLITE_OK)
        return Error{errno_of(rc), "open state database " + path + ": " +
                                       (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc))};
    auto impl = std::make_unique<Impl>(std::move(db));
    sqlite3_busy_timeout(impl->db(), 5000);
    // WAL: readers never block the writer and a crash mid-commit is rolled back on
    // the next open. NORMAL is crash-safe in WAL mode (see store.h for FULL).
    for (const char *pragma : {"PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON",
                               "PRAGMA synchronous=NORMAL"}) {
        auto s = impl->exec(pragma);
        if (!s) return Error{s.error().code, path + ": " + s.error().message};
    }
    WISP_RETURN_IF_ERROR(impl->exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
        " applied_at_ms INTEGER NOT NULL)"));

    std::unique_ptr<Store> store(new Store(std::move(impl)));
    auto current = store->schema_version();
    if (!current) return std::move(current).error();
    if (*current > latest_schema_version())
        return Error{ENOTSUP, "state database " + path + " has schema version " +
                                  std::to_string(*current) + ", newer than this wispd's " +
                                  std::to_string(latest_schema_version()) +
                                  " (downgrades are not supported)"};
    for (const auto &m : kMigrations) {
        if (m.version <= *current) continue;
        auto s = store->impl_->transaction(
            [&]() -> Status {
                WISP_RETURN_IF_ERROR(store->impl_->exec(m.sql));
                auto q = store->impl_->query(
                    "INSERT INTO schema_migrations (version, description, applied_at_ms)"
                    " VALUES (?, ?, ?)");
                if (!q) return std::move(q).error();
                q->bind(1, static_cast<int64_t>(m.version)).bind(2, m.description).bind(3, wall_ms());
                return q->run();
            },
            /*durable=*/true);
        if (!s)
            return Error{s.error().code, "migrating " + path + " to schema version " +
                                             std::to_string(m.version) + ": " +
                                             s.error().message};
    }
    return store;
}

Result<int> Store::schema_version() {
    auto q = impl_->query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!q) return std::move(q).error();
    auto row = q->step();
    if (!row) return std::move(row).error();
    return static_cast<int>(q->i64(0));
}

// ---- services ---------------------------------------------------------------------

Result<ServiceRecord> Store::create_service(const ServiceSpec &spec, ServiceState state,
                                           int64_t now_ms) {
    ServiceRecord record;
    auto s = impl_->transaction(
        [&]() -> Status {
            {
                auto q = impl_->query("SELECT 1 FROM services WHERE name = ?");
                if (!q) return std::move(q).error();
                q->bind(1, spec.name);
                auto row = q->step();
                if (!row) return std::move(row).error();
                if (*row)
                    return Error{EEXIST, "name: a service named '" + spec.name +
                                             "' already exists"};
            }
            {
                auto q = impl_->query(
                    "SELECT name FROM services WHERE vip = ? AND port = ? AND protocol = ?");
                if (!q) return std::move(q).error();
                q->bind(1, spec.vip).bind(2, int64_t{spec.port}).bind(3, to_string(spec.protocol));
                auto row = q->step();
                if (!row) return std::move(row).error();
                if (*row)
                    return Error{EEXIST, "port: " + spec.vip + ":" + std::to_string(spec.port) +
                                             "/" + to_string(spec.protocol) +
                                             " is already served by '" + q->text(0) + "'"};
            }
            auto id = impl_->smallest_free_id(
                "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM services WHERE id = 1) THEN 1"
                " ELSE (SELECT MIN(a.id) + 1 FROM services a WHERE NOT EXISTS"
                " (SELECT 1 FROM services b WHERE b.id = a.id + 1)) END");
            if (!id) return std::move(id).error();
            auto q = impl_->query(
                "INSERT INTO services (id, name, image, memory_mib, port, protocol, vip,"
                " cmdline, idle_timeout_ms, stateful, min_replicas, max_replicas,"
                " target_per_replica, state, created_at_ms, updated_at_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
            if (!q) return std::move(q).error();
            q->bind(1, *id)
                .bind(2, spec.name)
                .bind(3, spec.image)
                .bind(4, int64_t{spec.memory_mib})
                .bind(5, int64_t{spec.port})
                .bind(6, to_string(spec.protocol))
                .bind(7, spec.vip)
                .bind(8, spec.cmdline)
                .bind(9, int64_t{spec.idle_timeout_ms})
                .bind(10, int64_t{spec.stateful})
                .bind(11, int64_t{spec.min_replicas})
                .bind(12, int64_t{spec.max_replicas})
                .bind(13, int64_t{spec.target_per_replica})
                .bind(14, to_string(state))
                .bind(15, now_ms)
                .bind(16, now_ms);
            WISP_RETURN_IF_ERROR(q->run());
            record.id = static_cast<ServiceId>(*id);
            record.spec = spec;
            record.state = state;
            record.created_ms = record.updated_ms = now_ms;
            return {};
        },
        /*durable=*/true);
    if (!s) return std::move(s).error();
    return record;
}

Result<std::vector<ServiceRecord>> Store::list_services() {
    static const std::string sql =
        std::string("SELECT ") + kServiceColumns + " FROM services ORDER BY name";
    auto q = impl_->query(sql.c_str());
    if (!q) return std::move(q).error();
    std::vector<ServiceRecord> out;
    for (;;) {
        auto row = q->step();
        if (!row) return std::move(row).error();
        if (!*row) break;
        out.push_back(service_from(*q));
    }
    return out;
}

Result<std::optional<ServiceRecord>> Store::find_service(std::string_view name) {
    static const std::string sql =
        std::string("SELECT ") + kServiceColumns + " FROM services WHERE name = ?";
    auto q = impl_->query(sql.c_str());
    if (!q) return std::move(q).error();
    q->bind(1, std::string(name));
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) return std::optional<ServiceRecord>{};
    return std::optional<ServiceRecord>{service_from(*q)};
}

Result<std::optional<ServiceRecord>> Store::get_service(ServiceId id) {
    static const std::string sql =
        std::string("SELECT ") + kServiceColumns + " FROM services WHERE id = ?";
    auto q = impl_->query(sql.c_str());
    if (!q) return std::move(q).error();
    q->bind(1, int64_t{id});
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) return std::optional<ServiceRecord>{};
    return std::optional<ServiceRecord>{service_from(*q)};
}

namespace {
Status expect_one_row(sqlite3 *db, const std::string &what) {
    if (sqlite3_changes(db) == 0) return Error{ENOENT, what + " does not exist"};
    return {};
}
}  // namespace

Status Store::update_service_settings(ServiceId id, const ServiceSettings &settings,
                                      int64_t now_ms) {
    return impl_->transaction(
        [&]() -> Status {
            auto q = impl_->query(
                "UPDATE services SET idle_timeout_ms = ?, min_replicas = ?, max_replicas = ?,"
                " target_per_replica = ?, updated_at_ms = ? WHERE id = ?");
            if (!q) return std::move(q).error();
            q->bind(1, int64_t{settings.idle_timeout_ms})
                .bind(2, int64_t{settings.min_replicas})
                .bind(3, int64_t{settings.max_replicas})
                .bind(4, int64_t{settings.target_per_replica})
                .bind(5, now_ms)
                .bind(6, int64_t{id});
            WISP_RETURN_IF_ERROR(q->run());
            return expect_one_row(impl_->db(), "service " + std::to_string(id));
        },
        /*durable=*/true);
}

Status Store::set_service_state(ServiceId id, ServiceState state, const FailureInfo &failure,
                                int64_t now_ms) {
    return impl_->transaction([&]() -> Status {
        auto q = impl_->query(
            "UPDATE services SET state = ?, failure_reason = ?, consecutive_failures = ?,"
            " last_failure_ms = ?, next_attempt_ms = ?, crash_loop = ?, updated_at_ms = ?"
            " WHERE id = ?");
        if (!q) return std::move(q).error();
        q->bind(1, to_string(state))
            .bind(2, failure.reason)
            .bind(3, int64_t{failure.consecutive_failures})
            .bind(4, failure.last_failure_ms)
            .bind(5, failure.next_attempt_ms)
            .bind(6, int64_t{failure.crash_loop})
            .bind(7, now_ms)
            .bind(8, int64_t{id});
        WISP_RETURN_IF_ERROR(q->run());
        return expect_one_row(impl_->db(), "service " + std::to_string(id));
    });
}

Status Store::delete_service(ServiceId id) {
    return impl_->transaction(
        [&]() -> Status {
            auto q = impl_->query("DELETE FROM services WHERE id = ?");
            if (!q) return std::move(q).error();
            q->bind(1, int64_t{id});
            WISP_RETURN_IF_ERROR(q->run());
            return expect_one_row(impl_->db(), "service " + std::to_string(id));
        },
        /*durable=*/true);
}

// ---- replicas ---------------------------------------------------------------------

Result<ReplicaId> Store::insert_replica(const ReplicaRecord &r) {
    int64_t id = r.id;
    auto s = impl_->transaction([&]() -> Status {
        if (id == 0) {
            auto free_id = impl_->smallest_free_id(
                "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM replicas WHERE id = 1) THEN 1"
                " ELSE (SELECT MIN(a.id) + 1 FROM replicas a WHERE NOT EXISTS"
                " (SELECT 1 FROM replicas b WHERE b.id = a.id + 1)) END");
            if (!free_id) return std::move(free_id).error();
            id = *free_id;
        }
        auto q = impl_->query(
            "INSERT INTO replicas (id, service_id, state, tap, tap_ifindex, guest_mac,"
            " monitor_pid, control_socket, snapshot_id, started_at_ms, ready_at_ms,"
            " updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        if (!q) return std::move(q).error();
        q->bind(1, id)
            .bind(2, int64_t{r.service})
            .bind(3, to_string(r.state))
            .bind(4, r.tap)
            .bind(5, int64_t{r.tap_ifindex})
            .bind(6, r.guest_mac)
            .bind(7, int64_t{r.monitor_pid})
            .bind(8, r.control_socket)
            .bind(9, r.snapshot)
            .bind(10, r.started_ms)
            .bind(11, r.ready_ms)
            .bind(12, r.updated_ms);
        return q->run();
    });
    if (!s) return std::move(s).error();
    return static_cast<ReplicaId>(id);
}

Status Store::update_replica(const ReplicaRecord &r) {
    return impl_->transaction([&]() -> Status {
        auto q = impl_->query(
            "UPDATE replicas SET state = ?, tap = ?, tap_ifindex = ?, guest_mac = ?,"
            " monitor_pid = ?, control_socket = ?, snapshot_id = ?, ready_at_ms = ?,"
            " updated_at_ms = ? WHERE id = ?");
        if (!q) return std::move(q).error();
        q->bind(1, to_string(r.state))
            .bind(2, r.tap)
            .bind(3, int64_t{r.tap_ifindex})
            .bind(4, r.guest_mac)
            .bind(5, int64_t{r.monitor_pid})
            .bind(6, r.control_socket)
            .bind(7, r.snapshot)
            .bind(8, r.ready_ms)
            .bind(9, r.updated_ms)
            .bind(10, int64_t{r.id});
        WISP_RETURN_IF_ERROR(q->run());
        return expect_one_row(impl_->db(), "replica " + std::to_string(r.id));
    });
}

Status Store::delete_replica(ReplicaId id) {
    return impl_->transaction([&]() -> Status {
        auto q = impl_->query("DELETE FROM replicas WHERE id = ?");
        if (!q) return std::move(q).error();
        q->bind(1, int64_t{id});
        return q->run();
    });
}

Result<std::vector<ReplicaRecord>> Store::list_replicas(std::optional<ServiceId> service) {
    static const std::string all =
        std::string("SELECT ") + kReplicaColumns + " FROM replicas ORDER BY id";
    static const std::string one = std::string("SELECT ") + kReplicaColumns +
                                   " FROM replicas WHERE service_id = ? ORDER BY id";
    auto q = impl_->query(service ? one.c_str() : all.c_str());
    if (!q) return std::move(q).error();
    if (service) q->bind(1, int64_t{*service});
    std::vector<ReplicaRecord> out;
    for (;;) {
        auto row = q->step();
        if (!row) return std::move(row).error();
        if (!*row) break;
        out.push_back(replica_from(*q));
    }
    return out;
}

// ---- snapshots --------------------------------------------------------------------

Result<SnapshotRecord> Store::add_snapshot(ServiceId service, SnapshotKind kind,
                                           const std::string &path,
                                           std::optional<SnapshotId> parent, int64_t now_ms) {
    SnapshotRecord record{0, service, kind, path, parent, now_ms};
    auto s = impl_->transaction(
        [&]() -> Status {
            auto q = impl_->query(
                "INSERT INTO snapshots (service_id, kind, path, parent_id, created_at_ms)"
                " VALUES (?, ?, ?, ?, ?)");
            if (!q) return std::move(q).error();
            q->bind(1, int64_t{service})
                .bind(2, to_string(kind))
                .bind(3, path)
                .bind(4, parent)
                .bind(5, now_ms);
            WISP_RETURN_IF_ERROR(q->run());
            record.id = sqlite3_last_insert_rowid(impl_->db());
            return {};
        },
        /*durable=*/true);
    if (!s) return std::move(s).error();
    return record;
}

Result<std::vector<SnapshotRecord>> Store::list_snapshots(ServiceId service) {
    auto q = impl_->query(
        "SELECT id, service_id, kind, path, parent_id, created_at_ms FROM snapshots"
        " WHERE service_id = ? ORDER BY id");
    if (!q) return std::move(q).error();
    q->bind(1, int64_t{service});
    std::vector<SnapshotRecord> out;
    for (;;) {
        auto row = q->step();
        if (!row) return std::move(row).error();
        if (!*row) break;
        out.push_back(snapshot_from(*q));
    }
    return out;
}

Status Store::delete_snapshot(SnapshotId id) {
    return impl_->transaction([&]() -> Status {
        auto q = impl_->query("DELETE FROM snapshots WHERE id = ?");
        if (!q) return std::move(q).error();
        q->bind(1, int64_t{id});
        return q->run();
    });
}

// ---- events -----------------------------------------------------------------------

Status Store::append_event(const EventRecord &e) {
    return impl_->transaction([&]() -> Status {
        auto q = impl_->query(
            "INSERT INTO events (at_ms, service, replica_id, kind, message)"
            " VALUES (?, ?, ?, ?, ?)");
        if (!q) return std::move(q).error();
        q->bind(1, e.at_ms).bind(2, e.service).bind(3, e.replica).bind(4, e.kind).bind(5,
                                                                                     e.message);
        WISP_RETURN_IF_ERROR(q->run());
        // Trim in batches so the journal stays bounded without a DELETE per insert.
        int64_t id = sqlite3_last_insert_rowid(impl_->db());
        if (id % 256 == 0) {
            auto trim = impl_->query("DELETE FROM events WHERE id <= ?");
            if (!trim) return std::move(trim).error();
            trim->bind(1, id - kEventsKept);
            WISP_RETURN_IF_ERROR(trim->run());
        }
        return {};
    });
}

Result<std::vector<EventRecord>> Store::recent_events(size_t limit,
                                                      std::optional<std::string> service) {
    auto q = service ? impl_->query(
                           "SELECT id, at_ms, service, replica_id, kind, message FROM events"
                           " WHERE service = ? ORDER BY id DESC LIMIT ?")
                     : impl_->query(
                           "SELECT id, at_ms, service, replica_id, kind, message FROM events"
                           " ORDER BY id DESC LIMIT ?");
    if (!q) return std::move(q).error();
    int i = 1;
    if (service) q->bind(i++, *service);
    q->bind(i, static_cast<int64_t>(limit));
    std::vector<EventRecord> out;
    for (;;) {
        auto row = q->step();
        if (!row) return std::move(row).error();
        if (!*row) break;
        EventRecord e;
        e.id = q->i64(0);
        e.at_ms = q->i64(1);
        e.service = q->text(2);
        if (!q->null(3)) e.replica = static_cast<ReplicaId>(q->i64(3));
        e.kind = q->text(4);
        e.message = q->text(5);
        out.push_back(std::move(e));
    }
    return out;
}

}  // namespace wisp::wispd
