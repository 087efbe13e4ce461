#include "core/read_view.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "core/lru_ttl_cache.hpp"
#include "tests/support/manual_clock.hpp"

namespace sil {
namespace {

using namespace std::chrono_literals;

using test::manual_clock;
using test::val;

embedding suffix_of(std::vector<float> v) {
  return embedding::copy_of(v);
}

struct fixture {
  manual_clock clk;
  guard_config guard;
  std::shared_ptr<read_view> view;
  std::optional<lru_ttl_cache> cache;

  explicit fixture(std::size_t capacity = 4, cache_duration ttl = 10s, bool guarded = true) {
    guard.enabled = guarded;
    view = std::make_shared<read_view>(guard);
    auto c = lru_ttl_cache::make(cache_config{capacity, ttl, true}, clk.fn());
    EXPECT_TRUE(c);
    cache.emplace(std::move(*c));
    cache->attach(view);
  }

  /// A read of `key` with suffix `s` at the fixture's time.
  std::optional<view_hit> read(prefix_key key, const std::vector<float>& s,
                               cache_duration max_age = cache_duration{-1},
                               double budget = 0.0) const {
    view_query q;
    q.key = key;
    q.now = clk.now;
    q.max_age = max_age;
    q.suffix = s.data();
    q.suffix_size = s.size();
    q.rows = 1;
    q.max_wrong_rate = budget;
    return view->serve(q);
  }
};

const std::vector<float> src{0.5f, -1.0f, 2.0f};

TEST(ReadView, ServesWhatTheOwnerStoredAndCountsIt) {
  fixture f;
  EXPECT_FALSE(f.read(1, src));
  f.cache->put(1, val(7), suffix_of(src));
  auto hit = f.read(1, src);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->value[0], 7.0f);
  EXPECT_EQ(hit->verdict.basis, reuse_basis::exact);
  EXPECT_EQ(hit->verdict.p_wrong_upper, 0.0);
  auto c = f.view->counters();
  EXPECT_EQ(c.hits, 1u);
  EXPECT_EQ(c.by_basis[static_cast<std::size_t>(reuse_basis::exact)], 1u);
  // The read neither counted at the owner nor moved its LRU order.
  EXPECT_EQ(f.cache->stats().hits, 0u);
}

TEST(ReadView, MirrorsReplacementEvictionErasureAndClear) {
  fixture f{2};
  f.cache->put(1, val(1), suffix_of(src));
  f.cache->put(2, val(2), suffix_of(src));
  f.cache->put(1, val(10), suffix_of(src)); // replaced: 1 is most recent
  EXPECT_EQ(f.read(1, src)->value[0], 10.0f);
  f.cache->put(3, val(3), suffix_of(src)); // evicts 2
  EXPECT_FALSE(f.view->contains(2));
  EXPECT_TRUE(f.view->contains(1));
  EXPECT_TRUE(f.view->contains(3));
  f.cache->erase(3);
  EXPECT_FALSE(f.read(3, src));
  f.cache->clear();
  EXPECT_EQ(f.view->size(), 0u);
  EXPECT_FALSE(f.read(1, src));
}

TEST(ReadView, AttachingCopiesWhatIsAlreadyStored) {
  manual_clock clk;
  auto c = lru_ttl_cache::make(cache_config{8, 10s, true}, clk.fn());
  ASSERT_TRUE(c);
  c->put(1, val(1), suffix_of(src));
  c->put(2, val(2), suffix_of(src));
  c->mark_wrong(2, 0.25f);
  c->enabled(false);
  auto view = std::make_shared<read_view>(guard_config{});
  c->attach(view);
  EXPECT_EQ(view->size(), 2u);
  EXPECT_FALSE(view->enabled());
  EXPECT_EQ(view->ttl(), cache_duration{10s});
}

TEST(ReadView, NeverServesPastTheTtlOrMaxAgeOrWhileDisabled) {
  fixture f{4, 10s};
  f.cache->put(1, val(1), suffix_of(src));
  f.clk.now += 4s;
  ASSERT_TRUE(f.read(1, src));
  EXPECT_EQ(f.read(1, src)->age, cache_duration{4s});
  EXPECT_FALSE(f.read(1, src, 3s)); // older than the request's max_age
  EXPECT_TRUE(f.read(1, src, 4s));
  f.cache->ttl(4s); // the new TTL applies to stored entries at once
  EXPECT_FALSE(f.read(1, src));
  f.cache->ttl(10s);
  f.cache->enabled(false);
  EXPECT_FALSE(f.read(1, src));
  f.cache->enabled(true);
  f.clk.now += 6s; // age 10 s = TTL: dead, even before the owner sweeps it
  EXPECT_FALSE(f.read(1, src));
  EXPECT_TRUE(f.view->contains(1));
  f.cache->sweep();
  EXPECT_FALSE(f.view->contains(1));
}

TEST(ReadView, TheGuardDecidesOnThePublishedEstimator) {
  fixture f;
  f.cache->put(1, val(1), suffix_of(src));
  std::vector<float> near{0.51f, -1.0f, 2.0f};
  auto d = rms_distance(near.data(), src.data(), near.size());
  // No labels: only exact reuse.
  EXPECT_FALSE(f.read(1, near));
  reuse_estimator est{f.guard};
  for (int i = 0; i < 400; ++i)
    est.observe(1, d * 4, false);
  // Labels the owner has not published yet do not count.
  EXPECT_FALSE(f.read(1, near));
  f.view->publish(est);
  auto hit = f.read(1, near);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->verdict.basis, reuse_basis::certified);
  EXPECT_NEAR(hit->verdict.distance, d, 1e-12);
  EXPECT_LE(hit->verdict.p_wrong_upper, f.guard.max_wrong_rate);
  // A request may tighten the budget below what the evidence certifies.
  EXPECT_FALSE(f.read(1, near, cache_duration{-1}, 1e-4));
  // An entry seen wrong at or below this distance is not reused there.
  f.cache->mark_wrong(1, static_cast<float>(d * 0.99));
  EXPECT_FALSE(f.read(1, near));
  EXPECT_TRUE(f.read(1, src)); // exact reuse stays
  // A source of another size cannot be compared: refused.
  std::vector<float> longer{0.5f, -1.0f, 2.0f, 3.0f};
  EXPECT_FALSE(f.read(1, longer));
}

TEST(ReadView, WithoutTheGuardTheKeyAloneDecides) {
  fixture f{4, 10s, false};
  f.cache->put(1, val(1), embedding{});
  auto hit = f.read(1, {9.0f, 9.0f, 9.0f});
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->verdict.basis, reuse_basis::unguarded);
}

TEST(ReadView, AccessReplayMovesEntriesWithoutCountingThem) {
  fixture f{2};
  f.cache->put(1, val(1), suffix_of(src));
  f.cache->put(2, val(2), suffix_of(src));
  ASSERT_TRUE(f.read(1, src));
  // What the owner does with a batch of read-path accesses.
  f.cache->record_access(1);
  f.cache->record_access(99); // gone or never there: ignored
  f.cache->put(3, val(3), suffix_of(src));
  EXPECT_TRUE(f.view->contains(1)) << "the replayed access made 1 most recent";
  EXPECT_FALSE(f.view->contains(2));
  EXPECT_EQ(f.cache->stats().hits, 0u);
}

TEST(ReadView, BatchSlotsAreBounded) {
  read_view view{guard_config{}};
  EXPECT_TRUE(view.reserve_batch(2));
  EXPECT_TRUE(view.reserve_batch(2));
  EXPECT_FALSE(view.reserve_batch(2));
  view.applied(5);
  EXPECT_TRUE(view.reserve_batch(2));
  view.dropped(3);
  auto c = view.counters();
  EXPECT_EQ(c.access_batches, 1u);
  EXPECT_EQ(c.accesses_applied, 5u);
  EXPECT_EQ(c.accesses_dropped, 3u);
}

// Readers on several threads while the owner inserts, replaces, evicts,
// expires, sweeps, clears, disables and republishes the guard. Every value
// a reader gets must be one the owner stored under that key (no torn or
// cross-key read), and no hit may be counted twice or lost. The
// ThreadSanitizer build runs this too (CI's sanitizer step).
TEST(ReadView, ConcurrentReadersSeeOnlyValuesStoredUnderTheirKey) {
  std::atomic<std::int64_t> now_ns{std::chrono::nanoseconds{std::chrono::hours{1}}.count()};
  auto clock = [&] { return cache_time{std::chrono::nanoseconds{now_ns.load()}}; };
  guard_config guard;
  auto view = std::make_shared<read_view>(guard);
  auto c = lru_ttl_cache::make(cache_config{16, 50ms, true}, clock);
  ASSERT_TRUE(c);
  c->attach(view);
  constexpr prefix_key keys = 64;
  // The value stored under key k is always k * 1000 + version.
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> served{0};
  std::atomic<std::uint64_t> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<float> near{0.5f, -1.0f, 2.001f};
      while (!stop.load()) {
        view_query q;
        q.key = rng() % keys;
        q.now = clock();
        const auto& s = (rng() % 4 == 0) ? near : src;
        q.suffix = s.data();
        q.suffix_size = s.size();
        q.rows = 1;
        if (auto hit = view->serve(q)) {
          ++served;
          auto v = static_cast<std::int64_t>(hit->value[0]);
          if (v / 1000 != static_cast<std::int64_t>(q.key))
            ++bad;
        }
      }
    });
  reuse_estimator est{guard};
  std::mt19937 rng(42);
  auto deadline = std::chrono::steady_clock::now() + 600ms;
  std::uint64_t version = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    auto key = rng() % keys;
    auto op = rng() % 100;
    if (op < 70) {
      c->put(key, val(static_cast<float>(key * 1000 + (++version % 1000))), suffix_of(src));
    } else if (op < 78) {
      c->erase(key);
    } else if (op < 84) {
      now_ns += std::chrono::nanoseconds{20ms}.count(); // entries age, some expire
      c->sweep();
    } else if (op < 88) {
      c->enabled(!c->enabled());
    } else if (op < 91) {
      c->ttl(rng() % 2 == 0 ? cache_duration{50ms} : cache_duration{5ms});
    } else if (op < 93) {
      c->clear();
    } else if (op < 97) {
      for (int i = 0; i < 50; ++i)
        est.observe(1, 0.01, false);
      view->publish(est);
    } else {
      c->mark_wrong(key, 0.0005f);
      c->record_access(key);
    }
  }
  c->enabled(true);
  stop = true;
  for (auto& r : readers)
    r.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(served.load(), 0u);
  EXPECT_EQ(view->counters().hits, served.load());
  // The mirror holds exactly the owner's entries.
  EXPECT_EQ(view->size(), c->size());
  for (prefix_key k = 0; k < keys; ++k)
    EXPECT_EQ(view->contains(k), c->peek(k).has_value()) << "key " << k;
}

} // namespace
} // namespace sil
