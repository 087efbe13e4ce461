// The read path with real threads: hits answered by hit_path on the calling
// thread while the cache owner (an actor on CAF's scheduler) changes the
// cache. The sanitizer step of CI builds and runs this binary under
// ThreadSanitizer.
#include <gtest/gtest.h>

#include <caf/all.hpp>

#include <atomic>
#include <cstdint>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "actors/hit_path.hpp"
#include "actors/service.hpp"
#include "config/sil_config.hpp"

namespace sil {
namespace {

using namespace std::chrono_literals;

struct ReadPathTest : ::testing::Test {
  sil_config cfg;
  std::optional<caf::actor_system> sys;
  service_settings settings;
  service_handles svc;
  model m;

  ReadPathTest() {
    settings.model_preset = "seed";
    settings.workers = 1;
    settings.cache_max_size = 2;
    settings.cache_ttl_seconds = 30.0;
    settings.audit_rate = 0.0;
    settings.agent_enabled = false;
  }

  ~ReadPathTest() override {
    if (sys) {
      stop_service(svc);
      sys->await_all_actors_done();
    }
  }

  void start() {
    auto mm = make_model(settings);
    ASSERT_TRUE(mm) << mm.error().message;
    m = *mm;
    ASSERT_TRUE(validate(settings, m.input_dim()));
    register_message_types(cfg); // as main() does before building its system
    sys.emplace(cfg);
    auto h = start_service(*sys, settings, m);
    ASSERT_TRUE(h) << sys->render(h.error());
    svc = *h;
    ASSERT_TRUE(svc.hits);
  }

  /// A one-row input: its first value picks the prefix (key), the values
  /// after the key are `rest`.
  predict_request input(float prefix, float rest = 0.25f) const {
    predict_request r;
    r.rows = 1;
    r.features.assign(m.input_dim(), rest);
    for (std::int64_t i = 1; i < settings.cache_prefix_k; ++i)
      r.features[static_cast<std::size_t>(i)] = 0.25f;
    r.features[0] = prefix;
    return r;
  }

  embedding encode(const predict_request& r) const {
    auto e = m.encode(input_view{r.features.data(), r.rows});
    EXPECT_TRUE(e);
    return *e;
  }

  prefix_key key_of(const predict_request& r) const {
    prefix_spec spec{prefix_unit::values, static_cast<std::size_t>(settings.cache_prefix_k)};
    return *make_prefix_key({m.name(), m.version()}, spec, r.features.data(), r.features.size(),
                            r.rows);
  }

  /// The values outside the key, as the ingress stores them.
  embedding source_of(const predict_request& r) const {
    auto k = static_cast<std::size_t>(settings.cache_prefix_k);
    return embedding::copy_of(r.features.data() + k, r.features.size() - k);
  }

  /// Stores an embedding for `r` at the owner and waits until it is there.
  embedding insert(const predict_request& r) {
    auto e = encode(r);
    caf::scoped_actor self{*sys};
    self->send(svc.cache, insert_atom::value, key_of(r), e, source_of(r));
    snapshot();
    return e;
  }

  /// The owner's counters, after every message sent to it before.
  cache_snapshot snapshot() {
    caf::scoped_actor self{*sys};
    cache_snapshot out;
    self->request(svc.cache, caf::infinite, stats_atom::value)
      .receive([&](cache_snapshot& s) { out = s; },
               [&](caf::error& e) { ADD_FAILURE() << sys->render(e); });
    return out;
  }

  /// Asks the owner (a reply of type R) and waits for the answer.
  template <class R, class... Ts>
  void ask_cache(Ts... xs) {
    caf::scoped_actor self{*sys};
    self->request(svc.cache, caf::infinite, xs...)
      .receive([](R&) {}, [&](caf::error& e) { ADD_FAILURE() << sys->render(e); });
  }

  std::optional<predict_reply> serve(const predict_request& r) {
    return svc.hits->serve(r, std::chrono::steady_clock::now());
  }
};

TEST_F(ReadPathTest, AnswersAHitOnTheCallingThreadWithTheOwnersEmbedding) {
  start();
  auto a = input(1.0f);
  EXPECT_FALSE(serve(a)) << "nothing stored yet";
  auto e = insert(a);
  auto hit = serve(a);
  ASSERT_TRUE(hit);
  EXPECT_TRUE(hit->cache_hit);
  EXPECT_EQ(hit->source, embedding_source::cache);
  EXPECT_EQ(hit->prediction, m.head(e));
  EXPECT_EQ(hit->model_version, m.version());
  EXPECT_EQ(hit->risk.basis, reuse_basis::exact);
  svc.hits->flush();
  auto s = snapshot();
  EXPECT_EQ(s.stats.hits, 1u);
  EXPECT_EQ(s.read_path_hits, 1u);
  EXPECT_EQ(s.guard.exact, 1u);
  EXPECT_EQ(s.accesses_applied, 1u);
  EXPECT_EQ(s.stats.misses, 0u) << "a read-path miss counts nothing: the owner counts it";
}

TEST_F(ReadPathTest, LeavesEverythingButALiveCertifiedHitToTheActors) {
  start();
  auto a = input(1.0f);
  insert(a);
  auto fresh_only = a;
  fresh_only.use_cache = false;
  EXPECT_FALSE(serve(fresh_only));
  auto too_old = a;
  too_old.max_age_ms = 0;
  std::this_thread::sleep_for(2ms);
  EXPECT_FALSE(serve(too_old));
  // Same key, another input: the guard has no labels, only exact reuse.
  EXPECT_FALSE(serve(input(1.0f, 0.3f)));
  ask_cache<bool>(disable_atom::value);
  EXPECT_FALSE(serve(a));
  ask_cache<bool>(enable_atom::value);
  EXPECT_TRUE(serve(a));
  ask_cache<std::int64_t>(set_ttl_atom::value, std::int64_t{1000000}); // 1 ms
  std::this_thread::sleep_for(3ms);
  EXPECT_FALSE(serve(a)) << "past the TTL, before any sweep";
  ask_cache<std::int64_t>(set_ttl_atom::value, std::int64_t{30000000000});
  EXPECT_TRUE(serve(a));
  ask_cache<bool>(erase_atom::value, key_of(a));
  EXPECT_FALSE(serve(a));
}

TEST_F(ReadPathTest, ReplayedAccessesKeepReadPathHitsFromBeingEvicted) {
  start(); // capacity 2
  auto a = input(1.0f);
  auto b = input(2.0f);
  insert(a);
  insert(b); // b is the most recent at the owner
  ASSERT_TRUE(serve(a));
  svc.hits->flush(); // the access to a reaches the owner: a is now the most recent
  insert(input(3.0f));
  EXPECT_TRUE(serve(a)) << "a was hit on the read path: b should have been evicted";
  EXPECT_FALSE(serve(b));
}

TEST_F(ReadPathTest, HitsAndAccessesAddUpUnderConcurrentChanges) {
  settings.cache_max_size = 16;
  settings.cache_ttl_seconds = 0.05;
  settings.cache_sweep_interval_seconds = 0.01;
  start();
  constexpr int prefixes = 48;
  std::vector<predict_request> inputs;
  std::vector<std::set<float>> allowed(prefixes);
  for (int i = 0; i < prefixes; ++i)
    inputs.push_back(input(static_cast<float>(i)));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> served{0};
  std::atomic<std::uint64_t> wrong{0};
  // Each prefix has two embeddings the writer alternates between; a hit
  // must answer with one of them.
  // Everything the readers will see is built before they start: CAF's
  // mailboxes order a message's construction before its use, but Debian's
  // CAF is not built for ThreadSanitizer, which therefore cannot see that.
  std::vector<std::array<embedding, 2>> variants;
  std::vector<embedding> sources;
  for (int i = 0; i < prefixes; ++i) {
    sources.push_back(source_of(inputs[i]));
    auto e0 = encode(inputs[i]);
    auto shifted = inputs[i];
    shifted.features[5] = 0.75f;
    auto e1 = encode(shifted);
    variants.push_back({e0, e1});
    allowed[i] = {m.head(e0), m.head(e1)};
  }
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      while (!stop.load()) {
        auto i = static_cast<int>(rng() % prefixes);
        if (auto hit = serve(inputs[i])) {
          ++served;
          if (allowed[i].count(hit->prediction) == 0)
            ++wrong;
        }
      }
    });
  std::thread flusher([&] {
    while (!stop.load()) {
      svc.hits->flush();
      std::this_thread::sleep_for(1ms);
    }
  });
  {
    caf::scoped_actor self{*sys};
    std::mt19937 rng(7);
    auto deadline = std::chrono::steady_clock::now() + 800ms;
    while (std::chrono::steady_clock::now() < deadline) {
      auto i = static_cast<int>(rng() % prefixes);
      auto op = rng() % 100;
      if (op < 80)
        self->send(svc.cache, insert_atom::value, key_of(inputs[i]), variants[i][rng() % 2],
                   sources[i]);
      else if (op < 85)
        self->send(svc.cache, erase_atom::value, key_of(inputs[i]));
      else if (op < 90)
        self->send(svc.cache, disable_atom::value);
      else if (op < 95)
        self->send(svc.cache, enable_atom::value);
      else if (op < 97)
        self->send(svc.cache, clear_atom::value);
      else
        self->send(svc.cache, label_atom::value, key_of(inputs[i]),
                   reuse_label{1, 0.01, false, false});
      std::this_thread::sleep_for(50us);
    }
    // Leave the cache enabled and filled, and let the readers run until they
    // have served something: on a loaded machine (or under TSan) the owner
    // may still be working through the backlog when the loop ends, with the
    // cache last disabled or cleared.
    self->send(svc.cache, enable_atom::value);
    for (int i = 0; i < prefixes; ++i)
      self->send(svc.cache, insert_atom::value, key_of(inputs[i]), variants[i][0], sources[i]);
    auto patience = std::chrono::steady_clock::now() + 20s;
    while (served.load() < 100 && std::chrono::steady_clock::now() < patience)
      std::this_thread::sleep_for(5ms);
  }
  stop = true;
  for (auto& r : readers)
    r.join();
  flusher.join();
  svc.hits->flush();
  auto s = snapshot();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(served.load(), 0u);
  EXPECT_EQ(s.read_path_hits, served.load());
  // Every access was replayed or counted as dropped: none vanished.
  EXPECT_EQ(s.accesses_applied + s.accesses_dropped, served.load());
  EXPECT_LE(s.stats.size, 16u);
}

} // namespace
} // namespace sil
