// Cache policies and canaries: a named set of cache settings, the split of
// traffic between the policy in place (A) and a candidate (B), and the rule
// that promotes B or rolls it back.
//
// Owns: the policy's fields and their validation, the traffic split (by a
// hash of the input's first values, so that a prefix stays on one policy),
// and judge_canary(): the statistical test behind every canary decision.
// Does not own: running the two policies (a lane each, actors/), pulling
// their counters (the model manager), or HTTP.
//
// The decision (docs/design.md, section 20):
//   cost      c = encodes per request (misses, refreshes and audits), a
//               point estimate over the canary's requests;
//   wrong     p = served wrong-rate, from the audited served answers (k
//               wrong of n labels) since the canary began;
//   d         p_B - p_A, with a one-sided Agresti-Caffo bound at
//               `confidence`: p~ = (k + 1) / (n + 2) per arm,
//               se = sqrt(p~_A (1 - p~_A) / (n_A + 2) + p~_B (1 - p~_B) / (n_B + 2)),
//               U = (p~_B - p~_A) + z se, L = (p~_B - p~_A) - z se.
//   roll back at once when B's Clopper-Pearson lower bound exceeds the
//               service's budget (B breaches it), or L > margin (B is
//               worse than A, with confidence);
//   promote   when both arms have min_labels labels and min_requests
//               requests, B is not worse (U <= margin) and either
//               cheaper (c_B <= c_A - min_saving) or better (U < 0) at a
//               cost of at most max_cost_increase more encodes per request
//               (c_B <= c_A + max_cost_increase: a hit rate that many
//               points lower);
//   roll back as inconclusive after max_seconds; else keep running.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/admission.hpp"
#include "core/error.hpp"
#include "core/prefix_key.hpp"

namespace sil {

/// A named set of cache settings: what one lane of a model version runs.
struct cache_policy {
  std::string name = "default";
  /// The key: K and what it counts.
  std::uint32_t prefix_k = 4;
  prefix_unit unit = prefix_unit::values;
  double ttl_seconds = 30.0;
  /// The lane's entries at most, as a share of cache.max-size.
  double capacity_share = 1.0;
  /// The reuse guard's tolerance and budget for this lane.
  double tolerance = 0.05;
  double max_wrong_rate = 0.01;
  admission_policy admission = admission_policy::tinylfu;
};

/// Checks every field: a name of 1 to 64 [A-Za-z0-9_.-], 1 <= K <= the
/// input's values (rows: its rows), a TTL in [0, a year], a capacity share in
/// (0, 1], a tolerance and a budget in (0, 1). Errors are bad_request and say
/// which field.
status validate(const cache_policy& p, std::size_t input_dim, std::size_t max_rows);

/// How many leading values decide the split between two policies: the
/// shorter of their prefixes (in values), so that two inputs sharing either
/// policy's key always go to the same policy.
std::size_t split_values(const cache_policy& a, const cache_policy& b,
                         std::size_t input_dim) noexcept;

/// The split's hash of the first `n` of `values` values (FNV-1a over the bit
/// patterns, -0.0 as +0.0, then mixed).
std::uint64_t split_hash(const float* values, std::size_t count, std::size_t n) noexcept;

/// Whether a request with split hash `h` goes to the canary at `share`.
bool takes_canary(std::uint64_t h, double share) noexcept;

/// One arm's counters since the canary began.
struct arm_counts {
  std::uint64_t requests = 0;
  std::uint64_t encodes = 0;
  std::uint64_t hits = 0;
  std::uint64_t lookups = 0;
  std::uint64_t labels = 0;
  std::uint64_t wrong = 0;

  /// encodes / requests (0 without requests).
  double cost() const noexcept;
  /// hits / lookups (0 without lookups).
  double hit_rate() const noexcept;
};

/// The rule's parameters.
struct canary_rule {
  /// The service's error budget: B may never breach it.
  double max_wrong_rate = 0.01;
  double confidence = 0.95;
  /// How much higher B's wrong-rate may be and still count as not worse.
  double margin = 0.005;
  /// "Cheaper": B saves at least this many encodes per request.
  double min_saving = 0.01;
  /// "Better at a small cost": B spends at most this many more encodes per
  /// request (about that many points of hit rate).
  double max_cost_increase = 0.1;
  std::uint64_t min_labels = 100;
  std::uint64_t min_requests = 200;
  /// No decision by then: rolled back as inconclusive (0: never).
  double max_seconds = 600.0;
};

status validate(const canary_rule& r);

enum class canary_verdict : std::uint8_t { keep, promote, rollback };

/// The verdict's name (inline: the HTTP codec and its fuzz targets use it
/// without the canary code).
inline const char* to_string(canary_verdict v) noexcept {
  switch (v) {
    case canary_verdict::keep:
      return "keep";
    case canary_verdict::promote:
      return "promote";
    case canary_verdict::rollback:
      return "rollback";
  }
  return "unknown";
}

/// A decision and the figures behind it.
struct canary_judgement {
  canary_verdict verdict = canary_verdict::keep;
  std::string reason;
  double wrong_a = 0.0;
  double wrong_b = 0.0;
  /// The bounds on p_B - p_A.
  double diff_lower = 0.0;
  double diff_upper = 0.0;
  /// B's Clopper-Pearson bounds.
  double b_lower = 0.0;
  double b_upper = 1.0;
  double cost_a = 0.0;
  double cost_b = 0.0;
};

/// The standard normal quantile (the z of a one-sided bound at p).
double normal_quantile(double p);

/// Judges B against A after `elapsed_seconds` of canary.
canary_judgement judge_canary(const canary_rule& rule, const arm_counts& a, const arm_counts& b,
                              double elapsed_seconds);

} // namespace sil
