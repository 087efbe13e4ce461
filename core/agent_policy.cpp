#include "core/agent_policy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "core/reuse_guard.hpp"

namespace sil {

const char* to_string(agent_mode m) noexcept {
  switch (m) {
    case agent_mode::normal:
      return "normal";
    case agent_mode::short_ttl:
      return "short_ttl";
    case agent_mode::disabled:
      return "disabled";
  }
  return "unknown";
}

const char* to_string(agent_action a) noexcept {
  switch (a) {
    case agent_action::keep:
      return "keep";
    case agent_action::shorten_ttl:
      return "shorten_ttl";
    case agent_action::restore_ttl:
      return "restore_ttl";
    case agent_action::disable:
      return "disable";
    case agent_action::enable:
      return "enable";
  }
  return "unknown";
}

const char* to_string(agent_trigger t) noexcept {
  return t == agent_trigger::wrong_rate ? "wrong-rate" : "cosine";
}

std::optional<agent_trigger> parse_agent_trigger(std::string_view text) noexcept {
  for (auto t : {agent_trigger::wrong_rate, agent_trigger::cosine})
    if (text == to_string(t))
      return t;
  return std::nullopt;
}

status validate(const policy_config& cfg) {
  if (cfg.trigger == agent_trigger::wrong_rate) {
    if (!(cfg.max_wrong_rate > 0.0 && cfg.max_wrong_rate < cfg.disable_wrong_rate
          && cfg.disable_wrong_rate <= 1.0))
      return {errc::invalid_config,
              "agent.disable-wrong-rate must lie in (risk.max-wrong-rate, 1]"};
    if (!(cfg.confidence >= 0.5 && cfg.confidence < 1.0))
      return {errc::invalid_config, "risk.confidence must be in [0.5, 1)"};
  }
  auto finite = [](double x) { return std::isfinite(x); };
  if (!finite(cfg.recover_threshold) || !finite(cfg.ttl_threshold) || !finite(cfg.disable_threshold)
      || !finite(cfg.base_ttl_seconds) || !finite(cfg.ttl_floor_seconds))
    return {errc::invalid_config, "agent thresholds and TTLs must be finite numbers"};
  if (!(cfg.recover_threshold >= 0.0 && cfg.recover_threshold < cfg.ttl_threshold
        && cfg.ttl_threshold < cfg.disable_threshold))
    return {errc::invalid_config, "agent thresholds must satisfy 0 <= recover < ttl < disable"};
  if (cfg.recover_windows == 0)
    return {errc::invalid_config, "agent recover_windows must be at least 1"};
  if (cfg.min_samples == 0)
    return {errc::invalid_config, "agent min_samples must be at least 1"};
  if (!(cfg.ttl_floor_seconds > 0.0 && cfg.ttl_floor_seconds <= cfg.base_ttl_seconds))
    return {errc::invalid_config, "agent ttl floor must satisfy 0 < floor <= base ttl"};
  return ok();
}

double scaled_ttl(double p95, const policy_config& cfg) noexcept {
  bool rate = cfg.trigger == agent_trigger::wrong_rate;
  double lo = rate ? cfg.max_wrong_rate : cfg.ttl_threshold;
  double hi = rate ? cfg.disable_wrong_rate : cfg.disable_threshold;
  double span = hi - lo;
  double frac = span > 0.0 ? (p95 - lo) / span : 1.0;
  frac = std::clamp(frac, 0.0, 1.0);
  double ttl = cfg.base_ttl_seconds - frac * (cfg.base_ttl_seconds - cfg.ttl_floor_seconds);
  return std::clamp(ttl, cfg.ttl_floor_seconds, cfg.base_ttl_seconds);
}

namespace {

std::string describe(const observation& obs, const char* verdict) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "%s: p95 cosine %.4g (p50 %.4g, max %.4g, n=%zu; hits=%llu misses=%llu "
                "audits=%llu)",
                verdict, obs.divergence.p95, obs.divergence.p50, obs.divergence.max,
                obs.divergence.count, static_cast<unsigned long long>(obs.hits),
                static_cast<unsigned long long>(obs.misses),
                static_cast<unsigned long long>(obs.audits));
  return buf;
}

std::string fmt(const char* pattern, double a, double b) {
  char buf[128];
  std::snprintf(buf, sizeof buf, pattern, a, b);
  return buf;
}

std::string describe_rate(const observation& obs, const char* verdict, double lo, double hi) {
  char buf[256];
  double n = static_cast<double>(obs.labels);
  std::snprintf(
    buf, sizeof buf,
    "%s: served wrong-rate %llu/%llu = %.4g (bounds %.4g..%.4g; hits=%llu misses=%llu "
    "audits=%llu)",
    verdict, static_cast<unsigned long long>(obs.wrong),
    static_cast<unsigned long long>(obs.labels), n > 0 ? static_cast<double>(obs.wrong) / n : 0.0,
    lo, hi, static_cast<unsigned long long>(obs.hits), static_cast<unsigned long long>(obs.misses),
    static_cast<unsigned long long>(obs.audits));
  return buf;
}

/// One window's evidence, read through the configured trigger.
struct reading {
  bool evidence = false;
  /// The value that scales the TTL (p95 cosine, or the rate's lower bound).
  double risk = 0.0;
  bool disable = false;
  bool shorten = false;
  bool clean = false;
  double disable_at = 0.0;
  double shorten_at = 0.0;
  /// Describes the window with a verdict.
  std::function<std::string(const char*)> text;
};

reading read(const observation& obs, const policy_config& cfg) {
  reading r;
  if (cfg.trigger == agent_trigger::cosine) {
    r.evidence = obs.divergence.count >= cfg.min_samples;
    r.risk = obs.divergence.p95;
    r.disable = r.risk > cfg.disable_threshold;
    r.shorten = r.risk > cfg.ttl_threshold;
    r.clean = r.risk < cfg.recover_threshold;
    r.disable_at = cfg.disable_threshold;
    r.shorten_at = cfg.ttl_threshold;
    r.text = [&obs](const char* v) { return describe(obs, v); };
    return r;
  }
  r.evidence = obs.labels >= cfg.min_samples;
  double lo = binomial_lower_bound(obs.wrong, obs.labels, cfg.confidence);
  double hi = binomial_upper_bound(obs.wrong, obs.labels, cfg.confidence);
  double est
    = obs.labels == 0 ? 0.0 : static_cast<double>(obs.wrong) / static_cast<double>(obs.labels);
  r.risk = lo;
  r.disable = lo > cfg.disable_wrong_rate;
  r.shorten = lo > cfg.max_wrong_rate;
  r.clean = est <= cfg.max_wrong_rate / 2.0;
  r.disable_at = cfg.disable_wrong_rate;
  r.shorten_at = cfg.max_wrong_rate;
  r.text = [&obs, lo, hi](const char* v) { return describe_rate(obs, v, lo, hi); };
  return r;
}

} // namespace

decision decide(const observation& obs, const policy_config& cfg) {
  decision d;
  d.next = obs.state;
  const auto& st = obs.state;
  auto rd = read(obs, cfg);
  double risk = rd.risk;
  auto describe = [&](const char* v) { return rd.text(v); };

  if (!rd.evidence) {
    d.reason = describe("too few samples, no change");
    return d;
  }

  if (rd.disable) {
    d.next.clean_windows = 0;
    if (st.mode != agent_mode::disabled) {
      d.action = agent_action::disable;
      d.next.mode = agent_mode::disabled;
      // Re-enabling starts cautious, at the floor TTL.
      d.next.ttl_seconds = cfg.ttl_floor_seconds;
      d.reason
        = describe("above disable threshold")
          + fmt(" > %.4g; reuse off, ttl on re-enable %.3gs", rd.disable_at, cfg.ttl_floor_seconds);
    } else {
      d.reason = describe("still above disable threshold, stay disabled");
    }
    return d;
  }

  if (rd.shorten) {
    d.next.clean_windows = 0;
    double ttl = scaled_ttl(risk, cfg);
    if (st.mode == agent_mode::normal
        || (st.mode == agent_mode::short_ttl && ttl < st.ttl_seconds)) {
      d.action = agent_action::shorten_ttl;
      d.next.mode = agent_mode::short_ttl;
      d.next.ttl_seconds = ttl;
      d.reason = describe("above ttl threshold") + fmt(" > %.4g; ttl -> %.3gs", rd.shorten_at, ttl);
    } else {
      d.reason = describe("above ttl threshold, no change");
    }
    return d;
  }

  if (!rd.clean) {
    // Hysteresis band: neither risky enough to act nor clean enough to recover.
    d.next.clean_windows = 0;
    d.reason = describe("in hysteresis band, clean streak reset");
    return d;
  }

  // A clean window.
  d.next.clean_windows = std::min(st.clean_windows + 1, cfg.recover_windows);
  if (st.mode == agent_mode::normal || d.next.clean_windows < cfg.recover_windows) {
    d.reason = describe("clean window")
               + fmt(" (%.0f of %.0f)", static_cast<double>(d.next.clean_windows),
                     static_cast<double>(cfg.recover_windows));
    return d;
  }
  d.next.clean_windows = 0;
  if (st.mode == agent_mode::disabled) {
    d.action = agent_action::enable;
    d.next.mode = agent_mode::short_ttl;
    d.reason = describe("recovered")
               + fmt("; reuse on with ttl %.3gs (after %.0f clean windows)", d.next.ttl_seconds,
                     static_cast<double>(cfg.recover_windows));
  } else {
    d.action = agent_action::restore_ttl;
    d.next.mode = agent_mode::normal;
    d.next.ttl_seconds = cfg.base_ttl_seconds;
    d.reason = describe("recovered")
               + fmt("; ttl restored to %.3gs (after %.0f clean windows)", cfg.base_ttl_seconds,
                     static_cast<double>(cfg.recover_windows));
  }
  return d;
}

} // namespace sil
