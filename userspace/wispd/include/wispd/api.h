// The HTTP/JSON API of wispd, as a plain function from request to response. It runs
// on the loop thread (ApiServer marshals every request there), so it may touch the
// controller and the store directly. docs/api.md is the reference.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>

#include "wisp/result.h"
#include "wispd/controller.h"
#include "wispd/metrics.h"
#include "wispd/store.h"

namespace wisp::wispd {

struct ApiRequest {
    std::string method;  // "GET", "POST", "PATCH", "DELETE", ...
    std::string path;    // without the query string
    std::map<std::string, std::string> query;
    std::string body;
};

struct ApiResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
};

// What the API needs from the daemon beyond the controller and store.
struct ApiEnvironment {
    // The VIP a service gets when it names none: the uplink's primary address.
    std::function<Result<std::string>()> default_vip;
    // Daemon-level facts for GET /v1/status (version, uplink, pool, data plane...).
    std::function<nlohmann::json()> status;
};

class Api {
public:
    Api(Controller &controller, Store &store, MetricsRegistry &metrics, ApiEnvironment env);
    ApiResponse handle(const ApiRequest &request);

private:
    ApiResponse status();
    ApiResponse list_services();
    ApiResponse create_service(const ApiRequest &r);
    ApiResponse inspect_service(const std::string &name);
    ApiResponse update_service(const std::string &name, const ApiRequest &r, bool scale);
    ApiResponse delete_service(const std::string &name);
    ApiResponse service_logs(const std::string &name, const ApiRequest &r);
    ApiResponse list_replicas(const ApiRequest &r);
    ApiResponse list_events(const ApiRequest &r);
    ApiResponse metrics();

    Controller &controller_;
    Store &store_;
    MetricsRegistry &metrics_;
    ApiEnvironment env_;
    CounterFamily &requests_;
};

// JSON shapes shared with the CLI's tests.
nlohmann::json service_json(const ServiceView &view, bool detailed);
nlohmann::json replica_json(const ReplicaRecord &replica, const std::string &service);
nlohmann::json wake_trace_json(const WakeTrace &trace);
nlohmann::json event_json(const EventRecord &event);
// {"error": {"status", "code", "field"?, "message"}}
ApiResponse error_response(int status, const std::string &code, const std::string &message,
                           const std::string &field = "");
// RFC 3339 UTC with milliseconds ("" for 0).
std::string format_time_ms(int64_t ms);

}  // namespace wisp::wispd
