#include "core/agent_policy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

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

status validate(const policy_config& cfg) {
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
  double span = cfg.disable_threshold - cfg.ttl_threshold;
  double frac = span > 0.0 ? (p95 - cfg.ttl_threshold) / span : 1.0;
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

} // namespace

decision decide(const observation& obs, const policy_config& cfg) {
  decision d;
  d.next = obs.state;
  const auto& st = obs.state;
  double risk = obs.divergence.p95;

  if (obs.divergence.count < cfg.min_samples) {
    d.reason = describe(obs, "too few samples, no change");
    return d;
  }

  if (risk > cfg.disable_threshold) {
    d.next.clean_windows = 0;
    if (st.mode != agent_mode::disabled) {
      d.action = agent_action::disable;
      d.next.mode = agent_mode::disabled;
      // Re-enabling starts cautious, at the floor TTL.
      d.next.ttl_seconds = cfg.ttl_floor_seconds;
      d.reason = describe(obs, "above disable threshold")
                 + fmt(" > %.4g; reuse off, ttl on re-enable %.3gs", cfg.disable_threshold,
                       cfg.ttl_floor_seconds);
    } else {
      d.reason = describe(obs, "still above disable threshold, stay disabled");
    }
    return d;
  }

  if (risk > cfg.ttl_threshold) {
    d.next.clean_windows = 0;
    double ttl = scaled_ttl(risk, cfg);
    if (st.mode == agent_mode::normal
        || (st.mode == agent_mode::short_ttl && ttl < st.ttl_seconds)) {
      d.action = agent_action::shorten_ttl;
      d.next.mode = agent_mode::short_ttl;
      d.next.ttl_seconds = ttl;
      d.reason = describe(obs, "above ttl threshold")
                 + fmt(" > %.4g; ttl -> %.3gs", cfg.ttl_threshold, ttl);
    } else {
      d.reason = describe(obs, "above ttl threshold, no change");
    }
    return d;
  }

  if (risk >= cfg.recover_threshold) {
    // Hysteresis band: neither risky enough to act nor clean enough to recover.
    d.next.clean_windows = 0;
    d.reason = describe(obs, "in hysteresis band, clean streak reset");
    return d;
  }

  // A clean window.
  d.next.clean_windows = std::min(st.clean_windows + 1, cfg.recover_windows);
  if (st.mode == agent_mode::normal || d.next.clean_windows < cfg.recover_windows) {
    d.reason = describe(obs, "clean window")
               + fmt(" (%.0f of %.0f)", static_cast<double>(d.next.clean_windows),
                     static_cast<double>(cfg.recover_windows));
    return d;
  }
  d.next.clean_windows = 0;
  if (st.mode == agent_mode::disabled) {
    d.action = agent_action::enable;
    d.next.mode = agent_mode::short_ttl;
    d.reason = describe(obs, "recovered")
               + fmt("; reuse on with ttl %.3gs (after %.0f clean windows)", d.next.ttl_seconds,
                     static_cast<double>(cfg.recover_windows));
  } else {
    d.action = agent_action::restore_ttl;
    d.next.mode = agent_mode::normal;
    d.next.ttl_seconds = cfg.base_ttl_seconds;
    d.reason = describe(obs, "recovered")
               + fmt("; ttl restored to %.3gs (after %.0f clean windows)", cfg.base_ttl_seconds,
                     static_cast<double>(cfg.recover_windows));
  }
  return d;
}

} // namespace sil
