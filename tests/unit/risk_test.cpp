#include "experiments/risk.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "core/lru_ttl_cache.hpp"
#include "experiments/workload.hpp"

namespace sil::lab {
namespace {

TEST(Features, PrefixDependsOnTheIdOnlyAndTheSuffixDrifts) {
  feature_spec spec;
  spec.strength = 0.5;
  auto a0 = make_features(spec, 7, 0, 1);
  auto a3 = make_features(spec, 7, 3, 2);
  auto b0 = make_features(spec, 8, 0, 1);
  ASSERT_EQ(a0.size(), 32u);
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_EQ(a0[i], a3[i]) << i; // same key at every step
  EXPECT_NE(a0[0], b0[0]);
  for (std::size_t i = 4; i < 32; ++i)
    EXPECT_NEAR(a3[i] - a0[i], 1.5, 1e-4) << i; // 3 steps x 0.5, no noise
}

TEST(Features, WithoutDriftOrNoiseAPrefixAlwaysSendsTheSameValues) {
  feature_spec spec;
  EXPECT_EQ(make_features(spec, 3, 0, 1), make_features(spec, 3, 9, 77));
}

TEST(Features, NoiseIsPerRequestAndReproducible) {
  feature_spec spec;
  spec.noise = 0.1;
  auto x = make_features(spec, 3, 0, 5);
  EXPECT_EQ(x, make_features(spec, 3, 0, 5));
  auto y = make_features(spec, 3, 0, 6);
  EXPECT_EQ(std::vector<float>(x.begin(), x.begin() + 4),
            std::vector<float>(y.begin(), y.begin() + 4));
  double diff = 0;
  for (std::size_t i = 4; i < 32; ++i)
    diff += std::abs(x[i] - y[i]);
  EXPECT_GT(diff / 28, 0.02);
  EXPECT_LT(diff / 28, 0.5);
}

TEST(Features, TheBodyCarriesExactlyTheLocalValues) {
  feature_spec spec;
  spec.noise = 1.0;
  auto x = make_features(spec, 11, 2.5, 3);
  auto body = predict_body(x, false);
  EXPECT_EQ(body.rfind("{\"features\":[[", 0), 0u);
  EXPECT_NE(body.find("\"use_cache\":false}"), std::string::npos);
  // Parse the numbers back: the server sees these floats.
  std::vector<float> back;
  const char* p = body.c_str() + 14;
  for (std::size_t i = 0; i < 32; ++i) {
    char* end = nullptr;
    back.push_back(std::strtof(p, &end));
    p = end + 1;
  }
  EXPECT_EQ(back, x);
}

/// A request sent 0.1 s before its answer.
observed_request req(std::uint64_t prefix, double done, bool hit, bool computed, double pred) {
  observed_request r;
  r.prefix = prefix;
  r.sent = done - 0.1;
  r.done = done;
  r.ok = true;
  r.cache_hit = hit;
  r.computed = computed;
  r.prediction = pred;
  return r;
}

TEST(Attribution, AHitComesFromTheLatestEarlierComputationWithItsPrediction) {
  std::vector<observed_request> rs{
    req(1, 1.0, false, true, 0.5),  // 0: computed, stored
    req(1, 2.0, true, false, 0.5),  // 1: hit on 0
    req(1, 3.0, false, true, 0.6),  // 2: recomputed (e.g. after expiry)
    req(1, 4.0, true, false, 0.6),  // 3: hit on 2
    req(2, 4.5, true, false, 0.6),  // 4: another prefix: never from prefix 1
    req(1, 5.0, true, false, 0.7),  // 5: nothing computed 0.7 before it
    req(1, 6.0, false, true, 0.7),  // 6: computed, sent after 5 was answered
    req(1, 7.0, true, false, 0.5),  // 7: an older value: the latest match, 0
    req(1, 8.0, false, false, 0.5), // 8: a miss
  };
  auto src = attribute_sources(rs);
  EXPECT_EQ(src, (std::vector<long>{-1, 0, -1, 2, -1, -1, -1, 0, -1}));
}

TEST(Attribution, ASingleFlightJoinerAnsweredBeforeItsLeaderIsAttributed) {
  // The leader was sent first; the joiner's answer overtook the leader's.
  auto leader = req(3, 1.05, false, true, 0.4);
  leader.sent = 0.90;
  auto joiner = req(3, 1.00, true, false, 0.4);
  joiner.sent = 0.95;
  EXPECT_EQ(attribute_sources({leader, joiner}), (std::vector<long>{-1, 0}));
}

TEST(Attribution, FailedRequestsAreNeitherSourcesNorAttributed) {
  std::vector<observed_request> rs{req(1, 1.0, false, true, 0.5), req(1, 2.0, true, false, 0.5)};
  rs[0].ok = false;
  EXPECT_EQ(attribute_sources(rs), (std::vector<long>{-1, -1}));
}

TEST(Classify, CountsHitsWrongHitsAndMissesAgainstTheFreshAnswer) {
  std::vector<observed_request> rs{
    req(1, 1, false, true, 0.50), // miss, exact
    req(1, 2, true, false, 0.50), // hit, error 0 -> correct
    req(1, 3, true, false, 0.50), // hit, error 0.25 -> correct (not above)
    req(1, 4, true, false, 0.50), // hit, error 0.5 -> wrong
    req(1, 5, true, false, 0.50), // fresh unknown -> error
    req(1, 6, true, false, 0.50), // failed -> error
  };
  rs[5].ok = false;
  double nan = std::numeric_limits<double>::quiet_NaN();
  // (binary fractions, so the boundary case is exact)
  auto c = classify(rs, {0.50, 0.50, 0.75, 1.0, nan, 0.5}, 0.25);
  EXPECT_EQ(c.requests, 6u);
  EXPECT_EQ(c.errors, 2u);
  EXPECT_EQ(c.misses, 1u);
  EXPECT_EQ(c.hits, 3u);
  EXPECT_EQ(c.correct_hits, 2u);
  EXPECT_EQ(c.wrong_hits, 1u);
  EXPECT_DOUBLE_EQ(c.max_miss_error, 0.0);
  EXPECT_DOUBLE_EQ(c.max_hit_error, 0.5);
  EXPECT_DOUBLE_EQ(c.mean_hit_error, 0.25);
  EXPECT_DOUBLE_EQ(c.hit_rate(), 0.75);
  EXPECT_NEAR(c.wrong_hit_rate(), 1.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(c.wrong_answer_rate(), 0.25);
}

TEST(Che, FullCapacityAndUniformPopularityHaveExactValues) {
  std::vector<double> uniform(100, 1.0);
  EXPECT_DOUBLE_EQ(che_hit_rate(uniform, 100), 1.0);
  EXPECT_DOUBLE_EQ(che_hit_rate(uniform, 0), 0.0);
  // Uniform: occupancy M(1 - e^{-T/M}) = C gives hit rate C / M.
  EXPECT_NEAR(che_hit_rate(uniform, 25), 0.25, 1e-9);
  EXPECT_NEAR(che_hit_rate(uniform, 50), 0.50, 1e-9);
}

TEST(Che, AgreesWithOurLruCacheOnZipfTraffic) {
  prefix_mix mix{prefix_kind::zipf, 300, 0.9, 5};
  std::vector<double> pop(300);
  for (std::size_t i = 0; i < pop.size(); ++i)
    pop[i] = mix.zipf_probability(i);
  for (std::size_t capacity : {10u, 40u, 120u}) {
    cache_config cfg;
    cfg.max_size = capacity;
    cfg.ttl = std::chrono::hours{1};
    auto cache = lru_ttl_cache::make(cfg, [] { return cache_time{}; });
    ASSERT_TRUE(cache);
    auto value = embedding::copy_of(std::vector<float>{1.0f});
    std::size_t hits = 0;
    std::size_t counted = 0;
    for (int i = 0; i < 200000; ++i) {
      auto key = mix.next();
      bool hit = cache->get(key).hit();
      if (!hit)
        cache->put(key, value);
      if (i >= 20000) { // after warm-up
        ++counted;
        hits += hit ? 1 : 0;
      }
    }
    double measured = static_cast<double>(hits) / static_cast<double>(counted);
    EXPECT_NEAR(measured, che_hit_rate(pop, static_cast<double>(capacity)), 0.01) << capacity;
  }
}

} // namespace
} // namespace sil::lab
