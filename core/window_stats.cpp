#include "core/window_stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace sil {

double nearest_rank(const std::vector<double>& sorted, double p) noexcept {
  if (sorted.empty())
    return 0.0;
  auto n = static_cast<double>(sorted.size());
  // The small slack keeps 99.9% of 1000 at rank 999 despite rounding.
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n - 1e-9));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

window_summary summarize(std::vector<double> samples) {
  samples.erase(
    std::remove_if(samples.begin(), samples.end(), [](double x) { return std::isnan(x); }),
    samples.end());
  window_summary s;
  if (samples.empty())
    return s;
  std::sort(samples.begin(), samples.end());
  s.count = samples.size();
  s.mean
    = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(samples.size());
  s.p50 = nearest_rank(samples, 50);
  s.p90 = nearest_rank(samples, 90);
  s.p95 = nearest_rank(samples, 95);
  s.p99 = nearest_rank(samples, 99);
  s.p999 = nearest_rank(samples, 99.9);
  s.max = samples.back();
  return s;
}

} // namespace sil
