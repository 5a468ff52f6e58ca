#include "wispd/api.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>

#include "wispd/spec.h"

namespace wisp::wispd {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr size_t kDefaultLogLines = 200;
constexpr size_t kMaxLogLines = 10000;
constexpr size_t kDefaultEvents = 100;
constexpr size_t kMaxEvents = 10000;

std::vector<std::string> split_path(const std::string &path) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i < path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        if (j > i) parts.push_back(path.substr(i, j - i));
        i = j + 1;
    }
    return parts;
}

ApiResponse json_response(int status, const json &body) {
    // Replace invalid UTF-8 (a guest-supplied exit reason, say) instead of throwing.
    return {status, "application/json",
            body.dump(2, ' ', false, json::error_handler_t::replace) + "\n"};
}

// An Error from the controller or validation, as an HTTP error.
ApiResponse from_error(const Error &e) {
    std::string field = error_field(e);
    switch (e.code) {
        case EINVAL: return error_response(400, field.empty() ? "invalid_request" : "invalid_field", e.message, field);
        case ENOENT: return error_response(404, "not_found", e.message, field);
        case EEXIST: return error_response(409, "conflict", e.message, field);
        default: return error_response(500, "internal", e.describe(), field);
    }
}

Result<json> parse_body(const ApiRequest &r) {
    if (r.body.empty()) return field_error("body", "a JSON object is required");
    json body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return field_error("body", "is not valid JSON");
    if (!body.is_object()) return field_error("body", "must be a JSON object");
    return body;
}

Result<size_t> query_count(const ApiRequest &r, const char *name, size_t fallback, size_t max) {
    auto it = r.query.find(name);
    if (it == r.query.end()) return fallback;
    const std::string &v = it->second;
    if (v.empty() || v.size() > 9 || !std::all_of(v.begin(), v.end(), ::isdigit))
        return field_error(name, "must be an integer between 1 and " + std::to_string(max));
    size_t n = std::stoul(v);
    if (n < 1 || n > max)
        return field_error(name, "must be between 1 and " + std::to_string(max));
    return n;
}

}  // namespace

std::string format_time_ms(int64_t ms) {
    if (ms <= 0) return "";
    time_t secs = static_cast<time_t>(ms / 1000);
    tm utc{};
    gmtime_r(&secs, &utc);
    char buf[40];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
    return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms % 1000));
}

ApiResponse error_response(int status, const std::string &code, const std::string &message,
                           const std::string &field) {
    json err = {{"status", status}, {"code", code}, {"message", message}};
    if (!field.empty()) err["field"] = field;
    return json_response(status, {{"error", err}});
}

json replica_json(const ReplicaRecord &r, const std::string &service) {
    json j = {{"id", r.id},
              {"service", service},
              {"state", to_string(r.state)},
              {"tap", r.tap},
              {"tap_ifindex", r.tap_ifindex},
              {"guest_mac", r.guest_mac},
              {"monitor_pid", r.monitor_pid},
              {"control_socket", r.control_socket},
              {"started_at", format_time_ms(r.started_ms)},
              {"started_at_ms", r.started_ms},
              {"ready_at", format_time_ms(r.ready_ms)},
              {"ready_at_ms", r.ready_ms}};
    j["snapshot_id"] = r.snapshot ? json(*r.snapshot) : json(nullptr);
    return j;
}

json wake_trace_json(const WakeTrace &t) {
    if (t.syn_ns == 0) return nullptr;
    // Microseconds after the SYN's capture; null for a step not seen.
    auto at = [&](uint64_t ns) -> json {
        if (ns == 0) return nullptr;
        return static_cast<double>(static_cast<int64_t>(ns - t.syn_ns)) / 1000.0;
    };
    return {{"replica", t.replica},
            {"frames_replayed", t.frames},
            {"syn_monotonic_ns", t.syn_ns},
            {"us_after_syn",
             {{"consumed", at(t.consumed_ns)},
              {"restore_sent", at(t.restore_sent_ns)},
              {"monitor_command", at(t.monitor_command_ns)},
              {"guest_entry", at(t.guest_entry_ns)},
              {"ready", at(t.ready_ns)},
              {"replayed", at(t.replayed_ns)},
              {"first_hypercall", at(t.first_hypercall_ns)}}}};
}

// Every replica state, zeros included, so clients can rely on the keys.
json replicas_by_state(const std::vector<ReplicaRecord> &replicas) {
    json j = json::object();
    for (auto st : {ReplicaState::kBooting, ReplicaState::kRestoring, ReplicaState::kReady,
                    ReplicaState::kDraining, ReplicaState::kSnapshotting, ReplicaState::kStopping})
        j[to_string(st)] = 0;
    for (auto &r : replicas) j[to_string(r.state)] = j[to_string(r.state)].get<int>() + 1;
    return j;
}

json service_json(const ServiceView &v, bool detailed) {
    const auto &r = v.record;
    size_t ready = static_cast<size_t>(std::count_if(v.replicas.begin(), v.replicas.end(), [](auto &x) {
        return x.state == ReplicaState::kReady;
    }));
    json j = {{"id", r.id},
              {"name", r.spec.name},
              {"state", to_string(r.state)},
              {"image", r.spec.image},
              {"memory_mib", r.spec.memory_mib},
              {"vip", r.spec.vip},
              {"port", r.spec.port},
              {"protocol", to_string(r.spec.protocol)},
              {"cmdline", r.spec.cmdline},
              {"idle_timeout_ms", r.spec.idle_timeout_ms},
              {"stateful", r.spec.stateful},
              {"min_replicas", r.spec.min_replicas},
              {"max_replicas", r.spec.max_replicas},
              {"target_per_replica", r.spec.target_per_replica},
              {"replicas_ready", ready},
              {"replicas_total", v.replicas.size()},
              {"replicas_by_state", replicas_by_state(v.replicas)},
              {"wakes", v.wakes},
              {"created_at", format_time_ms(r.created_ms)},
              {"created_at_ms", r.created_ms},
              {"updated_at", format_time_ms(r.updated_ms)},
              {"updated_at_ms", r.updated_ms}};
    j["failure"] = {{"reason", r.failure.reason},
                    {"consecutive_failures", r.failure.consecutive_failures},
                    {"crash_loop", r.failure.crash_loop},
                    {"last_failure_at", format_time_ms(r.failure.last_failure_ms)},
                    {"next_attempt_at", format_time_ms(r.failure.next_attempt_ms)},
                    {"next_attempt_at_ms", r.failure.next_attempt_ms}};
    if (!detailed) return j;
    j["last_wake_latency_ms"] = v.last_wake_latency_ms < 0 ? json(nullptr) : json(v.last_wake_latency_ms);
    j["last_wake"] = wake_trace_json(v.last_wake);
    json decision = nullptr;
    if (v.last_decision.at_ms != 0)
        decision = {{"reason", to_string(v.last_decision.reason)},
                    {"from", v.last_decision.from},
                    {"to", v.last_decision.to},
                    {"load_per_s", v.last_decision.stable_load},
                    {"at", format_time_ms(v.last_decision.at_ms)},
                    {"at_ms", v.last_decision.at_ms}};
    j["autoscale"] = {{"active", v.autoscaled},
                      {"decisions", v.scale_decisions},
                      {"last_decision", decision}};
    j["wake_buffer"] = {{"frames", v.buffered_frames},
                        {"dropped", v.dropped_frames},
                        {"restore_in_flight", v.restore_in_flight}};
    json replicas = json::array();
    for (auto &rep : v.replicas) replicas.push_back(replica_json(rep, r.spec.name));
    j["replicas"] = replicas;
    json snaps = json::array();
    for (auto &s : v.snapshots) {
        json sj = {{"id", s.id},
                   {"kind", to_string(s.kind)},
                   {"path", s.path},
                   {"created_at", format_time_ms(s.created_ms)}};
        sj["parent_id"] = s.parent ? json(*s.parent) : json(nullptr);
        snaps.push_back(sj);
    }
    j["snapshots"] = snaps;
    return j;
}

json event_json(const EventRecord &e) {
    json j = {{"id", e.id},
              {"at", format_time_ms(e.at_ms)},
              {"at_ms", e.at_ms},
              {"service", e.service},
              {"kind", e.kind},
              {"message", e.message}};
    j["replica"] = e.replica ? json(*e.replica) : json(nullptr);
    return j;
}

Api::Api(Controller &controller, Store &store, MetricsRegistry &metrics, ApiEnvironment env)
    : controller_(controller),
      store_(store),
      metrics_(metrics),
      env_(std::move(env)),
      requests_(metrics.counters("wisp_api_requests_total", "API requests by HTTP status")) {}

ApiResponse Api::handle(const ApiRequest &r) {
    auto p = split_path(r.path);
    const std::string &m = r.method;
    auto route = [&]() -> ApiResponse {
        if (p.size() == 1 && p[0] == "metrics") {
            if (m == "GET") return metrics();
            return error_response(405, "method_not_allowed", m + " is not supported on " + r.path);
        }
        if (p.size() >= 2 && p[0] == "v1") {
            const std::string &what = p[1];
            if (p.size() == 2 && what == "status") {
                if (m == "GET") return status();
            } else if (p.size() == 2 && what == "services") {
                if (m == "GET") return list_services();
                if (m == "POST") return create_service(r);
            } else if (p.size() == 3 && what == "services") {
                if (m == "GET") return inspect_service(p[2]);
                if (m == "PATCH") return update_service(p[2], r, false);
                if (m == "DELETE") return delete_service(p[2]);
            } else if (p.size() == 4 && what == "services" && p[3] == "scale") {
                if (m == "POST") return update_service(p[2], r, true);
            } else if (p.size() == 4 && what == "services" && p[3] == "logs") {
                if (m == "GET") return service_logs(p[2], r);
            } else if (p.size() == 2 && what == "replicas") {
                if (m == "GET") return list_replicas(r);
            } else if (p.size() == 2 && what == "events") {
                if (m == "GET") return list_events(r);
            } else {
                return error_response(404, "not_found", "no endpoint " + r.path);
            }
            return error_response(405, "method_not_allowed",
                                   m + " is not supported on " + r.path);
        }
        return error_response(404, "not_found", "no endpoint " + r.path);
    };
    ApiResponse response = route();
    requests_.with({{"code", std::to_string(response.status)}}).inc();
    return response;
}

ApiResponse Api::status() {
    json j = env_.status ? env_.status() : json::object();
    json by_state = json::object();
    size_t replicas = 0;
    for (auto &v : controller_.services()) {
        std::string st = to_string(v.record.state);
        by_state[st] = by_state.value(st, 0) + 1;
        replicas += v.replicas.size();
    }
    j["services"] = by_state;
    j["services_total"] = controller_.services().size();
    j["replicas_total"] = replicas;
    auto version = store_.schema_version();
    if (version) j["schema_version"] = *version;
    return json_response(200, j);
}

ApiResponse Api::list_services() {
    json list = json::array();
    for (auto &v : controller_.services()) list.push_back(service_json(v, false));
    return json_response(200, {{"services", list}});
}

ApiResponse Api::create_service(const ApiRequest &r) {
    auto body = parse_body(r);
    if (!body) return from_error(body.error());
    auto spec = parse_service_spec(*body, env_.default_vip);
    if (!spec) return from_error(spec.error());
    auto created = controller_.create_service(*spec);
    if (!created) return from_error(created.error());
    auto view = controller_.service(spec->name);
    return json_response(201, service_json(*view, true));
}

ApiResponse Api::inspect_service(const std::string &name) {
    auto view = controller_.service(name);
    if (!view) return error_response(404, "not_found", "service '" + name + "' does not exist");
    return json_response(200, service_json(*view, true));
}

ApiResponse Api::update_service(const std::string &name, const ApiRequest &r, bool scale) {
    auto view = controller_.service(name);
    if (!view) return error_response(404, "not_found", "service '" + name + "' does not exist");
    auto body = parse_body(r);
    if (!body) return from_error(body.error());
    const auto &spec = view->record.spec;
    ServiceSettings current{spec.idle_timeout_ms, spec.min_replicas, spec.max_replicas,
                            spec.target_per_replica};
    auto settings = scale ? parse_scale(*body, current) : parse_settings_patch(*body, current);
    if (!settings) return from_error(settings.error());
    auto updated = controller_.update_settings(name, *settings);
    if (!updated) return from_error(updated.error());
    return json_response(200, service_json(*controller_.service(name), true));
}

ApiResponse Api::delete_service(const std::string &name) {
    auto st = controller_.delete_service(name);
    if (!st) return from_error(st.error());
    return json_response(200, {{"deleted", name}});
}

ApiResponse Api::service_logs(const std::string &name, const ApiRequest &r) {
    if (!controller_.service(name))
        return error_response(404, "not_found", "service '" + name + "' does not exist");
    auto tail = query_count(r, "tail", kDefaultLogLines, kMaxLogLines);
    if (!tail) return from_error(tail.error());
    std::string suffix;
    if (auto it = r.query.find("replica"); it != r.query.end()) {
        auto id = query_count(r, "replica", 0, UINT32_MAX);
        if (!id) return from_error(id.error());
        suffix = "-r" + std::to_string(*id) + ".log";
    }
    std::vector<fs::path> files;
    std::error_code ec;
    for (auto &e : fs::directory_iterator(controller_.layout().service_logs(name), ec)) {
        std::string file = e.path().filename().string();
        if (e.path().extension() != ".log") continue;
        if (!suffix.empty() && (file.size() < suffix.size() ||
                                file.compare(file.size() - suffix.size(), suffix.size(), suffix)))
            continue;
        files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());  // names start with the start time
    // The last `tail` lines across the newest files.
    std::deque<std::string> lines;
    for (auto it = files.rbegin(); it != files.rend() && lines.size() < *tail; ++it) {
        std::ifstream in(*it);
        std::deque<std::string> file_lines;
        for (std::string line; std::getline(in, line);) {
            file_lines.push_back(std::move(line));
            if (file_lines.size() > *tail) file_lines.pop_front();
        }
        while (!file_lines.empty() && lines.size() < *tail) {
            lines.push_front(std::move(file_lines.back()));
            file_lines.pop_back();
        }
    }
    std::string body;
    for (auto &l : lines) body += l + "\n";
    return {200, "text/plain; charset=utf-8", body};
}

ApiResponse Api::list_replicas(const ApiRequest &r) {
    std::optional<std::string> service;
    if (auto it = r.query.find("service"); it != r.query.end()) service = it->second;
    auto replicas = controller_.replicas(service);
    if (!replicas) return from_error(replicas.error());
    std::map<ServiceId, std::string> names;
    for (auto &v : controller_.services()) names[v.record.id] = v.record.spec.name;
    json list = json::array();
    for (auto &rep : *replicas) list.push_back(replica_json(rep, names[rep.service]));
    return json_response(200, {{"replicas", list}});
}

ApiResponse Api::list_events(const ApiRequest &r) {
    auto limit = query_count(r, "limit", kDefaultEvents, kMaxEvents);
    if (!limit) return from_error(limit.error());
    std::optional<std::string> service;
    if (auto it = r.query.find("service"); it != r.query.end()) service = it->second;
    auto events = store_.recent_events(*limit, service);
    if (!events) return from_error(events.error());
    json list = json::array();
    for (auto &e : *events) list.push_back(event_json(e));
    return json_response(200, {{"events", list}});
}

ApiResponse Api::metrics() {
    return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render()};
}

}  // namespace wisp::wispd
