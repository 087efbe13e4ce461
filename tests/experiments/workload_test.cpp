#include "experiments/workload.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>

namespace sil::lab {
namespace {

TEST(Schedule, ConstantRateIsExact) {
  schedule_config c;
  c.kind = arrival::constant;
  c.base_rate = 200.0;
  c.duration = 5.0;
  auto s = make_schedule(c, 1);
  ASSERT_EQ(s.size(), 1000u);
  for (std::size_t i = 1; i < s.size(); ++i)
    ASSERT_NEAR(s[i] - s[i - 1], 0.005, 1e-9);
  EXPECT_EQ(s.front(), 0.0);
  EXPECT_LT(s.back(), 5.0);
}

TEST(Schedule, PoissonInterArrivalMeanAndVariance) {
  schedule_config c;
  c.kind = arrival::poisson;
  c.base_rate = 1000.0;
  c.duration = 100.0; // ~100k arrivals
  auto s = make_schedule(c, 7);
  std::vector<double> gaps;
  for (std::size_t i = 1; i < s.size(); ++i)
    gaps.push_back(s[i] - s[i - 1]);
  auto n = static_cast<double>(gaps.size());
  double mean = std::accumulate(gaps.begin(), gaps.end(), 0.0) / n;
  double var = 0.0;
  for (double g : gaps)
    var += (g - mean) * (g - mean);
  var /= n - 1;
  // Exponential(rate): mean 1/rate, variance 1/rate^2; within ~1%.
  EXPECT_NEAR(mean, 1e-3, 1e-5 * 2);
  EXPECT_NEAR(var, 1e-6, 1e-6 * 0.03);
  EXPECT_NEAR(static_cast<double>(s.size()), 100000.0, 1500.0); // ~4.7 sigma
  // Same seed, same schedule; another seed, another one.
  EXPECT_EQ(make_schedule(c, 7), s);
  EXPECT_NE(make_schedule(c, 8), s);
}

TEST(Schedule, BurstsHaveTheirRateAndTiming) {
  schedule_config c;
  c.kind = arrival::constant;
  c.base_rate = 100.0;
  c.burst_rate = 1000.0;
  c.burst_period = 2.0;
  c.burst_length = 0.5;
  c.duration = 10.0;
  auto s = make_schedule(c, 1);
  // Count per 0.5 s slot: bursts at [0, 0.5), [2, 2.5), ...
  std::map<int, int> per_slot;
  for (double t : s)
    ++per_slot[static_cast<int>(t / 0.5)];
  for (int slot = 0; slot < 20; ++slot) {
    bool burst = slot % 4 == 0;
    EXPECT_NEAR(per_slot[slot], burst ? 500 : 50, 2) << "slot " << slot;
  }
  EXPECT_TRUE(in_burst(c, 0.0));
  EXPECT_TRUE(in_burst(c, 2.49));
  EXPECT_FALSE(in_burst(c, 2.5));
  EXPECT_FALSE(in_burst(c, 3.99));
  // Overall: 5 bursts x 500 + 15 quiet slots x 50.
  EXPECT_NEAR(static_cast<double>(s.size()), 3250.0, 10.0);
}

TEST(Schedule, PoissonBurstsKeepTheirRates) {
  schedule_config c;
  c.kind = arrival::poisson;
  c.base_rate = 200.0;
  c.burst_rate = 2000.0;
  c.burst_period = 1.0;
  c.burst_length = 0.25;
  c.duration = 40.0;
  auto s = make_schedule(c, 3);
  double in = 0;
  double out = 0;
  for (double t : s)
    (in_burst(c, t) ? in : out) += 1;
  EXPECT_NEAR(in / (40 * 0.25), 2000.0, 100.0);
  EXPECT_NEAR(out / (40 * 0.75), 200.0, 15.0);
}

TEST(Schedule, InvalidConfigsGiveErrorsAndNoSchedule) {
  schedule_config c;
  c.base_rate = 0.0;
  EXPECT_FALSE(validate(c));
  EXPECT_TRUE(make_schedule(c, 1).empty());
  c = {};
  c.duration = -1;
  EXPECT_FALSE(validate(c));
  c = {};
  c.burst_rate = 10;
  c.burst_length = 3;
  c.burst_period = 2;
  EXPECT_FALSE(validate(c));
  EXPECT_TRUE(validate(schedule_config{}));
}

TEST(PrefixMix, HotAndUnique) {
  prefix_mix hot{prefix_kind::hot, 0, 0, 1};
  prefix_mix unique{prefix_kind::unique, 0, 0, 1};
  for (std::uint64_t i = 0; i < 100; ++i) {
    EXPECT_EQ(hot.next(), 0u);
    EXPECT_EQ(unique.next(), i);
  }
}

TEST(PrefixMix, ZipfFollowsItsDistribution) {
  prefix_mix z{prefix_kind::zipf, 100, 1.1, 5};
  std::vector<int> counts(100, 0);
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    auto k = z.next();
    ASSERT_LT(k, 100u);
    ++counts[k];
  }
  double h = 0;
  for (int i = 1; i <= 100; ++i)
    h += 1.0 / std::pow(i, 1.1);
  for (int i : {0, 1, 9, 99}) {
    double p = 1.0 / std::pow(i + 1, 1.1) / h;
    EXPECT_NEAR(z.zipf_probability(static_cast<std::size_t>(i)), p, 1e-12);
    double sd = std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(counts[static_cast<std::size_t>(i)], n * p, 5 * sd) << "prefix " << i;
  }
}

} // namespace
} // namespace sil::lab
