#include "core/lru_ttl_cache.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "core/hash.hpp"

namespace sil {

const char* to_string(lookup_status s) noexcept {
  switch (s) {
    case lookup_status::hit:
      return "hit";
    case lookup_status::absent:
      return "absent";
    case lookup_status::expired:
      return "expired";
    case lookup_status::too_old:
      return "too_old";
    case lookup_status::disabled:
      return "disabled";
    case lookup_status::refused:
      return "refused";
  }
  return "unknown";
}

const char* to_string(cache_segment s) noexcept {
  switch (s) {
    case cache_segment::window:
      return "window";
    case cache_segment::probation:
      return "probation";
    case cache_segment::protected_:
      return "protected";
  }
  return "unknown";
}

namespace {

constexpr float never_wrong = std::numeric_limits<float>::infinity();

constexpr std::size_t max_capacity = std::size_t{1} << 30;

// The table starts sized for this many entries and grows as entries
// arrive, so memory tracks what the cache holds, not max_size.
constexpr std::size_t initial_entries = 8;

// The sketch starts sized for min(max_size, this) entries (8 bytes each, so
// at most 512 KiB) and grows with the table only beyond. A sketch that grew
// from a few words would keep the collisions of every narrower stage (see
// frequency_sketch::ensure_capacity): one-off keys would read as seen twice
// and shut out a key that really was.
constexpr std::size_t sketch_floor = std::size_t{1} << 16;

std::size_t table_size_for(std::size_t entries) {
  // Keep the load factor at or below 1/2 so that probe sequences stay short.
  std::size_t n = 8;
  while (n < 2 * entries)
    n <<= 1;
  return n;
}

} // namespace

result<lru_ttl_cache> lru_ttl_cache::make(const cache_config& cfg, clock_fn clock) {
  if (cfg.max_size == 0)
    return {errc::invalid_config, "cache max_size must be at least 1"};
  if (cfg.max_size > max_capacity)
    return {errc::invalid_config, "cache max_size " + std::to_string(cfg.max_size)
                                    + " exceeds the limit of " + std::to_string(max_capacity)};
  if (cfg.ttl < cache_duration::zero())
    return {errc::invalid_config, "cache ttl must not be negative"};
  if (!clock)
    clock = [] { return cache_clock::now(); };
  return lru_ttl_cache{cfg, std::move(clock)};
}

lru_ttl_cache::lru_ttl_cache(const cache_config& cfg, clock_fn clock)
  : clock_(std::move(clock))
  , max_size_(cfg.max_size)
  , ttl_(cfg.ttl)
  , enabled_(cfg.enabled)
  , admission_(cfg.admission)
  , regions_(regions_for(cfg.admission, cfg.max_size))
  , rng_(cfg.seed)
  , table_(table_size_for(std::min(cfg.max_size, initial_entries)), nil) {
  table_mask_ = table_.size() - 1;
  if (admission_ == admission_policy::tinylfu)
    sketch_.emplace(std::min(cfg.max_size, sketch_floor));
}

std::size_t lru_ttl_cache::memory_bytes() const noexcept {
  return nodes_.capacity() * sizeof(node) + table_.capacity() * sizeof(std::uint32_t)
         + (sketch_ ? sketch_->memory_bytes() : 0);
}

std::optional<cache_segment> lru_ttl_cache::segment_of(prefix_key key) const {
  auto slot = find_slot(key);
  if (slot == table_.size())
    return std::nullopt;
  return nodes_[table_[slot]].segment;
}

// -- hash table ---------------------------------------------------------------

std::size_t lru_ttl_cache::home_of(prefix_key key) const noexcept {
  return static_cast<std::size_t>(mix64(key)) & table_mask_;
}

std::size_t lru_ttl_cache::find_slot(prefix_key key) const noexcept {
  for (auto i = home_of(key);; i = (i + 1) & table_mask_) {
    auto idx = table_[i];
    if (idx == nil)
      return table_.size();
    if (nodes_[idx].key == key)
      return i;
  }
}

void lru_ttl_cache::table_insert(std::uint32_t idx) {
  auto i = home_of(nodes_[idx].key);
  while (table_[i] != nil)
    i = (i + 1) & table_mask_;
  table_[i] = idx;
}

void lru_ttl_cache::grow_table() {
  std::vector<std::uint32_t> old(table_.size() * 2, nil);
  old.swap(table_);
  table_mask_ = table_.size() - 1;
  for (auto idx : old)
    if (idx != nil)
      table_insert(idx);
  if (sketch_)
    sketch_->ensure_capacity(std::min(max_size_, table_.size() / 2));
}

void lru_ttl_cache::table_erase(std::size_t slot) noexcept {
  // Backward-shift deletion: move later members of the probe run into the
  // hole unless that would put them before their home slot.
  auto hole = slot;
  for (auto j = (hole + 1) & table_mask_; table_[j] != nil; j = (j + 1) & table_mask_) {
    auto home = home_of(nodes_[table_[j]].key);
    bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays)
      continue;
    table_[hole] = table_[j];
    hole = j;
  }
  table_[hole] = nil;
}

// -- intrusive lists ------------------------------------------------------------

void lru_ttl_cache::seg_unlink(std::uint32_t idx) noexcept {
  auto& n = nodes_[idx];
  auto& l = seg(n.segment);
  if (n.lru_prev != nil)
    nodes_[n.lru_prev].lru_next = n.lru_next;
  else
    l.head = n.lru_next;
  if (n.lru_next != nil)
    nodes_[n.lru_next].lru_prev = n.lru_prev;
  else
    l.tail = n.lru_prev;
  n.lru_prev = n.lru_next = nil;
  --l.size;
}

void lru_ttl_cache::seg_push_front(cache_segment s, std::uint32_t idx) noexcept {
  auto& n = nodes_[idx];
  auto& l = seg(s);
  n.segment = s;
  n.lru_prev = nil;
  n.lru_next = l.head;
  if (l.head != nil)
    nodes_[l.head].lru_prev = idx;
  else
    l.tail = idx;
  l.head = idx;
  ++l.size;
}

void lru_ttl_cache::fifo_unlink(std::uint32_t idx) noexcept {
  auto& n = nodes_[idx];
  if (n.fifo_prev != nil)
    nodes_[n.fifo_prev].fifo_next = n.fifo_next;
  else
    fifo_head_ = n.fifo_next;
  if (n.fifo_next != nil)
    nodes_[n.fifo_next].fifo_prev = n.fifo_prev;
  else
    fifo_tail_ = n.fifo_prev;
  n.fifo_prev = n.fifo_next = nil;
}

void lru_ttl_cache::fifo_push_back(std::uint32_t idx) noexcept {
  auto& n = nodes_[idx];
  n.fifo_next = nil;
  n.fifo_prev = fifo_tail_;
  if (fifo_tail_ != nil)
    nodes_[fifo_tail_].fifo_next = idx;
  else
    fifo_head_ = idx;
  fifo_tail_ = idx;
}

void lru_ttl_cache::remove(std::uint32_t idx, std::size_t slot) noexcept {
  if (view_)
    view_->erase(nodes_[idx].key);
  table_erase(slot);
  seg_unlink(idx);
  fifo_unlink(idx);
  auto& n = nodes_[idx];
  n.value = embedding{};
  n.source = embedding{};
  n.lru_next = free_head_;
  free_head_ = idx;
  --size_;
}

// -- operations ----------------------------------------------------------------

lookup_result lru_ttl_cache::get(prefix_key key) {
  return lookup(key, nullptr);
}

lookup_result lru_ttl_cache::get(prefix_key key, cache_duration max_age) {
  return lookup(key, &max_age);
}

lookup_result lru_ttl_cache::lookup(prefix_key key, const cache_duration* max_age) {
  return get_if(key, max_age, [](const lookup_result&) { return true; });
}

std::uint32_t lru_ttl_cache::locate(prefix_key key, const cache_duration* max_age,
                                    lookup_result& res) {
  if (!enabled_) {
    ++counters_.bypasses;
    res.status = lookup_status::disabled;
    return nil;
  }
  auto slot = find_slot(key);
  if (slot == table_.size()) {
    ++counters_.misses;
    res.status = lookup_status::absent;
    return nil;
  }
  auto idx = table_[slot];
  auto t = now();
  res.age = age_of(nodes_[idx], t);
  if (res.age >= ttl_) {
    remove(idx, slot);
    ++counters_.expirations;
    ++counters_.misses;
    res.status = lookup_status::expired;
    return nil;
  }
  if (max_age != nullptr && res.age > *max_age) {
    ++counters_.misses;
    res.status = lookup_status::too_old;
    return nil;
  }
  return idx;
}

void lru_ttl_cache::fill(std::uint32_t idx, lookup_result& res) const {
  const auto& n = nodes_[idx];
  res.status = lookup_status::hit;
  res.value = n.value;
  res.source = n.source;
  res.wrong_distance = n.wrong_distance;
}

void lru_ttl_cache::touch(std::uint32_t idx) noexcept {
  on_access(idx);
  ++counters_.hits;
}

void lru_ttl_cache::on_access(std::uint32_t idx) noexcept {
  auto& n = nodes_[idx];
  if (sketch_)
    sketch_->increment(n.key);
  auto s = n.segment;
  seg_unlink(idx);
  if (s != cache_segment::probation) {
    seg_push_front(s, idx);
    return;
  }
  // A second access in probation earns protection; protected's oldest entry
  // steps back to probation if that overfills protected.
  seg_push_front(cache_segment::protected_, idx);
  auto& p = seg(cache_segment::protected_);
  if (p.size > regions_.protected_max) {
    auto demoted = p.tail;
    seg_unlink(demoted);
    seg_push_front(cache_segment::probation, demoted);
  }
}

std::uint32_t lru_ttl_cache::main_victim() const noexcept {
  const auto& prob = segs_[static_cast<std::size_t>(cache_segment::probation)];
  if (prob.tail != nil)
    return prob.tail;
  return segs_[static_cast<std::size_t>(cache_segment::protected_)].tail;
}

bool lru_ttl_cache::evict_one() {
  auto& w = seg(cache_segment::window);
  auto victim = main_victim();
  // Under lru the window is the whole cache: its oldest entry leaves.
  if (w.size >= regions_.window && w.tail != nil) {
    auto candidate = w.tail;
    if (victim == nil) {
      remove(candidate, find_slot(nodes_[candidate].key));
      return false;
    }
    auto cf = sketch_->frequency(nodes_[candidate].key);
    auto vf = sketch_->frequency(nodes_[victim].key);
    if (admit(cf, vf, rng_.next())) {
      seg_unlink(candidate);
      seg_push_front(cache_segment::probation, candidate);
      remove(victim, find_slot(nodes_[victim].key));
      return false;
    }
    remove(candidate, find_slot(nodes_[candidate].key));
    ++counters_.rejections;
    return true;
  }
  // The window has room (entries of it were erased or expired): the new
  // entry takes that room, and main gives up its victim.
  if (victim == nil)
    victim = w.tail;
  remove(victim, find_slot(nodes_[victim].key));
  return false;
}

void lru_ttl_cache::spill_window() noexcept {
  auto& w = seg(cache_segment::window);
  while (w.size > regions_.window) {
    auto idx = w.tail;
    seg_unlink(idx);
    seg_push_front(cache_segment::probation, idx);
  }
}

put_result lru_ttl_cache::put(prefix_key key, embedding value) {
  return put(key, std::move(value), embedding{});
}

bool lru_ttl_cache::mark_wrong(prefix_key key, float distance) {
  auto slot = find_slot(key);
  if (slot == table_.size())
    return false;
  auto& n = nodes_[table_[slot]];
  n.wrong_distance = std::min(n.wrong_distance, distance);
  if (view_)
    view_->mark_wrong(key, distance);
  return true;
}

put_result lru_ttl_cache::put(prefix_key key, embedding value, embedding source) {
  put_result res;
  ++counters_.inserts;
  auto t = now();
  if (auto slot = find_slot(key); slot != table_.size()) {
    auto idx = table_[slot];
    auto& n = nodes_[idx];
    n.value = std::move(value);
    n.source = std::move(source);
    n.wrong_distance = never_wrong;
    n.inserted = t;
    on_access(idx);
    fifo_unlink(idx);
    fifo_push_back(idx);
    if (view_)
      view_->store(key, n.value, n.source, t);
    res.replaced = true;
    return res;
  }
  if (size_ == max_size_) {
    // Prefer dropping a dead entry over evicting a live one.
    if (is_expired(nodes_[fifo_head_], t)) {
      auto victim = fifo_head_;
      remove(victim, find_slot(nodes_[victim].key));
      ++counters_.expirations;
      res.expired = true;
    } else {
      evict_one();
      ++counters_.evictions;
      res.evicted = true;
    }
  }
  if (sketch_)
    sketch_->increment(key);
  std::uint32_t idx;
  if (free_head_ != nil) {
    idx = free_head_;
    free_head_ = nodes_[idx].lru_next;
  } else {
    idx = static_cast<std::uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  auto& n = nodes_[idx];
  n.key = key;
  n.inserted = t;
  n.value = std::move(value);
  n.source = std::move(source);
  n.wrong_distance = never_wrong;
  seg_push_front(cache_segment::window, idx);
  fifo_push_back(idx);
  if (2 * (size_ + 1) > table_.size())
    grow_table();
  table_insert(idx);
  ++size_;
  spill_window();
  if (view_)
    view_->store(key, n.value, n.source, t);
  return res;
}

std::optional<peek_result> lru_ttl_cache::peek(prefix_key key) const {
  auto slot = find_slot(key);
  if (slot == table_.size())
    return std::nullopt;
  const auto& n = nodes_[table_[slot]];
  auto t = now();
  return peek_result{n.value, n.source, n.wrong_distance, age_of(n, t), is_expired(n, t)};
}

bool lru_ttl_cache::erase(prefix_key key) {
  auto slot = find_slot(key);
  if (slot == table_.size())
    return false;
  remove(table_[slot], slot);
  ++counters_.erasures;
  return true;
}

void lru_ttl_cache::clear() {
  if (view_)
    view_->clear();
  // Give the memory back: a cleared cache costs what a new one does.
  std::vector<node>{}.swap(nodes_);
  std::vector<std::uint32_t>(table_size_for(std::min(max_size_, initial_entries)), nil)
    .swap(table_);
  table_mask_ = table_.size() - 1;
  if (sketch_)
    sketch_.emplace(std::min(max_size_, sketch_floor));
  for (auto& l : segs_)
    l = segment_list{};
  free_head_ = fifo_head_ = fifo_tail_ = nil;
  size_ = 0;
}

std::size_t lru_ttl_cache::sweep() {
  auto t = now();
  std::size_t removed = 0;
  while (fifo_head_ != nil && is_expired(nodes_[fifo_head_], t)) {
    auto victim = fifo_head_;
    remove(victim, find_slot(nodes_[victim].key));
    ++removed;
  }
  counters_.expirations += removed;
  return removed;
}

status lru_ttl_cache::ttl(cache_duration value) {
  if (value < cache_duration::zero())
    return {errc::invalid_argument, "cache ttl must not be negative"};
  ttl_ = value;
  if (view_)
    view_->ttl(value);
  return ok();
}

void lru_ttl_cache::attach(std::shared_ptr<read_view> view) {
  view_ = std::move(view);
  if (!view_)
    return;
  view_->clear();
  view_->enabled(enabled_);
  view_->ttl(ttl_);
  for (auto idx = fifo_head_; idx != nil; idx = nodes_[idx].fifo_next) {
    const auto& n = nodes_[idx];
    view_->store(n.key, n.value, n.source, n.inserted);
    if (n.wrong_distance != never_wrong)
      view_->mark_wrong(n.key, n.wrong_distance);
  }
}

void lru_ttl_cache::record_access(prefix_key key) noexcept {
  auto slot = find_slot(key);
  if (slot == table_.size())
    return;
  on_access(table_[slot]);
}

cache_stats lru_ttl_cache::stats() const noexcept {
  auto s = counters_;
  s.size = size_;
  s.max_size = max_size_;
  s.enabled = enabled_;
  s.ttl = ttl_;
  s.admission = admission_;
  return s;
}

} // namespace sil
