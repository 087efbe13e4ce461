// The cache's read view: what any thread may read to serve a hit without
// asking the cache's owner.
//
// Owns: a mirror of the live entries (key -> value, source, insertion time,
// "seen wrong at" distance), the settings a reader needs (enabled, TTL), a
// published copy of the reuse guard's estimator, and the read path's
// counters. Exactly one writer (the owner of the lru_ttl_cache the view is
// attached to) changes it; any number of threads read it.
// Does not own: recency, eviction, expiry, single-flight. The owner decides
// those and mirrors their effects here; readers never change the cache.
//
// Concurrency (why it looks like this):
//  - Entries live in 64 shards, each a hash map behind a reader-writer
//    lock. A reader holds its shard's lock shared for one probe, one
//    distance and one reference-count increment (tens of nanoseconds); it
//    never waits for another reader and never sleeps unless the owner is
//    writing that very shard. The owner takes one shard exclusively per
//    change.
//  - The guard's estimator is copied on change and published behind its own
//    lock; exact reuse (a bit-identical suffix) never reads it.
//  - enabled and TTL are atomics. Counters are striped per thread on their
//    own cache lines, so two readers never write the same line.
//  - An embedding is reference counted: a reader that copied a value keeps
//    it valid after the owner replaced or removed the entry.
// Staleness: a reader sees every change the owner finished before the
// reader took the shard lock. An entry the owner has not yet swept may be
// past its TTL; readers check the age themselves and never serve it.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <unordered_map>

#include "core/embedding.hpp"
#include "core/prefix_key.hpp"
#include "core/reuse_guard.hpp"

namespace sil {

using view_clock = std::chrono::steady_clock;

/// A small number fixed per thread (threads take turns on first use), for
/// striping per-thread state: stripe = this_thread_stripe() % stripes.
std::size_t this_thread_stripe() noexcept;

/// A read-path request: what a reader knows about its input.
struct view_query {
  prefix_key key = 0;
  /// The reader's time (the clock the owner stamps insertions with).
  view_clock::time_point now{};
  /// Refuse entries older than this; negative: no limit.
  view_clock::duration max_age{-1};
  /// The request's values outside the key.
  const float* suffix = nullptr;
  std::size_t suffix_size = 0;
  std::uint32_t rows = 0;
  /// The request's own budget (0: the configured one).
  double max_wrong_rate = 0.0;
};

/// A hit served from the view.
struct view_hit {
  embedding value;
  view_clock::duration age{0};
  reuse_verdict verdict;
};

/// Counters of the read path (totals since construction).
struct view_counters {
  /// Hits served from the view, and by basis (index: reuse_basis).
  std::uint64_t hits = 0;
  std::array<std::uint64_t, 4> by_basis{};
  /// Access events dropped before reaching the owner (lossy buffers).
  std::uint64_t accesses_dropped = 0;
  /// Access batches the owner applied, and the events in them.
  std::uint64_t access_batches = 0;
  std::uint64_t accesses_applied = 0;
};

class read_view {
public:
  /// `guard` is the reuse guard's configuration (enabled, budget, bins).
  explicit read_view(const guard_config& guard);

  read_view(const read_view&) = delete;
  read_view& operator=(const read_view&) = delete;

  // -- the writer (the cache's owner) ------------------------------------------

  /// Stores or replaces the entry for `key` (forgetting its wrong distance).
  void store(prefix_key key, const embedding& value, const embedding& source,
             view_clock::time_point inserted);

  /// Removes the entry for `key`, if any.
  void erase(prefix_key key);

  /// Removes every entry.
  void clear();

  /// The entry for `key` was wrong at `distance`: it is not served that far
  /// (or farther) again.
  void mark_wrong(prefix_key key, float distance);

  void enabled(bool value) noexcept {
    enabled_.store(value, std::memory_order_release);
  }

  void ttl(view_clock::duration value) noexcept {
    ttl_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(value).count(),
                  std::memory_order_release);
  }

  /// Publishes a copy of the owner's estimator for readers' decisions.
  void publish(const reuse_estimator& estimator);

  /// The owner applied a batch of `n` access events.
  void applied(std::size_t n) noexcept;

  // -- readers (any thread) -----------------------------------------------------

  /// Serves `q` if reuse is enabled and the entry for its key is live (age
  /// below the TTL and max_age) and the guard reuses it for this input;
  /// counts the hit. nullopt otherwise (nothing counted): the caller asks
  /// the owner, which decides and counts as always.
  std::optional<view_hit> serve(const view_query& q) const;

  bool enabled() const noexcept {
    return enabled_.load(std::memory_order_acquire);
  }

  view_clock::duration ttl() const noexcept {
    return std::chrono::nanoseconds{ttl_ns_.load(std::memory_order_acquire)};
  }

  /// Number of entries (sums the shards; for tests and stats).
  std::size_t size() const;

  /// Whether `key` has an entry (for tests).
  bool contains(prefix_key key) const;

  /// A reader dropped `n` access events.
  void dropped(std::size_t n) const noexcept;

  /// Takes a slot for one access batch in flight to the owner; false when
  /// `limit` batches are already in flight (the owner is behind: the caller
  /// drops the batch). applied() frees the slot.
  bool reserve_batch(std::size_t limit) const noexcept;

  view_counters counters() const noexcept;

  /// Access batches sent to the owner and not yet applied.
  std::size_t batches_in_flight() const noexcept {
    auto n = batches_in_flight_.load(std::memory_order_relaxed);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }

  static constexpr std::size_t shard_count = 64;

private:
  struct entry {
    embedding value;
    embedding source;
    view_clock::time_point inserted{};
    float wrong_distance = 0.0f;
  };

  struct alignas(64) shard {
    mutable std::shared_mutex mu;
    std::unordered_map<prefix_key, entry> map;
  };

  /// Per-thread-stripe counters, one cache line each.
  struct alignas(64) stripe {
    std::atomic<std::uint64_t> hits{0};
    std::array<std::atomic<std::uint64_t>, 4> by_basis{};
    std::atomic<std::uint64_t> dropped{0};
  };

  static constexpr std::size_t stripe_count = 16;

  shard& shard_of(prefix_key key) noexcept;
  const shard& shard_of(prefix_key key) const noexcept;
  stripe& my_stripe() const noexcept;

  guard_config guard_cfg_;
  std::atomic<bool> enabled_{true};
  std::atomic<std::int64_t> ttl_ns_{0};
  std::unique_ptr<shard[]> shards_;
  mutable std::shared_mutex guard_mu_;
  std::shared_ptr<const reuse_estimator> guard_;
  mutable std::unique_ptr<stripe[]> stripes_;
  mutable std::atomic<std::int64_t> batches_in_flight_{0};
  std::atomic<std::uint64_t> batches_applied_{0};
  std::atomic<std::uint64_t> accesses_applied_{0};
};

} // namespace sil
