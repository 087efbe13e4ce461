// The cache's admission policy: plain LRU, or W-TinyLFU (a small LRU window
// in front of a segmented LRU main region, guarded by a frequency filter).
//
// Owns: the policy names, the frequency sketch W-TinyLFU consults, the
// admission rule and the region sizes. Pure: no clock, no threads; the
// caller passes the random bits the admission rule needs.
// Does not own: the entries or their lists (core/lru_ttl_cache.* keeps them
// in its slab and applies the moves this file decides).
//
// Why: under plain LRU every new key becomes the most recent one, so a flood
// of keys that are seen once (a scan of unique prefixes) pushes the hot keys
// out, and their next request is a miss that costs a full encode. W-TinyLFU
// (Einziger, Friedman, Manes: "TinyLFU: A Highly Efficient Cache Admission
// Policy", and the design of Java's Caffeine cache) lets a new key in only
// if it has been asked for more often, recently, than the entry it would
// displace. The window keeps a burst of new keys cacheable for a moment;
// the sketch remembers popularity beyond what the cache holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/prefix_key.hpp"

namespace sil {

/// Which policy decides what a full cache gives up.
enum class admission_policy : std::uint8_t {
  /// Every new entry is admitted; the least recently used one leaves.
  lru,
  /// W-TinyLFU: a new entry reaches the main region only if the frequency
  /// sketch rates it above the main region's victim.
  tinylfu,
};

/// "lru" or "tinylfu".
const char* to_string(admission_policy p) noexcept;

/// Parses "lru" or "tinylfu"; nullopt otherwise.
std::optional<admission_policy> parse_admission_policy(std::string_view s) noexcept;

/// A count-min sketch of 4-bit saturating counters (at most 15) with
/// periodic aging: after `sample_size` increments that changed a counter,
/// every counter is halved, so the sketch estimates *recent* popularity.
/// Four counters per key, chosen by independent hashes, in one array of
/// 64-bit words of 16 counters each; the estimate is the smallest of the
/// four, so it can overestimate (collisions) but never underestimate, up to
/// aging and saturation.
///
/// It can grow with the cache: `ensure_capacity(n)` widens it to at least n
/// words (a power of two) by duplicating the array (a key's counters sit at
/// the same index modulo the old width, so its estimate carries over), then
/// ages it once, and sets the aging sample to 10 n. The aging matters:
/// duplicated counters keep the narrower table's collisions in both halves,
/// and over successive doublings from a few words that noise made one-off
/// keys read as seen two or three times. Halving at each growth bounds it;
/// the cache also starts its sketch wide (core/lru_ttl_cache.cpp).
class frequency_sketch {
public:
  /// Saturation value of a counter.
  static constexpr unsigned max_count = 15;

  /// A sketch sized for `capacity` entries (at least 8 words).
  explicit frequency_sketch(std::size_t capacity = 8);

  /// Widens the sketch for `capacity` entries; never narrows it.
  void ensure_capacity(std::size_t capacity);

  /// Counts one access of `key`. Returns whether a counter changed (all
  /// four saturated: nothing changes and the sample does not advance).
  bool increment(prefix_key key) noexcept;

  /// The estimated number of recent accesses of `key`, in [0, 15].
  unsigned frequency(prefix_key key) const noexcept;

  /// Halves every counter (rounding down) and the sample count.
  void age() noexcept;

  /// Forgets everything; keeps the width.
  void clear() noexcept;

  /// Increments that changed a counter since the last aging.
  std::size_t sample_count() const noexcept {
    return additions_;
  }

  /// Increments between two agings (10 x capacity).
  std::size_t sample_size() const noexcept {
    return sample_size_;
  }

  /// Number of agings so far.
  std::uint64_t agings() const noexcept {
    return agings_;
  }

  /// Width in 64-bit words.
  std::size_t words() const noexcept {
    return table_.size();
  }

  std::size_t memory_bytes() const noexcept {
    return table_.capacity() * sizeof(std::uint64_t);
  }

private:
  struct position {
    std::size_t word;
    unsigned shift; // bit offset of the counter in its word
  };

  /// The four counters of `key`.
  void positions(prefix_key key, position (&out)[4]) const noexcept;

  std::vector<std::uint64_t> table_;
  std::size_t mask_ = 0;
  std::size_t sample_size_ = 0;
  std::size_t additions_ = 0;
  std::uint64_t agings_ = 0;
};

/// Candidates rated at least this warm may be admitted at random against a
/// victim rated as high or higher (see admit()).
constexpr unsigned warm_candidate = 6;

/// W-TinyLFU's admission rule: the candidate (the entry leaving the window)
/// replaces the victim (the main region's least valuable entry) if its
/// estimated frequency is higher. A warm candidate that does not beat the
/// victim is still admitted with probability 1/128 (`random`'s low 7 bits
/// all zero): otherwise an attacker who knows the hash could keep a hot
/// victim's estimate inflated (by colliding keys) and lock every newcomer
/// out. Cold candidates, the one-off keys of a scan, never get that chance,
/// so the randomness costs no hit rate against floods.
constexpr bool admit(unsigned candidate_freq, unsigned victim_freq, std::uint64_t random) noexcept {
  if (candidate_freq > victim_freq)
    return true;
  return candidate_freq >= warm_candidate && (random & 127u) == 0;
}

/// How W-TinyLFU splits a capacity: the window (1%, but at least
/// min(16, capacity / 16) entries and at least one), and the main region's
/// protected segment (80% of the rest; probation takes what protected does
/// not use).
struct region_sizes {
  std::size_t window = 1;
  std::size_t main = 0;
  std::size_t protected_max = 0;
};

/// Region sizes for `capacity` (>= 1) under `p`. Plain LRU is one window
/// the size of the whole cache, with no main region.
region_sizes regions_for(admission_policy p, std::size_t capacity) noexcept;

} // namespace sil
