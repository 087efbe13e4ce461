// Statistics for the experiment reports (issue #5): Spearman's rank
// correlation. Latency percentiles come from core/window_stats (summarize),
// so reports, /stats and the agent agree on what "p95" means.
#pragma once

#include <cstddef>
#include <vector>

namespace sil::lab {

/// Ranks of `xs` from 1 to n, ties sharing their average rank.
std::vector<double> average_ranks(const std::vector<double>& xs);

/// Spearman's rank correlation of paired samples: the Pearson correlation of
/// their average ranks. NaN if sizes differ, n < 2, or either side is constant.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

} // namespace sil::lab
