// The ingress actor: orchestrates one prediction.
//
//   key = prefix key of the input
//   lookup(key) at the cache owner
//     hit    -> head(cached) -> reply (cache_hit: true)
//     joined -> head(embedding computed for a concurrent request) -> reply
//     lead   -> encode at the encoder pool -> insert(key) -> head -> reply
//              (on failure: abandon(key), so a waiter takes over)
//     bypass -> encode -> insert (keeps the cache current) -> head -> reply
//   use_cache: false -> encode -> head -> reply (the cache is not touched)
//
//     refresh -> the reuse guard refused the stored entry for this input:
//              encode -> head -> reply (fresh, never wrong) -> label the
//              comparison with the stored entry -> insert (the entry now
//              remembers this input as its source)
//
// Correctness risk: after answering a hit, the ingress may audit it: within
// the audit budget it encodes the same input fresh, off the request path,
// reports the cosine and L2 divergence and the prediction delta to the
// agent and to the metrics, and sends the label (distance, wrong) to the
// cache owner, whose guard learns from it. An entry beyond the evict
// threshold (cosine) is invalidated at once. While reuse is disabled, each
// fresh result is compared for free with the entry still stored, reported
// and labelled the same way.
//
// Owns: the model's head (cheap) and the prefix length. Knows nothing of
// HTTP: requests come as predict_request, answers leave as predict_reply or
// an error, by response or through a callback.
#pragma once

#include "core/audit_budget.hpp"
#include "core/model.hpp"
#include "messages/messages.hpp"

namespace sil {

/// Parameters of the ingress.
struct ingress_config {
  model m;
  std::uint32_t prefix_k = 4;
  prefix_unit unit = prefix_unit::values;
  /// The guard's settings (the cache owner decides; the ingress labels
  /// comparisons with `tolerance` and keeps sources only if enabled).
  guard_config guard;
  /// The service's tolerance (risk.tolerance): what counts as a wrong served
  /// answer in the counters a canary is judged on, whatever this lane's
  /// policy uses for its guard.
  double service_tolerance = 0.05;
  cache_actor cache;
  /// Encodes misses, refreshes and audits.
  encoder_pool_actor pool;
  /// Receives every divergence report (its window and served labels).
  agent_actor agent;
  /// Deadline for an encode, retries included.
  caf::timespan encode_timeout = std::chrono::seconds{10};
  /// Receives divergence reports too (the recent rings and histograms).
  metrics_actor metrics;
  /// Which hits are audited.
  audit_config audit;
  /// An audit at or above this cosine divergence evicts the entry at once.
  double entry_evict_threshold = 0.3;
  /// Whether audits may evict entries at all (false with agent.enabled=false:
  /// eviction is one of the agent's actions).
  bool evict_far_entries = true;
};

/// Spawns an ingress actor.
ingress_actor spawn_ingress(caf::actor_system& sys, ingress_config cfg);

} // namespace sil
