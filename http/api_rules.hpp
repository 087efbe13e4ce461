// The HTTP API's conventions, as pure functions: route tables and matching,
// request ids, CORS, health and readiness bodies, error answers, and the
// fingerprint that names an admin token in logs.
//
// Owns: every rule above that the transport (http/server.cpp), the serving
// node's routes (http/routes.*) and the worker node's routes
// (http/worker_routes.*) share. No Beast, no CAF: unit-tested directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/error.hpp"
#include "http/exchange.hpp"

namespace sil::http_api {

// -- routes ------------------------------------------------------------------------

/// One route: a method and a path template whose `{name}` segments match
/// any one non-empty segment.
struct route_spec {
  /// GET (HEAD implied), POST or PUT.
  const char* method;
  const char* path;
  /// The route label of sil_http_requests_total.
  route_label label;
  /// The handler's own number for it.
  int id;
};

/// A matched route and the values of its `{name}` segments, in order.
struct route_match {
  const route_spec* spec = nullptr;
  std::vector<std::string_view> params;
};

/// The routes whose template matches `target` (one per method at most).
std::vector<route_match> match_routes(const std::vector<route_spec>& table,
                                      std::string_view target);

/// Whether `method` may be used on a route of `route_method` (HEAD on GET).
bool method_fits(std::string_view method, std::string_view route_method);

/// The Allow value of the matched routes: "GET, HEAD", "POST", ...
std::string allow_of(const std::vector<route_match>& matches);

/// "GET /health, POST /predict, ...": every route, for 404 messages.
std::string route_list(const std::vector<route_spec>& table);

class cors_policy;

/// With CORS on, answers an OPTIONS request for a known path: a preflight
/// (Origin and Access-Control-Request-Method) gets cors_policy::preflight,
/// a plain OPTIONS 204 with Allow; an unknown path 404. nullopt for any
/// other request, or when CORS is off (OPTIONS then meets find_route's 405).
std::optional<response> answer_options(const std::vector<route_spec>& table,
                                       const request_view& req, const cors_policy& cors);

/// The route of `req`, or the answer when there is none: 404 naming every
/// route, or 405 with Allow (labelled with the route). Under /v2 the
/// errors take the KServe v2 form.
std::variant<route_match, response> find_route(const std::vector<route_spec>& table,
                                               const request_view& req);

/// Whether `target` is under the KServe v2 prefix (/v2, /v2/...).
bool is_v2_path(std::string_view target) noexcept;

// -- errors ------------------------------------------------------------------------

/// The API's error answer: {"error": {"code": "...", "message": "..."}}
/// with the status http_api::status_for gives; Retry-After on 503.
response error_response(const error& e, route_label route = route_label::other);

/// The KServe v2 protocol's error answer: {"error": "message"}.
response v2_error_response(const error& e, route_label route = route_label::other);

// -- request ids -------------------------------------------------------------------

/// The longest X-Request-Id kept.
inline constexpr std::size_t max_request_id = 128;

/// 1 to 128 visible ASCII characters (0x21-0x7E).
bool valid_request_id(std::string_view id) noexcept;

/// 16 random hex digits.
std::string new_request_id();

/// `given` if valid, else a new id.
std::string request_id_for(std::string_view given);

// -- CORS --------------------------------------------------------------------------

/// Which browser origins may read answers (http.cors-origins, split by
/// config/settings.hpp's parse_cors_origins).
class cors_policy {
public:
  cors_policy() = default;
  explicit cors_policy(std::vector<std::string> origins);

  /// False when no origin is configured: no CORS field in any answer.
  bool enabled() const noexcept {
    return !origins_.empty();
  }

  /// The Access-Control-Allow-Origin value for a request from `origin`
  /// ("*" when every origin may), or nullopt if it may not read answers.
  std::optional<std::string> allow_origin(std::string_view origin) const;

  /// The fields an answer to a request from `origin` carries (none when
  /// CORS is off).
  void decorate(response& r, std::string_view origin) const;

  /// Answers a preflight (OPTIONS with Origin and
  /// Access-Control-Request-Method) for a route allowing `allow`: 204 with
  /// the allowed methods and fields, or 403 if the origin is not allowed.
  response preflight(std::string_view origin, const std::string& allow) const;

  const std::vector<std::string>& origins() const noexcept {
    return origins_;
  }

private:
  std::vector<std::string> origins_;
  bool any_ = false;
};

/// Request fields a preflight may ask for; fields answers expose.
inline constexpr const char* cors_allow_headers = "Authorization, Content-Type, X-Request-Id";
inline constexpr const char* cors_expose_headers = "X-Request-Id, Retry-After";

// -- health ------------------------------------------------------------------------

/// Whether a serving node can answer predictions now.
struct readiness {
  bool ready = false;
  /// "ok", "degraded" (ready, encoding on a local fallback), "starting",
  /// "draining" or "unavailable".
  const char* status = "starting";
  /// One sentence for operators.
  std::string reason;
};

/// What a serving node's readiness depends on.
struct readiness_input {
  bool draining = false;
  /// The node runs encoder workers of its own (workers > 0).
  bool local_workers = true;
  /// Some encoder worker has been alive since the start.
  bool seen_workers = false;
  std::uint32_t workers_alive = 0;
  /// A gateway that encodes locally when no node is connected
  /// (cluster.fallback=local).
  bool fallback_local = false;
};

/// Ready while not draining and some encoder can take work: a live worker,
/// or a gateway's local fallback. Not ready while the first local workers
/// start, while draining, or with no worker and no fallback.
readiness serving_readiness(const readiness_input& in);

/// {"ready": bool, "status": "...", "reason": "..."}
std::string encode_readiness(const readiness& r);

/// {"live": true, "status": "ok"}
std::string encode_liveness();

/// 200 with the readiness body, or 503 (with Retry-After) when not ready.
response readiness_response(const readiness& r, route_label route = route_label::health);

// -- admin tokens ------------------------------------------------------------------

/// Names the bearer token of an Authorization field in logs without
/// revealing it: the first 8 hex digits of its SHA-256, or "none" when the
/// field holds no bearer token.
std::string token_id(std::string_view authorization);

/// SHA-256 of `data` as 64 lowercase hex digits (FIPS 180-4).
std::string sha256_hex(std::string_view data);

/// Writes `e` to the access log (a no-op unless log.access is on).
void log_access(const finished_exchange& e);

} // namespace sil::http_api
