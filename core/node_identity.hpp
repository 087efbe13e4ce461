// Node identity in a cluster: whether a node that asks to join has an id of
// its own.
//
// CAF 0.17 names a node by a hash of the host's MAC addresses (and the root
// file system's UUID) plus the process id. Containers that share the host's
// network namespace and each run sil-server as PID 1 therefore all get the
// same node id, and CAF's routing merges them: the gateway sees one node
// where there are several, or its own id on a worker. This module decides,
// from ids rendered as text, whether a join must be refused, and says why
// and what to do. No CAF: the gateway's supervisor passes the ids in.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace sil {

/// A node the gateway knows: its name, node id, and whether it has live
/// workers in the pool now.
struct known_node {
  std::string name;
  std::string id;
  bool live = false;
};

/// What an operator should do about a node id clash (one sentence).
extern const char* const node_identity_remedy;

/// May node `name`, whose node id is `id`, join a gateway whose own node id
/// is `own_id` and which knows `known`? Refused (errc::forbidden, with a
/// message naming both nodes, the id and the remedy) when `id` equals the
/// gateway's own, or the id of a live node with another name. A node that
/// joins again under its name (more workers, or after a restart, with the
/// same or a new id) may; so may a node whose id was held by a node that is
/// gone.
status check_node_identity(std::string_view name, std::string_view id, std::string_view own_id,
                           const std::vector<known_node>& known);

} // namespace sil
