// JSON <-> message codec of the HTTP API, and the one
// function that maps errors to HTTP statuses.
//
// Owns: decoding and validating /predict bodies (one place), encoding every
// response body, and errc -> status. No Beast include: it is plain text in,
// plain text out, and unit-tested directly.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "messages/messages.hpp"

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

/// Parses and validates a /predict body: {"features": [[D numbers], ...],
/// "use_cache": bool, "max_age_ms": integer in [0, a year], "max_wrong_rate":
/// number in (0, 1], "timeout_ms": integer in [1, 600000]} (all but
/// "features" optional).
/// Unknown fields are ignored. Every failure is errc::bad_request with a
/// message that says what is wrong and where. Never throws.
result<predict_request> decode_predict(std::string_view body, const decode_limits& limits);

/// {"prediction": ..., "cache_hit": ..., "latency_ms": ..., ...}
std::string encode_predict(const predict_reply& r, double latency_ms);

/// {"error": {"code": "...", "message": "..."}}
std::string encode_error(const error& e);

/// The /stats body.
std::string encode_stats(const service_snapshot& s);

/// The GET /agent body (also the answer of admin commands).
std::string encode_agent(const agent_snapshot& a);

/// Parses a PUT /admin/cache/ttl body {"ttl_seconds": x}, 0 <= x <= 1 year.
result<double> decode_ttl(std::string_view body);

/// Checks an Authorization header against the configured admin token:
/// forbidden if no token is configured, unauthorized if the header is
/// missing or wrong (compared in constant time).
status check_admin(std::string_view authorization, std::string_view token);

/// The /health body.
std::string encode_health(bool cache_enabled, std::uint32_t workers, std::size_t in_flight,
                          std::string_view version);

/// The HTTP status for an error code: the only place this mapping exists.
unsigned status_for(errc code) noexcept;

} // namespace sil::http_api
