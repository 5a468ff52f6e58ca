#include "wispd/api_server.h"

#include <httplib.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <future>
#include <list>
#include <mutex>
#include <thread>

#include "wisp/unique_fd.h"

namespace wisp::wispd {

namespace {

// Answers larger than this are followed by malloc_trim() (see serve()).
constexpr size_t kTrimAfterBytes = 1u << 20;

// Replaces a stale socket file; refuses to steal a live one.
Status clear_stale_socket(const std::string &path) {
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) return {};
    if (!S_ISSOCK(st.st_mode))
        return Error{EEXIST, "API socket path " + path + " exists and is not a socket"};
    UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe) return errno_error("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (connect(probe.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0)
        return Error{EADDRINUSE, "another wispd is serving " + path};
    if (unlink(path.c_str()) != 0) return errno_error("removing the stale socket " + path);
    spdlog::info("removed the stale API socket {}", path);
    return {};
}

}  // namespace

struct ApiServer::Impl {
    // A request waiting for the loop thread.
    struct Pending {
        std::promise<ApiResponse> promise;
        std::atomic<bool> answered{false};
        void answer(ApiResponse r) {
            if (!answered.exchange(true)) promise.set_value(std::move(r));
        }
    };
    // Shared with work posted to the loop, which may outlive the server.
    struct Shared {
        std::mutex mutex;
        bool closing = false;
        std::list<std::shared_ptr<Pending>> pending;
        Handler handler;
    };

    Config config;
    EventLoop *loop = nullptr;
    std::shared_ptr<Shared> shared = std::make_shared<Shared>();
    httplib::Server server;
    std::thread listener;
    bool stopped = false;

    static ApiResponse unavailable(const std::string &why) {
        return error_response(503, "unavailable", why);
    }

    void serve(const httplib::Request &req, httplib::Response &res) {
        ApiRequest request{req.method, req.path, {}, req.body};
        for (auto &[k, v] : req.params) request.query.emplace(k, v);

        auto pending = std::make_shared<Pending>();
        auto future = pending->promise.get_future();
        {
            std::lock_guard lock(shared->mutex);
            if (shared->closing) {
                pending->answer(unavailable("wispd is shutting down"));
            } else {
                shared->pending.push_back(pending);
            }
        }
        if (!pending->answered) {
            auto sh = shared;
            loop->post([sh, pending, request] {
                {
                    std::lock_guard lock(sh->mutex);
                    sh->pending.remove(pending);
                    if (sh->closing) return;  // stop() answered it
                }
                ApiResponse answer = sh->handler(request);
                // A large answer (a listing of thousands of services) built and freed
                // a JSON tree many times its size: give those pages back, or wispd's
                // RSS stays at that peak (docs/density.md).
                if (answer.body.size() > kTrimAfterBytes) malloc_trim(0);
                pending->answer(std::move(answer));
            });
        }
        ApiResponse response;
        if (future.wait_for(std::chrono::seconds(config.request_timeout_s)) ==
            std::future_status::ready) {
            response = future.get();
        } else {
            pending->answer(unavailable("wispd did not answer in time"));
            response = unavailable("wispd did not answer within " +
                                   std::to_string(config.request_timeout_s) + " s");
        }
        res.status = response.status;
        res.set_content(response.body, response.content_type.c_str());
    }
};

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ApiServer::~ApiServer() { stop(); }

Result<std::unique_ptr<ApiServer>> ApiServer::start(const Config &config, EventLoop &loop,
                                                    Handler handler) {
    auto impl = std::make_unique<Impl>();
    impl->config = config;
    impl->loop = &loop;
    impl->shared->handler = std::move(handler);
    WISP_RETURN_IF_ERROR(clear_stale_socket(config.socket_path));

    auto &svr = impl->server;
    size_t threads = config.worker_threads;
    svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    svr.set_address_family(AF_UNIX);
    svr.set_payload_max_length(config.max_body_bytes);
    svr.set_read_timeout(10, 0);
    svr.set_write_timeout(10, 0);
    svr.set_keep_alive_max_count(16);
    svr.set_keep_alive_timeout(1);  // bounds how long stop() waits for idle clients
    Impl *self = impl.get();
    auto serve = [self](const httplib::Request &req, httplib::Response &res) {
        self->serve(req, res);
    };
    svr.Get(".*", serve);
    svr.Post(".*", serve);
    svr.Put(".*", serve);
    svr.Patch(".*", serve);
    svr.Delete(".*", serve);
    svr.set_exception_handler([](const httplib::Request &, httplib::Response &res,
                                 std::exception_ptr) {
        auto r = error_response(500, "internal", "internal error while serving the request");
        res.status = r.status;
        res.set_content(r.body, r.content_type.c_str());
    });

    // umask is process-wide: this runs during start-up, before any other thread.
    mode_t old_mask = umask(0177);
    bool bound = svr.bind_to_port(config.socket_path.c_str(), 80);
    int bind_errno = errno;
    umask(old_mask);
    if (!bound)
        return Error{bind_errno ? bind_errno : EADDRNOTAVAIL,
                     "cannot listen on the API socket " + config.socket_path};
    if (chmod(config.socket_path.c_str(), 0600) != 0)
        return errno_error("chmod 0600 " + config.socket_path);

    impl->listener = std::thread([self] { self->server.listen_after_bind(); });
    // httplib's stop() is a no-op until the listener runs: wait for it, so that a
    // stop() right after start() cannot leave the thread listening forever.
    for (int i = 0; i < 5000 && !svr.is_running(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!svr.is_running()) {
        svr.stop();
        impl->listener.join();
        return Error{ETIMEDOUT, "the API listener on " + config.socket_path + " did not start"};
    }
    return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

void ApiServer::stop() {
    if (!impl_ || impl_->stopped) return;
    impl_->stopped = true;
    {
        std::lock_guard lock(impl_->shared->mutex);
        impl_->shared->closing = true;
        for (auto &p : impl_->shared->pending) p->answer(Impl::unavailable("wispd is shutting down"));
        impl_->shared->pending.clear();
    }
    impl_->server.stop();
    if (impl_->listener.joinable()) impl_->listener.join();
    unlink(impl_->config.socket_path.c_str());
}

}  // namespace wisp::wispd
