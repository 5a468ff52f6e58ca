// Serves the API (api.h) over HTTP/1.1 on a root-only unix socket, with
// cpp-httplib.
//
// Threading: httplib accepts on its own thread and runs each request on a small
// worker pool. Daemon state belongs to the loop thread, so a worker never touches
// it: it posts the request to the loop (EventLoop::post: a queue + an eventfd),
// and waits on a future for the response, which the loop thread computes with the
// handler. A request that the loop does not answer within the timeout gets 503.
// stop() (loop thread) answers every request still queued with 503, then stops
// httplib and joins its threads, so shutdown never waits on a request.
//
// The socket: bookworm's cpp-httplib 0.11.4 listens on AF_UNIX when given
// set_address_family(AF_UNIX) and the path as the host. It is created with umask
// 0177 (mode 0600, owner root) inside the runtime directory. A stale socket left
// by a killed wispd is replaced; a live one (another wispd answers) is an error.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "wisp/result.h"
#include "wispd/api.h"
#include "wispd/event_loop.h"

namespace wisp::wispd {

class ApiServer {
public:
    using Handler = std::function<ApiResponse(const ApiRequest &)>;
    struct Config {
        std::string socket_path;
        size_t worker_threads = 4;
        int request_timeout_s = 30;  // loop must answer within this
        size_t max_body_bytes = 1 << 20;
    };

    // Binds the socket and starts serving; requests reach `handler` on `loop`'s
    // thread once the loop runs.
    static Result<std::unique_ptr<ApiServer>> start(const Config &config, EventLoop &loop,
                                                    Handler handler);
    ~ApiServer();
    ApiServer(const ApiServer &) = delete;
    ApiServer &operator=(const ApiServer &) = delete;

    // Loop thread only. Idempotent.
    void stop();

private:
    struct Impl;
    explicit ApiServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace wisp::wispd
