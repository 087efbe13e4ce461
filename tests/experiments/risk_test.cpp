#include "experiments/risk.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "core/lru_ttl_cache.hpp"
#include "experiments/analysis.hpp"
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

TEST(Features, ANewSuffixEpochMovesEverySuffixValueButNotTheKey) {
  feature_spec spec;
  auto a = make_features(spec, 5, 0, 1);
  spec.suffix_epoch = 1;
  auto b = make_features(spec, 5, 0, 1);
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_EQ(a[i], b[i]) << i;
  for (std::size_t i = 4; i < 32; ++i)
    EXPECT_NE(a[i], b[i]) << i;
  spec.suffix_epoch = 0;
  EXPECT_EQ(make_features(spec, 5, 0, 1), a); // epoch 0 is the original suffix
}

TEST(Features, OnlyTheDriftingValuesMove) {
  feature_spec spec;
  spec.strength = 0.5;
  spec.drifting = 1;
  auto a0 = make_features(spec, 2, 0, 1);
  auto a4 = make_features(spec, 2, 4, 1);
  EXPECT_NEAR(a4[4] - a0[4], 2.0, 1e-4); // the first value after the key
  for (std::size_t i = 0; i < 32; ++i) {
    if (i != 4) {
      EXPECT_EQ(a4[i], a0[i]) << i;
    }
  }
}

TEST(Features, TheResampledFormulationDrawsEverySuffixAround0StepTimesStrength) {
  feature_spec spec;
  spec.resampled = true;
  spec.strength = 0.25;
  auto x = make_features(spec, 1, 4, 10);
  auto y = make_features(spec, 1, 4, 11);
  EXPECT_EQ(std::vector<float>(x.begin(), x.begin() + 4),
            std::vector<float>(y.begin(), y.begin() + 4));
  double sum = 0;
  double sq = 0;
  std::size_t n = 0;
  for (std::uint64_t draw = 0; draw < 200; ++draw) {
    auto f = make_features(spec, 1, 4, draw);
    for (std::size_t i = 4; i < f.size(); ++i) {
      sum += f[i];
      sq += static_cast<double>(f[i]) * f[i];
      ++n;
    }
  }
  double mean = sum / static_cast<double>(n);
  EXPECT_NEAR(mean, 1.0, 0.05); // 4 steps x 0.25
  EXPECT_NEAR(sq / static_cast<double>(n) - mean * mean, 1.0, 0.05);
  EXPECT_NE(x, y);
}

TEST(InputDistance, IsTheRmsOfTheSuffixDifference) {
  std::vector<float> a{9, 9, 1, 2, 3, 4};
  std::vector<float> b{0, 0, 1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(input_distance(a, b, 2), 0.0); // the key does not count
  std::vector<float> c{9, 9, 2, 0, 3, 4};         // differences 1, -2, 0, 0
  EXPECT_DOUBLE_EQ(input_distance(c, b, 2), std::sqrt(5.0 / 4.0));
  EXPECT_DOUBLE_EQ(input_distance(c, b, 2), input_distance(b, c, 2));
  EXPECT_DOUBLE_EQ(input_distance(a, b, 6), 0.0); // nothing outside the key
}

/// Requests of one prefix whose values are a scalar "input"; the answer of
/// request i from the entry of request j is off by |x[i] - x[j]|.
struct scalar_run {
  std::vector<replay_request> requests;
  std::vector<double> x;
  pair_measure distance() const {
    return [this](std::size_t i, std::size_t j) { return std::abs(x[i] - x[j]); };
  }
};

scalar_run drifting_run() {
  // Request 0 is the recorded miss; every later one found a live entry.
  scalar_run r;
  for (double v : {0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6})
    r.x.push_back(v);
  for (std::size_t i = 0; i < r.x.size(); ++i)
    r.requests.push_back({7, i > 0});
  return r;
}

TEST(Replay, ARefusedRequestIsComputedAndBecomesTheEntry) {
  auto r = drifting_run();
  // Threshold 0.15: 1 reuses 0 (0.1); 2 is 0.2 from 0: refused, new entry;
  // 3 reuses 2; 4 refused; 5 reuses 4; 6 refused.
  auto o = replay_threshold(r.requests, r.distance(), 0.15, r.distance(), 0.05);
  EXPECT_EQ(o.requests, 7u);
  EXPECT_EQ(o.hits, 3u);
  EXPECT_EQ(o.wrong, 3u); // each off by 0.1 > 0.05
  EXPECT_NEAR(o.hit_rate(), 3.0 / 7, 1e-12);
  EXPECT_DOUBLE_EQ(o.wrong_rate(), 1.0);
  // Without refreshing, everything from request 0 would be reused at 1.0.
  auto all = replay_threshold(r.requests, r.distance(), 1.0, r.distance(), 0.05);
  EXPECT_EQ(all.hits, 6u);
  EXPECT_EQ(all.wrong, 6u);
}

TEST(Replay, TheOracleReusesExactlyTheAnswersWithinTolerance) {
  auto r = drifting_run();
  r.x = {0.0, 0.01, 0.03, 0.2, 0.21, 0.5, 0.5};
  auto o = replay_threshold(r.requests, r.distance(), 0.05, r.distance(), 0.05);
  // 1, 2 reuse 0; 3 refused (entry 3); 4 reuses 3; 5 refused; 6 reuses 5.
  EXPECT_EQ(o.hits, 4u);
  EXPECT_EQ(o.wrong, 0u);
  EXPECT_DOUBLE_EQ(o.wrong_rate(), 0.0);
}

TEST(Replay, RecordedMissesAndOtherPrefixesNeverReuse) {
  scalar_run r;
  r.x = {0.0, 0.0, 0.0, 0.0};
  r.requests = {{1, false}, {2, true}, {1, false}, {1, true}};
  // 1: no entry of prefix 2 exists; 2: a recorded miss computes; 3 reuses 2.
  auto o = replay_threshold(r.requests, r.distance(), 10.0, r.distance(), 0.05);
  EXPECT_EQ(o.hits, 1u);
  EXPECT_EQ(o.requests, 4u);
  EXPECT_DOUBLE_EQ(replay_outcome{}.hit_rate(), 0.0);
  EXPECT_DOUBLE_EQ(replay_outcome{}.wrong_rate(), 0.0);
}

TEST(Replay, TheBestThresholdWithinABudgetHasTheHighestHitRate) {
  auto r = drifting_run();
  r.x = {0.0, 0.01, 0.02, 0.03, 0.2, 0.21, 0.6};
  auto curve
    = threshold_curve(r.requests, r.distance(), {0.0, 0.02, 0.05, 0.3, 1.0}, r.distance(), 0.05);
  ASSERT_EQ(curve.size(), 5u);
  EXPECT_EQ(curve[0].outcome.hits, 0u); // 0: exact reuse only, and nothing is exact
  for (std::size_t i = 1; i < curve.size(); ++i)
    EXPECT_GE(curve[i].outcome.hit_rate(), curve[i - 1].outcome.hit_rate());
  const auto* best = best_within(curve, 0.0);
  ASSERT_NE(best, nullptr);
  EXPECT_DOUBLE_EQ(best->threshold, 0.05); // 4 hits, none wrong
  EXPECT_EQ(best->outcome.hits, 4u);
  const auto* loose = best_within(curve, 1.0);
  ASSERT_NE(loose, nullptr);
  EXPECT_DOUBLE_EQ(loose->threshold, 1.0);
  EXPECT_EQ(best_within({}, 1.0), nullptr);
  std::vector<threshold_point> bad{{0.1, {10, 5, 5}}};
  EXPECT_EQ(best_within(bad, 0.1), nullptr);
}

TEST(Replay, LogThresholdsStartAtZeroAndSpanTheRange) {
  auto t = log_thresholds(1e-4, 1.0, 5);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_EQ(t[0], 0.0);
  EXPECT_DOUBLE_EQ(t[1], 1e-4);
  EXPECT_NEAR(t[2], 1e-3, 1e-15);
  EXPECT_NEAR(t[5], 1.0, 1e-12);
}

TEST(Repetitions, SpreadIsMeanMinAndMaxWithoutNaN) {
  auto s = spread_of({0.2, 0.1, std::nan(""), 0.3});
  EXPECT_EQ(s.n, 3u);
  EXPECT_NEAR(s.mean, 0.2, 1e-12);
  EXPECT_DOUBLE_EQ(s.min, 0.1);
  EXPECT_DOUBLE_EQ(s.max, 0.3);
  EXPECT_EQ(format_spread(s, 2), "0.20 [0.10, 0.30]");
  EXPECT_EQ(format_spread(spread_of({0.5001, 0.4999}), 2), "0.50"); // one number
  EXPECT_EQ(format_spread(spread_of({}), 2), "n/a");
  EXPECT_EQ(spread_of({}).n, 0u);
}

TEST(Repetitions, AVerdictThatDisagreesBetweenRepetitionsSaysSo) {
  EXPECT_EQ(rep_verdict(3, 3), "**Holds** (3 of 3 repetitions)");
  EXPECT_EQ(rep_verdict(0, 3), "**Does not hold here** (0 of 3 repetitions)");
  EXPECT_EQ(rep_verdict(2, 3), "**Flips between repetitions**: holds in 2 of 3");
  EXPECT_EQ(rep_verdict(0, 0), "**Does not hold here** (0 of 0 repetitions)");
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
