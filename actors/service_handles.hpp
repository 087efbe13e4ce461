// The handles of a running service: what the front end needs to reach the
// actors, without the wiring that made them (actors/service.hpp).
//
// Owns: nothing; a plain bundle of handles and shared pointers.
#pragma once

#include <memory>

#include "actors/service_board.hpp"
#include "messages/messages.hpp"

namespace sil {

class hit_path;

/// Handles of a running service.
struct service_handles {
  ingress_actor ingress;
  cache_actor cache;
  encoder_pool_actor pool;
  agent_actor agent;
  metrics_actor metrics;
  std::shared_ptr<service_board> board;
  /// Answers hits on the caller's thread (null with cache.read-path=false).
  std::shared_ptr<hit_path> hits;
};

} // namespace sil
