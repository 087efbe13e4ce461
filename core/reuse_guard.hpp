// Reuse under an error budget: the per-request decision whether a cached
// embedding may answer a request whose input differs from the entry's source.
//
// Owns: the statistics of that decision (the math: docs/design.md, "Reuse
// under an error budget").
//  - A *label* is one comparison of a cached prediction with the fresh one
//    for the same request: (shape, distance, wrong), where distance is the
//    RMS difference between the request's suffix (the values outside the
//    key) and the suffix the entry was computed from, and wrong means
//    |cached - fresh| > tolerance. Labels come for free whenever reuse was
//    refused and the request was computed fresh, and from audits of hits.
//  - Labels are counted per shape (number of rows) in log-spaced distance
//    bins. Each bin gets a one-sided Clopper-Pearson upper confidence bound
//    on its wrong-rate. Assuming the chance of a wrong answer does not fall
//    as the distance grows, a bin's risk is bounded by the bound of any bin
//    at or beyond it; a request in bin j is reused iff
//        min over b >= j of upper(b)  <=  max_wrong_rate.
//  - A distance of 0 (bit-identical suffix) is always reused: that is exact
//    reuse, and the only reuse allowed before any label has arrived.
//  - Memory is bounded: a bin that reaches max_count labels halves its
//    counts (rounding wrong answers up), so old evidence fades.
// Does not own: distances (core/divergence.hpp), where labels come from, or
// the served wrong-rate estimate (label_window below, fed by audits).
// Pure: no clock, no randomness, no threads; one owner (the cache owner).
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"

namespace sil {

/// Parameters of the guard.
struct guard_config {
  /// Whether the guard decides at all; false: any input that shares the key
  /// reuses the entry (pure prefix semantics).
  bool enabled = true;
  /// tau: largest |cached - fresh| prediction difference that is not wrong.
  double tolerance = 0.05;
  /// delta: largest share of served cached answers that may be wrong.
  double max_wrong_rate = 0.01;
  /// Confidence of the bounds, 1 - alpha, in [0.5, 1).
  double confidence = 0.95;
  /// Upper edge of bin 0 (distances below it share one bin).
  double min_distance = 1e-5;
  /// Ratio between consecutive bin edges (> 1).
  double bin_ratio = 1.4142135623730951;
  /// Number of bins; the last one is open-ended.
  std::uint32_t bins = 48;
  /// Labels a bin remembers before halving its counts (>= 16).
  std::uint32_t max_count = 4096;
};

/// Checks every field (finite, 0 < tolerance, 0 < max_wrong_rate < 1,
/// 0.5 <= confidence < 1, min_distance > 0, bin_ratio > 1, bins in [2, 1024],
/// max_count >= 16).
status validate(const guard_config& cfg);

/// One-sided Clopper-Pearson upper bound on a rate after `wrong` of `n`
/// trials, at `confidence`: the p with P(Bin(n, p) <= wrong) = 1 - confidence.
/// 1 for n == 0.
double binomial_upper_bound(std::uint64_t wrong, std::uint64_t n, double confidence);

/// One-sided Clopper-Pearson lower bound: the p with
/// P(Bin(n, p) >= wrong) = 1 - confidence. 0 for wrong == 0.
double binomial_lower_bound(std::uint64_t wrong, std::uint64_t n, double confidence);

/// Whether `wrong` of `n` certifies a rate <= `delta` at `confidence`, i.e.
/// binomial_upper_bound(wrong, n, confidence) <= delta, computed exactly as
/// P(Bin(n, delta) <= wrong) <= 1 - confidence.
bool certifies(std::uint64_t wrong, std::uint64_t n, double delta, double confidence);

/// Root mean square of a[i] - b[i] over n values (0 for n == 0).
double rms_distance(const float* a, const float* b, std::size_t n) noexcept;

/// Why a cached entry was, or was not, reused.
enum class reuse_basis : std::uint8_t {
  /// The request's suffix is bit-identical to the entry's source.
  exact = 0,
  /// The estimator certified the distance.
  certified = 1,
  /// The guard refused reuse; the request is computed fresh.
  refused = 2,
  /// The guard is off: the key alone decides (pure prefix reuse).
  unguarded = 3,
};

const char* to_string(reuse_basis b) noexcept;

/// The decision for one request.
struct reuse_verdict {
  bool reuse = false;
  reuse_basis basis = reuse_basis::refused;
  double distance = 0.0;
  /// Upper confidence bound on P(wrong) at this distance (0 for exact reuse,
  /// 1 where nothing is known).
  double p_wrong_upper = 1.0;
};

/// Learns, online, how far from an entry's source reuse stays within the
/// budget. Not thread-safe.
class reuse_estimator {
public:
  explicit reuse_estimator(const guard_config& cfg);

  const guard_config& config() const noexcept {
    return cfg_;
  }

  /// Records one label for inputs of `rows` rows.
  void observe(std::uint32_t rows, double distance, bool wrong);

  /// Upper confidence bound on P(wrong) for a request at `distance` from an
  /// entry's source: the smallest bin bound at or beyond its bin (1 if
  /// none).
  double p_wrong_upper(std::uint32_t rows, double distance) const;

  /// Decides one request. `max_wrong_rate` is the budget that applies
  /// (the configured one, or a request's tighter one); `entry_wrong_distance`
  /// is the smallest distance at which this entry was seen wrong (infinity
  /// if never): requests that far or farther are refused whatever the bins
  /// say.
  reuse_verdict decide(std::uint32_t rows, double distance, double max_wrong_rate,
                       double entry_wrong_distance) const;

  /// The whole decision for one request against one entry, as the cache's
  /// owner and its readers both make it. `distance` comes from
  /// distance_of(); `request_budget` is a request's own max_wrong_rate (0:
  /// none), which can only tighten the configured one. With the guard off
  /// the basis is unguarded; without a comparable source (distance
  /// infinite) it is refused.
  reuse_verdict judge(std::uint32_t rows, double distance, double entry_wrong_distance,
                      double request_budget) const;

  /// The distance judge() takes: the RMS difference between a request's
  /// values outside the key and the entry's source, or infinity when the
  /// entry keeps no source of that size (nothing to compare: refuse).
  static double distance_of(const float* suffix, std::size_t n, const float* source,
                            std::size_t source_size) noexcept;

  /// The largest distance below which reuse is certified for `rows` at the
  /// configured budget (0: only exact reuse).
  double reach(std::uint32_t rows) const;

  /// The bin of a distance, in [0, bins).
  std::size_t bin_of(double distance) const noexcept;

  /// The lower edge of bin `b` (0 for bin 0).
  double bin_lower(std::size_t b) const noexcept;

  /// The upper edge of bin `b` (infinity for the last bin).
  double bin_upper(std::size_t b) const noexcept;

  struct bin_state {
    std::uint32_t n = 0;
    std::uint32_t wrong = 0;
    /// Clopper-Pearson upper bound of this bin alone.
    double upper = 1.0;
  };

  /// The bins of `rows` (nullptr if no label arrived for that shape).
  const std::vector<bin_state>* bins(std::uint32_t rows) const;

  /// Shapes with labels, ascending.
  std::vector<std::uint32_t> shapes() const;

  std::uint64_t labels() const noexcept {
    return labels_;
  }

  std::uint64_t wrong_labels() const noexcept {
    return wrong_labels_;
  }

private:
  struct table {
    std::vector<bin_state> bins;
    /// suffix_min[b] = min over b' >= b of bins[b'].upper.
    std::vector<double> suffix_min;
  };

  guard_config cfg_;
  double log_ratio_;
  std::unordered_map<std::uint32_t, table> tables_;
  std::uint64_t labels_ = 0;
  std::uint64_t wrong_labels_ = 0;
};

/// The served wrong-rate: the last `capacity` labels of served (or
/// would-be-served) answers, with exact confidence bounds. Not thread-safe.
class label_window {
public:
  explicit label_window(std::size_t capacity);

  void add(bool wrong);
  void clear() noexcept;

  std::size_t size() const noexcept {
    return size_;
  }

  std::size_t wrong() const noexcept {
    return wrong_;
  }

  std::size_t capacity() const noexcept {
    return ring_.size();
  }

  /// wrong / size (0 when empty).
  double rate() const noexcept;

  double lower(double confidence) const {
    return binomial_lower_bound(wrong_, size_, confidence);
  }

  double upper(double confidence) const {
    return binomial_upper_bound(wrong_, size_, confidence);
  }

private:
  std::vector<bool> ring_;
  std::size_t next_ = 0;
  std::size_t size_ = 0;
  std::size_t wrong_ = 0;
};

} // namespace sil
