// Statistics for the experiment reports (issue #5): latency summaries with
// the percentiles the reports use, and Spearman's rank correlation.
//
// Percentiles use the nearest-rank method of core/window_stats, so reports,
// /stats and the agent agree on what "p95" means.
#pragma once

#include <cstddef>
#include <vector>

namespace sil::lab {

/// Latency figures of one run (any unit; the caller's).
struct latency_report {
  std::size_t count = 0;
  double mean = 0.0;
  double p50 = 0.0;
  double p90 = 0.0;
  double p95 = 0.0;
  double p99 = 0.0;
  double p999 = 0.0;
  double max = 0.0;
};

/// Summarizes `samples` (taken by value and sorted); all zeros if empty.
latency_report summarize_latencies(std::vector<double> samples);

/// Ranks of `xs` from 1 to n, ties sharing their average rank.
std::vector<double> average_ranks(const std::vector<double>& xs);

/// Spearman's rank correlation of paired samples: the Pearson correlation of
/// their average ranks. NaN if sizes differ, n < 2, or either side is constant.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

} // namespace sil::lab
