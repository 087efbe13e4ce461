// Statistics for the experiment reports: Spearman's rank correlation and the
// spread of a measurement over repetitions. Latency percentiles come from core/window_stats
// (summarize), so reports, /stats and the agent agree on what "p95" means.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace sil::lab {

/// Ranks of `xs` from 1 to n, ties sharing their average rank.
std::vector<double> average_ranks(const std::vector<double>& xs);

/// Spearman's rank correlation of paired samples: the Pearson correlation of
/// their average ranks. NaN if sizes differ, n < 2, or either side is constant.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

/// A measurement over repetitions: how many, their mean and range. NaN
/// values (not measured in that repetition) are left out.
struct spread {
  std::size_t n = 0;
  double mean = 0.0;
  double min = 0.0;
  double max = 0.0;
};

spread spread_of(const std::vector<double>& values);

/// "mean [min, max]" with `digits` decimals; only "mean" when the range
/// prints as one number; "n/a" when nothing was measured.
std::string format_spread(const spread& s, int digits);

/// How a yes/no verdict fared over `reps` repetitions: "**Holds** (3 of 3
/// repetitions)", "**Does not hold here** (0 of 3 repetitions)", or, when
/// they disagree, "**Flips between repetitions**: holds in 2 of 3".
std::string rep_verdict(std::size_t holds, std::size_t reps);

} // namespace sil::lab
