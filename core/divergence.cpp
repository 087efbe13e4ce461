#include "core/divergence.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace sil {

double cosine_distance(const float* a, const float* b, std::size_t n) noexcept {
  double dot = 0.0;
  double na = 0.0;
  double nb = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    double x = a[i];
    double y = b[i];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (na == 0.0 && nb == 0.0)
    return 0.0;
  if (na == 0.0 || nb == 0.0)
    return 1.0;
  double cos = dot / (std::sqrt(na) * std::sqrt(nb));
  return std::clamp(1.0 - cos, 0.0, 2.0);
}

double l2_distance(const float* a, const float* b, std::size_t n) noexcept {
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    sum += d * d;
  }
  return std::sqrt(sum);
}

result<divergence> measure_divergence(const embedding& cached, const embedding& fresh) {
  if (cached.size() == 0 || fresh.size() == 0)
    return {errc::invalid_argument, "cannot measure divergence of an empty embedding"};
  if (cached.size() != fresh.size())
    return {errc::invalid_argument, "embedding sizes differ: " + std::to_string(cached.size())
                                      + " vs " + std::to_string(fresh.size())};
  auto n = cached.size();
  return divergence{cosine_distance(cached.data(), fresh.data(), n),
                    l2_distance(cached.data(), fresh.data(), n)};
}

} // namespace sil
