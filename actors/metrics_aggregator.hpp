// The metrics aggregator: request outcomes in, /stats and /metrics out.
//
// Owns: the Prometheus registry (prometheus-cpp core: metric types and the
// text exposition format), recent-latency windows for /stats percentiles,
// and request counters. It pulls the cache's and the pool's counters when
// asked, so every answer is current.
// Does not own: HTTP (it returns a snapshot struct and exposition text).
#pragma once

#include <string>

#include "actors/service_board.hpp"
#include "messages/messages.hpp"

namespace sil {

/// Parameters of the metrics aggregator.
struct metrics_config {
  cache_actor cache;
  encoder_pool_actor pool;
  agent_actor agent;
  std::string model_name;
  std::string model_version;
  /// Requests kept for /stats percentiles (the most recent ones).
  std::size_t latency_window = 10000;
  /// The front end's connection counters (optional).
  std::shared_ptr<service_board> board;
};

/// Spawns the metrics aggregator.
metrics_actor spawn_metrics_aggregator(caf::actor_system& sys, metrics_config cfg);

} // namespace sil
