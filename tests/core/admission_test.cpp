// The frequency sketch, W-TinyLFU's admission and segments in the cache, and
// the read view's mirror under both admission policies.
#include "core/admission.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "core/lru_ttl_cache.hpp"
#include "core/read_view.hpp"
#include "tests/support/manual_clock.hpp"

namespace sil {
namespace {

using namespace std::chrono_literals;

using test::manual_clock;
using test::val;

// -- the sketch ------------------------------------------------------------------

TEST(FrequencySketch, CountsAccessesPerKey) {
  frequency_sketch s{1024};
  std::map<prefix_key, unsigned> truth{{11, 1}, {22, 3}, {33, 7}, {44, 12}};
  for (auto [k, n] : truth)
    for (unsigned i = 0; i < n; ++i)
      EXPECT_TRUE(s.increment(k));
  for (auto [k, n] : truth)
    EXPECT_EQ(s.frequency(k), n) << k;
  EXPECT_EQ(s.frequency(55), 0u);
  EXPECT_EQ(s.sample_count(), 23u);
}

TEST(FrequencySketch, NeverUnderestimatesBeforeAging) {
  // ~500 distinct keys in a sketch sized for 512: collisions only inflate.
  frequency_sketch s{512};
  std::mt19937_64 rng{3};
  std::map<prefix_key, unsigned> truth;
  for (int i = 0; i < 600; ++i) { // below the 5120-access sample: no aging
    prefix_key k = rng() % 2000;
    s.increment(k);
    ++truth[k];
  }
  ASSERT_EQ(s.agings(), 0u);
  std::size_t exact = 0;
  for (auto [k, n] : truth) {
    EXPECT_GE(s.frequency(k), std::min(n, frequency_sketch::max_count)) << k;
    exact += s.frequency(k) == std::min(n, frequency_sketch::max_count) ? 1 : 0;
  }
  // Four rows: nearly every key still reads its own count exactly.
  EXPECT_GT(exact, truth.size() * 9 / 10);
}

TEST(FrequencySketch, CountersSaturateAtFifteen) {
  frequency_sketch s{64};
  for (int i = 0; i < 15; ++i)
    EXPECT_TRUE(s.increment(7));
  EXPECT_EQ(s.frequency(7), 15u);
  auto sampled = s.sample_count();
  for (int i = 0; i < 100; ++i)
    EXPECT_FALSE(s.increment(7)); // all four counters are full: nothing changes
  EXPECT_EQ(s.frequency(7), 15u);
  EXPECT_EQ(s.sample_count(), sampled);
}

TEST(FrequencySketch, AgingHalvesEveryCounter) {
  frequency_sketch s{256};
  for (int i = 0; i < 9; ++i)
    s.increment(1);
  for (int i = 0; i < 4; ++i)
    s.increment(2);
  s.increment(3);
  s.age();
  EXPECT_EQ(s.frequency(1), 4u);
  EXPECT_EQ(s.frequency(2), 2u);
  EXPECT_EQ(s.frequency(3), 0u);
  EXPECT_EQ(s.sample_count(), 7u); // 14 / 2
  EXPECT_EQ(s.agings(), 1u);
}

TEST(FrequencySketch, AgesAfterASampleOfTenTimesItsCapacity) {
  frequency_sketch s{100};
  ASSERT_EQ(s.sample_size(), 1000u);
  for (int i = 0; i < 15; ++i)
    s.increment(42);
  // Other keys until the sample is full: the hot key's saturated counters
  // become 7 at that moment.
  prefix_key k = 1000;
  while (s.agings() == 0)
    s.increment(k++);
  EXPECT_EQ(s.frequency(42), 7u);
  EXPECT_LT(s.sample_count(), 1000u);
  EXPECT_GE(s.sample_count(), 490u);
}

TEST(FrequencySketch, GrowingCarriesEveryEstimateOverHalved) {
  frequency_sketch s{8};
  std::mt19937_64 rng{5};
  std::vector<prefix_key> keys;
  for (int i = 0; i < 40; ++i) {
    keys.push_back(rng());
    for (auto n = rng() % 6; n > 0; --n)
      s.increment(keys.back());
  }
  std::vector<unsigned> before;
  for (auto k : keys)
    before.push_back(s.frequency(k));
  auto words = s.words();
  auto agings = s.agings();
  s.ensure_capacity(1 << 16);
  EXPECT_GT(s.words(), words);
  EXPECT_EQ(s.sample_size(), 10u << 16);
  EXPECT_EQ(s.agings(), agings + 1);
  for (std::size_t i = 0; i < keys.size(); ++i)
    EXPECT_EQ(s.frequency(keys[i]), before[i] / 2) << i;
  s.ensure_capacity(1 << 10); // never narrows, and nothing changes
  EXPECT_EQ(s.agings(), agings + 1);
}

TEST(FrequencySketch, GrowingStepByStepDoesNotPileUpCollisions) {
  // Widened one doubling at a time from 8 words to 256 as keys arrive (as
  // a cache's table grows), then as many one-off keys again: nearly every
  // one-off key must read 1. Duplicating without aging made about a third
  // of them read 2 or 3, enough to shut a key seen twice out of the cache.
  frequency_sketch s{8};
  prefix_key k = 1;
  for (std::size_t w = 8; w <= 256; w *= 2) {
    s.ensure_capacity(w);
    while (k <= w)
      s.increment(k++);
  }
  std::vector<prefix_key> recent;
  for (int i = 0; i < 256; ++i) {
    recent.push_back(k);
    s.increment(k++);
  }
  ASSERT_EQ(s.words(), 256u);
  std::size_t inflated = 0;
  for (auto r : recent)
    inflated += s.frequency(r) > 1 ? 1 : 0;
  EXPECT_LT(inflated, recent.size() / 20);
}

TEST(Admission, RuleAdmitsOnlyAHigherEstimateExceptWarmCandidatesRarely) {
  EXPECT_TRUE(admit(2, 1, 1));
  EXPECT_FALSE(admit(1, 1, 0)); // a cold tie: never
  EXPECT_FALSE(admit(5, 9, 0)); // cold: no random admission
  EXPECT_TRUE(admit(6, 9, 0));  // warm, random low bits zero: 1 in 128
  EXPECT_FALSE(admit(6, 9, 1));
  splitmix64 rng{9};
  int admitted = 0;
  for (int i = 0; i < 128000; ++i)
    admitted += admit(7, 15, rng.next()) ? 1 : 0;
  EXPECT_GT(admitted, 800);
  EXPECT_LT(admitted, 1200);
}

TEST(Admission, PolicyNamesRoundTrip) {
  for (auto p : {admission_policy::lru, admission_policy::tinylfu})
    EXPECT_EQ(parse_admission_policy(to_string(p)), p);
  EXPECT_FALSE(parse_admission_policy("LRU"));
  EXPECT_FALSE(parse_admission_policy(""));
}

TEST(Admission, RegionSizes) {
  auto r = regions_for(admission_policy::tinylfu, 10000);
  EXPECT_EQ(r.window, 100u);
  EXPECT_EQ(r.main, 9900u);
  EXPECT_EQ(r.protected_max, 7920u);
  auto tiny = regions_for(admission_policy::tinylfu, 1);
  EXPECT_EQ(tiny.window, 1u);
  EXPECT_EQ(tiny.main, 0u);
  // Small caches: at least min(16, capacity / 16), so that a new key's
  // first hits count before it faces admission.
  EXPECT_EQ(regions_for(admission_policy::tinylfu, 256).window, 16u);
  EXPECT_EQ(regions_for(admission_policy::tinylfu, 64).window, 4u);
  EXPECT_EQ(regions_for(admission_policy::tinylfu, 16).window, 1u);
  EXPECT_EQ(regions_for(admission_policy::tinylfu, 1600).window, 16u);
  auto lru = regions_for(admission_policy::lru, 1000);
  EXPECT_EQ(lru.window, 1000u);
  EXPECT_EQ(lru.main, 0u);
}

// -- the policy in the cache -------------------------------------------------------

lru_ttl_cache make(manual_clock& clk, std::size_t cap, admission_policy p, cache_duration ttl = 1h,
                   std::uint64_t seed = cache_config{}.seed) {
  cache_config cfg;
  cfg.max_size = cap;
  cfg.ttl = ttl;
  cfg.admission = p;
  cfg.seed = seed;
  auto c = lru_ttl_cache::make(cfg, clk.fn());
  EXPECT_TRUE(c);
  return std::move(*c);
}

/// A get that inserts on a miss, as the service does; returns whether it hit.
bool request(lru_ttl_cache& c, prefix_key k) {
  if (c.get(k).hit())
    return true;
  c.put(k, val(static_cast<float>(k)));
  return false;
}

TEST(TinyLfu, AScanOfUniqueKeysDoesNotFlushAFrequentKey) {
  for (auto p : {admission_policy::lru, admission_policy::tinylfu}) {
    manual_clock clk;
    auto c = make(clk, 100, p);
    for (int i = 0; i < 10; ++i)
      request(c, 7);
    for (prefix_key k = 1000; k < 2000; ++k)
      request(c, k);
    if (p == admission_policy::tinylfu) {
      EXPECT_TRUE(c.get(7).hit());
      EXPECT_EQ(c.segment_of(7), cache_segment::protected_);
      EXPECT_GT(c.stats().rejections, 800u);
    } else {
      EXPECT_FALSE(c.get(7).hit());
      EXPECT_EQ(c.stats().rejections, 0u);
    }
    EXPECT_EQ(c.size(), 100u);
  }
}

TEST(TinyLfu, AKeySeenTwiceIsNotShutOutByOneOffKeys) {
  // The default cache (256 entries) after twice its size of one-off keys;
  // then a key requested twice, and again every few one-off keys. It must
  // stay: a sketch that rated the one-off victims as high as the new key
  // (collisions) rejected it at its first move out of the window.
  int lost = 0;
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    manual_clock clk;
    auto c = make(clk, 256, admission_policy::tinylfu, 1h, seed); // the default size
    std::mt19937_64 rng{seed};
    prefix_key next = 1 << 20;
    for (int i = 0; i < 512; ++i)
      request(c, next++);
    constexpr prefix_key hot = 7;
    request(c, hot);
    request(c, hot);
    for (int round = 0; round < 400; ++round) {
      for (auto n = 1 + rng() % 8; n > 0; --n)
        request(c, next++);
      if (!request(c, hot)) {
        ++lost;
        break;
      }
    }
  }
  EXPECT_EQ(lost, 0);
}

TEST(TinyLfu, AHitReplayedLateStillCountsBeforeTheKeyLeavesTheWindow) {
  // The read path's hits reach the owner in batches, a few milliseconds
  // late, while a flood of misses keeps inserting. A key requested twice
  // (its put, then a hit whose access is replayed after three more inserts)
  // must still be in the window when that access arrives; with a window of
  // 1% of 256 (two entries) it was already a candidate rated like the
  // one-off victims (1 against 1) and was dropped.
  int lost = 0;
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    manual_clock clk;
    auto c = make(clk, 256, admission_policy::tinylfu, 1h, seed); // the default size
    prefix_key next = (seed + 1) << 20;
    for (int i = 0; i < 400; ++i)
      request(c, next++);
    constexpr prefix_key hot = 7;
    request(c, hot); // a miss: put
    for (int i = 0; i < 3; ++i)
      request(c, next++);
    if (!c.peek(hot)) {
      ++lost;
      continue;
    }
    c.record_access(hot); // the hit, replayed late
    for (int round = 0; round < 200; ++round) {
      for (int i = 0; i < 4; ++i)
        request(c, next++);
      if (!c.peek(hot)) {
        ++lost;
        break;
      }
      c.record_access(hot);
    }
  }
  EXPECT_EQ(lost, 0);
}

TEST(TinyLfu, AHotSetSurvivesAnInterleavedScan) {
  // 10 hot keys between bursts of 50 one-off keys, in a cache of 40: under
  // LRU every hot key is pushed out before its next request.
  std::map<admission_policy, double> rate;
  for (auto p : {admission_policy::lru, admission_policy::tinylfu}) {
    manual_clock clk;
    auto c = make(clk, 40, p);
    prefix_key next_unique = 1 << 20;
    int hits = 0;
    int n = 0;
    for (int round = 0; round < 200; ++round) {
      for (prefix_key h = 1; h <= 10; ++h) {
        bool hit = request(c, h);
        if (round >= 20) {
          hits += hit ? 1 : 0;
          ++n;
        }
      }
      for (int i = 0; i < 50; ++i)
        request(c, next_unique++);
    }
    rate[p] = static_cast<double>(hits) / n;
  }
  EXPECT_EQ(rate[admission_policy::lru], 0.0);
  EXPECT_GT(rate[admission_policy::tinylfu], 0.95);
}

TEST(TinyLfu, NewEntriesEnterTheWindowThenProbationThenProtected) {
  manual_clock clk;
  auto c = make(clk, 20, admission_policy::tinylfu); // window 1, protected <= 15
  c.put(1, val(1));
  EXPECT_EQ(c.segment_of(1), cache_segment::window);
  c.put(2, val(2)); // the window holds one: 1 moves on to probation
  EXPECT_EQ(c.segment_of(1), cache_segment::probation);
  EXPECT_EQ(c.segment_of(2), cache_segment::window);
  EXPECT_TRUE(c.get(1).hit());
  EXPECT_EQ(c.segment_of(1), cache_segment::protected_);
  EXPECT_TRUE(c.get(2).hit()); // a hit in the window stays in the window
  EXPECT_EQ(c.segment_of(2), cache_segment::window);
  EXPECT_EQ(c.segment_size(cache_segment::window), 1u);
  EXPECT_EQ(c.segment_size(cache_segment::probation), 0u);
  EXPECT_EQ(c.segment_size(cache_segment::protected_), 1u);
  EXPECT_FALSE(c.segment_of(3));
}

TEST(TinyLfu, FullCacheAdmitsOnlyACandidateMoreFrequentThanTheVictim) {
  manual_clock clk;
  auto c = make(clk, 10, admission_policy::tinylfu); // window 1, main 9
  for (prefix_key k = 1; k <= 10; ++k)
    c.put(k, val(static_cast<float>(k)));
  // 1..9 in probation (1 the oldest), 10 in the window; every estimate is 1.
  auto r = c.put(11, val(11)); // candidate 10 ties victim 1: not admitted
  EXPECT_TRUE(r.evicted);
  EXPECT_FALSE(c.peek(10));
  EXPECT_TRUE(c.peek(1));
  EXPECT_EQ(c.stats().rejections, 1u);
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(c.get(11).hit());
  EXPECT_EQ(c.frequency(11), 4u);
  c.put(12, val(12)); // candidate 11 (4) beats victim 1 (1)
  EXPECT_EQ(c.segment_of(11), cache_segment::probation);
  EXPECT_FALSE(c.peek(1));
  EXPECT_EQ(c.segment_of(12), cache_segment::window);
  auto s = c.stats();
  EXPECT_EQ(s.rejections, 1u);
  EXPECT_EQ(s.evictions, 2u);
  EXPECT_EQ(c.size(), 10u);
}

TEST(TinyLfu, ProtectedOverflowDemotesItsOldestToProbation) {
  manual_clock clk;
  auto c = make(clk, 10, admission_policy::tinylfu); // protected <= 7
  ASSERT_EQ(c.regions().protected_max, 7u);
  for (prefix_key k = 1; k <= 10; ++k)
    c.put(k, val(static_cast<float>(k)));
  for (prefix_key k = 1; k <= 8; ++k)
    EXPECT_TRUE(c.get(k).hit());
  // The eighth promotion overfilled protected: 1, its oldest, went back.
  EXPECT_EQ(c.segment_of(1), cache_segment::probation);
  for (prefix_key k = 2; k <= 8; ++k)
    EXPECT_EQ(c.segment_of(k), cache_segment::protected_) << k;
  EXPECT_EQ(c.segment_of(9), cache_segment::probation);
  EXPECT_EQ(c.segment_size(cache_segment::protected_), 7u);
  EXPECT_EQ(c.segment_size(cache_segment::probation), 2u);
  EXPECT_EQ(c.segment_size(cache_segment::window), 1u);
  // Demoted to probation's front: 9 is now main's victim, not 1.
  c.put(11, val(11));
  EXPECT_FALSE(c.peek(10)); // candidate 10 (1) ties victim 9 (1)
  EXPECT_TRUE(c.peek(9));
}

TEST(TinyLfu, RecordAccessActsLikeAHitWithoutCountingIt) {
  manual_clock clk;
  auto c = make(clk, 20, admission_policy::tinylfu); // window 1
  c.put(1, val(1));
  c.put(2, val(2));
  ASSERT_EQ(c.segment_of(1), cache_segment::probation);
  ASSERT_EQ(c.frequency(1), 1u);
  c.record_access(1);
  EXPECT_EQ(c.segment_of(1), cache_segment::protected_);
  EXPECT_EQ(c.frequency(1), 2u);
  c.record_access(99); // absent: nothing happens
  EXPECT_EQ(c.frequency(99), 0u);
  EXPECT_EQ(c.stats().hits, 0u);
  // Replayed accesses protect a key from a scan just as hits do.
  for (int i = 0; i < 5; ++i)
    c.record_access(1);
  for (prefix_key k = 1000; k < 1500; ++k)
    request(c, k);
  EXPECT_TRUE(c.peek(1));
}

TEST(TinyLfu, TtlStillBoundsWhatIsServed) {
  manual_clock clk;
  auto c = make(clk, 10, admission_policy::tinylfu, 10s);
  for (prefix_key k = 1; k <= 10; ++k)
    c.put(k, val(static_cast<float>(k)));
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(c.get(3).hit());
  ASSERT_EQ(c.segment_of(3), cache_segment::protected_);
  clk.now += 10s; // every entry reaches the TTL, the protected one too
  auto r = c.get(3);
  EXPECT_EQ(r.status, lookup_status::expired);
  EXPECT_FALSE(c.peek(3));
  EXPECT_EQ(c.sweep(), 9u);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.stats().expirations, 10u);
  // A full cache drops an expired entry before evicting a live one.
  for (prefix_key k = 1; k <= 10; ++k)
    c.put(k, val(static_cast<float>(k)));
  clk.now += 5s;
  c.put(11, val(11));
  clk.now += 5s; // 1..10 expired, 11 has 5 s left
  auto p = c.put(12, val(12));
  EXPECT_TRUE(p.expired);
  EXPECT_FALSE(p.evicted);
  EXPECT_TRUE(c.get(11).hit());
}

TEST(TinyLfu, CapacityOneKeepsTheNewest) {
  manual_clock clk;
  auto c = make(clk, 1, admission_policy::tinylfu);
  c.put(1, val(1));
  c.get(1);
  c.get(1);
  c.put(2, val(2)); // no main region: the window's entry leaves
  EXPECT_FALSE(c.peek(1));
  EXPECT_TRUE(c.get(2).hit());
  EXPECT_EQ(c.size(), 1u);
}

TEST(TinyLfu, ClearForgetsEntriesAndFrequencies) {
  manual_clock clk;
  auto c = make(clk, 1000, admission_policy::tinylfu);
  for (prefix_key k = 0; k < 1000; ++k)
    request(c, k);
  auto grown = c.memory_bytes();
  EXPECT_GT(c.frequency(5), 0u);
  c.clear();
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.frequency(5), 0u);
  // The entries' memory goes back; the sketch (8 bytes per entry of
  // capacity, up to 64Ki entries) keeps its width.
  EXPECT_LT(c.memory_bytes(), grown / 8);
  for (auto s : {cache_segment::window, cache_segment::probation, cache_segment::protected_})
    EXPECT_EQ(c.segment_size(s), 0u);
  request(c, 5);
  EXPECT_TRUE(c.get(5).hit());
}

// -- the read view's mirror, under both policies ------------------------------------

class MirrorUnderPolicy : public ::testing::TestWithParam<admission_policy> {};

TEST_P(MirrorUnderPolicy, RandomOperationsKeepTheViewIdenticalToTheCache) {
  const auto policy = GetParam();
  for (std::size_t cap : {1, 7, 64}) {
    manual_clock clk;
    const cache_duration ttl = 10s;
    guard_config guard;
    guard.enabled = false; // the key alone decides what the view serves
    auto view = std::make_shared<read_view>(guard);
    cache_config cfg;
    cfg.max_size = cap;
    cfg.ttl = ttl;
    cfg.admission = policy;
    auto made = lru_ttl_cache::make(cfg, clk.fn());
    ASSERT_TRUE(made);
    auto& c = *made;
    c.attach(view);
    const prefix_key key_space = 3 * cap + 20;
    std::mt19937 rng{static_cast<std::uint32_t>(cap) * 31 + 1};
    auto pick = [&](std::uint32_t n) { return static_cast<std::uint32_t>(rng() % n); };
    // Skewed keys: a few hot ones (that earn protection) and a long tail.
    auto draw = [&]() -> prefix_key {
      auto k = pick(4) == 0 ? pick(4) : pick(static_cast<std::uint32_t>(key_space));
      return (k + 1) * 0x9e3779b97f4a7c15ULL;
    };
    std::uint64_t hits = 0;
    float next = 0;
    for (int step = 0; step < 6000; ++step) {
      auto key = draw();
      auto op = pick(100);
      if (op < 30) {
        auto r = c.get(key);
        if (r.hit()) {
          ++hits;
          ASSERT_LT(r.age, c.ttl()) << "step " << step; // never served expired
        }
      } else if (op < 60) {
        c.put(key, val(next++));
      } else if (op < 70) {
        c.record_access(key);
      } else if (op < 80) {
        // Rarer for larger caches, so that they also fill and evict.
        if (pick(static_cast<std::uint32_t>(cap)) == 0)
          clk.now += ttl / static_cast<int>(1 + pick(20));
      } else if (op < 84) {
        c.erase(key);
      } else if (op < 88) {
        c.sweep();
      } else if (op < 91) {
        c.enabled(pick(3) != 0);
      } else if (op < 94) {
        ASSERT_TRUE(c.ttl(ttl / 2 + (ttl / 2) * static_cast<int>(pick(3))));
      } else if (op < 97) {
        c.mark_wrong(key, 0.5f);
      } else if (op == 97 && pick(10) == 0) {
        c.clear();
      }
      // The mirror holds exactly the cache's entries, with their values.
      ASSERT_EQ(view->size(), c.size()) << "step " << step;
      ASSERT_LE(c.size(), cap);
      ASSERT_EQ(c.segment_size(cache_segment::window) + c.segment_size(cache_segment::probation)
                  + c.segment_size(cache_segment::protected_),
                c.size());
      if (policy == admission_policy::tinylfu) {
        ASSERT_LE(c.segment_size(cache_segment::window), c.regions().window);
        ASSERT_LE(c.segment_size(cache_segment::protected_), c.regions().protected_max);
      } else {
        ASSERT_EQ(c.segment_size(cache_segment::window), c.size());
      }
      ASSERT_EQ(view->enabled(), c.enabled());
      ASSERT_EQ(view->ttl(), c.ttl());
      for (prefix_key k = 1; k <= key_space + 1; ++k) {
        auto key_k = k * 0x9e3779b97f4a7c15ULL;
        auto pk = c.peek(key_k);
        ASSERT_EQ(view->contains(key_k), pk.has_value()) << "step " << step << " key " << k;
        if (pk && !pk->expired && c.enabled()) {
          view_query q;
          q.key = key_k;
          q.now = clk.now;
          auto served = view->serve(q);
          ASSERT_TRUE(served) << "step " << step;
          ASSERT_EQ(served->value[0], pk->value[0]) << "step " << step;
        }
      }
    }
    EXPECT_GT(hits, 50u) << cap;
    EXPECT_GT(c.stats().evictions, 10u) << cap;
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, MirrorUnderPolicy,
                         ::testing::Values(admission_policy::lru, admission_policy::tinylfu),
                         [](const auto& info) { return std::string{to_string(info.param)}; });

} // namespace
} // namespace sil
