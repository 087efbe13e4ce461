#include "experiments/risk.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <unordered_map>

#include "core/hash.hpp"

namespace sil::lab {

namespace {

/// A standard normal value from a seeded stream (Box-Muller).
double gaussian(splitmix64& g) {
  double u1 = g.uniform();
  double u2 = g.uniform();
  u1 = std::max(u1, 1e-300);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

/// What the server sees for `v`: the value printed with "%.6g", parsed.
float as_sent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return std::strtof(buf, nullptr);
}

} // namespace

std::vector<float> make_features(const feature_spec& spec, std::uint64_t prefix, double step,
                                 std::uint64_t noise_draw) {
  std::vector<float> out(spec.dim);
  // Three independent streams: the prefix values and the base suffix depend
  // on the prefix id only, the noise on the request.
  // A new suffix epoch moves the base stream only (epoch 0 is the original).
  splitmix64 pre{mix64(spec.seed * 0x9e3779b97f4a7c15ULL + prefix * 3 + 0)};
  splitmix64 base{mix64(spec.seed * 0x9e3779b97f4a7c15ULL + prefix * 3 + 1
                        + spec.suffix_epoch * 0xd1b54a32d192ed03ULL)};
  splitmix64 noise{mix64(~spec.seed + noise_draw * 0xbf58476d1ce4e5b9ULL)};
  auto drift_end = spec.drifting == 0 ? spec.dim : spec.prefix_len + spec.drifting;
  for (std::size_t i = 0; i < spec.dim; ++i) {
    double v = 0.0;
    if (i < spec.prefix_len) {
      v = gaussian(pre);
    } else if (spec.resampled) {
      v = gaussian(noise) + step * spec.strength;
    } else {
      v = gaussian(base) + (i < drift_end ? step * spec.strength : 0.0);
      if (spec.noise > 0)
        v += spec.noise * gaussian(noise);
    }
    out[i] = as_sent(v);
  }
  return out;
}

std::string predict_body(const std::vector<float>& features, bool use_cache) {
  std::string s = "{\"features\":[[";
  char buf[32];
  for (std::size_t i = 0; i < features.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.6g", i ? "," : "", static_cast<double>(features[i]));
    s += buf;
  }
  s += use_cache ? "]],\"use_cache\":true}" : "]],\"use_cache\":false}";
  return s;
}

std::vector<long> attribute_sources(const std::vector<observed_request>& requests) {
  std::vector<long> out(requests.size(), -1);
  // Computed requests per prefix, ordered by send time.
  std::unordered_map<std::uint64_t, std::vector<std::size_t>> computed;
  for (std::size_t i = 0; i < requests.size(); ++i)
    if (requests[i].ok && requests[i].computed)
      computed[requests[i].prefix].push_back(i);
  for (auto& [p, v] : computed)
    std::stable_sort(v.begin(), v.end(), [&](std::size_t a, std::size_t b) {
      return requests[a].sent < requests[b].sent;
    });
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    if (!r.ok || !r.cache_hit)
      continue;
    auto it = computed.find(r.prefix);
    if (it == computed.end())
      continue;
    const auto& v = it->second;
    // Candidates sent no later than this hit was answered, latest first.
    auto end = std::upper_bound(v.begin(), v.end(), r.done,
                                [&](double t, std::size_t j) { return t < requests[j].sent; });
    for (auto j = end; j != v.begin();) {
      --j;
      if (requests[*j].prediction == r.prediction) {
        out[i] = static_cast<long>(*j);
        break;
      }
    }
  }
  return out;
}

double risk_counts::hit_rate() const noexcept {
  auto answered = hits + misses;
  return answered == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(answered);
}

double risk_counts::wrong_hit_rate() const noexcept {
  return hits == 0 ? 0.0 : static_cast<double>(wrong_hits) / static_cast<double>(hits);
}

double risk_counts::wrong_answer_rate() const noexcept {
  auto answered = hits + misses;
  return answered == 0 ? 0.0 : static_cast<double>(wrong_hits) / static_cast<double>(answered);
}

risk_counts classify(const std::vector<observed_request>& requests,
                     const std::vector<double>& fresh, double tolerance) {
  risk_counts c;
  c.requests = requests.size();
  double sum = 0.0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    double f = i < fresh.size() ? fresh[i] : std::numeric_limits<double>::quiet_NaN();
    if (!r.ok || std::isnan(f)) {
      ++c.errors;
      continue;
    }
    double err = std::abs(r.prediction - f);
    if (!r.cache_hit) {
      ++c.misses;
      c.max_miss_error = std::max(c.max_miss_error, err);
      continue;
    }
    ++c.hits;
    sum += err;
    c.max_hit_error = std::max(c.max_hit_error, err);
    if (err > tolerance)
      ++c.wrong_hits;
    else
      ++c.correct_hits;
  }
  c.mean_hit_error = c.hits == 0 ? 0.0 : sum / static_cast<double>(c.hits);
  return c;
}

double input_distance(const std::vector<float>& x, const std::vector<float>& source,
                      std::size_t prefix_len) {
  auto n = std::min(x.size(), source.size());
  if (n <= prefix_len)
    return 0.0;
  double sum = 0.0;
  for (std::size_t i = prefix_len; i < n; ++i) {
    double d = static_cast<double>(x[i]) - static_cast<double>(source[i]);
    sum += d * d;
  }
  return std::sqrt(sum / static_cast<double>(n - prefix_len));
}

double replay_outcome::hit_rate() const noexcept {
  return requests == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(requests);
}

double replay_outcome::wrong_rate() const noexcept {
  return hits == 0 ? 0.0 : static_cast<double>(wrong) / static_cast<double>(hits);
}

replay_outcome replay_threshold(const std::vector<replay_request>& requests,
                                const pair_measure& score, double threshold,
                                const pair_measure& error, double tolerance) {
  replay_outcome out;
  out.requests = requests.size();
  std::unordered_map<std::uint64_t, std::size_t> entry; // prefix -> source request
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    auto it = entry.find(r.prefix);
    if (r.entry_live && it != entry.end() && score(i, it->second) <= threshold) {
      ++out.hits;
      out.wrong += error(i, it->second) > tolerance ? 1 : 0;
      continue;
    }
    entry[r.prefix] = i; // computed fresh: it replaces the entry
  }
  return out;
}

std::vector<threshold_point> threshold_curve(const std::vector<replay_request>& requests,
                                             const pair_measure& score,
                                             const std::vector<double>& thresholds,
                                             const pair_measure& error, double tolerance) {
  std::vector<threshold_point> out;
  out.reserve(thresholds.size());
  for (double t : thresholds)
    out.push_back({t, replay_threshold(requests, score, t, error, tolerance)});
  return out;
}

const threshold_point* best_within(const std::vector<threshold_point>& curve,
                                   double max_wrong_rate) {
  const threshold_point* best = nullptr;
  for (const auto& p : curve) {
    if (p.outcome.wrong_rate() > max_wrong_rate)
      continue;
    if (best == nullptr || p.outcome.hit_rate() > best->outcome.hit_rate()
        || (p.outcome.hit_rate() == best->outcome.hit_rate()
            && (p.outcome.wrong_rate() < best->outcome.wrong_rate()
                || (p.outcome.wrong_rate() == best->outcome.wrong_rate()
                    && p.threshold < best->threshold))))
      best = &p;
  }
  return best;
}

std::vector<double> log_thresholds(double lo, double hi, std::size_t n) {
  std::vector<double> out{0.0};
  for (std::size_t i = 0; i < n; ++i) {
    double f = n == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(n - 1);
    out.push_back(lo * std::pow(hi / lo, f));
  }
  return out;
}

double che_hit_rate(const std::vector<double>& popularity, double capacity) {
  double total = 0.0;
  std::size_t items = 0;
  for (double p : popularity)
    if (p > 0) {
      total += p;
      ++items;
    }
  if (total <= 0 || capacity <= 0)
    return 0.0;
  if (capacity >= static_cast<double>(items))
    return 1.0;
  // Characteristic time T: sum_i (1 - exp(-p_i T)) = capacity; the left side
  // grows monotonically in T, so bisection finds it.
  auto occupancy = [&](double t) {
    double s = 0.0;
    for (double p : popularity)
      if (p > 0)
        s += 1.0 - std::exp(-p / total * t);
    return s;
  };
  double lo = 0.0;
  double hi = 1.0;
  while (occupancy(hi) < capacity)
    hi *= 2.0;
  for (int i = 0; i < 200 && hi - lo > 1e-12 * hi; ++i) {
    double mid = 0.5 * (lo + hi);
    (occupancy(mid) < capacity ? lo : hi) = mid;
  }
  double t = 0.5 * (lo + hi);
  double hit = 0.0;
  for (double p : popularity)
    if (p > 0)
      hit += p / total * (1.0 - std::exp(-p / total * t));
  return hit;
}

} // namespace sil::lab
