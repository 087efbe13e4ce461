#include "core/admission.hpp"

#include <algorithm>

#include "core/hash.hpp"

namespace sil {

const char* to_string(admission_policy p) noexcept {
  switch (p) {
    case admission_policy::lru:
      return "lru";
    case admission_policy::tinylfu:
      return "tinylfu";
  }
  return "unknown";
}

std::optional<admission_policy> parse_admission_policy(std::string_view s) noexcept {
  if (s == "lru")
    return admission_policy::lru;
  if (s == "tinylfu")
    return admission_policy::tinylfu;
  return std::nullopt;
}

namespace {

constexpr std::size_t min_window = 16;

} // namespace

region_sizes regions_for(admission_policy p, std::size_t capacity) noexcept {
  region_sizes r;
  capacity = std::max<std::size_t>(capacity, 1);
  if (p == admission_policy::lru) {
    r.window = capacity;
    return r;
  }
  // 1% (Caffeine's starting split), but at least min(16, capacity / 16):
  // a new key must stay in the window long enough for its first hits to
  // count. The read path replays hits a few milliseconds late, and a flood
  // of misses inserts meanwhile; a two-entry window (1% of 256) turned a
  // key over to admission before its second request was counted, rated
  // like the one-off keys around it, and dropped it.
  r.window
    = std::max<std::size_t>({1, capacity / 100, std::min<std::size_t>(min_window, capacity / 16)});
  r.main = capacity - r.window;
  r.protected_max = r.main * 8 / 10;
  return r;
}

// -- frequency sketch -------------------------------------------------------------

namespace {

constexpr std::size_t min_words = 8;

// Every counter's three low bits: (w >> 1) & halve_mask halves them all.
constexpr std::uint64_t halve_mask = 0x7777777777777777ULL;

std::size_t ceil_pow2(std::size_t n) noexcept {
  std::size_t p = min_words;
  while (p < n)
    p <<= 1;
  return p;
}

} // namespace

frequency_sketch::frequency_sketch(std::size_t capacity)
  : table_(ceil_pow2(capacity), 0) {
  mask_ = table_.size() - 1;
  sample_size_ = 10 * std::max(capacity, min_words);
}

void frequency_sketch::ensure_capacity(std::size_t capacity) {
  sample_size_ = std::max(sample_size_, 10 * capacity);
  auto want = ceil_pow2(capacity);
  if (want <= table_.size())
    return;
  // Duplicate: index (h & new_mask) & old_mask == h & old_mask, so every
  // key reads the counters it read before.
  std::vector<std::uint64_t> wider(want);
  for (std::size_t i = 0; i < want; ++i)
    wider[i] = table_[i & mask_];
  table_.swap(wider);
  mask_ = want - 1;
  // Every copied counter carries the collisions of the narrower table into
  // both halves, where new increments no longer dilute them; left alone,
  // that noise would add up over successive doublings. Halving bounds it
  // (and is an aging like any other).
  age();
}

void frequency_sketch::positions(prefix_key key, position (&out)[4]) const noexcept {
  // Two independent 64-bit hashes, combined per row (double hashing). The
  // salts keep these hashes apart from the table's and the read view's,
  // which use mix64(key) itself.
  auto h1 = mix64(key ^ 0x6a09e667f3bcc909ULL);
  auto h2 = mix64(key ^ 0xbb67ae8584caa73bULL) | 1;
  for (unsigned i = 0; i < 4; ++i) {
    auto x = h1 + i * h2;
    out[i].word = static_cast<std::size_t>(x >> 8) & mask_;
    out[i].shift = static_cast<unsigned>(x & 15u) * 4;
  }
}

bool frequency_sketch::increment(prefix_key key) noexcept {
  position ps[4];
  positions(key, ps);
  bool changed = false;
  for (const auto& p : ps) {
    auto& w = table_[p.word];
    if (((w >> p.shift) & 15u) < max_count) {
      w += std::uint64_t{1} << p.shift;
      changed = true;
    }
  }
  if (changed && ++additions_ >= sample_size_)
    age();
  return changed;
}

unsigned frequency_sketch::frequency(prefix_key key) const noexcept {
  position ps[4];
  positions(key, ps);
  unsigned f = max_count;
  for (const auto& p : ps)
    f = std::min(f, static_cast<unsigned>((table_[p.word] >> p.shift) & 15u));
  return f;
}

void frequency_sketch::age() noexcept {
  for (auto& w : table_)
    w = (w >> 1) & halve_mask;
  additions_ /= 2;
  ++agings_;
}

void frequency_sketch::clear() noexcept {
  std::fill(table_.begin(), table_.end(), 0);
  additions_ = 0;
}

} // namespace sil
