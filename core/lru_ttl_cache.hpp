// The hybrid LRU + TTL embedding cache.
//
// Owns: the data structure only. LRU bounds memory (at most max_size entries,
// the least recently used is evicted first); TTL bounds staleness (an entry
// is served only while its age since insertion is below the TTL). It keeps
// the counters the service reports.
// Does not own: single-flight, timers, threading. The cache owner actor wraps
// one instance and is its only user, so this class has no locks. Other
// threads read a mirror of it (core/read_view.hpp, attach()): every change
// made here is mirrored there before the call returns.
//
// Layout (why it looks like this): entries live in a slab (std::vector) and
// link to each other by 32-bit index in two intrusive lists, recency and
// insertion order (FIFO). An open-addressing table of 32-bit slab indices
// finds a key. get/put/erase/evict are O(1) (amortized: the table doubles
// and rehashes as entries arrive); sweep is O(expired entries), because
// with one TTL for all entries, insertion order is expiry order.
// Recency is kept per segment. Under the lru admission policy there is one
// segment, the whole cache. Under tinylfu (core/admission.hpp) there are
// three: a window (1%) that every new entry enters, and a main region split
// into probation and protected (80% of main); an entry leaving the window
// displaces main's victim only if the frequency sketch rates it higher.
// Memory grows with use: the table starts at 16 slots and doubles when more
// than half full, the slab and the sketch grow with it, so a cache with a
// huge max_size costs little until it holds many entries.
// Per entry this costs a 56-byte slab node, 8 to 16 bytes of table (load
// factor 1/4 to 1/2), and the embedding block's 8-byte header plus the
// allocator's chunk header: about 80 bytes beyond the floats (plus 4 to 8
// bytes of sketch under tinylfu). An entry that keeps its source (the
// request values outside the key, for the reuse guard) adds that block: 8
// bytes of header, the allocator's chunk header and 4 bytes per value.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "core/admission.hpp"
#include "core/embedding.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/prefix_key.hpp"
#include "core/read_view.hpp"

namespace sil {

using cache_clock = std::chrono::steady_clock;
using cache_time = cache_clock::time_point;
using cache_duration = cache_clock::duration;

/// Construction parameters of a cache.
struct cache_config {
  /// Maximum number of entries (>= 1).
  std::size_t max_size = 256;
  /// Entries are served only while younger than this (>= 0; 0 serves none).
  cache_duration ttl = std::chrono::seconds{30};
  /// Whether lookups may return cached entries.
  bool enabled = true;
  /// What a full cache gives up: the least recently used entry (lru), or
  /// W-TinyLFU's choice (tinylfu).
  admission_policy admission = admission_policy::lru;
  /// Seed of the random bits of tinylfu's admission rule.
  std::uint64_t seed = 0x5eed;
};

/// Where an entry sits in the cache's recency order. Under lru every entry
/// is in the window (the whole cache is one LRU list).
enum class cache_segment : std::uint8_t {
  window,
  probation,
  protected_,
};

/// "window", "probation" or "protected".
const char* to_string(cache_segment s) noexcept;

/// Outcome of a lookup.
enum class lookup_status : std::uint8_t {
  /// The entry exists, is younger than the TTL (and than max_age): served.
  hit,
  /// No entry for the key.
  absent,
  /// The entry had reached the TTL; it was removed (counts as expiration).
  expired,
  /// The entry is younger than the TTL but older than the caller's max_age;
  /// it is kept for other callers but not served.
  too_old,
  /// The entry is live, but the caller's acceptance test refused it (the
  /// reuse guard); counts as a miss and as a refusal. The result carries the
  /// entry so that the caller can compare it with a fresh result.
  refused,
  /// Reuse is disabled; nothing is served (counts as bypass, not as miss).
  disabled,
};

/// Returns a stable lowercase name for `s`.
const char* to_string(lookup_status s) noexcept;

/// What `get` returns.
struct lookup_result {
  lookup_status status = lookup_status::absent;
  /// The cached embedding; set when status is hit or refused.
  embedding value;
  /// What the entry was computed from (see put); set with value.
  embedding source;
  /// Smallest distance at which this entry was seen wrong (mark_wrong);
  /// infinity if never.
  float wrong_distance = 0.0f;
  /// Age of the entry at lookup time (hit, expired, too_old, refused), else
  /// zero.
  cache_duration age{0};

  bool hit() const noexcept {
    return status == lookup_status::hit;
  }
};

/// What `peek` returns: the entry as stored, without side effects.
struct peek_result {
  embedding value;
  embedding source;
  float wrong_distance = 0.0f;
  cache_duration age{0};
  bool expired = false;
};

/// What `put` did besides storing the value.
struct put_result {
  /// The key was present; its value and insertion time were replaced.
  bool replaced = false;
  /// A live entry was evicted (LRU) to make room.
  bool evicted = false;
  /// An expired entry was removed to make room (counted as expiration).
  bool expired = false;
};

/// Counters and current settings.
struct cache_stats {
  std::uint64_t hits = 0;
  /// Lookups while enabled that were not served (absent, expired, too_old).
  std::uint64_t misses = 0;
  /// Entries removed because they reached the TTL (lookup, sweep or put).
  std::uint64_t expirations = 0;
  /// Live entries removed to make room (by LRU, or by W-TinyLFU: the
  /// main region's victim or a candidate that was not admitted).
  std::uint64_t evictions = 0;
  /// Of evictions: candidates leaving the window that W-TinyLFU did not
  /// admit into the main region (0 under lru).
  std::uint64_t rejections = 0;
  /// Calls to put (first inserts and replacements).
  std::uint64_t inserts = 0;
  /// Entries removed by erase().
  std::uint64_t erasures = 0;
  /// Lookups while disabled.
  std::uint64_t bypasses = 0;
  /// Live entries an acceptance test refused (also counted as misses).
  std::uint64_t refusals = 0;
  std::size_t size = 0;
  std::size_t max_size = 0;
  bool enabled = true;
  cache_duration ttl{0};
  admission_policy admission = admission_policy::lru;

  /// hits / (hits + misses), or 0 without lookups.
  double hit_rate() const noexcept {
    auto n = hits + misses;
    return n == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(n);
  }
};

/// LRU + TTL cache from prefix keys to embeddings. Not thread-safe.
class lru_ttl_cache {
public:
  /// Returns the current time; injectable so tests control the clock.
  using clock_fn = std::function<cache_time()>;

  /// Creates a cache. Fails with invalid_config if max_size is 0 or above
  /// 2^30, or the TTL is negative. An empty `clock` means steady_clock.
  /// Allocates for a few entries only, whatever max_size is.
  static result<lru_ttl_cache> make(const cache_config& cfg, clock_fn clock = {});

  /// Looks up `key`. On a hit the entry becomes most recently used and the
  /// returned embedding shares the cached block (no copy).
  lookup_result get(prefix_key key);

  /// Like get(key), but refuses (status too_old) an entry older than
  /// `max_age`, without removing it.
  lookup_result get(prefix_key key, cache_duration max_age);

  /// Like get, with an optional max_age (nullptr: none) and an acceptance
  /// test: `accept(const lookup_result&)` sees the live entry (status hit,
  /// value, source, wrong_distance, age) before it is served; if it returns
  /// false the entry is not served (status refused, counted as a miss and a
  /// refusal, recency untouched) and stays stored.
  template <class Accept>
  lookup_result get_if(prefix_key key, const cache_duration* max_age, Accept&& accept) {
    lookup_result res;
    auto idx = locate(key, max_age, res);
    if (idx == nil)
      return res;
    fill(idx, res);
    if (!accept(static_cast<const lookup_result&>(res))) {
      ++counters_.misses;
      ++counters_.refusals;
      res.status = lookup_status::refused;
      return res;
    }
    touch(idx);
    return res;
  }

  /// Inserts or replaces the entry for `key` (also while disabled, so fresh
  /// results keep the cache current). The insertion time is now. When full,
  /// an expired entry is removed if there is one (the oldest inserted),
  /// otherwise the policy evicts: under lru the least recently used entry;
  /// under tinylfu the window's oldest entry moves to the main region only
  /// if the sketch rates it above main's victim (which then leaves), else
  /// the candidate itself leaves. A replacement counts as an access.
  put_result put(prefix_key key, embedding value);

  /// Like put, and keeps `source` (what the value was computed from) with
  /// the entry. A replaced entry forgets its wrong_distance.
  put_result put(prefix_key key, embedding value, embedding source);

  /// Records that the entry for `key` gave a wrong answer for a request at
  /// `distance` from its source: wrong_distance becomes the smaller of the
  /// two. Returns whether the key was present.
  bool mark_wrong(prefix_key key, float distance);

  /// Returns the entry for `key` without touching recency, stats or expiry.
  std::optional<peek_result> peek(prefix_key key) const;

  /// Removes the entry for `key`; returns whether there was one.
  bool erase(prefix_key key);

  /// Removes every entry. Counters are kept.
  void clear();

  /// Removes every expired entry; returns how many. O(expired entries).
  std::size_t sweep();

  /// Turns reuse on or off. Entries are kept either way.
  void enabled(bool value) noexcept {
    enabled_ = value;
    if (view_)
      view_->enabled(value);
  }

  /// Mirrors every entry, and every later change, into `view` (null:
  /// stop mirroring). The view must use this cache's clock.
  void attach(std::shared_ptr<read_view> view);

  const std::shared_ptr<read_view>& view() const noexcept {
    return view_;
  }

  /// Replays an access made through the read view exactly as a hit through
  /// get would act on the order: the entry for `key`, if any, becomes most
  /// recently used in its segment (under tinylfu a probation entry moves to
  /// protected) and, under tinylfu, counts in the frequency sketch. Not
  /// counted as a hit (the view counted it) and no expiry check (the sweep
  /// removes dead entries).
  void record_access(prefix_key key) noexcept;

  bool enabled() const noexcept {
    return enabled_;
  }

  /// Changes the TTL; it applies to entries already stored. Fails with
  /// invalid_argument if negative.
  status ttl(cache_duration value);

  cache_duration ttl() const noexcept {
    return ttl_;
  }

  std::size_t size() const noexcept {
    return size_;
  }

  std::size_t max_size() const noexcept {
    return max_size_;
  }

  admission_policy admission() const noexcept {
    return admission_;
  }

  /// The region sizes the policy aims for at max_size.
  const region_sizes& regions() const noexcept {
    return regions_;
  }

  /// The segment that holds `key`, if stored (for tests and diagnostics).
  std::optional<cache_segment> segment_of(prefix_key key) const;

  /// Entries in segment `s`.
  std::size_t segment_size(cache_segment s) const noexcept {
    return segs_[static_cast<std::size_t>(s)].size;
  }

  /// The sketch's estimate for `key` (0 under lru, which keeps none).
  unsigned frequency(prefix_key key) const noexcept {
    return sketch_ ? sketch_->frequency(key) : 0;
  }

  /// Slots of the hash table now (it grows with the entries held).
  std::size_t table_slots() const noexcept {
    return table_.size();
  }

  /// Bytes the cache's own structures hold now: slab, table and sketch
  /// (not the embedding and source blocks, which the entries share).
  std::size_t memory_bytes() const noexcept;

  cache_stats stats() const noexcept;

private:
  static constexpr std::uint32_t nil = 0xffffffffu;

  struct node {
    prefix_key key = 0;
    cache_time inserted{};
    embedding value;
    embedding source;
    std::uint32_t lru_prev = nil;  // towards the most recently used (in its segment)
    std::uint32_t lru_next = nil;  // towards the least recently used (in its segment)
    std::uint32_t fifo_prev = nil; // towards the oldest inserted
    std::uint32_t fifo_next = nil; // towards the newest inserted
    float wrong_distance = 0.0f;   // see lookup_result::wrong_distance
    cache_segment segment = cache_segment::window;
  };
  // The per-entry memory cost (README, Benchmarks) depends on this.
  static_assert(sizeof(node) == 56, "cache node grew");

  lru_ttl_cache(const cache_config& cfg, clock_fn clock);

  cache_time now() const {
    return clock_();
  }

  cache_duration age_of(const node& n, cache_time t) const noexcept {
    return t > n.inserted ? t - n.inserted : cache_duration{0};
  }

  bool is_expired(const node& n, cache_time t) const noexcept {
    return age_of(n, t) >= ttl_;
  }

  lookup_result lookup(prefix_key key, const cache_duration* max_age);

  /// Finds a live entry for a lookup: counts and reports absent, expired
  /// (removing it) and too_old in `res` and returns nil, or returns the
  /// entry's index with res.age set.
  std::uint32_t locate(prefix_key key, const cache_duration* max_age, lookup_result& res);

  /// Copies the entry's value, source, wrong_distance into `res` (status hit).
  void fill(std::uint32_t idx, lookup_result& res) const;

  /// Serves the entry: an access (see on_access), counted as a hit.
  void touch(std::uint32_t idx) noexcept;

  /// An access of the entry: the sketch counts it (tinylfu), and it becomes
  /// the most recent of its segment; a probation entry moves to protected,
  /// whose oldest entry moves back to probation if protected is over size.
  void on_access(std::uint32_t idx) noexcept;

  /// Makes room for one new entry in a full cache with no expired entry:
  /// evicts by the policy (see put). Returns whether a candidate was
  /// refused admission.
  bool evict_one();

  /// Moves window entries over the window's size into probation.
  void spill_window() noexcept;

  /// Main's least valuable entry: probation's oldest, else protected's.
  std::uint32_t main_victim() const noexcept;

  /// Doubles the table and rehashes every entry.
  void grow_table();

  // Hash table of slab indices (linear probing, backward-shift deletion).
  std::size_t home_of(prefix_key key) const noexcept;
  std::size_t find_slot(prefix_key key) const noexcept;
  void table_insert(std::uint32_t idx);
  void table_erase(std::size_t slot) noexcept;

  // Intrusive list maintenance.
  void seg_unlink(std::uint32_t idx) noexcept;
  void seg_push_front(cache_segment s, std::uint32_t idx) noexcept;
  void fifo_unlink(std::uint32_t idx) noexcept;
  void fifo_push_back(std::uint32_t idx) noexcept;

  /// Unlinks and frees the node at `idx` whose table slot is `slot`.
  void remove(std::uint32_t idx, std::size_t slot) noexcept;

  struct segment_list {
    std::uint32_t head = nil; // most recently used
    std::uint32_t tail = nil; // least recently used
    std::size_t size = 0;
  };

  segment_list& seg(cache_segment s) noexcept {
    return segs_[static_cast<std::size_t>(s)];
  }

  clock_fn clock_;
  std::size_t max_size_;
  cache_duration ttl_;
  bool enabled_;
  admission_policy admission_;
  region_sizes regions_;
  splitmix64 rng_;
  std::optional<frequency_sketch> sketch_; // tinylfu only

  std::vector<node> nodes_;
  std::uint32_t free_head_ = nil; // free slab slots, chained via lru_next
  std::vector<std::uint32_t> table_;
  std::size_t table_mask_ = 0;
  std::size_t size_ = 0;

  segment_list segs_[3];
  std::uint32_t fifo_head_ = nil; // oldest inserted
  std::uint32_t fifo_tail_ = nil; // newest inserted

  cache_stats counters_;
  std::shared_ptr<read_view> view_;
};

} // namespace sil
