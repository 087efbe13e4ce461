// The agent supervisor: the encoder worker pool and the agent loop.
//
// Owns:
//  - the encoder workers: spawning, monitoring, respawning any that dies;
//  - routing: each batch goes to the least-loaded idle worker;
//  - micro-batching: requests that arrive while every worker is busy are
//    queued and leave together, up to max_batch, when a worker frees up;
//  - retries: a batch whose worker died or timed out is re-queued at the
//    front, and the worker replaced; after max_attempts a request fails with
//    encoder_timeout;
//  - the agent loop (observe -> decide -> act) on a timer. It is the only
//    actor that sends enable/disable/set_ttl to the cache owner.
// Does not own: the policy itself (core/agent_policy), HTTP, the cache.
#pragma once

#include <functional>
#include <memory>

#include "actors/service_board.hpp"
#include "core/agent_policy.hpp"
#include "core/model.hpp"
#include "messages/messages.hpp"

namespace sil {

/// Creates worker number `index` (a fresh one after a restart). The default
/// spawns `encoder_worker` detached; tests inject faulty workers.
using worker_factory
  = std::function<encoder_worker_actor(caf::local_actor* parent, std::size_t index)>;

/// Parameters of the supervisor.
struct supervisor_config {
  model m;
  /// Local encoder workers; 0 on a gateway that uses remote nodes only.
  std::size_t workers = 2;
  /// This node's name in the node table.
  std::string node_name = "local";
  /// With no worker at all (every remote node gone, no local ones): spawn a
  /// local fallback worker (true) or fail requests with `unavailable`.
  bool fallback_local = true;
  /// Log node state changes to stderr (off in deterministic tests).
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
  cache_actor cache;
  caf::timespan agent_interval = std::chrono::seconds{1};
  /// false: the agent observes (GET /agent shows the windows) but never acts.
  bool agent_acts = true;
  policy_config policy;
  /// wrong_rate trigger: how many served labels (audits, and shadow
  /// comparisons the guard would have served) the agent weighs; the window
  /// starts empty again after every action.
  std::size_t label_window = 500;
  /// Shown by GET /agent (the ingress applies it).
  double entry_evict_threshold = 0.3;
  std::shared_ptr<service_board> board;
};

/// Spawns the supervisor and its workers.
supervisor_actor spawn_agent_supervisor(caf::actor_system& sys, supervisor_config cfg);

} // namespace sil
