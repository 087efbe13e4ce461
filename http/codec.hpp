// JSON <-> message codec of the HTTP API, and the one
// function that maps errors to HTTP statuses.
//
// Owns: decoding and validating /predict bodies (one place), encoding every
// response body, and errc -> status. No Beast include: it is plain text in,
// plain text out, and unit-tested directly.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "messages/payloads.hpp"

namespace sil::http_api {

/// What a /predict body may contain.
struct decode_limits {
  std::size_t input_dim = 32;
  std::size_t max_rows = 64;
};

/// The largest max_age_ms a request may give (a year) and the largest
/// timeout_ms (ten minutes): bounded where decoded, so that no conversion
/// to nanoseconds downstream can overflow.
inline constexpr std::int64_t max_age_limit_ms = 31'536'000'000;
inline constexpr std::int64_t timeout_limit_ms = 600'000;
/// The longest "model" or "version" a request may name.
inline constexpr std::size_t max_name_bytes = 256;

/// Parses and validates a /predict body: {"features": [[D numbers], ...],
/// "use_cache": bool, "max_age_ms": integer in [0, a year], "max_wrong_rate":
/// number in (0, 1], "timeout_ms": integer in [1, 600000], "model" and
/// "version": strings of at most 256 bytes} (all but "features" optional;
/// an empty or absent model or version means the default).
/// Unknown fields are ignored. Every failure is errc::bad_request with a
/// message that says what is wrong and where. Never throws.
result<predict_request> decode_predict(std::string_view body, const decode_limits& limits);

/// The same, and a string "id" field's value in `id` (as KServe v2 echoes
/// it). An "id" that is not a string is ignored, like any unknown field.
result<predict_request> decode_predict(std::string_view body, const decode_limits& limits,
                                       std::optional<std::string>& id);

/// {"prediction": ..., "cache_hit": ..., "latency_ms": ..., "model": ...,
/// "model_version": ..., ..., "id": ...} ("id" only when the request gave
/// one, "model" only when `model_name` is not empty).
std::string encode_predict(const predict_reply& r, double latency_ms,
                           const std::optional<std::string>& id = std::nullopt,
                           std::string_view model_name = {});

// -- the KServe v2 (Open Inference Protocol) adapter -------------------------------

/// A decoded POST /v2/models/{name}/infer body.
struct infer_request {
  predict_request req;
  /// The request's "id", echoed in the answer.
  std::optional<std::string> id;
};

/// The deepest nesting an inference request may use (its tensor data needs 5).
inline constexpr std::size_t max_infer_nesting = 16;

/// What an inference request's "platform" metadata says this server runs.
inline constexpr const char* model_platform = "sil_eigen";

/// Parses and validates an inference request: {"id": string, "parameters":
/// {"use_cache", "max_age_ms", "max_wrong_rate", "timeout_ms"}, "inputs":
/// [{"name": "features", "datatype": "FP32", "shape": [T, D], "data": T x D
/// numbers, flat or as T rows}], "outputs": [{"name": "prediction"}]}; only
/// "inputs" is required. The options' ranges are /predict's. Every failure is
/// errc::bad_request with a message that says what is wrong. Never throws.
result<infer_request> decode_infer(std::string_view body, const decode_limits& limits);

/// {"model_name", "model_version", "id", "parameters": {"cache_hit",
/// "source", "latency_ms", ...}, "outputs": [{"name": "prediction",
/// "datatype": "FP32", "shape": [1], "data": [score]}]}
std::string encode_infer(const predict_reply& r, double latency_ms, std::string_view model_name,
                         const std::optional<std::string>& id);

/// What the metadata routes say about the model.
struct model_description {
  std::string name;
  /// The default version (the only one listed when `versions` is empty).
  std::string version;
  std::size_t input_dim = 32;
  /// Every loaded version.
  std::vector<std::string> versions;
};

/// GET /v2: {"name", "version", "extensions": []}
std::string encode_server_metadata(std::string_view name, std::string_view version);

/// GET /v2/models/{name}: name, versions, platform, inputs [{"features",
/// FP32, [-1, D]}], outputs [{"prediction", FP32, [1]}].
std::string encode_model_metadata(const model_description& m);

/// GET /v2/models/{name}/ready: {"name", "ready", "reason" (when not ready)}.
std::string encode_model_ready(std::string_view name, bool ready, std::string_view reason);

/// {"error": {"code": "...", "message": "..."}}
std::string encode_error(const error& e);

/// The /stats body.
std::string encode_stats(const service_snapshot& s);

/// The GET /agent body (also the answer of admin commands).
std::string encode_agent(const agent_snapshot& a);

/// Parses a PUT /admin/cache/ttl body {"ttl_seconds": x}, 0 <= x <= 1 year.
result<double> decode_ttl(std::string_view body);

// -- the model admin API ---------------------------------------------------------

/// POST /admin/models: {"name": string, "preset": string, "seed": integer
/// or "weights": path, "warm": integer in [0, 100000], "default": bool};
/// only "name" is required; unknown fields are refused.
result<model_command> decode_model_load(std::string_view body);

/// PUT /admin/models/{name}/default: {"version": string}.
result<std::string> decode_default_version(std::string_view body);

/// POST /admin/models/{name}/versions/{v}/warm: {"encodes": integer} or no
/// body (-1: the configured number).
result<std::int64_t> decode_warm(std::string_view body);

/// POST /admin/models/{name}/versions/{v}/canary: {"policy": {"name":
/// string, "prefix_k", "prefix_unit", "ttl_seconds", "capacity_share",
/// "tolerance", "max_wrong_rate", "admission"}, "share": number in (0, 1)}.
/// Fields the policy leaves out keep `base`'s (the incumbent's); share
/// defaults to 0.1. The manager validates the policy's values.
result<model_command> decode_canary_start(std::string_view body, const cache_policy& base);

/// GET /agent with the running canaries and the canary decisions.
std::string encode_agent_with_canaries(const agent_snapshot& a, const model_listing& l);

/// {"default_model", "bytes", "max_bytes", "versions": [{"model",
/// "version", "declared", "architecture", "state", "default", "bytes",
/// "input_dim", "embedding_dim", "warm_encodes"}], "version",
/// "previous_default"} (the last two when a command set them).
std::string encode_model_listing(const model_listing& l);

/// Checks an Authorization header against the configured admin token:
/// forbidden if no token is configured, unauthorized if the header is
/// missing or wrong (compared in constant time).
status check_admin(std::string_view authorization, std::string_view token);

/// The /health body.
std::string encode_health(bool cache_enabled, std::uint32_t workers, std::size_t in_flight,
                          std::string_view version);

/// "application/json", in any case, optionally with parameters such as
/// "; charset=utf-8".
inline bool is_json_media_type(std::string_view ct) noexcept {
  auto type = ct.substr(0, ct.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t'))
    type.remove_suffix(1);
  constexpr std::string_view json_type = "application/json";
  if (type.size() != json_type.size())
    return false;
  for (std::size_t i = 0; i < type.size(); ++i) {
    char c = type[i];
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
    if (c != json_type[i])
      return false;
  }
  return true;
}

/// The HTTP status for an error code: the only place this mapping exists.
unsigned status_for(errc code) noexcept;

} // namespace sil::http_api
