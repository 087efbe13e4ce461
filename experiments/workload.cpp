#include "experiments/workload.hpp"

#include <algorithm>
#include <cmath>

namespace sil::lab {

status validate(const schedule_config& c) {
  auto finite = [](double x) { return std::isfinite(x); };
  if (!finite(c.base_rate) || c.base_rate <= 0.0)
    return {errc::invalid_config, "base rate must be a positive number of requests per second"};
  if (!finite(c.duration) || c.duration <= 0.0)
    return {errc::invalid_config, "duration must be positive"};
  if (!finite(c.burst_rate) || c.burst_rate < 0.0)
    return {errc::invalid_config, "burst rate must not be negative"};
  if (c.burst_rate > 0.0
      && !(c.burst_length > 0.0 && c.burst_period > 0.0 && c.burst_length <= c.burst_period))
    return {errc::invalid_config, "bursts need 0 < burst length <= burst period"};
  return ok();
}

bool in_burst(const schedule_config& c, double t) noexcept {
  if (c.burst_rate <= 0.0)
    return false;
  return std::fmod(t, c.burst_period) < c.burst_length;
}

namespace {

/// The next time the rate changes after `t` (a burst edge), or +inf.
double next_edge(const schedule_config& c, double t) {
  if (c.burst_rate <= 0.0)
    return INFINITY;
  double start = std::floor(t / c.burst_period) * c.burst_period;
  double end_of_burst = start + c.burst_length;
  return t < end_of_burst ? end_of_burst : start + c.burst_period;
}

} // namespace

std::vector<double> make_schedule(const schedule_config& c, std::uint64_t seed) {
  std::vector<double> out;
  if (!validate(c))
    return out;
  std::mt19937_64 rng{seed};
  std::exponential_distribution<double> exp1{1.0};
  double t = 0.0;
  out.reserve(static_cast<std::size_t>(c.duration * std::max(c.base_rate, c.burst_rate)) + 16);
  // The slack keeps accumulated rounding from adding one more request at
  // the very end (200 rps x 5 s is 1000 requests, not 1001).
  while (t < c.duration - 1e-9) {
    out.push_back(t);
    // Draw the gap in "unit work" and spend it at the current rate, moving
    // across burst edges so that the rate changes exactly there.
    double work = c.kind == arrival::constant ? 1.0 : exp1(rng);
    for (;;) {
      double rate = in_burst(c, t) ? c.burst_rate : c.base_rate;
      double edge = next_edge(c, t);
      if (edge <= t) { // floating-point rounding at an edge: step past it
        t = std::nextafter(t, INFINITY);
        continue;
      }
      double needed = work / rate;
      if (t + needed <= edge) {
        t += needed;
        break;
      }
      work -= (edge - t) * rate;
      t = edge;
    }
  }
  return out;
}

prefix_mix::prefix_mix(prefix_kind kind, std::size_t m, double s, std::uint64_t seed)
  : kind_(kind)
  , rng_(seed) {
  if (kind_ == prefix_kind::zipf) {
    m = std::max<std::size_t>(m, 1);
    cdf_.resize(m);
    double sum = 0.0;
    for (std::size_t i = 0; i < m; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
      cdf_[i] = sum;
    }
    for (auto& x : cdf_)
      x /= sum;
    cdf_.back() = 1.0;
  }
}

std::uint64_t prefix_mix::next() {
  switch (kind_) {
    case prefix_kind::hot:
      return 0;
    case prefix_kind::unique:
      return counter_++;
    case prefix_kind::zipf: {
      double u = std::uniform_real_distribution<double>{0.0, 1.0}(rng_);
      auto i = std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin();
      return static_cast<std::uint64_t>(i);
    }
  }
  return 0;
}

double prefix_mix::zipf_probability(std::size_t i) const {
  if (kind_ != prefix_kind::zipf || i >= cdf_.size())
    return 0.0;
  return i == 0 ? cdf_[0] : cdf_[i] - cdf_[i - 1];
}

} // namespace sil::lab
