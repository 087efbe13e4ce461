// Test helpers for the cache: a clock the test moves by hand, and a
// one-float embedding whose value identifies it.
#pragma once

#include <chrono>

#include "core/lru_ttl_cache.hpp"

namespace sil::test {

/// A clock the test moves by hand.
struct manual_clock {
  cache_time now{std::chrono::hours{1}};

  lru_ttl_cache::clock_fn fn() {
    return [this] { return now; };
  }
};

/// An embedding of one float, `id`.
inline embedding val(float id) {
  return embedding::copy_of(&id, 1);
}

} // namespace sil::test
