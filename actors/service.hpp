// Assembles the actors of one node from validated settings.
//
// Owns: the wiring (who gets which handle), the translation of settings
// into each actor's parameters, and orderly shutdown.
#pragma once

#include <memory>

#include "actors/agent.hpp"
#include "actors/encoder_pool.hpp"
#include "actors/service_board.hpp"
#include "actors/service_handles.hpp"
#include "config/settings.hpp"
#include "core/model.hpp"
#include "messages/messages.hpp"

namespace sil {

/// Knobs that only tests change.
struct service_options {
  /// Run encoder workers on their own threads (off under the test coordinator).
  bool detached_workers = true;
  /// Custom worker construction (fault injection in tests).
  worker_factory factory;
};

/// Builds the configured model: the preset, with weights from the file if
/// one is set, else from the seed. Errors name the config key.
result<model> make_model(const service_settings& s);

/// The cache policy the settings describe ("default"): what every version
/// runs unless a canary changes it.
cache_policy default_policy(const service_settings& s);

/// Number of encoder workers for `s.workers` (0 means one per core).
std::size_t worker_count(const service_settings& s);

/// Spawns every actor. The settings must have passed validate().
caf::expected<service_handles> start_service(caf::actor_system& sys, const service_settings& s,
                                             const model& m, const service_options& opts = {});

/// Asks every actor to exit.
void stop_service(service_handles& h);

} // namespace sil
