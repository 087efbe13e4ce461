#include "core/canary.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/hash.hpp"

namespace sil {
namespace {

TEST(CachePolicy, ValidatesEveryField) {
  cache_policy p;
  EXPECT_TRUE(validate(p, 32, 64));
  auto refused = [](cache_policy q, const char* says) {
    auto st = validate(q, 32, 64);
    ASSERT_FALSE(st) << says;
    EXPECT_EQ(st.error().code, errc::bad_request);
    EXPECT_NE(st.error().message.find(says), std::string::npos) << st.error().message;
  };
  auto q = p;
  q.name = "a b";
  refused(q, "name");
  q = p;
  q.prefix_k = 0;
  refused(q, "prefix_k must be in [1, 32]");
  q.prefix_k = 33;
  refused(q, "prefix_k");
  q.unit = prefix_unit::rows;
  q.prefix_k = 64;
  EXPECT_TRUE(validate(q, 32, 64)); // rows count up to http.max-rows
  q.prefix_k = 65;
  refused(q, "prefix_k must be in [1, 64] for unit rows");
  q = p;
  q.ttl_seconds = -1;
  refused(q, "ttl_seconds");
  q = p;
  q.capacity_share = 0.0;
  refused(q, "capacity_share");
  q = p;
  q.tolerance = 1.0;
  refused(q, "tolerance");
  q = p;
  q.max_wrong_rate = std::nan("");
  refused(q, "max_wrong_rate");
}

TEST(CanarySplit, APrefixStaysOnOnePolicyAndTheShareHolds) {
  cache_policy a;
  a.prefix_k = 8;
  cache_policy b;
  b.prefix_k = 4;
  EXPECT_EQ(split_values(a, b, 32), 4u);
  b.unit = prefix_unit::rows;
  b.prefix_k = 1;
  EXPECT_EQ(split_values(a, b, 32), 8u); // one row is 32 values
  // Inputs that share the first 4 values go the same way, whatever follows.
  std::vector<float> x(32, 0.5f);
  std::vector<float> y = x;
  y[4] = 9.0f;
  y[31] = -3.0f;
  EXPECT_EQ(split_hash(x.data(), 32, 4), split_hash(y.data(), 32, 4));
  y[3] = 0.25f;
  EXPECT_NE(split_hash(x.data(), 32, 4), split_hash(y.data(), 32, 4));
  // -0.0 and +0.0 are one value, as in the cache key.
  std::vector<float> z(32, 0.0f);
  std::vector<float> nz = z;
  nz[0] = -0.0f;
  EXPECT_EQ(split_hash(z.data(), 32, 4), split_hash(nz.data(), 32, 4));
  // The share of distinct prefixes that go to the canary.
  splitmix64 rng{7};
  int taken = 0;
  constexpr int n = 20000;
  for (int i = 0; i < n; ++i) {
    float v[4];
    for (auto& f : v)
      f = static_cast<float>(rng.uniform());
    taken += takes_canary(split_hash(v, 4, 4), 0.3);
  }
  EXPECT_NEAR(taken / static_cast<double>(n), 0.3, 0.015);
  EXPECT_FALSE(takes_canary(~std::uint64_t{0}, 0.0));
  EXPECT_TRUE(takes_canary(~std::uint64_t{0}, 1.0));
}

TEST(CanaryRule, NormalQuantilesAreTheTextbookOnes) {
  EXPECT_NEAR(normal_quantile(0.5), 0.0, 1e-9);
  EXPECT_NEAR(normal_quantile(0.95), 1.644854, 1e-5);
  EXPECT_NEAR(normal_quantile(0.975), 1.959964, 1e-5);
  EXPECT_NEAR(normal_quantile(0.99), 2.326348, 1e-5);
}

arm_counts arm(std::uint64_t requests, std::uint64_t encodes, std::uint64_t labels,
               std::uint64_t wrong) {
  arm_counts a;
  a.requests = requests;
  a.encodes = encodes;
  a.labels = labels;
  a.wrong = wrong;
  a.lookups = requests;
  a.hits = requests - encodes;
  return a;
}

TEST(CanaryRule, RollsBackAtOnceWhenBBreachesTheBudget) {
  canary_rule rule;
  // 6 wrong of 50: far above 1% even on few labels, and long before
  // min_labels.
  auto j = judge_canary(rule, arm(1000, 100, 200, 1), arm(100, 5, 50, 6), 3.0);
  EXPECT_EQ(j.verdict, canary_verdict::rollback);
  EXPECT_NE(j.reason.find("breaches the error budget"), std::string::npos) << j.reason;
  EXPECT_GT(j.b_lower, rule.max_wrong_rate);
  // 1 wrong of 50 does not prove a breach: keep gathering.
  EXPECT_EQ(judge_canary(rule, arm(1000, 100, 200, 1), arm(100, 5, 50, 1), 3.0).verdict,
            canary_verdict::keep);
}

TEST(CanaryRule, PromotesACheaperBThatIsNotWorse) {
  canary_rule rule;
  rule.max_wrong_rate = 0.05; // a budget both arms keep
  auto j = judge_canary(rule, arm(4000, 800, 2000, 20), arm(4000, 500, 2000, 18), 60.0);
  EXPECT_EQ(j.verdict, canary_verdict::promote) << j.reason;
  EXPECT_NE(j.reason.find("B is cheaper"), std::string::npos);
  EXPECT_NEAR(j.cost_a, 0.2, 1e-12);
  EXPECT_NEAR(j.cost_b, 0.125, 1e-12);
  EXPECT_LE(j.diff_upper, rule.margin);
  // Too few labels: the same rates, no decision yet.
  EXPECT_EQ(judge_canary(rule, arm(4000, 800, 50, 0), arm(4000, 500, 50, 0), 60.0).verdict,
            canary_verdict::keep);
}

TEST(CanaryRule, PromotesABThatIsWrongLessOftenAtASmallCostOnly) {
  canary_rule rule;
  rule.max_wrong_rate = 0.2;
  // B: 2% wrong against A's 8%, at 0.05 more encodes per request: promoted.
  auto j = judge_canary(rule, arm(4000, 1000, 1000, 80), arm(4000, 1200, 1000, 20), 60.0);
  EXPECT_EQ(j.verdict, canary_verdict::promote) << j.reason;
  EXPECT_NE(j.reason.find("wrong less often"), std::string::npos);
  EXPECT_LT(j.diff_upper, 0.0);
  // The same gain at 0.25 more encodes per request: not promoted.
  EXPECT_EQ(judge_canary(rule, arm(4000, 1000, 1000, 80), arm(4000, 2000, 1000, 20), 60.0).verdict,
            canary_verdict::keep);
}

TEST(CanaryRule, RollsBackABThatIsWorseAndAnInconclusiveOne) {
  canary_rule rule;
  rule.max_wrong_rate = 0.5;
  auto worse = judge_canary(rule, arm(4000, 800, 1000, 10), arm(4000, 300, 1000, 60), 30.0);
  EXPECT_EQ(worse.verdict, canary_verdict::rollback);
  EXPECT_NE(worse.reason.find("wrong more often than A"), std::string::npos) << worse.reason;
  rule.max_seconds = 120.0;
  auto same = judge_canary(rule, arm(4000, 800, 1000, 10), arm(4000, 800, 1000, 10), 121.0);
  EXPECT_EQ(same.verdict, canary_verdict::rollback);
  EXPECT_NE(same.reason.find("inconclusive"), std::string::npos);
}

// The test's error rate: a B that is truly worse by twice the margin, and
// cheaper, is promoted in at most about 1 - confidence of trials.
TEST(CanaryRule, AWorseButCheaperBIsRarelyPromoted) {
  canary_rule rule;
  rule.max_wrong_rate = 0.5;
  splitmix64 rng{2026};
  constexpr int trials = 400;
  constexpr std::uint64_t n = 1500;
  int promoted = 0;
  for (int t = 0; t < trials; ++t) {
    std::uint64_t wa = 0;
    std::uint64_t wb = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      wa += rng.uniform() < 0.02;
      wb += rng.uniform() < 0.02 + 2 * rule.margin;
    }
    promoted += judge_canary(rule, arm(3000, 900, n, wa), arm(3000, 600, n, wb), 60.0).verdict
                == canary_verdict::promote;
  }
  EXPECT_LE(promoted, trials * (1.0 - rule.confidence) * 1.5) << promoted << " of " << trials;
}

} // namespace
} // namespace sil
