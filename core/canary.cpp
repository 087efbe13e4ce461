#include "core/canary.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/hash.hpp"
#include "core/model_directory.hpp"
#include "core/reuse_guard.hpp"

namespace sil {

namespace {

status bad(const std::string& what) {
  return error{errc::bad_request, "policy: " + what};
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

} // namespace

status validate(const cache_policy& p, std::size_t input_dim, std::size_t max_rows) {
  if (auto ok = validate_model_name(p.name); !ok)
    return bad("name: " + ok.error().message);
  auto k_max = p.unit == prefix_unit::values ? input_dim : max_rows;
  if (p.prefix_k < 1 || p.prefix_k > k_max)
    return bad("prefix_k must be in [1, " + std::to_string(k_max) + "] for unit "
               + to_string(p.unit) + ", got " + std::to_string(p.prefix_k));
  if (!std::isfinite(p.ttl_seconds) || p.ttl_seconds < 0.0 || p.ttl_seconds > 31536000.0)
    return bad("ttl_seconds must be in [0, 31536000], got " + fmt(p.ttl_seconds));
  if (!(p.capacity_share > 0.0 && p.capacity_share <= 1.0))
    return bad("capacity_share must be in (0, 1], got " + fmt(p.capacity_share));
  if (!(p.tolerance > 0.0 && p.tolerance < 1.0))
    return bad("tolerance must be in (0, 1), got " + fmt(p.tolerance));
  if (!(p.max_wrong_rate > 0.0 && p.max_wrong_rate < 1.0))
    return bad("max_wrong_rate must be in (0, 1), got " + fmt(p.max_wrong_rate));
  return ok();
}

std::size_t split_values(const cache_policy& a, const cache_policy& b,
                         std::size_t input_dim) noexcept {
  auto values = [&](const cache_policy& p) {
    return p.unit == prefix_unit::values ? std::size_t{p.prefix_k} : p.prefix_k * input_dim;
  };
  return std::max<std::size_t>(1, std::min(values(a), values(b)));
}

std::uint64_t split_hash(const float* values, std::size_t count, std::size_t n) noexcept {
  fnv1a64 h;
  n = std::min(n, count);
  for (std::size_t i = 0; i < n; ++i) {
    float v = values[i] == 0.0f ? 0.0f : values[i]; // -0.0 as +0.0
    std::uint32_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    h.add_u32(bits);
  }
  return mix64(h.value());
}

bool takes_canary(std::uint64_t h, double share) noexcept {
  // The top 53 bits as a uniform number in [0, 1).
  auto u = static_cast<double>(h >> 11) * 0x1.0p-53;
  return u < share;
}

double arm_counts::cost() const noexcept {
  return requests == 0 ? 0.0 : static_cast<double>(encodes) / static_cast<double>(requests);
}

double arm_counts::hit_rate() const noexcept {
  return lookups == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(lookups);
}

status validate(const canary_rule& r) {
  if (!(r.max_wrong_rate > 0.0 && r.max_wrong_rate < 1.0))
    return error{errc::invalid_config, "canary: max_wrong_rate must be in (0, 1)"};
  if (!(r.confidence >= 0.5 && r.confidence < 1.0))
    return error{errc::invalid_config, "canary: confidence must be in [0.5, 1)"};
  if (!(r.margin >= 0.0 && r.margin < 1.0))
    return error{errc::invalid_config, "canary.margin must be in [0, 1)"};
  if (!(r.min_saving >= 0.0 && r.min_saving <= 1.0))
    return error{errc::invalid_config, "canary.min-saving must be in [0, 1]"};
  if (!(r.max_cost_increase >= 0.0 && r.max_cost_increase <= 1.0))
    return error{errc::invalid_config, "canary.max-cost-increase must be in [0, 1]"};
  if (!(std::isfinite(r.max_seconds) && r.max_seconds >= 0.0))
    return error{errc::invalid_config, "canary.max-seconds must be >= 0"};
  return ok();
}

double normal_quantile(double p) {
  // Bisection on the CDF, Phi(z) = erfc(-z / sqrt 2) / 2: 80 halvings of
  // [-40, 40] reach double precision; called once per decision.
  double lo = -40.0;
  double hi = 40.0;
  for (int i = 0; i < 80; ++i) {
    double mid = 0.5 * (lo + hi);
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p)
      lo = mid;
    else
      hi = mid;
  }
  return 0.5 * (lo + hi);
}

canary_judgement judge_canary(const canary_rule& rule, const arm_counts& a, const arm_counts& b,
                              double elapsed_seconds) {
  canary_judgement j;
  auto rate = [](const arm_counts& x) {
    return x.labels == 0 ? 0.0 : static_cast<double>(x.wrong) / static_cast<double>(x.labels);
  };
  j.wrong_a = rate(a);
  j.wrong_b = rate(b);
  j.cost_a = a.cost();
  j.cost_b = b.cost();
  j.b_lower = binomial_lower_bound(b.wrong, b.labels, rule.confidence);
  j.b_upper = binomial_upper_bound(b.wrong, b.labels, rule.confidence);
  // Agresti-Caffo: one success and one failure added to each arm.
  auto adjusted = [](const arm_counts& x) {
    return (static_cast<double>(x.wrong) + 1.0) / (static_cast<double>(x.labels) + 2.0);
  };
  double pa = adjusted(a);
  double pb = adjusted(b);
  double se = std::sqrt(pa * (1.0 - pa) / (static_cast<double>(a.labels) + 2.0)
                        + pb * (1.0 - pb) / (static_cast<double>(b.labels) + 2.0));
  double z = normal_quantile(rule.confidence);
  j.diff_lower = (pb - pa) - z * se;
  j.diff_upper = (pb - pa) + z * se;
  auto pct = [](double v) { return fmt(100.0 * v) + "%"; };
  auto figures = [&] {
    return "B " + std::to_string(b.wrong) + " wrong of " + std::to_string(b.labels) + " ("
           + pct(j.wrong_b) + "), A " + std::to_string(a.wrong) + " of " + std::to_string(a.labels)
           + " (" + pct(j.wrong_a) + "); p_B - p_A in [" + fmt(j.diff_lower) + ", "
           + fmt(j.diff_upper) + "]; encodes per request B " + fmt(j.cost_b) + ", A "
           + fmt(j.cost_a);
  };
  if (j.b_lower > rule.max_wrong_rate) {
    j.verdict = canary_verdict::rollback;
    j.reason = "B breaches the error budget: its served wrong-rate is above "
               + pct(rule.max_wrong_rate) + " with " + pct(rule.confidence)
               + " confidence (lower bound " + pct(j.b_lower) + "); " + figures();
    return j;
  }
  if (j.diff_lower > rule.margin) {
    j.verdict = canary_verdict::rollback;
    j.reason = "B is wrong more often than A by more than the margin " + fmt(rule.margin) + " with "
               + pct(rule.confidence) + " confidence; " + figures();
    return j;
  }
  bool enough = a.labels >= rule.min_labels && b.labels >= rule.min_labels
                && a.requests >= rule.min_requests && b.requests >= rule.min_requests;
  if (enough && j.diff_upper <= rule.margin) {
    bool cheaper = j.cost_b <= j.cost_a - rule.min_saving;
    bool better = j.diff_upper < 0.0 && j.cost_b <= j.cost_a + rule.max_cost_increase;
    if (cheaper || better) {
      j.verdict = canary_verdict::promote;
      j.reason = std::string{cheaper ? "B is cheaper" : "B is wrong less often at a small cost"}
                 + " and not worse than A (p_B - p_A <= " + fmt(rule.margin) + " with "
                 + pct(rule.confidence) + " confidence); " + figures();
      return j;
    }
  }
  if (rule.max_seconds > 0.0 && elapsed_seconds >= rule.max_seconds) {
    j.verdict = canary_verdict::rollback;
    j.reason = "inconclusive after " + fmt(elapsed_seconds) + " s: " + figures();
    return j;
  }
  j.verdict = canary_verdict::keep;
  j.reason = enough
               ? "no significant difference yet; " + figures()
               : "gathering evidence (" + std::to_string(rule.min_labels) + " labels and "
                   + std::to_string(rule.min_requests) + " requests per arm needed); " + figures();
  return j;
}

} // namespace sil
