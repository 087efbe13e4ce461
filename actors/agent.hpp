// The agent: the circuit breaker of reuse.
//
// Owns:
//  - the loop observe -> decide -> act on a timer: every interval it asks
//    the cache owner for its counters, summarizes the window of divergence
//    reports and the served labels, lets the pure policy decide
//    (core/agent_policy) and applies the decision;
//  - the window of divergence reports (from the ingress's audits and free
//    comparisons) and the served wrong-rate's label window;
//  - the decision log (the last 100), the counts per action, and the
//    operator's commands (admin API), which hold until resume.
// It is the only actor that sends disable, enable, set_ttl and clear to the
// cache owner.
// Does not own: the policy itself (core/agent_policy), the cache, the
// encoders, HTTP. It needs nothing but a cache owner, so it is tested
// without any encoder worker.
#pragma once

#include <chrono>
#include <cstddef>

#include "core/agent_policy.hpp"
#include "messages/messages.hpp"

namespace sil {

/// Parameters of the agent.
struct agent_config {
  /// The cache owner it observes and acts on (none: it never ticks).
  cache_actor cache;
  caf::timespan interval = std::chrono::seconds{1};
  /// false: the agent observes (GET /agent shows the windows) but never acts.
  bool acts = true;
  policy_config policy;
  /// wrong_rate trigger: how many served labels (audits, and shadow
  /// comparisons the guard would have served) the agent weighs; the window
  /// starts empty again after every action.
  std::size_t label_window = 500;
  /// Shown by GET /agent (the ingress applies it).
  double entry_evict_threshold = 0.3;
};

/// Spawns the agent; its first tick comes one interval later.
agent_actor spawn_agent(caf::actor_system& sys, agent_config cfg);

} // namespace sil
