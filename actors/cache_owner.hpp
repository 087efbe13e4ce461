// The cache owner actor: the only user of the LRU+TTL structure.
//
// Owns: the cache (core/lru_ttl_cache), single-flight bookkeeping, the
// periodic TTL sweep, and the reuse guard (core/reuse_guard): it decides,
// per lookup, whether a live entry may answer this input, and learns from
// the labels the ingress sends back. Lookups for a key whose embedding is
// being computed wait, through response promises, for that one result (if
// the guard would reuse the leader's input for theirs).
// It also keeps the cache's read view (core/read_view.hpp) current: every
// change it makes is mirrored there, and the guard's estimator is
// republished after each label, so that I/O threads serve hits without a
// message (actors/hit_path.hpp). Their accesses come back in batches
// (access_atom), which the owner replays against the LRU order.
// Does not own: the decision to enable/disable (the agent sends those).
#pragma once

#include <memory>

#include "actors/service_board.hpp"
#include "core/lru_ttl_cache.hpp"
#include "messages/messages.hpp"

namespace sil {

/// Parameters of the cache owner.
struct cache_owner_config {
  cache_config cache;
  std::uint32_t prefix_k = 4;
  prefix_unit unit = prefix_unit::values;
  /// The reuse guard (enabled = false: pure prefix reuse).
  guard_config guard;
  /// Concurrent misses on one key wait for one computation (the leader's).
  /// Off: every miss computes on its own (for experiments that measure what
  /// single-flight is worth).
  bool single_flight = true;
  /// Period of the TTL sweep (and of the stale single-flight check).
  caf::timespan sweep_interval = std::chrono::seconds{1};
  /// A computation not finished after this hands its waiters to a new
  /// leader (the first waiter).
  caf::timespan flight_timeout = std::chrono::seconds{10};
  std::shared_ptr<service_board> board;
  /// The read view to keep current (null: no read path).
  std::shared_ptr<read_view> view;
};

/// Spawns the cache owner. Fails if the cache config is invalid.
caf::expected<cache_actor> spawn_cache_owner(caf::actor_system& sys, const cache_owner_config& cfg);

} // namespace sil
