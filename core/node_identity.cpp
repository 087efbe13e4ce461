#include "core/node_identity.hpp"

namespace sil {

const char* const node_identity_remedy
  = "every node needs its own CAF node id, which CAF derives from the host's MAC addresses and "
    "the process id: run each node in its own network namespace (not host networking), or share "
    "the host's PID namespace (docker run --pid=host, compose pid: host)";

status check_node_identity(std::string_view name, std::string_view id, std::string_view own_id,
                           const std::vector<known_node>& known) {
  if (id == own_id)
    return error{errc::forbidden, "node " + std::string{name} + " has the gateway's own node id "
                                    + std::string{id} + "; refused: " + node_identity_remedy};
  for (const auto& n : known)
    if (n.live && n.id == id && n.name != name)
      return error{errc::forbidden, "node " + std::string{name} + " has the node id "
                                      + std::string{id} + " of live node " + n.name
                                      + "; refused: " + node_identity_remedy};
  return ok();
}

} // namespace sil
