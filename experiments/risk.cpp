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
  splitmix64 pre{mix64(spec.seed * 0x9e3779b97f4a7c15ULL + prefix * 3 + 0)};
  splitmix64 base{mix64(spec.seed * 0x9e3779b97f4a7c15ULL + prefix * 3 + 1)};
  splitmix64 noise{mix64(~spec.seed + noise_draw * 0xbf58476d1ce4e5b9ULL)};
  for (std::size_t i = 0; i < spec.dim; ++i) {
    double v = 0.0;
    if (i < spec.prefix_len) {
      v = gaussian(pre);
    } else {
      v = gaussian(base) + step * spec.strength;
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
