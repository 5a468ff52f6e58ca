// The state store on real SQLite files in temporary directories.
#include "wispd/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wisp/test/net.h"

namespace {

using namespace wisp::wispd;
using wisp::test::ScopedTempDir;

ServiceSpec spec(const std::string &name, uint16_t port = 8080) {
    ServiceSpec s;
    s.name = name;
    s.image = "/images/" + name + ".elf";
    s.port = port;
    s.vip = "198.18.0.1";
    s.cmdline = "--greeting hi";
    return s;
}

std::unique_ptr<Store> open_store(const std::string &path) {
    auto store = Store::open(path);
    EXPECT_TRUE(store.ok()) << store.error().describe();
    return store.ok() ? std::move(store).value() : nullptr;
}

TEST(Store, NewDatabaseIsAtTheLatestSchemaInWalMode) {
    ScopedTempDir dir("store");
    auto store = open_store(dir.path() + "/wisp.db");
    ASSERT_TRUE(store);
    EXPECT_EQ(*store->schema_version(), latest_schema_version());
    sqlite3 *db = nullptr;
    ASSERT_EQ(sqlite3_open(( dir.path() + "/wisp.db").c_str(), &db), SQLITE_OK);
    sqlite3_stmt *st = nullptr;
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char *>(sqlite3_column_text(st, 0)), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

TEST(Store, CreatedServiceReadsBackWithEveryField) {
    ScopedTempDir dir("store");
    auto store = open_store(dir.path() + "/wisp.db");
    ASSERT_TRUE(store);
    auto s = spec("hello");
    s.protocol = Protocol::kUdp;
    s.memory_mib = 128;
    s.idle_timeout_ms = 2500;
    s.stateful = true;
    s.min_replicas = 1;
    s.max_replicas = 3;
    s.target_per_replica = 50;
    auto created = store->create_service(s, ServiceState::kCreating, 1234);
    ASSERT_TRUE(created.ok()) << created.error().describe();
    EXPECT_EQ(created->id, 1u);

    auto found = store->find_service("hello");
    ASSERT_TRUE(found.ok());
    ASSERT_TRUE(found->has_value());
    const auto &r = **found;
    EXPECT_EQ(r.spec.image, s.image);
    EXPECT_EQ(r.spec.protocol, Protocol::kUdp);
    EXPECT_EQ(r.spec.memory_mib, 128u);
    EXPECT_EQ(r.spec.idle_timeout_ms, 2500u);
    EXPECT_TRUE(r.spec.stateful);
    EXPECT_EQ(r.spec.min_replicas, 1u);
    EXPECT_EQ(r.spec.max_replicas, 3u);
    EXPECT_EQ(r.spec.target_per_replica, 50u);
    EXPECT_EQ(r.spec.cmdline, "--greeting hi");
    EXPECT_EQ(r.state, ServiceState::kCreating);
    EXPECT_EQ(r.created_ms, 1234);
}

TEST(Store, DuplicateNameIsRefusedNamingTheField) {
    ScopedTempDir dir("store");
    auto store = open_store(dir.path() + "/wisp.db");
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->create_service(spec("hello", 80), ServiceState::kCreating, 1).ok());
    auto dup = store->create_service(spec("hello", 81), ServiceState::kCreating, 2);
    ASSERT_FALSE(dup.ok());
    EXPECT_EQ(dup.error().code, EEXIST);
    EXPECT_EQ(dup.error().message.rfind("name:", 0), 0u) << dup.error().message;
}

TEST(Store, SecondServiceOnTheSameVipPortProtocolIsRefused) {
    ScopedTempDir dir("store");
    auto store = open_store(dir.path() + "/wisp.db");
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->create_service(spec("a", 80), ServiceState::kCreating, 1).ok());
    auto clash = store->create_service(spec("b", 80), ServiceState::kCreating, 2);
    ASSERT_FALSE(clash.ok());
    EXPECT_EQ(clash.error().code, EEXIST);
    EXPECT_NE(clash.error().message.find("'a'"), std::string::npos) << clash.error().message;
    auto udp = spec("c", 80);
    udp.protocol = Protocol::kUdp;
    EXPECT_TRUE(store->create_service(udp, ServiceState::kCreating, 3).ok());
}

TEST(Store, IdsAreTheSmallestFreeOnesAndReusedAfterDelete) {
    ScopedTempDir dir("store");
    auto store = open_store(dir.path() + "/wisp.db");
    ASSERT_TRUE(store);
    auto a = store->create_service(spec("a", 1), ServiceState::kCreating, 1);
    auto b = store->create_service(spec("b", 2), ServiceState::kCreating, 1);
    auto c = store->create_service(spec("c", 3), ServiceState::kCreating, 1);
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_EQ(a->id, 1u);
    EXPECT_EQ(c->id, 3u);
    ASSERT_TRUE(store->delete_service(b->id).ok());
    auto d = store->create_service(spec("d", 4), ServiceState::kCreating, 1);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->id, 2u);
    auto e = store->create_service(spec("e", 5), ServiceState::kCreating, 1);
    EXPECT_EQ(e->id, 4u);
}

TEST(Store, DeletingAServiceDeletesItsReplicasAndSnapshots) {
    ScopedTempDir dir("store");
    auto store = open_store(dir.path() + "/wisp.db");
    ASSERT_TRUE(store);
    auto svc = store->create_service(spec("hello"), ServiceState::kStandby, 1);
    ASSERT_TRUE(svc.ok());
    auto snap = store->add_snapshot(svc->id, SnapshotKind::kGolden, dir.path() + "/s1", {}, 5);
    ASSERT_TRUE(snap.ok()) << snap.error().describe();
    ReplicaRecord r;
    r.service = svc->id;
    r.state = ReplicaState::kReady;
    r.tap = "wsp0";
    r.snapshot = snap->id;
    auto rid = store->insert_replica(r);
    ASSERT_TRUE(rid.ok()) << rid.error().describe();
    EXPECT_EQ(*rid, 1u);

    ASSERT_TRUE(store->delete_service(svc->id).ok());
    EXPECT_TRUE(store->list_replicas()->empty());
    EXPECT_TRUE(store->list_snapshots(svc->id)->empty());
}

TEST(Store, ReplicaForAMissingServiceViolatesTheForeignKey) {
    ScopedTempDir dir("store");
    auto store = open_store(dir.path() + "/wisp.db");
    ASSERT_TRUE(store);
    ReplicaRecord r;
    r.service = 42;
    EXPECT_FALSE(store->insert_replica(r).ok());
}

TEST(Store, ReplicaUpdatesPersistStateAndIdentity) {
    ScopedTempDir dir("store");
    auto store = open_store(dir.path() + "/wisp.db");
    ASSERT_TRUE(store);
    auto svc = store->create_service(spec("hello"), ServiceState::kWaking, 1);
    ReplicaRecord r;
    r.service = svc->id;
    r.state = ReplicaState::kRestoring;
    r.started_ms = 10;
    auto id = store->insert_replica(r);
    ASSERT_TRUE(id.ok());
    r.id = *id;
    r.state = ReplicaState::kReady;
    r.tap = "wsp7";
    r.tap_ifindex = 77;
    r.guest_mac = "02:77:69:00:00:01";
    r.monitor_pid = 4321;
    r.control_socket = "/run/wisp/monitors/1.sock";
    r.ready_ms = 12;
    ASSERT_TRUE(store->update_replica(r).ok());
    auto list = store->list_replicas(svc->id);
    ASSERT_EQ(list->size(), 1u);
    const auto &got = list->front();
    EXPECT_EQ(got.state, ReplicaState::kReady);
    EXPECT_EQ(got.tap, "wsp7");
    EXPECT_EQ(got.tap_ifindex, 77);
    EXPECT_EQ(got.monitor_pid, 4321);
    EXPECT_EQ(got.control_socket, "/run/wisp/monitors/1.sock");
    EXPECT_EQ(got.ready_ms, 12);
    r.id = 99;
    EXPECT_EQ(store->update_replica(r).error().code, ENOENT);
}

TEST(Store, FailureBookkeepingRoundTrips) {
    ScopedTempDir dir("store");
    auto store = open_store(dir.path() + "/wisp.db");
    ASSERT_TRUE(store);
    auto svc = store->create_service(spec("hello"), ServiceState::kCreating, 1);
    FailureInfo f{"boot: guest aborted", 4, 100, 900, true};
    ASSERT_TRUE(store->set_service_state(svc->id, ServiceState::kFailed, f, 101).ok());
    auto r = **store->find_service("hello");
    EXPECT_EQ(r.state, ServiceState::kFailed);
    EXPECT_EQ(r.failure.reason, "boot: guest aborted");
    EXPECT_EQ(r.failure.consecutive_failures, 4u);
    EXPECT_EQ(r.failure.next_attempt_ms, 900);
    EXPECT_TRUE(r.failure.crash_loop);
    EXPECT_EQ(r.updated_ms, 101);
}

TEST(Store, EventsComeBackNewestFirstAndFilterByService) {
    ScopedTempDir dir("store");
    auto store = open_store(dir.path() + "/wisp.db");
    ASSERT_TRUE(store);
    for (int i = 0; i < 5; ++i)
        ASSERT_TRUE(store->append_event({0, i, i % 2 ? "a" : "b", {}, "wake", std::to_string(i)}).ok());
    auto all = store->recent_events(3);
    ASSERT_EQ(all->size(), 3u);
    EXPECT_EQ(all->front().message, "4");
    auto only_a = store->recent_events(10, "a");
    ASSERT_EQ(only_a->size(), 2u);
    EXPECT_EQ(only_a->front().message, "3");
}

TEST(Store, CommittedServicesSurviveAKilledWriter) {
    ScopedTempDir dir("store");
    std::string path = dir.path() + "/wisp.db";
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        auto store = Store::open(path);
        if (!store) _exit(1);
        for (int i = 1; i <= 20; ++i)
            if (!(*store)->create_service(spec("svc" + std::to_string(i), static_cast<uint16_t>(i)),
                                          ServiceState::kCreating, i))
                _exit(2);
        // Die without closing anything, as a kill -9 would.
        kill(getpid(), SIGKILL);
        _exit(3);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer failed before the kill, status " << status;
    auto store = open_store(path);
    ASSERT_TRUE(store);
    auto list = store->list_services();
    ASSERT_TRUE(list.ok());
    EXPECT_EQ(list->size(), 20u);
}

// An older wispd's database: only migration 1 applied, with a service in it.
TEST(Store, OlderSchemaIsMigratedForwardKeepingItsRows) {
    ScopedTempDir dir("store");
    std::string path = dir.path() + "/wisp.db";
    {
        sqlite3 *db = nullptr;
        ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
        const auto &v1 = schema_migrations().front();
        ASSERT_EQ(v1.version, 1);
        std::string sql = std::string(
                              "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                              " description TEXT NOT NULL, applied_at_ms INTEGER NOT NULL);") +
                          v1.sql +
                          "INSERT INTO schema_migrations VALUES (1, 'v1', 0);"
                          "INSERT INTO services (id, name, image, memory_mib, port, protocol,"
                          " vip, state, created_at_ms, updated_at_ms) VALUES (1, 'old',"
                          " '/images/old.elf', 64, 80, 'tcp', '198.18.0.1', 'standby', 7, 7);";
        char *err = nullptr;
        ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << err;
        sqlite3_close(db);
    }
    auto store = open_store(path);
    ASSERT_TRUE(store);
    EXPECT_EQ(*store->schema_version(), latest_schema_version());
    auto old = store->find_service("old");
    ASSERT_TRUE(old.ok() && old->has_value());
    EXPECT_EQ((*old)->state, ServiceState::kStandby);
    EXPECT_EQ((*old)->failure.consecutive_failures, 0u);
    EXPECT_EQ((*old)->spec.idle_timeout_ms, kDefaultIdleTimeoutMs);
    EXPECT_TRUE(store->append_event({0, 1, "old", {}, "migrated", ""}).ok());
}

TEST(Store, DatabaseFromANewerWispdIsRefused) {
    ScopedTempDir dir("store");
    std::string path = dir.path() + "/wisp.db";
    { ASSERT_TRUE(open_store(path)); }
    {
        sqlite3 *db = nullptr;
        ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (999, 'future', 0)",
                               nullptr, nullptr, nullptr),
                  SQLITE_OK);
        sqlite3_close(db);
    }
    auto store = Store::open(path);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.error().code, ENOTSUP);
    EXPECT_NE(store.error().message.find("999"), std::string::npos);
}

TEST(Store, UnwritableLocationFailsWithItsPath) {
    auto store = Store::open("/proc/wisp-no-such-dir/wisp.db");
    ASSERT_FALSE(store.ok());
    EXPECT_NE(store.error().message.find("/proc/wisp-no-such-dir/wisp.db"), std::string::npos);
}

}  // namespace
