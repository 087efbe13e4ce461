// The plain values the actors exchange: enums and structs without any CAF
// include, so that the HTTP codec, the routes and the tests can use them
// without compiling the actor framework.
//
// Owns: the enums that name states, actions, sources and routes, each with
// exactly one to_string (the only place its words are spelled; JSON,
// metrics and logs call it).
// Does not own: atoms, inspect() overloads, handles (messages/messages.hpp).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "core/agent_policy.hpp"

namespace sil {

// -- predictions -----------------------------------------------------------------------

/// Where a prediction's embedding came from.
enum class embedding_source : std::uint8_t {
  /// Computed for this request.
  encoder = 0,
  /// Served from the cache.
  cache = 1,
  /// Computed for a concurrent request with the same prefix (single-flight).
  single_flight = 2,
};

/// "encoder", "cache", "single_flight".
const char* to_string(embedding_source s) noexcept;

/// Every source, in order (one metric series each).
inline constexpr std::array<embedding_source, 3> all_embedding_sources{
  embedding_source::encoder, embedding_source::cache, embedding_source::single_flight};

// -- cache ------------------------------------------------------------------------------

/// What a cache lookup tells the ingress to do.
enum class lookup_kind : std::uint8_t {
  /// Use `value` (a cache hit).
  hit = 0,
  /// Nobody computes this key: compute it, then insert (or abandon).
  lead = 1,
  /// Another request computed it while this one waited (single-flight).
  joined = 2,
  /// Reuse is disabled: compute fresh (and insert to keep the cache current).
  bypass = 3,
  /// An entry exists but the reuse guard refused it for this input: compute
  /// fresh, answer with that, label the comparison, and insert.
  refresh = 4,
};

// -- correctness risk -------------------------------------------------------------------

/// What made a comparison of a cached and a fresh embedding.
enum class comparison_kind : std::uint8_t {
  /// A sampled re-check of a served hit.
  audit = 0,
  /// A free comparison while reuse was disabled.
  shadow = 1,
  /// A free comparison after the guard refused reuse.
  refusal = 2,
};

/// "audit", "shadow", "refusal".
const char* to_string(comparison_kind k) noexcept;

/// Every kind, in order (one metric series each).
inline constexpr std::array<comparison_kind, 3> all_comparison_kinds{
  comparison_kind::audit, comparison_kind::shadow, comparison_kind::refusal};

// -- the agent --------------------------------------------------------------------------

/// An operator's command (admin API).
enum class admin_command : std::uint8_t {
  disable_cache = 0,
  enable_cache = 1,
  clear_cache = 2,
  set_ttl = 3,
  resume_agent = 4,
};

/// "disable_cache", "enable_cache", "clear_cache", "set_ttl",
/// "resume_agent" (the admin log's action names).
const char* to_string(admin_command c) noexcept;

/// What one entry of the agent's decision log did: the agent's own actions
/// (agent_action) and an operator's commands, in one vocabulary.
enum class decision_action : std::uint8_t {
  keep = 0,
  shorten_ttl = 1,
  restore_ttl = 2,
  disable = 3,
  enable = 4,
  clear = 5,
  set_ttl = 6,
  resume = 7,
};

/// "keep", "shorten_ttl", "restore_ttl", "disable", "enable", "clear",
/// "set_ttl", "resume".
const char* to_string(decision_action a) noexcept;

/// The log's word for what the agent decided.
decision_action decision_of(agent_action a) noexcept;

/// The log's word for an operator's command.
decision_action decision_of(admin_command c) noexcept;

/// Decisions since start: the agent's own by action (`keep` is never
/// counted: it changes nothing), and operators' commands.
struct decision_counts {
  std::array<std::uint64_t, all_agent_actions.size()> by_action{};
  std::uint64_t manual = 0;

  std::uint64_t& of(agent_action a) noexcept {
    return by_action[static_cast<std::size_t>(a)];
  }

  std::uint64_t of(agent_action a) const noexcept {
    return by_action[static_cast<std::size_t>(a)];
  }
};

// -- encoder nodes ----------------------------------------------------------------------

/// One encoder node's state as the gateway sees it.
enum class node_state : std::uint8_t {
  /// The gateway's own node.
  local = 0,
  /// Has live workers.
  up = 1,
  /// Had workers, has none now.
  down = 2,
  /// Its first worker is joining (before the pool counts it).
  joining = 3,
};

/// "local", "up", "down", "new".
const char* to_string(node_state s) noexcept;

/// The states a node settles in (one sil_node_state series each).
inline constexpr std::array<node_state, 3> settled_node_states{node_state::local, node_state::up,
                                                               node_state::down};

// -- HTTP exchanges -----------------------------------------------------------------------

/// The route group an exchange is counted under (the `route` label of
/// sil_http_requests_total, and the route of a request outcome).
enum class route_label : std::uint8_t {
  predict = 0,
  health = 1,
  stats = 2,
  metrics = 3,
  agent = 4,
  admin = 5,
  openapi = 6,
  metadata = 7,
  /// A CORS preflight.
  preflight = 8,
  other = 9,
};

/// "predict", "health", "stats", "metrics", "agent", "admin", "openapi",
/// "metadata", "preflight", "other".
const char* to_string(route_label r) noexcept;

} // namespace sil
