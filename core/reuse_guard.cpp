#include "core/reuse_guard.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/divergence.hpp"

namespace sil {

namespace {

/// log(exp(a) + exp(b)) without overflow.
double log_add(double a, double b) noexcept {
  if (a < b)
    std::swap(a, b);
  if (b == -std::numeric_limits<double>::infinity())
    return a;
  return a + std::log1p(std::exp(b - a));
}

/// log P(Bin(n, p) <= k) for k < n and 0 < p < 1, summed term by term in
/// log space: pmf(k+1) = pmf(k) * (n-k)/(k+1) * p/(1-p).
double log_cdf_direct(std::uint64_t k, std::uint64_t n, double p) noexcept {
  auto nd = static_cast<double>(n);
  double term = nd * std::log1p(-p);
  double sum = term;
  double odds = std::log(p) - std::log1p(-p);
  for (std::uint64_t i = 0; i < k; ++i) {
    term += std::log(nd - static_cast<double>(i)) - std::log(static_cast<double>(i) + 1.0) + odds;
    sum = log_add(sum, term);
  }
  return sum;
}

/// P(Bin(n, p) <= k), summing over the shorter tail.
double binom_cdf(std::uint64_t k, std::uint64_t n, double p) noexcept {
  if (k >= n || p <= 0.0)
    return 1.0;
  if (p >= 1.0)
    return 0.0;
  if (k <= n / 2)
    return std::exp(log_cdf_direct(k, n, p));
  // P(X <= k) = 1 - P(X >= k+1) = 1 - P(n - X <= n-k-1), n - X ~ Bin(n, 1-p).
  return 1.0 - std::exp(log_cdf_direct(n - k - 1, n, 1.0 - p));
}

/// The p in [lo, hi] with binom_cdf(k, n, p) = alpha (the cdf falls in p).
double solve_upper(std::uint64_t k, std::uint64_t n, double alpha, double lo, double hi) noexcept {
  for (int i = 0; i < 60 && hi - lo > 1e-12; ++i) {
    double mid = 0.5 * (lo + hi);
    if (binom_cdf(k, n, mid) > alpha)
      lo = mid;
    else
      hi = mid;
  }
  return hi; // the side that is certainly an upper bound
}

} // namespace

status validate(const guard_config& cfg) {
  auto finite = [](double x) { return std::isfinite(x); };
  if (!finite(cfg.tolerance) || !(cfg.tolerance > 0.0))
    return {errc::invalid_config, "risk.tolerance must be a number > 0"};
  if (!finite(cfg.max_wrong_rate) || !(cfg.max_wrong_rate > 0.0 && cfg.max_wrong_rate < 1.0))
    return {errc::invalid_config, "risk.max-wrong-rate must be in (0, 1)"};
  if (!finite(cfg.confidence) || !(cfg.confidence >= 0.5 && cfg.confidence < 1.0))
    return {errc::invalid_config, "risk.confidence must be in [0.5, 1)"};
  if (!finite(cfg.min_distance) || !(cfg.min_distance > 0.0))
    return {errc::invalid_config, "guard min_distance must be > 0"};
  if (!finite(cfg.bin_ratio) || !(cfg.bin_ratio > 1.0))
    return {errc::invalid_config, "guard bin_ratio must be > 1"};
  if (cfg.bins < 2 || cfg.bins > 1024)
    return {errc::invalid_config, "guard bins must be in [2, 1024]"};
  if (cfg.max_count < 16)
    return {errc::invalid_config, "guard max_count must be at least 16"};
  return ok();
}

double binomial_upper_bound(std::uint64_t wrong, std::uint64_t n, double confidence) {
  if (n == 0 || wrong >= n)
    return 1.0;
  double alpha = 1.0 - confidence;
  return solve_upper(wrong, n, alpha, static_cast<double>(wrong) / static_cast<double>(n), 1.0);
}

double binomial_lower_bound(std::uint64_t wrong, std::uint64_t n, double confidence) {
  if (wrong == 0 || n == 0)
    return 0.0;
  // Clopper-Pearson is symmetric: the lower bound on the rate of wrong
  // answers is one minus the upper bound on the rate of right ones.
  return 1.0 - binomial_upper_bound(n - std::min(wrong, n), n, confidence);
}

bool certifies(std::uint64_t wrong, std::uint64_t n, double delta, double confidence) {
  if (n == 0 || !(delta > 0.0))
    return false;
  if (delta >= 1.0)
    return true;
  // wrong >= n*delta puts `wrong` at or above the median of Bin(n, delta),
  // so P(X <= wrong) >= 1/2 >= alpha: no need to sum.
  if (static_cast<double>(wrong) >= static_cast<double>(n) * delta)
    return false;
  return binom_cdf(wrong, n, delta) <= 1.0 - confidence;
}

double rms_distance(const float* a, const float* b, std::size_t n) noexcept {
  return n == 0 ? 0.0 : l2_distance(a, b, n) / std::sqrt(static_cast<double>(n));
}

const char* to_string(reuse_basis b) noexcept {
  switch (b) {
    case reuse_basis::exact:
      return "exact";
    case reuse_basis::certified:
      return "certified";
    case reuse_basis::refused:
      return "refused";
    case reuse_basis::unguarded:
      return "unguarded";
  }
  return "unknown";
}

// -- reuse_estimator ----------------------------------------------------------------

reuse_estimator::reuse_estimator(const guard_config& cfg)
  : cfg_(cfg)
  , log_ratio_(std::log(cfg.bin_ratio)) {
  // nop
}

std::size_t reuse_estimator::bin_of(double distance) const noexcept {
  if (!(distance >= cfg_.min_distance))              // also catches NaN: the most cautious bin is
    return std::isnan(distance) ? cfg_.bins - 1 : 0; // the last one
  double b = 1.0 + std::floor(std::log(distance / cfg_.min_distance) / log_ratio_);
  if (b >= static_cast<double>(cfg_.bins - 1))
    return cfg_.bins - 1;
  return static_cast<std::size_t>(b);
}

double reuse_estimator::bin_lower(std::size_t b) const noexcept {
  if (b == 0)
    return 0.0;
  return cfg_.min_distance * std::pow(cfg_.bin_ratio, static_cast<double>(b) - 1.0);
}

double reuse_estimator::bin_upper(std::size_t b) const noexcept {
  if (b + 1 >= cfg_.bins)
    return std::numeric_limits<double>::infinity();
  return cfg_.min_distance * std::pow(cfg_.bin_ratio, static_cast<double>(b));
}

void reuse_estimator::observe(std::uint32_t rows, double distance, bool wrong) {
  auto& t = tables_[rows];
  if (t.bins.empty()) {
    t.bins.resize(cfg_.bins);
    t.suffix_min.assign(cfg_.bins, 1.0);
  }
  auto b = bin_of(distance);
  auto& s = t.bins[b];
  if (s.n >= cfg_.max_count) {
    // Forget half, keeping the wrong answers' share (rounded up: cautious).
    s.n /= 2;
    s.wrong = (s.wrong + 1) / 2;
  }
  ++s.n;
  if (wrong)
    ++s.wrong;
  ++labels_;
  if (wrong)
    ++wrong_labels_;
  // Exact where it matters (at or below the budget, where few wrong answers
  // keep the sums short); above the budget a normal approximation, floored
  // just above the budget, only feeds the reported p_wrong_upper.
  if (certifies(s.wrong, s.n, cfg_.max_wrong_rate, cfg_.confidence)) {
    s.upper
      = solve_upper(s.wrong, s.n, 1.0 - cfg_.confidence,
                    static_cast<double>(s.wrong) / static_cast<double>(s.n), cfg_.max_wrong_rate);
  } else {
    double n = s.n;
    double p = s.wrong / n;
    double z = 2.0; // wide enough for any confidence up to ~0.977; only a display value
    double approx = p + z * std::sqrt(p * (1.0 - p) / n) + 1.0 / n;
    s.upper = std::min(1.0, std::max(approx, std::nextafter(cfg_.max_wrong_rate, 1.0)));
  }
  // Bins at or below b may have a new suffix minimum.
  double m = b + 1 < cfg_.bins ? t.suffix_min[b + 1] : 1.0;
  for (std::size_t i = b + 1; i-- > 0;) {
    m = std::min(m, t.bins[i].upper);
    t.suffix_min[i] = m;
  }
}

double reuse_estimator::p_wrong_upper(std::uint32_t rows, double distance) const {
  auto i = tables_.find(rows);
  if (i == tables_.end())
    return 1.0;
  return i->second.suffix_min[bin_of(distance)];
}

reuse_verdict reuse_estimator::decide(std::uint32_t rows, double distance, double max_wrong_rate,
                                      double entry_wrong_distance) const {
  reuse_verdict v;
  v.distance = distance;
  if (distance == 0.0) {
    v.reuse = true;
    v.basis = reuse_basis::exact;
    v.p_wrong_upper = 0.0;
    return v;
  }
  v.p_wrong_upper = p_wrong_upper(rows, distance);
  if (distance < entry_wrong_distance && v.p_wrong_upper <= max_wrong_rate) {
    v.reuse = true;
    v.basis = reuse_basis::certified;
  }
  return v;
}

reuse_verdict reuse_estimator::judge(std::uint32_t rows, double distance,
                                     double entry_wrong_distance, double request_budget) const {
  reuse_verdict v;
  if (!cfg_.enabled) {
    v.reuse = true;
    v.basis = reuse_basis::unguarded;
    v.p_wrong_upper = 0.0;
    return v;
  }
  if (!std::isfinite(distance)) {
    v.distance = std::numeric_limits<double>::infinity();
    return v; // refused, p_wrong_upper 1
  }
  double budget = cfg_.max_wrong_rate;
  if (request_budget > 0.0 && request_budget < budget)
    budget = request_budget;
  return decide(rows, distance, budget, entry_wrong_distance);
}

double reuse_estimator::distance_of(const float* suffix, std::size_t n, const float* source,
                                    std::size_t source_size) noexcept {
  if (source == nullptr || source_size != n)
    return std::numeric_limits<double>::infinity();
  return rms_distance(suffix, source, n);
}

double reuse_estimator::reach(std::uint32_t rows) const {
  auto i = tables_.find(rows);
  if (i == tables_.end())
    return 0.0;
  const auto& sm = i->second.suffix_min;
  for (std::size_t b = sm.size(); b-- > 0;)
    if (sm[b] <= cfg_.max_wrong_rate)
      return bin_upper(b);
  return 0.0;
}

const std::vector<reuse_estimator::bin_state>* reuse_estimator::bins(std::uint32_t rows) const {
  auto i = tables_.find(rows);
  return i == tables_.end() ? nullptr : &i->second.bins;
}

std::vector<std::uint32_t> reuse_estimator::shapes() const {
  std::vector<std::uint32_t> out;
  out.reserve(tables_.size());
  for (const auto& kv : tables_)
    out.push_back(kv.first);
  std::sort(out.begin(), out.end());
  return out;
}

// -- label_window ---------------------------------------------------------------------

label_window::label_window(std::size_t capacity)
  : ring_(std::max<std::size_t>(capacity, 1), false) {
  // nop
}

void label_window::add(bool wrong) {
  if (size_ == ring_.size()) {
    if (ring_[next_])
      --wrong_;
  } else {
    ++size_;
  }
  ring_[next_] = wrong;
  if (wrong)
    ++wrong_;
  next_ = (next_ + 1) % ring_.size();
}

void label_window::clear() noexcept {
  std::fill(ring_.begin(), ring_.end(), false);
  next_ = 0;
  size_ = 0;
  wrong_ = 0;
}

double label_window::rate() const noexcept {
  return size_ == 0 ? 0.0 : static_cast<double>(wrong_) / static_cast<double>(size_);
}

} // namespace sil
