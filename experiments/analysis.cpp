#include "experiments/analysis.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace sil::lab {

std::vector<double> average_ranks(const std::vector<double>& xs) {
  std::vector<std::size_t> order(xs.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return xs[a] < xs[b]; });
  std::vector<double> ranks(xs.size());
  for (std::size_t i = 0; i < order.size();) {
    auto j = i;
    while (j + 1 < order.size() && xs[order[j + 1]] == xs[order[i]])
      ++j;
    // Positions i..j (0-based) tie: each gets the mean of ranks i+1..j+1.
    double avg = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (auto k = i; k <= j; ++k)
      ranks[order[k]] = avg;
    i = j + 1;
  }
  return ranks;
}

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size() || x.size() < 2)
    return NAN;
  auto rx = average_ranks(x);
  auto ry = average_ranks(y);
  auto n = static_cast<double>(x.size());
  double mx = std::accumulate(rx.begin(), rx.end(), 0.0) / n;
  double my = std::accumulate(ry.begin(), ry.end(), 0.0) / n;
  double sxy = 0.0;
  double sxx = 0.0;
  double syy = 0.0;
  for (std::size_t i = 0; i < rx.size(); ++i) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) * (rx[i] - mx);
    syy += (ry[i] - my) * (ry[i] - my);
  }
  if (sxx == 0.0 || syy == 0.0)
    return NAN;
  return sxy / std::sqrt(sxx * syy);
}

spread spread_of(const std::vector<double>& values) {
  spread s;
  double sum = 0.0;
  for (double v : values) {
    if (std::isnan(v))
      continue;
    s.min = s.n == 0 ? v : std::min(s.min, v);
    s.max = s.n == 0 ? v : std::max(s.max, v);
    sum += v;
    ++s.n;
  }
  s.mean = s.n == 0 ? 0.0 : sum / static_cast<double>(s.n);
  return s;
}

std::string format_spread(const spread& s, int digits) {
  if (s.n == 0)
    return "n/a";
  char mean[64];
  char lo[64];
  char hi[64];
  std::snprintf(mean, sizeof mean, "%.*f", digits, s.mean);
  std::snprintf(lo, sizeof lo, "%.*f", digits, s.min);
  std::snprintf(hi, sizeof hi, "%.*f", digits, s.max);
  if (std::string{lo} == hi)
    return mean;
  return std::string{mean} + " [" + lo + ", " + hi + "]";
}

std::string rep_verdict(std::size_t holds, std::size_t reps) {
  auto of = std::to_string(holds) + " of " + std::to_string(reps);
  if (reps > 0 && holds == reps)
    return "**Holds** (" + of + " repetitions)";
  if (holds == 0)
    return "**Does not hold here** (" + of + " repetitions)";
  return "**Flips between repetitions**: holds in " + of;
}

} // namespace sil::lab
