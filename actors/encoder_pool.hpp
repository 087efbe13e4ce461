// The encoder pool: the encoder workers behind one handle.
//
// Owns:
//  - the encoder workers: spawning, monitoring, respawning any that dies;
//  - routing: each batch goes to the least-loaded idle worker;
//  - micro-batching: requests that arrive while every worker is busy are
//    queued and leave together, up to max_batch, when a worker frees up;
//  - retries: a batch whose worker died or timed out is re-queued at the
//    front, and the worker replaced; after max_attempts a request fails with
//    encoder_timeout;
//  - admission by deadline: an encode the queue ahead would make late is
//    refused at once (overloaded); the load is published on the board;
//  - the node table: remote workers join (registry_actor is the narrow view
//    a gateway publishes), are checked for node-id clashes and monitored.
// Does not own: the agent (actors/agent.*), the cache, HTTP.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "actors/service_board.hpp"
#include "core/model.hpp"
#include "messages/messages.hpp"

namespace sil {

/// Creates worker number `index` (a fresh one after a restart). The default
/// spawns `encoder_worker` detached; tests inject faulty workers.
using worker_factory
  = std::function<encoder_worker_actor(caf::local_actor* parent, std::size_t index)>;

/// Parameters of the encoder pool.
struct encoder_pool_config {
  model m;
  /// Local encoder workers; 0 on a gateway that uses remote nodes only.
  std::size_t workers = 2;
  /// This node's name in the node table.
  std::string node_name = "local";
  /// With no worker at all (every remote node gone, no local ones): spawn a
  /// local fallback worker (true) or fail requests with `unavailable`.
  bool fallback_local = true;
  /// Log node state changes (off in deterministic tests).
  bool log_nodes = false;
  std::size_t max_batch = 32;
  caf::timespan encoder_timeout = std::chrono::seconds{2};
  std::size_t max_attempts = 3;
  /// Run workers on their own threads (production); off in deterministic tests.
  bool detached_workers = true;
  /// How much detached workers lower their threads' CPU priority (nice).
  int worker_nice = 10;
  /// Overrides how workers are made (tests).
  worker_factory factory;
  /// Where the pool publishes workers alive and its load (optional).
  std::shared_ptr<service_board> board;
};

/// Spawns the pool and its workers.
encoder_pool_actor spawn_encoder_pool(caf::actor_system& sys, encoder_pool_config cfg);

} // namespace sil
