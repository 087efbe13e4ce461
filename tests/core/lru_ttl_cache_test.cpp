#include "core/lru_ttl_cache.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <ostream>
#include <random>
#include <vector>

#include "core/hash.hpp"
#include "tests/support/manual_clock.hpp"

namespace sil {
namespace {

using namespace std::chrono_literals;

using test::manual_clock;
using test::val;

lru_ttl_cache make_cache(manual_clock& clk, std::size_t max_size, cache_duration ttl) {
  auto c = lru_ttl_cache::make(cache_config{max_size, ttl, true}, clk.fn());
  EXPECT_TRUE(c) << c.error().message;
  return std::move(*c);
}

// -- a deliberately naive reference ------------------------------------------------

/// Linear scans over a vector, written straight from the documented rules.
class reference_cache {
public:
  reference_cache(std::size_t max_size, cache_duration ttl)
    : max_size_(max_size)
    , ttl_(ttl) {
    // nop
  }

  struct outcome {
    lookup_status status;
    float value = -1;
    cache_duration age{0};
  };

  outcome get(prefix_key key, cache_time now, std::optional<cache_duration> max_age) {
    if (!enabled_) {
      ++stats_.bypasses;
      return {lookup_status::disabled};
    }
    auto it = find(key);
    if (it == entries_.end()) {
      ++stats_.misses;
      return {lookup_status::absent};
    }
    auto age = now - it->inserted;
    if (age >= ttl_) {
      entries_.erase(it);
      ++stats_.expirations;
      ++stats_.misses;
      return {lookup_status::expired, -1, age};
    }
    if (max_age && age > *max_age) {
      ++stats_.misses;
      return {lookup_status::too_old, -1, age};
    }
    it->last_used = ++tick_;
    ++stats_.hits;
    return {lookup_status::hit, it->value, age};
  }

  put_result put(prefix_key key, float value, cache_time now) {
    put_result r;
    ++stats_.inserts;
    if (auto it = find(key); it != entries_.end()) {
      it->value = value;
      it->inserted = now;
      it->last_used = ++tick_;
      it->insert_seq = ++seq_;
      r.replaced = true;
      return r;
    }
    if (entries_.size() == max_size_) {
      auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                     [](auto& a, auto& b) { return a.insert_seq < b.insert_seq; });
      if (now - oldest->inserted >= ttl_) {
        entries_.erase(oldest);
        ++stats_.expirations;
        r.expired = true;
      } else {
        auto lru = std::min_element(entries_.begin(), entries_.end(),
                                    [](auto& a, auto& b) { return a.last_used < b.last_used; });
        entries_.erase(lru);
        ++stats_.evictions;
        r.evicted = true;
      }
    }
    entries_.push_back({key, value, now, ++tick_, ++seq_});
    return r;
  }

  std::optional<outcome> peek(prefix_key key, cache_time now) {
    auto it = find(key);
    if (it == entries_.end())
      return std::nullopt;
    auto age = now - it->inserted;
    return outcome{age >= ttl_ ? lookup_status::expired : lookup_status::hit, it->value, age};
  }

  bool erase(prefix_key key) {
    auto it = find(key);
    if (it == entries_.end())
      return false;
    entries_.erase(it);
    ++stats_.erasures;
    return true;
  }

  std::size_t sweep(cache_time now) {
    auto before = entries_.size();
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                  [&](auto& e) { return now - e.inserted >= ttl_; }),
                   entries_.end());
    auto n = before - entries_.size();
    stats_.expirations += n;
    return n;
  }

  void clear() {
    entries_.clear();
  }

  void enabled(bool v) {
    enabled_ = v;
  }

  void ttl(cache_duration t) {
    ttl_ = t;
  }

  const cache_stats& counters() const {
    return stats_;
  }

  std::size_t size() const {
    return entries_.size();
  }

private:
  struct entry {
    prefix_key key;
    float value;
    cache_time inserted;
    std::uint64_t last_used;
    std::uint64_t insert_seq;
  };

  std::vector<entry>::iterator find(prefix_key key) {
    return std::find_if(entries_.begin(), entries_.end(), [&](auto& e) { return e.key == key; });
  }

  std::size_t max_size_;
  cache_duration ttl_;
  bool enabled_ = true;
  std::vector<entry> entries_;
  std::uint64_t tick_ = 0;
  std::uint64_t seq_ = 0;
  cache_stats stats_;
};

void expect_same_counters(const cache_stats& got, const cache_stats& want, std::size_t want_size,
                          int step) {
  ASSERT_EQ(got.hits, want.hits) << "step " << step;
  ASSERT_EQ(got.misses, want.misses) << "step " << step;
  ASSERT_EQ(got.expirations, want.expirations) << "step " << step;
  ASSERT_EQ(got.evictions, want.evictions) << "step " << step;
  ASSERT_EQ(got.inserts, want.inserts) << "step " << step;
  ASSERT_EQ(got.erasures, want.erasures) << "step " << step;
  ASSERT_EQ(got.bypasses, want.bypasses) << "step " << step;
  ASSERT_EQ(got.size, want_size) << "step " << step;
}

struct model_case {
  std::size_t max_size;
  cache_duration ttl;
  prefix_key key_space;
  std::uint32_t seed;
  /// A small clock step is ttl / advance_div.
  int advance_div;
  /// One clock step in jump_one_in jumps by a whole TTL.
  std::uint32_t jump_one_in;
};

void PrintTo(const model_case& c, std::ostream* os) {
  *os << "{max_size " << c.max_size << ", ttl " << c.ttl.count() << "ns, keys " << c.key_space
      << ", seed " << c.seed << "}";
}

class CacheAgainstReference : public ::testing::TestWithParam<model_case> {};

TEST_P(CacheAgainstReference, RandomOperationsMatchStepByStep) {
  const auto p = GetParam();
  manual_clock clk;
  auto cache = make_cache(clk, p.max_size, p.ttl);
  reference_cache ref{p.max_size, p.ttl};
  std::mt19937 rng{p.seed};
  auto pick = [&](std::uint32_t n) { return static_cast<std::uint32_t>(rng() % n); };
  const int steps = 20000;
  float next_value = 0;
  std::uint64_t hits = 0;
  for (int step = 0; step < steps; ++step) {
    auto op = pick(1000);
    // Keys are spread by a multiplier so that they also collide in the table.
    prefix_key key = (pick(static_cast<std::uint32_t>(p.key_space)) + 1) * 0x9e3779b97f4a7c15ULL;
    if (op < 350) {
      std::optional<cache_duration> max_age;
      if (pick(10) == 0)
        max_age = p.ttl / 4;
      auto got = max_age ? cache.get(key, *max_age) : cache.get(key);
      auto want = ref.get(key, clk.now, max_age);
      ASSERT_EQ(got.status, want.status) << "step " << step;
      ASSERT_EQ(got.age, want.age) << "step " << step;
      if (want.status == lookup_status::hit) {
        ++hits;
        ASSERT_EQ(got.value.size(), 1u);
        ASSERT_EQ(got.value[0], want.value) << "step " << step;
      } else {
        ASSERT_FALSE(got.value) << "step " << step;
      }
    } else if (op < 700) {
      auto v = next_value++;
      auto got = cache.put(key, val(v));
      auto want = ref.put(key, v, clk.now);
      ASSERT_EQ(got.replaced, want.replaced) << "step " << step;
      ASSERT_EQ(got.evicted, want.evicted) << "step " << step;
      ASSERT_EQ(got.expired, want.expired) << "step " << step;
    } else if (op < 850) {
      // Advance the clock; often not at all.
      auto r = pick(4);
      if (r == 1)
        clk.now += p.ttl / p.advance_div;
      else if (r == 2)
        clk.now += (p.ttl / p.advance_div) * static_cast<int>(pick(3));
      else if (r == 3 && pick(p.jump_one_in) == 0)
        clk.now += p.ttl;
    } else if (op < 890) {
      ASSERT_EQ(cache.erase(key), ref.erase(key)) << "step " << step;
    } else if (op < 920) {
      bool on = pick(3) != 0;
      cache.enabled(on);
      ref.enabled(on);
    } else if (op < 950) {
      ASSERT_EQ(cache.sweep(), ref.sweep(clk.now)) << "step " << step;
    } else if (op < 980) {
      // Runtime TTL change between half and twice the original.
      auto t = p.ttl / 2 + (p.ttl / 2) * static_cast<int>(pick(3));
      ASSERT_TRUE(cache.ttl(t));
      ref.ttl(t);
    } else if (op < 981 && pick(5) == 0) {
      cache.clear();
      ref.clear();
    } else if (op >= 981) {
      auto got = cache.peek(key);
      auto want = ref.peek(key, clk.now);
      ASSERT_EQ(got.has_value(), want.has_value()) << "step " << step;
      if (want) {
        ASSERT_EQ(got->value[0], want->value) << "step " << step;
        ASSERT_EQ(got->age, want->age) << "step " << step;
        ASSERT_EQ(got->expired, want->status == lookup_status::expired) << "step " << step;
      }
    }
    expect_same_counters(cache.stats(), ref.counters(), ref.size(), step);
  }
  // The run must have exercised hits, evictions and expirations.
  EXPECT_GT(hits, 100u);
  EXPECT_GT(ref.counters().evictions, 10u);
  EXPECT_GT(ref.counters().expirations, 10u);
}

INSTANTIATE_TEST_SUITE_P(
  Shapes, CacheAgainstReference,
  ::testing::Values(model_case{1, 10s, 4, 1, 10, 20}, model_case{2, 10s, 5, 2, 10, 20},
                    model_case{3, 1s, 8, 3, 10, 20}, model_case{8, 30s, 20, 4, 20, 20},
                    model_case{64, 5s, 150, 5, 100, 50}, model_case{256, 30s, 1000, 6, 500, 300}),
  [](const auto& info) {
    return "cap" + std::to_string(info.param.max_size) + "_seed" + std::to_string(info.param.seed);
  });

// -- edge cases -------------------------------------------------------------------

TEST(LruTtlCache, RejectsInvalidConfig) {
  auto zero = lru_ttl_cache::make(cache_config{0, 1s, true});
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, errc::invalid_config);
  auto negative = lru_ttl_cache::make(cache_config{4, -1s, true});
  ASSERT_FALSE(negative);
  EXPECT_EQ(negative.error().code, errc::invalid_config);
  auto huge = lru_ttl_cache::make(cache_config{std::size_t{1} << 31, 1s, true});
  ASSERT_FALSE(huge);
}

TEST(LruTtlCache, CapacityOneKeepsOnlyTheNewest) {
  manual_clock clk;
  auto c = make_cache(clk, 1, 10s);
  c.put(1, val(1));
  auto r = c.put(2, val(2));
  EXPECT_TRUE(r.evicted);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.get(1).status, lookup_status::absent);
  auto hit = c.get(2);
  ASSERT_TRUE(hit.hit());
  EXPECT_EQ(hit.value[0], 2.0f);
  EXPECT_EQ(c.stats().evictions, 1u);
  EXPECT_EQ(c.stats().expirations, 0u);
}

TEST(LruTtlCache, TtlZeroServesNothing) {
  manual_clock clk;
  auto c = make_cache(clk, 4, 0s);
  c.put(7, val(7));
  EXPECT_EQ(c.size(), 1u);
  auto r = c.get(7);
  EXPECT_EQ(r.status, lookup_status::expired);
  EXPECT_FALSE(r.value);
  auto s = c.stats();
  EXPECT_EQ(s.expirations, 1u);
  EXPECT_EQ(s.evictions, 0u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, 0u);
  EXPECT_EQ(s.size, 0u);
}

TEST(LruTtlCache, ExpiryIsAnExpirationNotAnEviction) {
  manual_clock clk;
  auto c = make_cache(clk, 4, 10s);
  c.put(1, val(1));
  clk.now += 9999ms;
  EXPECT_TRUE(c.get(1).hit());
  clk.now += 1ms; // age == ttl: expired
  auto r = c.get(1);
  EXPECT_EQ(r.status, lookup_status::expired);
  EXPECT_EQ(r.age, 10s);
  EXPECT_EQ(c.stats().expirations, 1u);
  EXPECT_EQ(c.stats().evictions, 0u);
}

TEST(LruTtlCache, ClockNotAdvancingKeepsEntriesFresh) {
  manual_clock clk;
  auto c = make_cache(clk, 2, 1ns);
  c.put(1, val(1));
  for (int i = 0; i < 100; ++i) {
    auto r = c.get(1);
    ASSERT_TRUE(r.hit());
    EXPECT_EQ(r.age, 0ns);
  }
  EXPECT_EQ(c.sweep(), 0u);
  EXPECT_EQ(c.stats().hits, 100u);
}

TEST(LruTtlCache, ReinsertReplacesValueAndResetsAge) {
  manual_clock clk;
  auto c = make_cache(clk, 2, 10s);
  c.put(1, val(1));
  clk.now += 9s;
  auto r = c.put(1, val(11));
  EXPECT_TRUE(r.replaced);
  EXPECT_FALSE(r.evicted);
  EXPECT_EQ(c.size(), 1u);
  clk.now += 5s; // 14 s after the first insert, 5 s after the second
  auto hit = c.get(1);
  ASSERT_TRUE(hit.hit());
  EXPECT_EQ(hit.value[0], 11.0f);
  EXPECT_EQ(hit.age, 5s);
  EXPECT_EQ(c.stats().inserts, 2u);
}

TEST(LruTtlCache, ReinsertMakesTheEntryMostRecent) {
  manual_clock clk;
  auto c = make_cache(clk, 2, 10s);
  c.put(1, val(1));
  c.put(2, val(2));
  c.put(1, val(10)); // 1 is now most recent
  c.put(3, val(3));  // evicts 2
  EXPECT_EQ(c.get(2).status, lookup_status::absent);
  EXPECT_TRUE(c.get(1).hit());
  EXPECT_TRUE(c.get(3).hit());
}

TEST(LruTtlCache, DisableThenEnable) {
  manual_clock clk;
  auto c = make_cache(clk, 4, 10s);
  c.put(1, val(1));
  c.enabled(false);
  EXPECT_FALSE(c.enabled());
  auto r = c.get(1);
  EXPECT_EQ(r.status, lookup_status::disabled);
  EXPECT_FALSE(r.value);
  // Fresh results still refresh the cache while reuse is off.
  c.put(1, val(100));
  EXPECT_EQ(c.stats().bypasses, 1u);
  EXPECT_EQ(c.stats().misses, 0u);
  EXPECT_EQ(c.stats().hits, 0u);
  c.enabled(true);
  auto hit = c.get(1);
  ASSERT_TRUE(hit.hit());
  EXPECT_EQ(hit.value[0], 100.0f);
  EXPECT_EQ(c.stats().hits, 1u);
}

TEST(LruTtlCache, FullCacheDropsAnExpiredEntryBeforeEvictingALiveOne) {
  manual_clock clk;
  auto c = make_cache(clk, 2, 10s);
  c.put(1, val(1));
  clk.now += 6s;
  c.put(2, val(2));
  EXPECT_TRUE(c.get(1).hit()); // 1 is most recent; 2 is the LRU victim
  clk.now += 5s;               // 1 has expired (11 s), 2 has not (5 s)
  auto r = c.put(3, val(3));
  EXPECT_TRUE(r.expired);
  EXPECT_FALSE(r.evicted);
  EXPECT_TRUE(c.get(2).hit());
  EXPECT_EQ(c.stats().evictions, 0u);
  EXPECT_EQ(c.stats().expirations, 1u);
}

TEST(LruTtlCache, SweepRemovesOnlyExpiredEntries) {
  manual_clock clk;
  auto c = make_cache(clk, 8, 10s);
  c.put(1, val(1));
  c.put(2, val(2));
  clk.now += 5s;
  c.put(3, val(3));
  c.put(1, val(1)); // re-inserted: young again
  clk.now += 6s;    // 2 is 11 s old; 1 and 3 are 6 s old
  EXPECT_EQ(c.sweep(), 1u);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.stats().expirations, 1u);
  EXPECT_EQ(c.get(2).status, lookup_status::absent);
  EXPECT_TRUE(c.get(1).hit());
  EXPECT_TRUE(c.get(3).hit());
}

TEST(LruTtlCache, TtlChangeAppliesToStoredEntries) {
  manual_clock clk;
  auto c = make_cache(clk, 4, 30s);
  c.put(1, val(1));
  clk.now += 5s;
  ASSERT_TRUE(c.ttl(2s));
  EXPECT_EQ(c.ttl(), 2s);
  EXPECT_EQ(c.get(1).status, lookup_status::expired);
  auto bad = c.ttl(-1s);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, errc::invalid_argument);
  EXPECT_EQ(c.ttl(), 2s);
}

TEST(LruTtlCache, MaxAgeRefusesWithoutRemoving) {
  manual_clock clk;
  auto c = make_cache(clk, 4, 30s);
  c.put(1, val(1));
  clk.now += 3s;
  auto r = c.get(1, 2s);
  EXPECT_EQ(r.status, lookup_status::too_old);
  EXPECT_EQ(r.age, 3s);
  EXPECT_TRUE(c.get(1, 3s).hit()); // age <= max_age is served
  EXPECT_TRUE(c.get(1).hit());
  EXPECT_EQ(c.stats().misses, 1u);
  EXPECT_EQ(c.stats().expirations, 0u);
}

TEST(LruTtlCache, HitSharesTheCachedBlock) {
  manual_clock clk;
  auto c = make_cache(clk, 4, 30s);
  auto e = val(5);
  c.put(1, e);
  auto r = c.get(1);
  ASSERT_TRUE(r.hit());
  EXPECT_TRUE(r.value.same_block(e));
  EXPECT_EQ(e.use_count(), 3u); // e, the cache entry, r.value
}

TEST(LruTtlCache, PeekHasNoSideEffects) {
  manual_clock clk;
  auto c = make_cache(clk, 2, 10s);
  c.put(1, val(1));
  c.put(2, val(2));
  clk.now += 4s;
  auto pk = c.peek(1);
  ASSERT_TRUE(pk);
  EXPECT_EQ(pk->value[0], 1.0f);
  EXPECT_EQ(pk->age, 4s);
  EXPECT_FALSE(pk->expired);
  EXPECT_FALSE(c.peek(99));
  c.put(3, val(3)); // 1 is still least recently used: peek did not touch it
  EXPECT_EQ(c.get(1).status, lookup_status::absent);
  clk.now += 20s;
  auto old = c.peek(2);
  ASSERT_TRUE(old);
  EXPECT_TRUE(old->expired);
  EXPECT_EQ(c.size(), 2u); // peek does not expire
  auto s = c.stats();
  EXPECT_EQ(s.hits, 0u);
  EXPECT_EQ(s.misses, 1u);
}

TEST(LruTtlCache, EraseAndClear) {
  manual_clock clk;
  auto c = make_cache(clk, 4, 10s);
  c.put(1, val(1));
  c.put(2, val(2));
  EXPECT_TRUE(c.erase(1));
  EXPECT_FALSE(c.erase(1));
  EXPECT_EQ(c.stats().erasures, 1u);
  EXPECT_EQ(c.get(1).status, lookup_status::absent);
  c.put(3, val(3));
  c.clear();
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.get(2).status, lookup_status::absent);
  EXPECT_EQ(c.stats().inserts, 3u); // counters survive clear
  // Usable after clear, up to capacity.
  for (prefix_key k = 10; k < 20; ++k)
    c.put(k, val(static_cast<float>(k)));
  EXPECT_EQ(c.size(), 4u);
  EXPECT_EQ(c.stats().evictions, 6u);
}

TEST(LruTtlCache, HitRate) {
  manual_clock clk;
  auto c = make_cache(clk, 4, 10s);
  EXPECT_EQ(c.stats().hit_rate(), 0.0);
  c.put(1, val(1));
  c.get(1);
  c.get(1);
  c.get(1);
  c.get(2);
  EXPECT_DOUBLE_EQ(c.stats().hit_rate(), 0.75);
}

TEST(LruTtlCache, ChurnAtScaleKeepsTheBound) {
  manual_clock clk;
  auto c = make_cache(clk, 1000, 10s);
  std::mt19937_64 rng{7};
  for (int i = 0; i < 100000; ++i) {
    c.put(rng() % 5000, val(1));
    if (i % 1000 == 0)
      clk.now += 1s;
  }
  EXPECT_EQ(c.size(), 1000u);
  auto s = c.stats();
  EXPECT_EQ(s.inserts, 100000u);
  // Every insert of a new key into a full cache removed exactly one entry.
  std::size_t distinct_fills = s.evictions + s.expirations + c.size();
  EXPECT_LE(distinct_fills, s.inserts);
  EXPECT_GT(s.evictions, 10000u);
}

TEST(LruTtlCache, AHugeMaxSizeStartsSmallAndGrowsWithTheEntries) {
  // max_size 2^28 used to allocate a 2^29-slot table (2 GiB) up front.
  for (auto policy : {admission_policy::lru, admission_policy::tinylfu}) {
    manual_clock clk;
    cache_config cfg{std::size_t{1} << 28, 1h, true};
    cfg.admission = policy;
    auto made = lru_ttl_cache::make(cfg, clk.fn());
    ASSERT_TRUE(made);
    auto& c = *made;
    // The entries' structures start small; W-TinyLFU's sketch starts at
    // its floor (64Ki words, 512 KiB) so that it need not grow from a few
    // words, which would pile up collisions.
    const std::size_t sketch_bytes
      = policy == admission_policy::tinylfu ? (std::size_t{1} << 16) * 8 : 0;
    EXPECT_EQ(c.table_slots(), 16u);
    EXPECT_LT(c.memory_bytes(), sketch_bytes + 1024u);
    const prefix_key n = 100000;
    for (prefix_key k = 0; k < n; ++k)
      c.put(k * 0x9e3779b97f4a7c15ULL, val(static_cast<float>(k)));
    EXPECT_EQ(c.size(), n);
    // The smallest power of two that keeps the load at or below 1/2.
    EXPECT_EQ(c.table_slots(), 262144u);
    // Slab (vector doubling) + table + sketch: far below the 2 GiB.
    EXPECT_LT(c.memory_bytes(), n * 160);
    for (prefix_key k = 0; k < n; k += 7) {
      auto pk = c.peek(k * 0x9e3779b97f4a7c15ULL);
      ASSERT_TRUE(pk) << k;
      EXPECT_EQ(pk->value[0], static_cast<float>(k));
    }
    for (prefix_key k = 0; k < n; k += 2)
      ASSERT_TRUE(c.erase(k * 0x9e3779b97f4a7c15ULL));
    for (prefix_key k = 0; k < n; ++k) {
      auto hit = c.get(k * 0x9e3779b97f4a7c15ULL);
      ASSERT_EQ(hit.hit(), k % 2 == 1) << k;
      if (hit.hit()) {
        EXPECT_EQ(hit.value[0], static_cast<float>(k));
      }
    }
    EXPECT_EQ(c.size(), n / 2);
    c.clear();
    EXPECT_EQ(c.table_slots(), 16u);
    EXPECT_LT(c.memory_bytes(), sketch_bytes + 1024u);
  }
}

TEST(LruTtlCache, TheTableStopsGrowingAtTheCapacityAndKeepsTheNewestUnderChurn) {
  manual_clock clk;
  auto c = make_cache(clk, 1000, 1h);
  EXPECT_EQ(c.table_slots(), 16u);
  for (prefix_key k = 0; k < 100000; ++k)
    c.put(mix64(k), val(static_cast<float>(k)));
  EXPECT_EQ(c.size(), 1000u);
  EXPECT_EQ(c.table_slots(), 2048u); // what max_size 1000 always had
  EXPECT_EQ(c.stats().evictions, 99000u);
  // No lookups: LRU keeps exactly the last 1000 inserted, every value right.
  for (prefix_key k = 0; k < 100000; ++k) {
    auto pk = c.peek(mix64(k));
    ASSERT_EQ(pk.has_value(), k >= 99000) << k;
    if (pk) {
      EXPECT_EQ(pk->value[0], static_cast<float>(k));
    }
  }
}

} // namespace
} // namespace sil
