// Summary statistics of a window of samples (divergences, latencies).
//
// Owns: the percentile definition used everywhere in the project, so that
// /stats, the agent and the experiment reports agree. Percentiles use the
// nearest-rank method: the p-th percentile of n sorted samples is the sample
// at rank ceil(p/100 * n) (1-based), which is always an observed value.
#pragma once

#include <cstddef>
#include <vector>

namespace sil {

/// Count, mean, p50, p90, p95, p99, p99.9 and max of a set of samples.
struct window_summary {
  std::size_t count = 0;
  double mean = 0.0;
  double p50 = 0.0;
  double p90 = 0.0;
  double p95 = 0.0;
  double p99 = 0.0;
  double p999 = 0.0;
  double max = 0.0;
};

/// Nearest-rank percentile `p` (0 < p <= 100) of `sorted` (ascending).
/// Returns 0 for an empty input.
double nearest_rank(const std::vector<double>& sorted, double p) noexcept;

/// Summarizes `samples` (any order; taken by value and sorted). NaN samples
/// are ignored. An empty window gives all zeros.
window_summary summarize(std::vector<double> samples);

} // namespace sil
