#include "http/codec.hpp"

#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sil::http_api {

namespace {

using json = nlohmann::json;

/// SAX handler that parses straight into the request's float buffer: no DOM,
/// one pass, and it stops at the first problem.
std::string fmt_double(const char* pattern, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, pattern, v);
  return buf;
}

std::string fmt_number(double v) {
  return fmt_double("%.17g", v);
}

class predict_sax {
public:
  explicit predict_sax(const decode_limits& limits)
    : limits_(limits) {
    req_.features.reserve(limits.input_dim);
  }

  // -- scalar values ---------------------------------------------------------

  bool null() {
    return scalar("null");
  }

  bool boolean(bool v) {
    if (state_ == state::use_cache_value) {
      req_.use_cache = v;
      state_ = state::top;
      return true;
    }
    return scalar("a boolean");
  }

  bool number_integer(json::number_integer_t v) {
    return number(static_cast<double>(v), true);
  }

  bool number_unsigned(json::number_unsigned_t v) {
    return number(static_cast<double>(v), true);
  }

  bool number_float(json::number_float_t v, const json::string_t&) {
    return number(v, false);
  }

  bool string(json::string_t&) {
    return scalar("a string");
  }

  bool binary(json::binary_t&) {
    return scalar("binary data");
  }

  // -- structure -------------------------------------------------------------

  bool start_object(std::size_t) {
    if (skip_depth_ > 0) {
      ++skip_depth_;
      return true;
    }
    switch (state_) {
      case state::start:
        state_ = state::top;
        return true;
      case state::skip_value:
        skip_depth_ = 1;
        return true;
      default:
        return scalar("an object");
    }
  }

  bool end_object() {
    if (skip_depth_ > 0)
      return end_skipped();
    state_ = state::done;
    return true;
  }

  bool key(json::string_t& k) {
    if (skip_depth_ > 0)
      return true;
    if (k == "features") {
      if (seen_features_)
        return fail("field 'features' appears twice");
      seen_features_ = true;
      state_ = state::features_value;
    } else if (k == "use_cache") {
      state_ = state::use_cache_value;
    } else if (k == "max_age_ms") {
      state_ = state::max_age_value;
    } else if (k == "max_wrong_rate") {
      state_ = state::max_wrong_rate_value;
    } else if (k == "timeout_ms") {
      state_ = state::timeout_value;
    } else {
      state_ = state::skip_value; // unknown fields are ignored
    }
    return true;
  }

  bool start_array(std::size_t) {
    if (skip_depth_ > 0) {
      ++skip_depth_;
      return true;
    }
    switch (state_) {
      case state::features_value:
        state_ = state::in_features;
        return true;
      case state::in_features:
        if (rows_ == limits_.max_rows)
          return fail("'features' has more than " + std::to_string(limits_.max_rows)
                      + " rows, the limit");
        state_ = state::in_row;
        row_len_ = 0;
        return true;
      case state::skip_value:
        skip_depth_ = 1;
        return true;
      case state::start:
        return fail("the body must be a JSON object, not an array");
      default:
        return scalar("an array");
    }
  }

  bool end_array() {
    if (skip_depth_ > 0)
      return end_skipped();
    if (state_ == state::in_row) {
      if (row_len_ != limits_.input_dim)
        return fail("row " + std::to_string(rows_) + " has " + std::to_string(row_len_)
                    + " values, expected " + std::to_string(limits_.input_dim));
      ++rows_;
      state_ = state::in_features;
      return true;
    }
    // End of 'features'.
    state_ = state::top;
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    if (error_.empty()) {
      // nlohmann's text starts with "[json.exception.parse_error.101] ".
      std::string what = ex.what();
      if (auto p = what.find("] "); p != std::string::npos)
        what.erase(0, p + 2);
      error_ = "malformed JSON: " + what;
    }
    return false;
  }

  // -- results ---------------------------------------------------------------

  result<predict_request> finish() {
    if (!error_.empty())
      return error{errc::bad_request, error_};
    if (state_ != state::done)
      return error{errc::bad_request, "malformed JSON: the body ends early"};
    if (!seen_features_)
      return error{errc::bad_request, "missing field 'features'"};
    if (rows_ == 0)
      return error{errc::bad_request, "'features' must have at least 1 row"};
    req_.rows = static_cast<std::uint32_t>(rows_);
    return std::move(req_);
  }

private:
  enum class state {
    start,
    top,
    features_value,
    in_features,
    in_row,
    use_cache_value,
    max_age_value,
    max_wrong_rate_value,
    timeout_value,
    skip_value,
    done,
  };

  bool fail(std::string msg) {
    if (error_.empty())
      error_ = std::move(msg);
    return false;
  }

  bool end_skipped() {
    if (--skip_depth_ == 0)
      state_ = state::top;
    return true;
  }

  std::string where() const {
    return "features[" + std::to_string(rows_) + "][" + std::to_string(row_len_) + "]";
  }

  /// A scalar (or a structure) where it does not belong.
  bool scalar(const char* what) {
    if (skip_depth_ > 0)
      return true;
    switch (state_) {
      case state::skip_value:
        state_ = state::top;
        return true;
      case state::start:
        return fail(std::string{"the body must be a JSON object, not "} + what);
      case state::features_value:
        return fail(std::string{"'features' must be an array of rows, not "} + what);
      case state::in_features:
        return fail("row " + std::to_string(rows_) + " must be an array of "
                    + std::to_string(limits_.input_dim) + " numbers, not " + what);
      case state::in_row:
        return fail(where() + " must be a number, not " + what);
      case state::use_cache_value:
        return fail(std::string{"'use_cache' must be true or false, not "} + what);
      case state::max_age_value:
        return fail(std::string{"'max_age_ms' must be an integer in [0, "}
                    + std::to_string(max_age_limit_ms) + "], not " + what);
      case state::max_wrong_rate_value:
        return fail(std::string{"'max_wrong_rate' must be a number in (0, 1], not "} + what);
      case state::timeout_value:
        return fail(std::string{"'timeout_ms' must be an integer in [1, "}
                    + std::to_string(timeout_limit_ms) + "], not " + what);
      default:
        return fail(std::string{"unexpected "} + what);
    }
  }

  bool number(double v, bool integral) {
    if (skip_depth_ > 0)
      return true;
    switch (state_) {
      case state::in_row:
        if (row_len_ == limits_.input_dim)
          return fail("row " + std::to_string(rows_) + " has more than "
                      + std::to_string(limits_.input_dim) + " values");
        if (!std::isfinite(v) || std::fabs(v) > static_cast<double>(FLT_MAX))
          return fail(where() + " is not a finite 32-bit float");
        req_.features.push_back(static_cast<float>(v));
        ++row_len_;
        return true;
      case state::max_age_value:
        // Bounded here, so that no later conversion to nanoseconds can
        // overflow: a year is longer than any TTL the cache accepts.
        if (!integral || !(v >= 0.0 && v <= static_cast<double>(max_age_limit_ms)))
          return fail("'max_age_ms' must be an integer in [0, " + std::to_string(max_age_limit_ms)
                      + "] (a year), got " + fmt_number(v));
        req_.max_age_ms = static_cast<std::int64_t>(v);
        state_ = state::top;
        return true;
      case state::timeout_value:
        if (!integral || !(v >= 1.0 && v <= static_cast<double>(timeout_limit_ms)))
          return fail("'timeout_ms' must be an integer in [1, " + std::to_string(timeout_limit_ms)
                      + "] (ten minutes), got " + fmt_number(v));
        req_.timeout_ms = static_cast<std::int64_t>(v);
        state_ = state::top;
        return true;
      case state::max_wrong_rate_value:
        if (!(v > 0.0 && v <= 1.0))
          return fail("'max_wrong_rate' must be a number in (0, 1], got " + fmt_number(v));
        req_.max_wrong_rate = v;
        state_ = state::top;
        return true;
      default:
        return scalar("a number");
    }
  }

  decode_limits limits_;
  predict_request req_;
  state state_ = state::start;
  std::size_t skip_depth_ = 0;
  std::size_t rows_ = 0;
  std::size_t row_len_ = 0;
  bool seen_features_ = false;
  std::string error_;
};

json agent_json(const agent_snapshot& a) {
  json decisions = json::array();
  for (const auto& d : a.decisions)
    decisions.push_back({{"unix_ms", d.unix_ms},
                         {"from", d.from},
                         {"to", d.to},
                         {"action", d.action},
                         {"manual", d.manual},
                         {"reason", d.reason},
                         {"observation",
                          {{"samples", d.samples},
                           {"p50", d.p50},
                           {"p95", d.p95},
                           {"max", d.max},
                           {"hits", d.hits},
                           {"misses", d.misses},
                           {"labels", d.labels},
                           {"wrong", d.wrong}}},
                         {"ttl_seconds", d.ttl_seconds}});
  return {{"state", a.mode},
          {"enabled", a.acts},
          {"manual_override", a.manual_override},
          {"ttl_seconds", a.ttl_seconds},
          {"clean_windows", a.clean_windows},
          {"reports", a.reports},
          {"trigger", a.trigger},
          {"served",
           {{"labels", a.served_labels},
            {"wrong", a.served_wrong},
            {"rate", a.served_labels == 0 ? 0.0
                                          : static_cast<double>(a.served_wrong)
                                              / static_cast<double>(a.served_labels)},
            {"lower", a.served_lower},
            {"upper", a.served_upper},
            {"confidence", a.confidence},
            {"max_wrong_rate", a.max_wrong_rate}}},
          {"thresholds",
           {{"recover", a.recover_threshold},
            {"ttl", a.ttl_threshold},
            {"disable", a.disable_threshold},
            {"entry_evict", a.entry_evict_threshold},
            {"recover_windows", a.recover_windows},
            {"min_samples", a.min_samples},
            {"base_ttl_seconds", a.base_ttl_seconds},
            {"ttl_floor_seconds", a.ttl_floor_seconds},
            {"interval_seconds", a.interval_seconds},
            {"max_wrong_rate", a.max_wrong_rate},
            {"disable_wrong_rate", a.disable_wrong_rate}}},
          {"decisions", decisions}};
}

json nodes_json(const std::vector<node_info>& nodes) {
  json out = json::array();
  for (const auto& n : nodes)
    out.push_back({{"name", n.name},
                   {"state", n.state},
                   {"workers", n.workers},
                   {"outstanding", n.outstanding},
                   {"encodes", n.encodes},
                   {"changed_unix_ms", n.changed_unix_ms}});
  return out;
}

json latency_json(const latency_summary& l) {
  return {{"count", l.count}, {"window", l.window}, {"mean", l.mean}, {"p50", l.p50},
          {"p95", l.p95},     {"p99", l.p99},       {"max", l.max}};
}

json risk_json(const service_snapshot& s) {
  const auto& g = s.cache.guard;
  const auto& v = s.served;
  json shapes = json::array();
  for (const auto& sh : g.shapes)
    shapes.push_back(
      {{"rows", sh.rows}, {"labels", sh.labels}, {"wrong", sh.wrong}, {"reach", sh.reach}});
  return {
    {"guard", g.enabled},
    {"tolerance", g.tolerance},
    {"max_wrong_rate", g.max_wrong_rate},
    {"confidence", g.confidence},
    {"prefix_unit", g.prefix_unit},
    {"exact", g.exact},
    {"certified", g.certified},
    {"refused", g.refused},
    {"unguarded", g.unguarded},
    {"labels", g.labels},
    {"wrong_labels", g.wrong_labels},
    {"shapes", shapes},
    {"served",
     {{"audits", v.total_labels},
      {"wrong", v.total_wrong},
      {"window", v.labels},
      {"window_wrong", v.wrong},
      {"rate", v.labels == 0 ? 0.0 : static_cast<double>(v.wrong) / static_cast<double>(v.labels)},
      {"lower", v.lower},
      {"upper", v.upper}}}};
}

/// Appends `v` as printf would with %.<precision>g (general) or
/// %.<precision>f (fixed), or null if it is not finite. std::to_chars
/// formats exactly as printf does, several times faster: this runs once
/// per answer.
void append_number(std::string& out, double v, std::chars_format format, int precision) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, format, precision);
  if (ec == std::errc{})
    out.append(buf, end);
  else
    out += fmt_double("%.17g", v);
}

} // namespace

result<predict_request> decode_predict(std::string_view body, const decode_limits& limits) {
  predict_sax sax{limits};
  try {
    json::sax_parse(body.begin(), body.end(), &sax, json::input_format_t::json, true);
  } catch (const std::exception& e) {
    // sax_parse reports through parse_error(); this is the last line of
    // defence at the decoding edge.
    return error{errc::bad_request, std::string{"malformed JSON: "} + e.what()};
  }
  return sax.finish();
}

std::string encode_predict(const predict_reply& r, double latency_ms) {
  std::string out;
  out.reserve(256);
  out += "{\"prediction\":";
  append_number(out, static_cast<double>(r.prediction), std::chars_format::general, 9);
  out += r.cache_hit ? ",\"cache_hit\":true" : ",\"cache_hit\":false";
  out += ",\"latency_ms\":";
  append_number(out, latency_ms, std::chars_format::fixed, 4);
  out += ",\"source\":\"";
  out += to_string(r.source);
  out += "\",\"model_version\":\"";
  out += r.model_version;
  out += '"';
  if (r.source == embedding_source::cache) {
    out += ",\"cache_age_ms\":";
    append_number(out, static_cast<double>(r.cache_age_ns) / 1e6, std::chars_format::fixed, 3);
  }
  if (r.risk.present) {
    out += ",\"risk\":{\"basis\":\"";
    out += to_string(r.risk.basis);
    out += "\",\"distance\":";
    append_number(out, r.risk.distance, std::chars_format::general, 6);
    out += ",\"p_wrong_upper\":";
    append_number(out, r.risk.p_wrong_upper, std::chars_format::general, 6);
    out += '}';
  }
  out += '}';
  return out;
}

std::string encode_error(const error& e) {
  json j = {{"error", {{"code", to_string(e.code)}, {"message", e.message}}}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_stats(const service_snapshot& s) {
  const auto& c = s.cache;
  json j = {
    {"cache",
     {{"policy", "LRU+TTL"},
      {"enabled", c.enabled},
      {"single_flight", c.single_flight},
      {"size", c.size},
      {"max_size", c.max_size},
      {"ttl_seconds", static_cast<double>(c.ttl_ns) / 1e9},
      {"prefix_k", c.prefix_k},
      {"hits", c.hits},
      {"misses", c.misses},
      {"expired", c.expirations},
      {"evictions", c.evictions},
      {"inserts", c.inserts},
      {"erasures", c.erasures},
      {"bypasses", c.bypasses},
      {"single_flight_joins", c.single_flight_joins},
      {"in_flight", c.in_flight},
      {"read_path_hits", c.read_path_hits},
      {"access_batches", c.access_batches},
      {"accesses_applied", c.accesses_applied},
      {"accesses_dropped", c.accesses_dropped},
      {"hit_rate", c.hit_rate()}}},
    {"latency", latency_json(s.latency)},
    {"latency_hit", latency_json(s.hit_latency)},
    {"latency_miss", latency_json(s.miss_latency)},
    {"requests",
     {{"predict", s.requests}, {"errors", s.errors}, {"rejected_overload", s.rejected_overload}}},
    {"encoder",
     {{"workers", s.pool.workers},
      {"batches", s.pool.batches},
      {"items", s.pool.items},
      {"largest_batch", s.pool.max_batch_seen},
      {"retries", s.pool.retries},
      {"failures", s.pool.failures},
      {"restarts", s.pool.restarts},
      {"queued", s.pool.queued},
      {"outstanding", s.pool.outstanding},
      {"fallback_items", s.pool.fallback_items},
      {"busy_seconds", s.pool.busy_seconds},
      {"gflop", s.pool.flops / 1e9},
      {"cancelled", s.pool.cancelled},
      {"shed", s.pool.shed},
      {"expired", s.pool.expired},
      {"queued_rows", s.pool.queued_rows},
      {"rows_per_second", s.pool.rows_per_second},
      {"nodes", nodes_json(s.pool.nodes)}}},
    {"http",
     {{"connections", s.http.connections_open},
      {"connections_refused", s.http.connections_refused},
      {"accept_backoffs", s.http.accept_backoffs},
      {"clients_gone", s.http.clients_gone},
      {"read_timeouts", s.http.read_timeouts},
      {"framing_errors", s.http.framing_errors}}},
    {"agent",
     {{"state", s.agent.mode.empty() ? s.pool.agent_mode : s.agent.mode},
      {"enabled", s.agent.acts},
      {"manual_override", s.agent.manual_override},
      {"ttl_seconds", s.agent.ttl_seconds},
      {"reports", s.agent.reports},
      {"decisions", s.agent.decisions.size()},
      {"last_decision",
       s.agent.decisions.empty() ? json(nullptr) : json(s.agent.decisions.back().action)}}},
    {"divergence",
     {{"cosine", latency_json(s.cosine)},
      {"l2", latency_json(s.l2)},
      {"prediction_delta", latency_json(s.prediction_delta)},
      {"audits", s.audit.audits},
      {"audits_skipped", s.audit.skipped},
      {"audits_failed", s.audit.failed},
      {"shadow_comparisons", s.audit.shadow_comparisons},
      {"audit_rate", s.audit.rate},
      {"audit_max_share", s.audit.max_share},
      {"invalidations", s.cache.invalidations}}},
    {"risk", risk_json(s)},
    {"model", {{"name", s.model_name}, {"version", s.model_version}}},
    {"uptime_seconds", s.uptime_s},
  };
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_agent(const agent_snapshot& a) {
  return agent_json(a).dump(-1, ' ', false, json::error_handler_t::replace);
}

result<double> decode_ttl(std::string_view body) {
  auto j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return error{errc::bad_request, "body must be a JSON object {\"ttl_seconds\": number}"};
  auto i = j.find("ttl_seconds");
  if (i == j.end())
    return error{errc::bad_request, "missing field 'ttl_seconds'"};
  if (!i->is_number())
    return error{errc::bad_request, "'ttl_seconds' must be a number"};
  auto v = i->get<double>();
  if (!std::isfinite(v) || v < 0.0 || v > 31536000.0)
    return error{errc::bad_request, "'ttl_seconds' must be in [0, 31536000]"};
  return v;
}

status check_admin(std::string_view authorization, std::string_view token) {
  if (token.empty())
    return {errc::forbidden, "the admin API is disabled: set admin.token to enable it"};
  // RFC 7235: the scheme is case-insensitive, and one or more spaces
  // separate it from the credentials.
  constexpr std::string_view scheme = "bearer";
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  bool is_bearer = authorization.size() > scheme.size() && authorization[scheme.size()] == ' ';
  for (std::size_t i = 0; is_bearer && i < scheme.size(); ++i)
    is_bearer = lower(authorization[i]) == scheme[i];
  if (!is_bearer)
    return {errc::unauthorized, "missing 'Authorization: Bearer <token>' header"};
  auto given = authorization.substr(scheme.size());
  while (!given.empty() && given.front() == ' ')
    given.remove_prefix(1);
  // Constant time in the token's length: no early exit on the first mismatch.
  unsigned diff = given.size() == token.size() ? 0u : 1u;
  for (std::size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned>(static_cast<unsigned char>(token[i])
                                  ^ static_cast<unsigned char>(i < given.size() ? given[i] : 0));
  if (diff != 0)
    return {errc::unauthorized, "wrong admin token"};
  return ok();
}

std::string encode_health(bool cache_enabled, std::uint32_t workers, std::size_t in_flight,
                          std::string_view version) {
  std::string out = "{\"status\":\"";
  out += workers > 0 ? "ok" : "degraded";
  out += "\",\"cache_enabled\":";
  out += cache_enabled ? "true" : "false";
  out += ",\"workers\":" + std::to_string(workers);
  out += ",\"in_flight\":" + std::to_string(in_flight) + ",\"model_version\":\"";
  out.append(version.data(), version.size());
  out += "\"}";
  return out;
}

unsigned status_for(errc code) noexcept {
  switch (code) {
    case errc::invalid_argument:
    case errc::bad_request:
    case errc::non_finite:
    case errc::shape_mismatch:
      return 400;
    case errc::unauthorized:
      return 401;
    case errc::forbidden:
      return 403;
    case errc::not_found:
      return 404;
    case errc::method_not_allowed:
      return 405;
    case errc::request_timeout:
      return 408;
    case errc::payload_too_large:
      return 413;
    case errc::uri_too_long:
      return 414;
    case errc::unsupported_media_type:
      return 415;
    case errc::header_too_large:
      return 431;
    case errc::cancelled:
      return 499; // nginx's "client closed request": never written, counted
    case errc::overloaded:
    case errc::unavailable:
      return 503;
    case errc::encoder_timeout:
      return 504;
    case errc::invalid_config:
    case errc::io_error:
    case errc::bad_format:
    case errc::internal:
      return 500;
  }
  return 500;
}

} // namespace sil::http_api
