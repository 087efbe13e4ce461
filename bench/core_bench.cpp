// Micro benchmarks of the pure core: encoder forward per preset and batch
// size, cache operations at 10k and 1M entries, and the in-process cost of
// a request that misses vs one that hits, and the reuse guard's decision on
// the hit path. After the run it prints the default preset's miss-to-hit
// cost ratio (a miss should cost at least 20 hits) and the cache's memory
// per entry, with and without the source the guard keeps. bm_decode_predict
// is the /predict body decoder, which runs on the HTTP I/O threads.
//
//   build/bench/sil_core_bench [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <malloc.h>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/lru_ttl_cache.hpp"
#include "core/model.hpp"
#include "core/prefix_key.hpp"
#include "core/read_view.hpp"
#include "core/reuse_guard.hpp"
#include "http/codec.hpp"

namespace {

using namespace sil;

model make_model(const std::string& name) {
  return std::move(*model::from_seed(*preset(name), 42));
}

std::vector<float> random_rows(std::size_t rows, std::size_t dim, std::uint32_t seed) {
  std::mt19937 rng{seed};
  std::normal_distribution<float> n;
  std::vector<float> x(rows * dim);
  for (auto& v : x)
    v = n(rng);
  return x;
}

// -- encoder --------------------------------------------------------------------

void bm_encode(benchmark::State& state, const std::string& preset_name) {
  auto m = make_model(preset_name);
  auto batch = static_cast<std::size_t>(state.range(0));
  auto x = random_rows(batch, m.input_dim(), 1);
  std::vector<input_view> views;
  for (std::size_t i = 0; i < batch; ++i)
    views.push_back({x.data() + i * m.input_dim(), 1});
  for (auto _ : state) {
    auto out = m.encode_batch(views);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
  state.counters["GFLOP"] = benchmark::Counter(m.forward_flops(1) * static_cast<double>(batch)
                                                 * 1e-9 * static_cast<double>(state.iterations()),
                                               benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(bm_encode, seed, std::string{"seed"})->Arg(1)->Arg(32);
BENCHMARK_CAPTURE(bm_encode, base, std::string{"base"})->Arg(1)->Arg(32);

// -- cache ----------------------------------------------------------------------

/// A full cache of `n` entries with 256-float embeddings (shared block).
lru_ttl_cache full_cache(std::size_t n) {
  auto c = std::move(*lru_ttl_cache::make(cache_config{n, std::chrono::hours{1}, true}));
  auto e = embedding::copy_of(std::vector<float>(256, 1.0f));
  for (std::size_t k = 0; k < n; ++k)
    c.put(k * 0x9e3779b97f4a7c15ULL, e);
  return c;
}

void bm_cache_get_hit(benchmark::State& state) {
  auto n = static_cast<std::size_t>(state.range(0));
  auto c = full_cache(n);
  std::mt19937_64 rng{1};
  std::vector<prefix_key> keys(4096);
  for (auto& k : keys)
    k = (rng() % n) * 0x9e3779b97f4a7c15ULL;
  std::size_t i = 0;
  for (auto _ : state) {
    auto r = c.get(keys[i++ & 4095]);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_cache_get_hit)->Arg(10'000)->Arg(1'000'000);

void bm_cache_get_miss(benchmark::State& state) {
  auto n = static_cast<std::size_t>(state.range(0));
  auto c = full_cache(n);
  std::mt19937_64 rng{2};
  std::vector<prefix_key> keys(4096);
  for (auto& k : keys)
    k = rng() | 1; // odd multiples of the spread constant are never inserted
  std::size_t i = 0;
  for (auto _ : state) {
    auto r = c.get(keys[i++ & 4095]);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_cache_get_miss)->Arg(10'000)->Arg(1'000'000);

void bm_cache_put(benchmark::State& state) {
  // Each put inserts a new key into a full cache: one LRU eviction each.
  auto n = static_cast<std::size_t>(state.range(0));
  auto c = full_cache(n);
  auto e = embedding::copy_of(std::vector<float>(256, 2.0f));
  prefix_key k = n;
  for (auto _ : state)
    c.put((k++) * 0x9e3779b97f4a7c15ULL, e);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_cache_put)->Arg(10'000)->Arg(1'000'000);

/// The service's cache pattern per admission policy (range 1: 0 lru, 1
/// tinylfu): a lookup of a skewed key (a quarter of the requests hit a hot
/// set of n/8 keys, the rest spread over 4n), and a put on a miss. Time per
/// request: W-TinyLFU's sketch and segment moves vs one LRU list.
void bm_cache_policy(benchmark::State& state) {
  auto n = static_cast<std::size_t>(state.range(0));
  cache_config cfg{n, std::chrono::hours{1}, true};
  cfg.admission = state.range(1) == 0 ? admission_policy::lru : admission_policy::tinylfu;
  auto c = std::move(*lru_ttl_cache::make(cfg));
  auto e = embedding::copy_of(std::vector<float>(256, 1.0f));
  std::mt19937_64 rng{3};
  // A request sequence longer than the cache, replayed in a loop.
  std::size_t len = 1 << 16;
  while (len < 4 * n)
    len <<= 1;
  std::vector<prefix_key> keys(len);
  for (auto& k : keys)
    k = (rng() % 4 == 0 ? rng() % (n / 8) : rng() % (4 * n)) * 0x9e3779b97f4a7c15ULL;
  for (auto k : keys) // warm up: fill the cache and the sketch
    if (!c.get(k).hit())
      c.put(k, e);
  std::size_t i = 0;
  std::uint64_t hits = 0;
  for (auto _ : state) {
    auto k = keys[i++ & (len - 1)];
    auto r = c.get(k);
    if (r.hit())
      ++hits;
    else
      c.put(k, e);
    benchmark::DoNotOptimize(r);
  }
  state.counters["hit_rate"]
    = static_cast<double>(hits) / static_cast<double>(std::max<std::uint64_t>(1, i));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_cache_policy)
  ->ArgNames({"entries", "tinylfu"})
  ->Args({10'000, 0})
  ->Args({10'000, 1})
  ->Args({1'000'000, 0})
  ->Args({1'000'000, 1});

// -- request paths (in-process, no HTTP) ------------------------------------------------

void bm_request(benchmark::State& state, bool hit) {
  auto m = make_model(std::string{default_preset()});
  auto c = std::move(*lru_ttl_cache::make(cache_config{}));
  auto x = random_rows(1, m.input_dim(), 3);
  model_identity id{m.name(), m.version()};
  for (auto _ : state) {
    auto key = *make_prefix_key(id, {prefix_unit::values, 4}, x.data(), x.size(), 1);
    auto r = c.get(key);
    embedding e = r.value;
    if (!r.hit()) {
      e = std::move(*m.encode({x.data(), 1}));
      if (hit)
        c.put(key, e);
    }
    benchmark::DoNotOptimize(m.head(e));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(bm_request, miss_default_preset, false);
BENCHMARK_CAPTURE(bm_request, hit_default_preset, true);

// -- the reuse guard's decision (hit path) ------------------------------------------------

/// What the guard adds to a hit: the RMS distance over the 28 values
/// outside a K=4 key of one 32-value row, and the estimator's verdict (one
/// hash lookup by shape and one bin), with a trained estimator.
void bm_guard_decide(benchmark::State& state) {
  reuse_estimator est{guard_config{}};
  std::mt19937 rng{5};
  std::uniform_real_distribution<double> dist{1e-4, 1.0};
  for (int i = 0; i < 20000; ++i) {
    double d = dist(rng);
    est.observe(1, d, d > 0.3);
  }
  auto a = random_rows(1, 28, 6);
  auto b = a;
  b[27] += 1e-3f;
  std::size_t reused = 0;
  for (auto _ : state) {
    double d = rms_distance(a.data(), b.data(), a.size());
    auto v = est.decide(1, d, 0.01, 1e30);
    reused += v.reuse ? 1 : 0;
    benchmark::DoNotOptimize(v);
  }
  benchmark::DoNotOptimize(reused);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_guard_decide);

/// One label: bin update, the exact bound, the suffix minimum.
void bm_guard_observe(benchmark::State& state) {
  reuse_estimator est{guard_config{}};
  std::mt19937 rng{7};
  std::uniform_real_distribution<double> dist{1e-4, 1.0};
  for (auto _ : state)
    est.observe(1, dist(rng), false);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_guard_observe);

// -- read view (hits on I/O threads) -------------------------------------------------

/// A read-view hit: shard lock (shared), probe, distance, refcount copy, TTL
/// check and the per-thread counter. One key for every thread (the worst
/// case: all readers on one shard and one embedding block), or one key per
/// thread (arg 1).
void bm_view_serve(benchmark::State& state) {
  static std::shared_ptr<read_view> view;
  static std::optional<lru_ttl_cache> cache;
  static std::vector<float> suffix(28, 0.5f);
  if (state.thread_index() == 0) {
    view = std::make_shared<read_view>(guard_config{});
    cache.emplace(std::move(*lru_ttl_cache::make(cache_config{1024, std::chrono::hours{1}, true})));
    cache->attach(view);
    for (prefix_key k = 0; k < 64; ++k)
      cache->put(k, embedding::copy_of(std::vector<float>(256, 1.0f)), embedding::copy_of(suffix));
  }
  view_query q;
  q.key = state.range(0) == 0 ? 0 : static_cast<prefix_key>(state.thread_index());
  q.suffix = suffix.data();
  q.suffix_size = suffix.size();
  q.rows = 1;
  for (auto _ : state) {
    q.now = view_clock::now();
    auto hit = view->serve(q);
    benchmark::DoNotOptimize(hit);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    cache.reset();
    view.reset();
  }
}
BENCHMARK(bm_view_serve)->Arg(0)->Arg(1)->Threads(1)->Threads(2)->UseRealTime();

// -- /predict body decoding (I/O threads) ------------------------------------------

/// A /predict body of `rows` rows of 32 values printed as clients print them
/// (%.6g of normal samples, so mostly 7-9 characters each), with use_cache.
std::string predict_body(std::size_t rows) {
  auto x = random_rows(rows, 32, 11);
  std::string s = "{\"features\":[";
  char buf[32];
  for (std::size_t r = 0; r < rows; ++r) {
    s += r ? ",[" : "[";
    for (std::size_t i = 0; i < 32; ++i) {
      std::snprintf(buf, sizeof buf, "%s%.6g", i ? "," : "", static_cast<double>(x[r * 32 + i]));
      s += buf;
    }
    s += ']';
  }
  s += "],\"use_cache\":true,\"max_age_ms\":5000}";
  return s;
}

void bm_decode_predict(benchmark::State& state) {
  auto rows = static_cast<std::size_t>(state.range(0));
  auto body = predict_body(rows);
  http_api::decode_limits limits{32, 64};
  for (auto _ : state) {
    auto r = http_api::decode_predict(body, limits);
    if (!r)
      state.SkipWithError(r.error().message.c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}
BENCHMARK(bm_decode_predict)->Arg(1)->Arg(64);

/// Heap bytes a full cache of `n` entries costs beyond the embeddings' floats,
/// per entry, measured with glibc's mallinfo2. With `source_values` > 0
/// every entry also keeps a source of that many floats (the guard's), which
/// is counted too.
double cache_overhead_per_entry(std::size_t n, std::size_t dim, std::size_t source_values = 0,
                                bool with_view = false) {
  auto heap = [] {
    auto m = mallinfo2(); // small blocks + mmapped large ones (slab, table)
    return static_cast<double>(m.uordblks + m.hblkhd);
  };
  double before = heap();
  {
    auto c = std::move(*lru_ttl_cache::make(cache_config{n, std::chrono::hours{1}, true}));
    if (with_view)
      c.attach(std::make_shared<read_view>(guard_config{}));
    std::vector<float> values(dim, 1.0f);
    std::vector<float> source(source_values, 0.5f);
    for (std::size_t k = 0; k < n; ++k) {
      values[0] = static_cast<float>(k);
      c.put(k * 0x9e3779b97f4a7c15ULL, embedding::copy_of(values),
            source_values > 0 ? embedding::copy_of(source) : embedding{});
    }
    double after = heap();
    return (after - before) / static_cast<double>(n) - static_cast<double>(dim * sizeof(float));
  }
}

/// Console output plus a record of each run's time per iteration.
class recording_reporter : public benchmark::ConsoleReporter {
public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration)
        ns_[r.benchmark_name()] = r.GetAdjustedRealTime(); // in the run's time unit (ns)
    ConsoleReporter::ReportRuns(runs);
  }

  const std::map<std::string, double>& ns() const {
    return ns_;
  }

private:
  std::map<std::string, double> ns_;
};

} // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  recording_reporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  const auto& t = rep.ns();
  auto miss = t.find("bm_request/miss_default_preset");
  auto hit = t.find("bm_request/hit_default_preset");
  if (miss != t.end() && hit != t.end() && hit->second > 0)
    std::printf("\nmiss-to-hit cost ratio (default preset '%s', in-process): %.0fx "
                "(miss %.1f us, hit %.3f us)\n",
                std::string{default_preset()}.c_str(), miss->second / hit->second,
                miss->second / 1e3, hit->second / 1e3);
  for (auto p : {admission_policy::lru, admission_policy::tinylfu}) {
    // The table, slab and sketch grow with the entries held, not max_size.
    auto big
      = lru_ttl_cache::make(cache_config{std::size_t{1} << 28, std::chrono::hours{1}, true, p});
    std::printf("cache structures at start with max_size 2^28 (%s): %zu bytes, %zu table slots\n",
                to_string(p), big->memory_bytes(), big->table_slots());
  }
  for (std::size_t n : {std::size_t{256}, std::size_t{1} << 20}) {
    std::printf("cache memory: %.1f bytes per entry beyond its 256 floats (%zu entries, "
                "heap measured with mallinfo2)\n",
                cache_overhead_per_entry(n, 256), n);
    // The guard keeps the 28 values outside a K=4 key of one row (112 bytes).
    std::printf("cache memory with the guard's source (28 floats): %.1f bytes per entry beyond "
                "the 256 embedding floats (%zu entries)\n",
                cache_overhead_per_entry(n, 256, 28), n);
    std::printf("cache memory with the guard's source and the read view: %.1f bytes per entry "
                "beyond the 256 embedding floats (%zu entries)\n",
                cache_overhead_per_entry(n, 256, 28, true), n);
  }
  benchmark::Shutdown();
  return 0;
}
