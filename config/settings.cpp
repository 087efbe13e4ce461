#include "config/settings.hpp"

#include <cmath>
#include <sstream>

#include "core/admission.hpp"
#include "core/agent_policy.hpp"
#include "core/prefix_key.hpp"
#include "core/text.hpp"

namespace sil {

namespace {

status bad(const char* key, const std::string& rule, const std::string& got) {
  return {errc::invalid_config, std::string{key} + " " + rule + ", got " + got};
}

template <class T>
std::string str(T v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

status int_range(const char* key, std::int64_t v, std::int64_t lo, std::int64_t hi) {
  if (v < lo || v > hi)
    return bad(key, "must be in [" + str(lo) + ", " + str(hi) + "]", str(v));
  return ok();
}

status seconds_range(const char* key, double v, double lo, double hi, bool lo_inclusive) {
  bool low_ok = lo_inclusive ? v >= lo : v > lo;
  if (!std::isfinite(v) || !low_ok || v > hi)
    return bad(key,
               std::string{"must be "} + (lo_inclusive ? ">= " : "> ") + str(lo)
                 + " and <= " + str(hi) + " seconds",
               str(v));
  return ok();
}

status fraction(const char* key, double v, double hi = 1.0) {
  if (!std::isfinite(v) || v < 0.0 || v > hi)
    return bad(key, "must be in [0, " + str(hi) + "]", str(v));
  return ok();
}

} // namespace

std::optional<std::pair<std::string, std::uint16_t>> split_host_port(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= s.size())
    return std::nullopt;
  auto port_text = s.substr(colon + 1);
  if (port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5)
    return std::nullopt;
  auto port = std::stol(port_text);
  if (port < 1 || port > 65535)
    return std::nullopt;
  return std::make_pair(s.substr(0, colon), static_cast<std::uint16_t>(port));
}

namespace {

bool is_hex_digit(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/// scheme://host[:port], in lower case as browsers send it (an IPv6 host
/// in brackets), without a path.
bool valid_origin(std::string_view o) {
  auto sep = o.find("://");
  if (sep == std::string_view::npos || sep == 0)
    return false;
  for (char c : o.substr(0, sep))
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
      return false;
  auto rest = o.substr(sep + 3);
  auto host = rest;
  std::string_view port;
  bool has_port = false;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos)
      return false;
    host = rest.substr(1, close - 1);
    auto after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return false;
      port = after.substr(1);
      has_port = true;
    }
    if (host.empty())
      return false;
    for (char c : host)
      if (!(is_hex_digit(c) || c == ':' || c == '.'))
        return false;
  } else {
    auto colon = rest.find(':');
    if (colon != std::string_view::npos) {
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
      has_port = true;
    }
    if (host.empty())
      return false;
    for (char c : host)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
        return false;
  }
  if (has_port) {
    if (port.empty() || port.size() > 5)
      return false;
    for (char c : port)
      if (c < '0' || c > '9')
        return false;
  }
  return true;
}

status open_fraction(const char* key, double v, double hi) {
  if (!std::isfinite(v) || v <= 0.0 || v >= hi)
    return bad(key, "must be in (0, " + str(hi) + ")", str(v));
  return ok();
}

bool valid_host_port(const std::string& s) {
  return split_host_port(s).has_value();
}

} // namespace

result<std::vector<std::string>> parse_cors_origins(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = trim_blanks(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (item.empty())
      continue;
    if (item != "*" && !valid_origin(item))
      return error{errc::invalid_config,
                   "http.cors-origins: '" + std::string{item}
                     + "' is not an origin: expected * or scheme://host[:port] in lower case, "
                       "without a path (e.g. https://app.example.com)"};
    out.emplace_back(item);
  }
  return out;
}

result<std::vector<model_spec>> parse_model_specs(std::string_view list) {
  std::vector<model_spec> out;
  while (!list.empty()) {
    auto semi = list.find(';');
    auto item = trim_blanks(list.substr(0, semi));
    list = semi == std::string_view::npos ? std::string_view{} : list.substr(semi + 1);
    if (item.empty())
      continue;
    auto spec = parse_model_spec(item);
    if (!spec)
      return error{errc::invalid_config, "models.load: " + spec.error().message};
    out.push_back(std::move(*spec));
  }
  return out;
}

status validate(const service_settings& s, std::size_t input_dim) {
  if (auto origins = parse_cors_origins(s.http_cors_origins); !origins)
    return origins.error();
  if (auto specs = parse_model_specs(s.models_load); !specs)
    return specs.error();
  if (!s.model_name.empty())
    if (auto st = validate_model_name(s.model_name); !st)
      return bad("model.name", st.error().message, s.model_name);
  const status checks[] = {
    int_range("port", s.port, 0, 65535),
    s.host.empty() ? bad("host", "must not be empty", "\"\"") : ok(),
    int_range("cache.max-size", s.cache_max_size, 1, std::int64_t{1} << 30),
    parse_admission_policy(s.cache_admission)
      ? ok()
      : bad("cache.admission", "must be lru or tinylfu", s.cache_admission),
    seconds_range("cache.ttl-seconds", s.cache_ttl_seconds, 0.0, 31536000.0, true),
    int_range("cache.prefix-k", s.cache_prefix_k, 1, static_cast<std::int64_t>(input_dim)),
    seconds_range("cache.sweep-interval", s.cache_sweep_interval_seconds, 0.0, 3600.0, false),
    int_range("model.seed", s.model_seed, 0, INT64_MAX),
    int_range("models.max-bytes", s.models_max_bytes, 0, INT64_MAX),
    int_range("models.warm-encodes", s.models_warm_encodes, 0, 100000),
    fraction("canary.margin", s.canary_margin),
    fraction("canary.min-saving", s.canary_min_saving),
    fraction("canary.max-cost-increase", s.canary_max_cost_increase),
    int_range("canary.min-labels", s.canary_min_labels, 1, 100000000),
    int_range("canary.min-requests", s.canary_min_requests, 1, 100000000),
    seconds_range("canary.max-seconds", s.canary_max_seconds, 0.0, 31536000.0, true),
    seconds_range("canary.interval", s.canary_interval_seconds, 0.0, 3600.0, false),
    int_range("workers", s.workers, 0, 256),
    int_range("encoder.max-batch", s.encoder_max_batch, 1, 4096),
    seconds_range("encoder.timeout", s.encoder_timeout_seconds, 0.0, 3600.0, false),
    int_range("encoder.max-attempts", s.encoder_max_attempts, 1, 16),
    int_range("encoder.nice", s.encoder_nice, 0, 19),
    int_range("http.threads", s.http_threads, 1, 64),
    int_range("http.body-limit", s.http_body_limit, 64, std::int64_t{1} << 30),
    seconds_range("http.read-timeout", s.http_read_timeout_seconds, 0.0, 3600.0, false),
    int_range("http.max-inflight", s.http_max_inflight, 1, 1 << 20),
    int_range("http.max-rows", s.http_max_rows, 1, 4096),
    seconds_range("http.drain-timeout", s.http_drain_timeout_seconds, 0.0, 3600.0, true),
    int_range("http.max-connections", s.http_max_connections, 0, 1 << 24),
    seconds_range("http.max-queue-delay", s.http_max_queue_delay_seconds, 0.0, 600.0, true),
    seconds_range("http.linger", s.http_linger_seconds, 0.0, 60.0, true),
    seconds_range("agent.interval", s.agent_interval_seconds, 0.0, 3600.0, false),
    parse_prefix_unit(s.cache_prefix_unit)
      ? ok()
      : bad("cache.prefix-unit", "must be values or rows", s.cache_prefix_unit),
    open_fraction("risk.tolerance", s.risk_tolerance, 1.0),
    open_fraction("risk.max-wrong-rate", s.risk_max_wrong_rate, 1.0),
    std::isfinite(s.risk_confidence) && s.risk_confidence >= 0.5 && s.risk_confidence < 1.0
      ? ok()
      : bad("risk.confidence", "must be in [0.5, 1)", str(s.risk_confidence)),
    parse_agent_trigger(s.agent_trigger)
      ? ok()
      : bad("agent.trigger", "must be wrong-rate or cosine", s.agent_trigger),
    s.agent_disable_wrong_rate > s.risk_max_wrong_rate && s.agent_disable_wrong_rate <= 1.0
      ? ok()
      : bad("agent.disable-wrong-rate", "must lie in (risk.max-wrong-rate, 1]",
            str(s.agent_disable_wrong_rate)),
    int_range("agent.label-window", s.agent_label_window, 10, 1000000),
    std::isfinite(s.audit_per_second) && s.audit_per_second >= 0.0 && s.audit_per_second <= 1e6
      ? ok()
      : bad("audit.per-second", "must be in [0, 1000000]", str(s.audit_per_second)),
    fraction("audit.max-encoder-share", s.audit_max_encoder_share),
    fraction("audit.rate", s.audit_rate),
    fraction("audit.max-share", s.audit_max_share),
    seconds_range("audit.window", s.audit_window_seconds, 0.0, 86400.0, false),
    fraction("agent.recover-threshold", s.agent_recover_threshold, 2.0),
    fraction("agent.ttl-threshold", s.agent_ttl_threshold, 2.0),
    fraction("agent.disable-threshold", s.agent_disable_threshold, 2.0),
    fraction("agent.entry-evict-threshold", s.agent_entry_evict_threshold, 2.0),
    int_range("agent.recover-windows", s.agent_recover_windows, 1, 1000),
    int_range("agent.min-samples", s.agent_min_samples, 1, 1000000),
    seconds_range("agent.ttl-floor", s.agent_ttl_floor_seconds, 0.0, 31536000.0, false),
    s.role == "standalone" || s.role == "gateway" || s.role == "worker"
      ? ok()
      : bad("role", "must be standalone, gateway or worker", s.role),
    s.role != "worker" || valid_host_port(s.gateway)
      ? ok()
      : bad("gateway", "must be HOST:PORT for a worker (e.g. 127.0.0.1:7000)",
            s.gateway.empty() ? "nothing" : s.gateway),
    int_range("cluster.port", s.cluster_port, 0, 65535),
    s.cluster_fallback == "local" || s.cluster_fallback == "reject"
      ? ok()
      : bad("cluster.fallback", "must be local or reject", s.cluster_fallback),
    s.log_level == "debug" || s.log_level == "info" || s.log_level == "warn"
        || s.log_level == "error"
      ? ok()
      : bad("log.level", "must be debug, info, warn or error", s.log_level),
    s.log_format == "text" || s.log_format == "json"
      ? ok()
      : bad("log.format", "must be text or json", s.log_format),
    s.agent_recover_threshold < s.agent_ttl_threshold
        && s.agent_ttl_threshold < s.agent_disable_threshold
      ? ok()
      : bad("agent.ttl-threshold",
            "must lie between agent.recover-threshold and agent.disable-threshold",
            str(s.agent_ttl_threshold)),
  };
  for (const auto& st : checks)
    if (!st)
      return st;
  return ok();
}

} // namespace sil
