// Validation of what API clients send. Every rule lives here, so the API, the CLI's
// error messages and the docs agree.
//
// Convention: a validation Error has code EINVAL (or EEXIST/ENOENT from the store)
// and a message "<field>: <what is wrong>"; error_field() recovers the field name
// for the JSON error body.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <string>

#include "wisp/result.h"
#include "wispd/types.h"

namespace wisp::wispd {

// "<field>: <reason>" as an EINVAL error.
Error field_error(const std::string &field, const std::string &reason);
// The field named by an error message ("" if it does not name one).
std::string error_field(const Error &error);

Status validate_service_name(const std::string &name);

// A new service from a JSON object. Required: name, image, port. Optional, with
// defaults: memory_mib (64), protocol ("tcp"), vip (from `default_vip`), cmdline
// (""), idle_timeout_ms (1000), stateful (false), min_replicas (0),
// max_replicas (1), target_per_replica (0). Unknown fields are refused.
Result<ServiceSpec> parse_service_spec(const nlohmann::json &body,
                                       const std::function<Result<std::string>()> &default_vip);

// A PATCH: any of idle_timeout_ms, min_replicas, max_replicas, target_per_replica,
// applied on top of `current`. Other known fields cannot change after creation.
Result<ServiceSettings> parse_settings_patch(const nlohmann::json &body,
                                             const ServiceSettings &current);

// `{"replicas": N}`: pins min = max = N.
Result<ServiceSettings> parse_scale(const nlohmann::json &body, const ServiceSettings &current);

}  // namespace wisp::wispd
