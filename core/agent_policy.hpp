// The agent's decision rule: a pure function from what it observed to what
// it should do (DESIGN.md §5, the seed's Observe -> Decide -> Act loop).
//
// Owns: the state machine NORMAL -> SHORT_TTL -> DISABLED and back, with
// hysteresis, and the explanation of each decision.
// Does not own: gathering observations, timers, or applying actions (the
// agent supervisor actor does that), nor per-entry eviction after an audit.
//
// The risk signal is the p95 of the cosine distances reported in one window.
//  - risk > disable_threshold           -> DISABLED (from any mode)
//  - risk > ttl_threshold, mode NORMAL  -> SHORT_TTL, TTL scaled by risk
//  - risk < recover_threshold           -> a clean window; after
//    recover_windows consecutive clean windows the agent steps back one mode
//    (DISABLED -> SHORT_TTL -> NORMAL)
//  - in between (the hysteresis band)   -> keep, and the clean streak resets
// A window with fewer than min_samples reports carries no evidence: the agent
// keeps its mode and its streak.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "core/window_stats.hpp"

namespace sil {

/// The agent's mode.
enum class agent_mode : std::uint8_t { normal, short_ttl, disabled };

/// What the agent asks the cache owner to do.
enum class agent_action : std::uint8_t {
  keep,
  shorten_ttl,
  restore_ttl,
  disable,
  enable,
};

const char* to_string(agent_mode m) noexcept;
const char* to_string(agent_action a) noexcept;

/// Thresholds and limits of the policy.
struct policy_config {
  /// A window whose p95 cosine distance is below this is clean.
  double recover_threshold = 0.002;
  /// Above this p95, NORMAL shortens the TTL.
  double ttl_threshold = 0.01;
  /// Above this p95, reuse is disabled.
  double disable_threshold = 0.05;
  /// Consecutive clean windows needed to step back one mode (M >= 1).
  std::size_t recover_windows = 3;
  /// Windows with fewer divergence reports than this are ignored.
  std::size_t min_samples = 3;
  /// The TTL configured by the operator, restored on recovery (seconds).
  double base_ttl_seconds = 30.0;
  /// The shortest TTL the agent sets (seconds, > 0).
  double ttl_floor_seconds = 1.0;
};

/// Checks 0 <= recover < ttl < disable thresholds, M >= 1, min_samples >= 1,
/// 0 < ttl_floor <= base_ttl, and finiteness.
status validate(const policy_config& cfg);

/// What the agent remembers between windows.
struct agent_state {
  agent_mode mode = agent_mode::normal;
  /// Consecutive clean windows seen so far (capped at recover_windows).
  std::size_t clean_windows = 0;
  /// The TTL currently applied to the cache (seconds).
  double ttl_seconds = 30.0;
};

/// One window's evidence plus the agent's current state.
struct observation {
  /// Summary of the cosine distances reported in the window.
  window_summary divergence;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t audits = 0;
  agent_state state;
};

/// The outcome of one decision.
struct decision {
  agent_action action = agent_action::keep;
  /// The state after applying the action.
  agent_state next;
  /// Why, in one line with the numbers that caused it.
  std::string reason;
};

/// The TTL for risk `p95` while shortening: the base TTL at ttl_threshold,
/// falling linearly to the floor at disable_threshold, clamped to
/// [ttl_floor, base_ttl].
double scaled_ttl(double p95, const policy_config& cfg) noexcept;

/// Decides what to do after one window. Pure: no side effects, no clock.
decision decide(const observation& obs, const policy_config& cfg);

} // namespace sil
