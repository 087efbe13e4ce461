// Multi-node roles of sil-server (gateway and worker), on CAF's own
// distribution layer (the middleman): a gateway publishes its encoder pool as
// a registry; worker nodes connect to it and join their encoder workers.
#pragma once

#include <caf/fwd.hpp>

#include <atomic>
#include <string>

#include "actors/service_handles.hpp"
#include "actors/worker_board.hpp"
#include "config/settings.hpp"
#include "config/sil_config.hpp"
#include "core/error.hpp"
#include "core/model.hpp"

namespace sil {

/// Loads the middleman for the gateway and worker roles and turns heartbeats
/// on (500 ms interval, 2 s connection timeout) unless the configuration set
/// `middleman.heartbeat-interval` itself. Call before creating the system.
void prepare_cluster_config(sil_config& cfg);

/// This node's name: `node-name`, or ROLE@HOSTNAME:PORT (PORT: the HTTP
/// port setting). No process id, so that a restarted node keeps its name and
/// its metric series.
std::string default_node_name(const service_settings& s);

/// Gateway: publishes the encoder pool as the registry on cluster.host /
/// cluster.port; returns the port it listens on.
result<std::uint16_t> publish_registry(caf::actor_system& sys, const service_handles& h,
                                       const service_settings& s);

/// Worker role: spawns the encoder workers, connects to the gateway (with
/// retry and backoff, off the main thread), joins them, and joins again
/// whenever the gateway comes back or a worker had to be replaced. Returns 0
/// when `stop` becomes true (the caller sets it on SIGINT/SIGTERM), or 1 at
/// once if this node cannot join because its CAF node id is the gateway's
/// or another live node's (logged with the remedy). It publishes its state
/// (connection, workers alive, encodes) on `board`, which the node's HTTP
/// listener reads.
int run_worker_node(caf::actor_system& sys, const service_settings& s, const model& m,
                    const std::atomic<bool>& stop, std::shared_ptr<worker_board> board);

} // namespace sil
