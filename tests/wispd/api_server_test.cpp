// The API socket: root-only permissions, every request handled on the loop
// thread, stale sockets replaced, live ones refused.
#include "wispd/api_server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "wisp/test/net.h"

namespace {

using namespace wisp::wispd;
using wisp::test::ScopedTempDir;

struct Fixture {
    ScopedTempDir dir{"apisrv"};
    std::string socket = dir.path() + "/api.sock";
    std::unique_ptr<EventLoop> loop = std::move(EventLoop::create({})).value();
};

httplib::Result get(const std::string &socket, const std::string &path) {
    httplib::Client client(socket);
    client.set_address_family(AF_UNIX);
    client.set_connection_timeout(5);
    client.set_read_timeout(10);
    return client.Get(path.c_str());
}

TEST(ApiServer, SocketIsAccessibleToItsOwnerOnly) {
    Fixture f;
    auto server = ApiServer::start({f.socket}, *f.loop, [](const ApiRequest &) { return ApiResponse{}; });
    ASSERT_TRUE(server.ok()) << server.error().describe();
    struct stat st {};
    ASSERT_EQ(stat(f.socket.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(st.st_uid, geteuid());
    (*server)->stop();
    EXPECT_NE(access(f.socket.c_str(), F_OK), 0) << "stop() removes the socket";
}

TEST(ApiServer, RequestsAreHandledOnTheLoopThread) {
    Fixture f;
    std::thread::id loop_thread = std::this_thread::get_id();
    bool on_loop = false;
    ApiRequest seen;
    auto server = ApiServer::start({f.socket}, *f.loop, [&](const ApiRequest &r) {
        on_loop = std::this_thread::get_id() == loop_thread;
        seen = r;
        return ApiResponse{201, "application/json", "{\"ok\":true}"};
    });
    ASSERT_TRUE(server.ok());
    int status = 0;
    std::string body;
    std::thread client([&] {
        auto res = get(f.socket, "/v1/x?limit=5");
        if (res) {
            status = res->status;
            body = res->body;
        }
        f.loop->post([&] { f.loop->stop(); });
    });
    f.loop->schedule_after_ms(20'000, [&] { f.loop->stop(); });
    ASSERT_TRUE(f.loop->run().ok());
    client.join();
    EXPECT_EQ(status, 201);
    EXPECT_EQ(body, "{\"ok\":true}");
    EXPECT_TRUE(on_loop);
    EXPECT_EQ(seen.method, "GET");
    EXPECT_EQ(seen.path, "/v1/x");
    EXPECT_EQ(seen.query["limit"], "5");
}

TEST(ApiServer, StaleSocketFromAKilledDaemonIsReplaced) {
    Fixture f;
    {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, f.socket.c_str(), sizeof addr.sun_path - 1);
        ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
        close(fd);  // the file stays, nobody listens
    }
    auto server = ApiServer::start({f.socket}, *f.loop, [](const ApiRequest &) { return ApiResponse{}; });
    EXPECT_TRUE(server.ok()) << server.error().describe();
}

TEST(ApiServer, SocketOfALiveDaemonIsNotStolen) {
    Fixture f;
    auto first = ApiServer::start({f.socket}, *f.loop, [](const ApiRequest &) { return ApiResponse{}; });
    ASSERT_TRUE(first.ok());
    auto second = ApiServer::start({f.socket}, *f.loop, [](const ApiRequest &) { return ApiResponse{}; });
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code, EADDRINUSE);
}

TEST(ApiServer, PathThatIsNotASocketIsRefused) {
    Fixture f;
    { FILE *file = fopen(f.socket.c_str(), "w"); fclose(file); }
    auto server = ApiServer::start({f.socket}, *f.loop, [](const ApiRequest &) { return ApiResponse{}; });
    ASSERT_FALSE(server.ok());
    EXPECT_NE(server.error().message.find("is not a socket"), std::string::npos);
}

}  // namespace
