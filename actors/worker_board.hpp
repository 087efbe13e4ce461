// What a worker node (role=worker) publishes about itself for its own small
// HTTP listener (health and /metrics), which must never wait on an actor.
//
// Owns: nothing but the values. Writers: the worker node's loop
// (server/cluster.cpp: connection state, workers alive, joins) and its
// encoder workers (encodes). Readers: the worker's HTTP routes, lock-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace sil {

struct worker_board {
  /// Joined to the gateway (its registry answered and took our workers),
  /// and not lost since.
  std::atomic<bool> connected{false};
  /// Encoder workers alive on this node, and how many it runs.
  std::atomic<std::uint32_t> workers_alive{0};
  std::atomic<std::uint32_t> workers_configured{0};
  /// Inputs encoded, batches, input rows, and the time spent encoding.
  std::atomic<std::uint64_t> encodes{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> rows{0};
  std::atomic<std::uint64_t> busy_ns{0};
  /// Batches that failed (a malformed item, a model error).
  std::atomic<std::uint64_t> failures{0};
  /// Times this node joined the gateway, and lost it.
  std::atomic<std::uint64_t> joins{0};
  std::atomic<std::uint64_t> gateway_losses{0};
  /// Encoder workers replaced after they died.
  std::atomic<std::uint64_t> restarts{0};
};

} // namespace sil
