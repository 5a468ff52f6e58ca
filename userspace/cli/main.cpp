// wisp: the operator CLI. Speaks wispd's HTTP/JSON API (docs/api.md) on its unix
// socket. Verbs follow docker/kraft: `wisp service create|ls|inspect|rm|set|scale`,
// `wisp replica ls`, `wisp logs`, `wisp events`, `wisp status`; `-o json` prints
// the API's JSON instead of a table.
//
// Exit codes: 0 success, 1 the API refused or failed the request, 2 usage error,
// 3 wispd unreachable.
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "format.h"
#include "wisp/log.h"
#include "wisp/version.h"

namespace {

using nlohmann::json;
using namespace wisp::cli;

enum Exit { kOk = 0, kApiError = 1, kUsage = 2, kUnreachable = 3 };

struct Response {
    int status = 0;
    std::string body;
};

class Client {
public:
    explicit Client(std::string socket) : socket_(std::move(socket)) {}

    // The response, or nullopt after printing why wispd could not be reached.
    std::optional<Response> call(const std::string &method, const std::string &path,
                                 const std::string &body = "") {
        httplib::Client client(socket_);
        client.set_address_family(AF_UNIX);
        client.set_connection_timeout(5);
        client.set_read_timeout(60);
        auto res = method == "POST"    ? client.Post(path.c_str(), body, "application/json")
                   : method == "PATCH"   ? client.Patch(path.c_str(), body, "application/json")
                   : method == "DELETE"  ? client.Delete(path.c_str())
                                         : client.Get(path.c_str());
        if (!res) {
            std::fprintf(stderr,
                         "wisp: cannot reach wispd at %s: %s\n"
                         "      is wispd running? (systemctl status wispd; or pass --socket)\n",
                         socket_.c_str(), why_unreachable(res.error()).c_str());
            return std::nullopt;
        }
        return Response{res->status, res->body};
    }

private:
    // httplib says only "Connection"; a direct connect() tells the errno.
    std::string why_unreachable(httplib::Error error) const {
        if (error != httplib::Error::Connection) return httplib::to_string(error);
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, socket_.c_str(), sizeof addr.sun_path - 1);
        int rc = ::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr);
        std::string why = rc == 0 ? "connection failed" : std::strerror(errno);
        ::close(fd);
        return why;
    }

    std::string socket_;
};

// Prints the API's error message; returns the exit code.
int api_error(const Response &r) {
    json j = json::parse(r.body, nullptr, false);
    std::string message = r.body;
    if (!j.is_discarded() && j.contains("error") && j["error"].contains("message"))
        message = j["error"]["message"].get<std::string>();
    std::fprintf(stderr, "wisp: %s (HTTP %d)\n", message.c_str(), r.status);
    return kApiError;
}

std::string encode(const std::string &segment) {
    std::string out;
    for (unsigned char c : segment) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.') out += static_cast<char>(c);
        else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string str(const json &j, const char *key) {
    if (!j.contains(key) || j[key].is_null()) return "-";
    if (j[key].is_string()) return j[key].get<std::string>();
    return j[key].dump();
}

std::string address_of(const json &s) {
    std::string vip = str(s, "vip");
    if (vip.find(':') != std::string::npos) vip = "[" + vip + "]";
    return vip + ":" + str(s, "port") + "/" + str(s, "protocol");
}

// "2/4 (1..4)": ready of all, and the bounds.
std::string replicas_of(const json &s) {
    return str(s, "replicas_ready") + "/" + str(s, "replicas_total") + " (" +
           str(s, "min_replicas") + ".." + str(s, "max_replicas") + ")";
}

// "2 ready, 1 restoring, 1 draining": the non-zero states ("none" if no replica).
std::string replica_states_of(const json &s) {
    std::string out;
    if (!s.contains("replicas_by_state")) return "-";
    for (auto &[state, n] : s["replicas_by_state"].items()) {
        if (!n.is_number() || n.get<int>() == 0) continue;
        out += (out.empty() ? "" : ", ") + std::to_string(n.get<int>()) + " " + state;
    }
    return out.empty() ? "none" : out;
}

// The autoscale target, "-" when scaling is wake-driven only.
std::string target_of(const json &s) {
    return s["target_per_replica"].get<uint64_t>() ? str(s, "target_per_replica") + "/s" : "-";
}

// Runs a request and hands a successful JSON body to `print` (or prints it raw
// with -o json).
template <class Print>
int run(Client &client, const std::string &method, const std::string &path,
        const std::string &body, bool as_json, Print print) {
    auto r = client.call(method, path, body);
    if (!r) return kUnreachable;
    if (r->status >= 400) return api_error(*r);
    if (as_json) {
        std::cout << r->body;
        return kOk;
    }
    json j = json::parse(r->body, nullptr, false);
    if (j.is_discarded()) {
        std::fprintf(stderr, "wisp: wispd sent a response that is not JSON\n");
        return kApiError;
    }
    print(j);
    return kOk;
}

void print_services(const json &j) {
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "STATE", "ADDRESS", "REPLICAS", "TARGET", "IDLE", "MEMORY", "WAKES", "CREATED"}};
    for (auto &s : j["services"]) {
        std::string state = str(s, "state");
        if (s["failure"]["crash_loop"].get<bool>()) state += " (crash loop)";
        rows.push_back({str(s, "name"), state, address_of(s), replicas_of(s), target_of(s),
                        format_duration_ms(s["idle_timeout_ms"].get<uint64_t>()),
                        str(s, "memory_mib") + "MiB", str(s, "wakes"),
                        format_age(s["created_at_ms"].get<int64_t>(), now_ms())});
    }
    std::cout << render_table(rows);
}

void print_replicas(const json &list) {
    std::vector<std::vector<std::string>> rows = {
        {"ID", "SERVICE", "STATE", "TAP", "MAC", "PID", "STARTED"}};
    for (auto &r : list)
        rows.push_back({str(r, "id"), str(r, "service"), str(r, "state"), str(r, "tap"),
                        str(r, "guest_mac"), str(r, "monitor_pid"),
                        format_age(r["started_at_ms"].get<int64_t>(), now_ms())});
    std::cout << render_table(rows);
}

void print_service(const json &s) {
    auto line = [](const char *k, const std::string &v) { std::printf("%-15s %s\n", k, v.c_str()); };
    line("Name:", str(s, "name"));
    line("State:", str(s, "state"));
    line("Address:", address_of(s));
    line("Image:", str(s, "image"));
    line("Memory:", str(s, "memory_mib") + " MiB");
    line("Cmdline:", str(s, "cmdline").empty() ? "-" : str(s, "cmdline"));
    line("Idle timeout:", format_duration_ms(s["idle_timeout_ms"].get<uint64_t>()));
    line("Stateful:", s["stateful"].get<bool>() ? "yes" : "no");
    line("Replicas:", replica_states_of(s) + " (min " + str(s, "min_replicas") + ", max " +
                          str(s, "max_replicas") + ", target " + target_of(s) + " new flows per replica)");
    if (s.contains("autoscale") && s["autoscale"].is_object()) {
        const auto &a = s["autoscale"];
        std::string scaling = a["active"].get<bool>() ? "active" : "idle";
        scaling += ", " + str(a, "decisions") + " decisions";
        if (a["last_decision"].is_object()) {
            const auto &d = a["last_decision"];
            char load[32];
            std::snprintf(load, sizeof load, "%.0f", d["load_per_s"].get<double>());
            scaling += "; last: " + str(d, "reason") + " " + str(d, "from") + " -> " + str(d, "to") +
                       " at " + load + " flows/s, " + format_age(d["at_ms"].get<int64_t>(), now_ms());
        }
        line("Autoscale:", scaling);
    }
    std::string wakes = str(s, "wakes");
    if (!s["last_wake_latency_ms"].is_null()) {
        char buf[48];
        std::snprintf(buf, sizeof buf, " (last %.2f ms)", s["last_wake_latency_ms"].get<double>());
        wakes += buf;
    }
    line("Wakes:", wakes);
    if (s.contains("last_wake") && s["last_wake"].is_object()) {
        // Where the last wake's time went, in ms after XDP captured the SYN.
        const auto &steps = s["last_wake"]["us_after_syn"];
        std::string trace;
        for (auto [key, label] : {std::pair{"restore_sent", "restore sent"},
                                  {"guest_entry", "guest entered"},
                                  {"ready", "READY"},
                                  {"replayed", "SYN replayed"},
                                  {"first_hypercall", "guest polled"}}) {
            if (!steps.contains(key) || !steps[key].is_number()) continue;
            char buf[64];
            std::snprintf(buf, sizeof buf, "%s%s %.2f", trace.empty() ? "" : ", ", label,
                          steps[key].get<double>() / 1000.0);
            trace += buf;
        }
        line("  last wake:", trace + " ms after the SYN");
    }
    auto &f = s["failure"];
    if (f["consecutive_failures"].get<uint64_t>() == 0) {
        line("Failures:", "none" + (f["reason"].get<std::string>().empty()
                                        ? std::string()
                                        : " (last: " + str(f, "reason") + ")"));
    } else {
        line("Failures:", str(f, "consecutive_failures") + " in a row" +
                              (f["crash_loop"].get<bool>() ? ", CRASH LOOP" : ""));
        line("  reason:", str(f, "reason"));
        if (!str(f, "next_attempt_at").empty()) line("  next attempt:", str(f, "next_attempt_at"));
    }
    auto &wb = s["wake_buffer"];
    line("Wake buffer:", str(wb, "frames") + " frames, " + str(wb, "dropped") + " dropped" +
                             (wb["restore_in_flight"].get<bool>() ? ", restore in flight" : ""));
    line("Created:", str(s, "created_at"));
    line("Updated:", str(s, "updated_at"));
    std::printf("\nReplicas:\n");
    if (s["replicas"].empty()) std::printf("  (none)\n");
    else {
        std::vector<std::vector<std::string>> rows = {{"  ID", "STATE", "TAP", "MAC", "PID", "STARTED"}};
        for (auto &r : s["replicas"])
            rows.push_back({"  " + str(r, "id"), str(r, "state"), str(r, "tap"), str(r, "guest_mac"),
                            str(r, "monitor_pid"), str(r, "started_at")});
        std::cout << render_table(rows);
    }
    std::printf("\nSnapshots:\n");
    if (s["snapshots"].empty()) std::printf("  (none)\n");
    else {
        std::vector<std::vector<std::string>> rows = {{"  ID", "KIND", "CREATED", "PATH"}};
        for (auto &sn : s["snapshots"])
            rows.push_back({"  " + str(sn, "id"), str(sn, "kind"), str(sn, "created_at"), str(sn, "path")});
        std::cout << render_table(rows);
    }
}

void print_status(const json &s) {
    auto line = [](const char *k, const std::string &v) { std::printf("%-15s %s\n", k, v.c_str()); };
    line("wispd:", str(s, "version") + " (" + str(s, "revision") + "), pid " + str(s, "pid"));
    line("Up since:", str(s, "started_at"));
    line("Uplink:", str(s, "uplink"));
    line("State dir:", str(s, "state_dir"));
    line("API socket:", str(s, "api_socket"));
    line("Data plane:", str(s, "dataplane"));
    auto &pool = s["monitor_pool"];
    line("Monitor pool:", str(pool, "implementation") + ", " + str(pool, "idle") + " idle of " +
                              str(pool, "size"));
    std::string by_state;
    for (auto &[state, n] : s["services"].items())
        by_state += (by_state.empty() ? "" : ", ") + n.dump() + " " + state;
    line("Services:", str(s, "services_total") + (by_state.empty() ? "" : " (" + by_state + ")"));
    line("Replicas:", str(s, "replicas_total"));
}

void print_events(const json &j) {
    std::vector<std::vector<std::string>> rows = {{"TIME", "SERVICE", "REPLICA", "EVENT", "MESSAGE"}};
    auto &events = j["events"];
    for (auto it = events.rbegin(); it != events.rend(); ++it)
        rows.push_back({str(*it, "at"), str(*it, "service"), str(*it, "replica"), str(*it, "kind"),
                        str(*it, "message")});
    std::cout << render_table(rows);
}

// Adds `-o/--output table|json` to a subcommand.
void add_output(CLI::App *cmd, std::string &output) {
    cmd->add_option("-o,--output", output, "output format: table (default) or json")
        ->check(CLI::IsMember({"table", "json"}));
}

}  // namespace

int main(int argc, char **argv) {
    CLI::App app{"wisp - manage services on a wisp host"};
    app.set_version_flag("--version", std::string("wisp ") + WISP_VERSION + " (" +
                                          WISP_GIT_REVISION + ")");
    app.require_subcommand(1);
    const char *env_socket = std::getenv("WISP_SOCKET");
    std::string socket = env_socket && *env_socket ? env_socket : "/run/wisp/wispd.sock";
    app.add_option("--socket", socket, "wispd's API socket (default $WISP_SOCKET or /run/wisp/wispd.sock)");
    std::string output = "table";
    std::function<int(Client &)> action;

    // --- service ------------------------------------------------------------------
    auto *service = app.add_subcommand("service", "create, list, inspect, change and remove services");
    service->alias("svc");
    service->require_subcommand(1);

    auto *create = service->add_subcommand("create", "register a service (boots it once for its golden snapshot)");
    std::string name, image, memory, protocol, vip, cmdline, idle;
    uint16_t port = 0;
    bool stateful = false;
    uint32_t min_replicas = 0, max_replicas = 1, target = 0;
    create->add_option("name", name, "service name: a-z, 0-9, '-', up to 63 characters")->required();
    create->add_option("--image", image, "guest ELF image (absolute path on the wisp host)")->required();
    create->add_option("-p,--port", port, "TCP/UDP port the service listens on")->required();
    create->add_option("-m,--memory", memory, "guest memory, e.g. 64M or 1G (default 64M)");
    create->add_option("--protocol", protocol, "tcp (default) or udp");
    create->add_option("--vip", vip, "address the service answers on (default: the uplink's)");
    create->add_option("--cmdline", cmdline, "command line passed to the guest");
    create->add_option("--idle-timeout", idle, "back to zero after this long without packets (default 1s)");
    create->add_flag("--stateful", stateful, "snapshot memory before going to zero, restore it on wake");
    auto *cmin = create->add_option("--min", min_replicas, "replicas kept running even when idle (default 0)");
    auto *cmax = create->add_option("--max", max_replicas, "most replicas (default 1)");
    auto *ctarget = create->add_option("--target", target, "autoscale target per replica");
    add_output(create, output);
    create->callback([&] {
        action = [&](Client &c) -> int {
            json body = {{"name", name}, {"image", image}, {"port", port}};
            if (!memory.empty()) {
                auto mib = parse_size_mib(memory);
                if (!mib) {
                    std::fprintf(stderr, "wisp: --memory: %s\n", mib.error().message.c_str());
                    return kUsage;
                }
                body["memory_mib"] = *mib;
            }
            if (!idle.empty()) {
                auto ms = parse_duration_ms(idle);
                if (!ms) {
                    std::fprintf(stderr, "wisp: --idle-timeout: %s\n", ms.error().message.c_str());
                    return kUsage;
                }
                body["idle_timeout_ms"] = *ms;
            }
            if (!protocol.empty()) body["protocol"] = protocol;
            if (!vip.empty()) body["vip"] = vip;
            if (!cmdline.empty()) body["cmdline"] = cmdline;
            if (stateful) body["stateful"] = true;
            if (cmin->count()) body["min_replicas"] = min_replicas;
            if (cmax->count()) body["max_replicas"] = max_replicas;
            if (ctarget->count()) body["target_per_replica"] = target;
            return run(c, "POST", "/v1/services", body.dump(), output == "json", [](const json &s) {
                std::printf("created %s (%s) on %s\n", str(s, "name").c_str(),
                            str(s, "state").c_str(), address_of(s).c_str());
            });
        };
    });

    auto *ls = service->add_subcommand("ls", "list services");
    ls->alias("list");
    add_output(ls, output);
    ls->callback([&] {
        action = [&](Client &c) {
            return run(c, "GET", "/v1/services", "", output == "json", print_services);
        };
    });

    auto *inspect = service->add_subcommand("inspect", "show one service: state, failures, replicas, snapshots");
    inspect->add_option("name", name, "service name")->required();
    add_output(inspect, output);
    inspect->callback([&] {
        action = [&](Client &c) {
            return run(c, "GET", "/v1/services/" + encode(name), "", output == "json", print_service);
        };
    });

    auto *rm = service->add_subcommand("rm", "remove services (stops their replicas, deletes snapshots)");
    rm->alias("delete");
    std::vector<std::string> names;
    rm->add_option("names", names, "service names")->required();
    rm->callback([&] {
        action = [&](Client &c) {
            int worst = kOk;
            for (auto &n : names) {
                int rc = run(c, "DELETE", "/v1/services/" + encode(n), "", false,
                             [&](const json &) { std::printf("%s\n", n.c_str()); });
                if (rc == kUnreachable) return rc;
                worst = std::max(worst, rc);
            }
            return worst;
        };
    });

    auto *set = service->add_subcommand("set", "change a service's idle timeout or replica bounds");
    set->add_option("name", name, "service name")->required();
    auto *sidle = set->add_option("--idle-timeout", idle, "e.g. 500ms, 2s, 5m");
    auto *smin = set->add_option("--min", min_replicas, "replicas kept running even when idle");
    auto *smax = set->add_option("--max", max_replicas, "most replicas");
    auto *starget = set->add_option("--target", target, "autoscale target per replica");
    add_output(set, output);
    set->callback([&] {
        action = [&](Client &c) -> int {
            json body = json::object();
            if (sidle->count()) {
                auto ms = parse_duration_ms(idle);
                if (!ms) {
                    std::fprintf(stderr, "wisp: --idle-timeout: %s\n", ms.error().message.c_str());
                    return kUsage;
                }
                body["idle_timeout_ms"] = *ms;
            }
            if (smin->count()) body["min_replicas"] = min_replicas;
            if (smax->count()) body["max_replicas"] = max_replicas;
            if (starget->count()) body["target_per_replica"] = target;
            if (body.empty()) {
                std::fprintf(stderr, "wisp: service set: nothing to change (use --idle-timeout, --min, --max or --target)\n");
                return kUsage;
            }
            return run(c, "PATCH", "/v1/services/" + encode(name), body.dump(), output == "json",
                       [](const json &s) {
                           std::printf("%s: idle timeout %s, replicas %s..%s, target %s\n",
                                       str(s, "name").c_str(),
                                       format_duration_ms(s["idle_timeout_ms"].get<uint64_t>()).c_str(),
                                       str(s, "min_replicas").c_str(), str(s, "max_replicas").c_str(),
                                       str(s, "target_per_replica").c_str());
                       });
        };
    });

    auto *scale = service->add_subcommand("scale", "pin a service's replica count (0: back to on-demand)");
    uint32_t count = 0;
    scale->add_option("name", name, "service name")->required();
    scale->add_option("replicas", count, "number of replicas")->required();
    add_output(scale, output);
    scale->callback([&] {
        action = [&](Client &c) {
            return run(c, "POST", "/v1/services/" + encode(name) + "/scale",
                       json{{"replicas", count}}.dump(), output == "json", [](const json &s) {
                           std::printf("%s: replicas %s..%s\n", str(s, "name").c_str(),
                                       str(s, "min_replicas").c_str(), str(s, "max_replicas").c_str());
                       });
        };
    });

    // --- replica ------------------------------------------------------------------
    auto *replica = app.add_subcommand("replica", "list replicas");
    replica->alias("replicas");
    replica->require_subcommand(1);
    auto *rls = replica->add_subcommand("ls", "list replicas of every service, or of one");
    rls->alias("list");
    std::string service_filter;
    rls->add_option("--service", service_filter, "only this service's replicas");
    add_output(rls, output);
    rls->callback([&] {
        action = [&](Client &c) {
            std::string path = "/v1/replicas";
            if (!service_filter.empty()) path += "?service=" + encode(service_filter);
            return run(c, "GET", path, "", output == "json",
                       [](const json &j) { print_replicas(j["replicas"]); });
        };
    });

    // --- logs, events, status -------------------------------------------------------
    auto *logs = app.add_subcommand("logs", "print a service's guest console output");
    uint32_t tail = 200, replica_id = 0;
    logs->add_option("service", name, "service name")->required();
    logs->add_option("-n,--tail", tail, "number of lines (default 200)");
    auto *lrep = logs->add_option("--replica", replica_id, "only this replica's console");
    logs->callback([&] {
        action = [&](Client &c) -> int {
            std::string path = "/v1/services/" + encode(name) + "/logs?tail=" + std::to_string(tail);
            if (lrep->count()) path += "&replica=" + std::to_string(replica_id);
            auto r = c.call("GET", path);
            if (!r) return kUnreachable;
            if (r->status >= 400) return api_error(*r);
            std::cout << r->body;
            return kOk;
        };
    });

    auto *events = app.add_subcommand("events", "recent lifecycle events (oldest first)");
    uint32_t limit = 50;
    events->add_option("--service", service_filter, "only this service's events");
    events->add_option("-n,--limit", limit, "number of events (default 50)");
    add_output(events, output);
    events->callback([&] {
        action = [&](Client &c) {
            std::string path = "/v1/events?limit=" + std::to_string(limit);
            if (!service_filter.empty()) path += "&service=" + encode(service_filter);
            return run(c, "GET", path, "", output == "json", print_events);
        };
    });

    auto *status = app.add_subcommand("status", "wispd's version, uplink, pool and service counts");
    add_output(status, output);
    status->callback([&] {
        action = [&](Client &c) {
            return run(c, "GET", "/v1/status", "", output == "json", print_status);
        };
    });

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        int rc = app.exit(e);
        return rc == 0 ? kOk : kUsage;
    }
    wisp::log::init("wisp", "warn");
    Client client(socket);
    return action ? action(client) : kUsage;
}
