#include "core/read_view.hpp"

#include <algorithm>
#include <limits>
#include <mutex>

#include "core/hash.hpp"

namespace sil {

namespace {

constexpr float never_wrong = std::numeric_limits<float>::infinity();

} // namespace

std::size_t this_thread_stripe() noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed);
  return mine;
}

read_view::read_view(const guard_config& guard)
  : guard_cfg_(guard)
  , shards_(new shard[shard_count])
  , guard_(std::make_shared<const reuse_estimator>(guard))
  , stripes_(new stripe[stripe_count]) {
  // nop
}

read_view::shard& read_view::shard_of(prefix_key key) noexcept {
  // The high bits: the owner's table probes with the low ones.
  return shards_[static_cast<std::size_t>(mix64(key) >> 58) & (shard_count - 1)];
}

const read_view::shard& read_view::shard_of(prefix_key key) const noexcept {
  return shards_[static_cast<std::size_t>(mix64(key) >> 58) & (shard_count - 1)];
}

read_view::stripe& read_view::my_stripe() const noexcept {
  return stripes_[this_thread_stripe() & (stripe_count - 1)];
}

// -- writer ------------------------------------------------------------------------

void read_view::store(prefix_key key, const embedding& value, const embedding& source,
                      view_clock::time_point inserted) {
  entry e{value, source, inserted, never_wrong};
  auto& s = shard_of(key);
  // Swap under the lock, free the old handles after it.
  std::unique_lock<std::shared_mutex> guard{s.mu};
  auto [it, fresh] = s.map.try_emplace(key);
  std::swap(it->second, e);
  guard.unlock();
}

void read_view::erase(prefix_key key) {
  auto& s = shard_of(key);
  entry old;
  std::unique_lock<std::shared_mutex> guard{s.mu};
  if (auto it = s.map.find(key); it != s.map.end()) {
    old = std::move(it->second);
    s.map.erase(it);
  }
  guard.unlock();
}

void read_view::clear() {
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::unordered_map<prefix_key, entry> old;
    std::unique_lock<std::shared_mutex> guard{shards_[i].mu};
    old.swap(shards_[i].map);
    guard.unlock();
  }
}

void read_view::mark_wrong(prefix_key key, float distance) {
  auto& s = shard_of(key);
  std::unique_lock<std::shared_mutex> guard{s.mu};
  if (auto it = s.map.find(key); it != s.map.end())
    it->second.wrong_distance = std::min(it->second.wrong_distance, distance);
}

void read_view::publish(const reuse_estimator& estimator) {
  auto copy = std::make_shared<const reuse_estimator>(estimator);
  std::unique_lock<std::shared_mutex> guard{guard_mu_};
  guard_.swap(copy);
  guard.unlock();
}

void read_view::applied(std::size_t n) noexcept {
  batches_in_flight_.fetch_sub(1, std::memory_order_relaxed);
  batches_applied_.fetch_add(1, std::memory_order_relaxed);
  accesses_applied_.fetch_add(n, std::memory_order_relaxed);
}

// -- readers -----------------------------------------------------------------------

std::optional<view_hit> read_view::serve(const view_query& q) const {
  if (!enabled())
    return std::nullopt;
  auto ttl_ns = ttl_ns_.load(std::memory_order_acquire);
  view_hit out;
  double distance = 0.0;
  float wrong_distance = never_wrong;
  {
    const auto& s = shard_of(q.key);
    std::shared_lock<std::shared_mutex> guard{s.mu};
    auto it = s.map.find(q.key);
    if (it == s.map.end())
      return std::nullopt;
    const auto& e = it->second;
    out.age = q.now > e.inserted ? q.now - e.inserted : view_clock::duration{0};
    auto age_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(out.age).count();
    if (age_ns >= ttl_ns || (q.max_age.count() >= 0 && out.age > q.max_age))
      return std::nullopt;
    if (guard_cfg_.enabled)
      distance
        = reuse_estimator::distance_of(q.suffix, q.suffix_size, e.source.data(), e.source.size());
    wrong_distance = e.wrong_distance;
    out.value = e.value;
  }
  if (distance == 0.0) {
    // Exact reuse and the unguarded case need no statistics.
    out.verdict.reuse = true;
    out.verdict.basis = guard_cfg_.enabled ? reuse_basis::exact : reuse_basis::unguarded;
    out.verdict.p_wrong_upper = 0.0;
  } else {
    std::shared_lock<std::shared_mutex> guard{guard_mu_};
    out.verdict = guard_->judge(q.rows, distance, wrong_distance, q.max_wrong_rate);
  }
  if (!out.verdict.reuse)
    return std::nullopt;
  auto& st = my_stripe();
  st.hits.fetch_add(1, std::memory_order_relaxed);
  st.by_basis[static_cast<std::size_t>(out.verdict.basis)].fetch_add(1, std::memory_order_relaxed);
  return out;
}

std::size_t read_view::size() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::shared_lock<std::shared_mutex> guard{shards_[i].mu};
    n += shards_[i].map.size();
  }
  return n;
}

bool read_view::contains(prefix_key key) const {
  const auto& s = shard_of(key);
  std::shared_lock<std::shared_mutex> guard{s.mu};
  return s.map.count(key) != 0;
}

void read_view::dropped(std::size_t n) const noexcept {
  my_stripe().dropped.fetch_add(n, std::memory_order_relaxed);
}

bool read_view::reserve_batch(std::size_t limit) const noexcept {
  auto limit_i = static_cast<std::int64_t>(limit);
  auto cur = batches_in_flight_.load(std::memory_order_relaxed);
  do {
    if (cur >= limit_i)
      return false;
  } while (!batches_in_flight_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
  return true;
}

view_counters read_view::counters() const noexcept {
  view_counters c;
  for (std::size_t i = 0; i < stripe_count; ++i) {
    const auto& s = stripes_[i];
    c.hits += s.hits.load(std::memory_order_relaxed);
    for (std::size_t b = 0; b < c.by_basis.size(); ++b)
      c.by_basis[b] += s.by_basis[b].load(std::memory_order_relaxed);
    c.accesses_dropped += s.dropped.load(std::memory_order_relaxed);
  }
  c.access_batches = batches_applied_.load(std::memory_order_relaxed);
  c.accesses_applied = accesses_applied_.load(std::memory_order_relaxed);
  return c;
}

} // namespace sil
