// The model manager: loads, warms, promotes and unloads model versions at
// runtime.
//
// Owns: the model catalog (its only writer: every change publishes a new
// snapshot, so a request sees either the old default or the new one, never
// a mix), the versions that are draining, and telling the encoder pool
// (which versions remote nodes may join for) and the metrics aggregator
// (which lanes to pull) about every change.
//
// Also the canary judge: an observe -> decide -> act loop (every
// canary.interval) over each running canary. It pulls both lanes' counters
// (requests, encodes, hits, served labels), judges the candidate with
// judge_canary (core/canary.hpp), and promotes it or rolls it back, logging
// every decision with the figures behind it.
// Does not own: what serves a version (a lane, built by `spawn`), HTTP.
//
// Loading reads weights files and builds models, which can take a while: a
// one-shot actor on its own thread builds each one, so the scheduler that
// runs the serving actors (and the manager) never waits for it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/service_handles.hpp"
#include "messages/messages.hpp"

namespace sil {

/// Parameters of the model manager.
struct model_manager_config {
  std::shared_ptr<published_catalog> models;
  encoder_pool_actor pool;
  metrics_actor metrics;
  /// models.max-bytes (0: no limit).
  std::uint64_t max_bytes = 0;
  /// models.warm-encodes: warm-up encodes of a runtime load.
  std::uint32_t warm_encodes = 8;
  /// Rows of each warm-up input.
  std::uint32_t warm_rows = 4;
  /// Values per input row that every version must take.
  std::size_t input_dim = 32;
  /// Spawns what serves a version under a cache policy.
  std::function<caf::expected<std::shared_ptr<lane>>(const std::string&, const model&,
                                                     const cache_policy&)>
    spawn;
  /// The policy of versions loaded at runtime (the settings').
  cache_policy default_policy;
  /// cache.max-size and http.max-rows, for validating canary policies.
  std::size_t cache_max_size = 256;
  std::size_t max_rows = 64;
  /// How canaries are judged, and how often.
  canary_rule rule;
  caf::timespan canary_interval = std::chrono::seconds{1};
};

/// A version served from the start: built before the manager exists.
struct initial_version {
  std::shared_ptr<lane> serving;
  std::string architecture;
};

/// Spawns the manager with the versions served from the start (the first
/// one is the default model's default); they are ready at once. Fails if
/// they break the directory's rules (a duplicate, the memory limit).
caf::expected<model_manager_actor> spawn_model_manager(caf::actor_system& sys,
                                                       model_manager_config cfg,
                                                       std::vector<initial_version> initial);

} // namespace sil
