#include "core/reuse_guard.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace sil {
namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// -- exact binomial bounds ------------------------------------------------------------

TEST(BinomialBounds, ZeroWrongHasAClosedForm) {
  // P(Bin(n, p) <= 0) = (1-p)^n = alpha  =>  p = 1 - alpha^(1/n).
  for (std::uint64_t n : {1u, 10u, 299u, 1000u}) {
    double expected = 1.0 - std::pow(0.05, 1.0 / static_cast<double>(n));
    EXPECT_NEAR(binomial_upper_bound(0, n, 0.95), expected, 1e-9) << n;
    // all wrong: the lower bound is alpha^(1/n) by symmetry
    EXPECT_NEAR(binomial_lower_bound(n, n, 0.95), std::pow(0.05, 1.0 / static_cast<double>(n)),
                1e-9);
  }
  EXPECT_EQ(binomial_upper_bound(0, 0, 0.95), 1.0);
  EXPECT_EQ(binomial_lower_bound(0, 50, 0.95), 0.0);
}

TEST(BinomialBounds, BracketThePointEstimateAndNarrowWithN) {
  double prev_width = 2.0;
  for (std::uint64_t n : {20u, 200u, 2000u}) {
    std::uint64_t w = n / 10;
    double lo = binomial_lower_bound(w, n, 0.95);
    double hi = binomial_upper_bound(w, n, 0.95);
    EXPECT_LT(lo, 0.1);
    EXPECT_GT(hi, 0.1);
    EXPECT_LT(hi - lo, prev_width);
    prev_width = hi - lo;
  }
  // One wrong in 100: the textbook one-sided 95% bound is 4.66%.
  EXPECT_NEAR(binomial_upper_bound(1, 100, 0.95), 0.0466, 0.0005);
}

TEST(BinomialBounds, CertifiesAgreesWithTheUpperBound) {
  for (std::uint64_t n : {50u, 299u, 300u, 473u, 1000u, 4096u})
    for (std::uint64_t w = 0; w < 30; ++w)
      for (double delta : {0.005, 0.01, 0.05}) {
        bool by_bound = binomial_upper_bound(w, n, 0.95) <= delta;
        // The two agree except within the bisection's resolution.
        if (std::abs(binomial_upper_bound(w, n, 0.95) - delta) > 1e-9) {
          EXPECT_EQ(certifies(w, n, delta, 0.95), by_bound) << w << "/" << n << " " << delta;
        }
      }
  // The smallest clean sample that certifies 1%: 299 labels.
  EXPECT_FALSE(certifies(0, 298, 0.01, 0.95));
  EXPECT_TRUE(certifies(0, 299, 0.01, 0.95));
}

// -- calibration on synthetic labels ---------------------------------------------------

/// Share of `trials` samples of `n` labels with true wrong-rate `p` that a
/// bin certifies at delta = 0.01, confidence 0.95.
double certify_rate(double p, std::uint32_t n, int trials, std::uint64_t seed) {
  std::mt19937_64 rng{seed};
  std::bernoulli_distribution wrong{p};
  int certified = 0;
  for (int t = 0; t < trials; ++t) {
    reuse_estimator est{guard_config{}};
    for (std::uint32_t i = 0; i < n; ++i)
      est.observe(1, 0.1, wrong(rng));
    if (est.decide(1, 0.1, 0.01, inf).reuse)
      ++certified;
  }
  return static_cast<double>(certified) / trials;
}

TEST(ReuseEstimator, NeverCertifiesATooRiskyBinMoreOftenThanItsConfidenceAllows) {
  // True rates at and above delta: certification must stay within alpha =
  // 0.05 (plus three binomial standard errors of the simulation).
  const int trials = 2000;
  double slack = 3.0 * std::sqrt(0.05 * 0.95 / trials);
  for (double p : {0.01, 0.012, 0.02, 0.05})
    for (std::uint32_t n : {300u, 600u, 1500u}) {
      double rate
        = certify_rate(p, n, trials, std::uint64_t{1000} * n + static_cast<std::uint64_t>(p * 1e4));
      EXPECT_LE(rate, 0.05 + slack) << "p=" << p << " n=" << n;
    }
}

TEST(ReuseEstimator, CertifiesSafeBinsOnceThereIsEnoughEvidence) {
  // Power: a bin whose true rate is a tenth of delta is certified in most
  // samples of 1500 labels, and always with 1500 clean labels.
  EXPECT_GT(certify_rate(0.001, 1500, 300, 7), 0.9);
  EXPECT_EQ(certify_rate(0.0, 1500, 20, 8), 1.0);
}

TEST(ReuseEstimator, WatchingAStreamOfRiskyLabelsRarelyCertifies) {
  // The service looks after every label, not at a fixed n. With a true rate
  // of 2 x delta the chance of ever certifying within 3000 labels stays
  // below alpha.
  std::mt19937_64 rng{42};
  std::bernoulli_distribution wrong{0.02};
  int ever = 0;
  const int trials = 400;
  for (int t = 0; t < trials; ++t) {
    reuse_estimator est{guard_config{}};
    for (int i = 0; i < 3000; ++i) {
      est.observe(1, 0.1, wrong(rng));
      if (est.decide(1, 0.1, 0.01, inf).reuse) {
        ++ever;
        break;
      }
    }
  }
  EXPECT_LE(static_cast<double>(ever) / trials, 0.05);
}

// -- decisions ---------------------------------------------------------------------------

TEST(ReuseEstimator, StartsSafeOnlyExactReuse) {
  reuse_estimator est{guard_config{}};
  auto exact = est.decide(1, 0.0, 0.01, inf);
  EXPECT_TRUE(exact.reuse);
  EXPECT_EQ(exact.basis, reuse_basis::exact);
  EXPECT_EQ(exact.p_wrong_upper, 0.0);
  for (double d : {1e-9, 1e-4, 0.1, 10.0}) {
    auto v = est.decide(1, d, 0.01, inf);
    EXPECT_FALSE(v.reuse) << d;
    EXPECT_EQ(v.basis, reuse_basis::refused);
    EXPECT_EQ(v.p_wrong_upper, 1.0);
  }
  EXPECT_EQ(est.reach(1), 0.0);
}

TEST(ReuseEstimator, EvidenceFartherOutCertifiesNearerDistances) {
  // Monotonicity: clean labels at distance 0.1 bound the risk at 0.01, where
  // nothing was observed, but not at 1.0.
  reuse_estimator est{guard_config{}};
  for (int i = 0; i < 400; ++i)
    est.observe(1, 0.1, false);
  EXPECT_TRUE(est.decide(1, 0.01, 0.01, inf).reuse);
  EXPECT_EQ(est.decide(1, 0.01, 0.01, inf).basis, reuse_basis::certified);
  EXPECT_TRUE(est.decide(1, 0.1, 0.01, inf).reuse);
  EXPECT_FALSE(est.decide(1, 1.0, 0.01, inf).reuse);
  EXPECT_GE(est.reach(1), 0.1);
  EXPECT_LT(est.reach(1), 0.15);
  // Other shapes learn nothing from it.
  EXPECT_FALSE(est.decide(2, 0.01, 0.01, inf).reuse);
  // Wrong answers far out do not hurt near certifications ...
  for (int i = 0; i < 400; ++i)
    est.observe(1, 2.0, true);
  EXPECT_TRUE(est.decide(1, 0.1, 0.01, inf).reuse);
  // ... but wrong answers where it was certified do.
  for (int i = 0; i < 10; ++i)
    est.observe(1, 0.1, true);
  EXPECT_FALSE(est.decide(1, 0.1, 0.01, inf).reuse);
  EXPECT_FALSE(est.decide(1, 0.01, 0.01, inf).reuse);
}

TEST(ReuseEstimator, ARequestMayTightenTheBudget) {
  reuse_estimator est{guard_config{}};
  for (int i = 0; i < 400; ++i)
    est.observe(1, 0.1, false);
  auto v = est.decide(1, 0.1, 0.01, inf);
  ASSERT_TRUE(v.reuse);
  EXPECT_GT(v.p_wrong_upper, 0.005);
  EXPECT_LE(v.p_wrong_upper, 0.01);
  EXPECT_FALSE(est.decide(1, 0.1, 0.005, inf).reuse);
}

TEST(ReuseEstimator, AnEntrySeenWrongIsNotReusedThatFarAgain) {
  reuse_estimator est{guard_config{}};
  for (int i = 0; i < 400; ++i)
    est.observe(1, 0.1, false);
  EXPECT_TRUE(est.decide(1, 0.05, 0.01, 0.2).reuse);
  EXPECT_FALSE(est.decide(1, 0.05, 0.01, 0.05).reuse);
  EXPECT_FALSE(est.decide(1, 0.08, 0.01, 0.05).reuse);
  EXPECT_TRUE(est.decide(1, 0.0, 0.01, 0.05).reuse); // exact stays exact
}

TEST(ReuseEstimator, ForgetsHalfWhenABinIsFull) {
  guard_config cfg;
  cfg.max_count = 64;
  reuse_estimator est{cfg};
  for (int i = 0; i < 64; ++i)
    est.observe(1, 0.1, i % 2 == 0);
  const auto* bins = est.bins(1);
  ASSERT_NE(bins, nullptr);
  auto b = est.bin_of(0.1);
  EXPECT_EQ((*bins)[b].n, 64u);
  EXPECT_EQ((*bins)[b].wrong, 32u);
  est.observe(1, 0.1, false);
  EXPECT_EQ((*bins)[b].n, 33u);
  EXPECT_EQ((*bins)[b].wrong, 16u);
  EXPECT_EQ(est.labels(), 65u);
  EXPECT_EQ(est.wrong_labels(), 32u);
}

TEST(ReuseEstimator, BinsAreLogSpacedAndCoverEverything) {
  guard_config cfg;
  reuse_estimator est{cfg};
  EXPECT_EQ(est.bin_of(0.0), 0u);
  EXPECT_EQ(est.bin_of(cfg.min_distance / 2), 0u);
  EXPECT_EQ(est.bin_of(cfg.min_distance), 1u);
  EXPECT_EQ(est.bin_of(1e9), cfg.bins - 1);
  EXPECT_EQ(est.bin_of(std::nan("")), cfg.bins - 1);
  for (double d : {1e-5, 3e-4, 0.02, 0.7, 5.0}) {
    auto b = est.bin_of(d);
    EXPECT_LE(est.bin_lower(b), d * (1 + 1e-12));
    EXPECT_GT(est.bin_upper(b), d);
  }
  EXPECT_EQ(est.bin_upper(cfg.bins - 1), inf);
}

TEST(GuardConfig, ValidatesEveryField) {
  EXPECT_TRUE(validate(guard_config{}));
  auto bad = [](auto mutate) {
    guard_config c;
    mutate(c);
    return !validate(c);
  };
  EXPECT_TRUE(bad([](guard_config& c) { c.tolerance = 0; }));
  EXPECT_TRUE(bad([](guard_config& c) { c.tolerance = std::nan(""); }));
  EXPECT_TRUE(bad([](guard_config& c) { c.max_wrong_rate = 0; }));
  EXPECT_TRUE(bad([](guard_config& c) { c.max_wrong_rate = 1; }));
  EXPECT_TRUE(bad([](guard_config& c) { c.confidence = 0.4; }));
  EXPECT_TRUE(bad([](guard_config& c) { c.confidence = 1.0; }));
  EXPECT_TRUE(bad([](guard_config& c) { c.bin_ratio = 1.0; }));
  EXPECT_TRUE(bad([](guard_config& c) { c.bins = 1; }));
  EXPECT_TRUE(bad([](guard_config& c) { c.max_count = 8; }));
  guard_config c;
  c.max_wrong_rate = 2;
  EXPECT_NE(validate(c).error().message.find("risk.max-wrong-rate"), std::string::npos);
}

TEST(RmsDistance, IsTheRootMeanSquare) {
  float a[] = {1, 2, 3, 4};
  float b[] = {1, 2, 3, 4};
  float c[] = {2, 2, 3, 2};
  EXPECT_EQ(rms_distance(a, b, 4), 0.0);
  EXPECT_NEAR(rms_distance(a, c, 4), std::sqrt(5.0 / 4.0), 1e-12);
  EXPECT_EQ(rms_distance(a, c, 0), 0.0);
}

TEST(LabelWindow, KeepsTheLastLabels) {
  label_window w{4};
  EXPECT_EQ(w.rate(), 0.0);
  w.add(true);
  w.add(false);
  w.add(false);
  w.add(false);
  EXPECT_EQ(w.size(), 4u);
  EXPECT_EQ(w.wrong(), 1u);
  w.add(false); // pushes the wrong one out
  EXPECT_EQ(w.size(), 4u);
  EXPECT_EQ(w.wrong(), 0u);
  EXPECT_EQ(w.lower(0.95), 0.0);
  for (int i = 0; i < 4; ++i)
    w.add(true);
  EXPECT_EQ(w.rate(), 1.0);
  EXPECT_GT(w.lower(0.95), 0.4);
  w.clear();
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.upper(0.95), 1.0);
}

} // namespace
} // namespace sil
