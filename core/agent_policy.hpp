// The agent's decision rule: a pure function from what it observed to what
// it should do (the Observe -> Decide -> Act loop).
//
// Owns: the state machine NORMAL -> SHORT_TTL -> DISABLED and back, with
// hysteresis, and the explanation of each decision.
// Does not own: gathering observations, timers, or applying actions (the
// agent supervisor actor does that), nor per-entry eviction after an audit.
//
// Two triggers (policy_config::trigger):
//  - wrong_rate (the service's default): the risk is the served wrong-rate,
//    measured by audits of served hits (and by shadow comparisons the reuse
//    guard would have served) over the agent's label window. Acting needs
//    evidence: the rate's lower confidence bound must exceed the budget
//    (max_wrong_rate) to shorten the TTL, and disable_wrong_rate to disable
//    reuse. A window is clean when the point estimate is at most half the
//    budget. Fewer than min_samples labels carry no evidence.
//  - cosine: the risk is the p95 of the cosine distances reported in one
//    window, with the thresholds below.
//  - risk > disable_threshold           -> DISABLED (from any mode)
//  - risk > ttl_threshold, mode NORMAL  -> SHORT_TTL, TTL scaled by risk
//  - risk < recover_threshold           -> a clean window; after
//    recover_windows consecutive clean windows the agent steps back one mode
//    (DISABLED -> SHORT_TTL -> NORMAL)
//  - in between (the hysteresis band)   -> keep, and the clean streak resets
// A window with fewer than min_samples reports carries no evidence: the agent
// keeps its mode and its streak.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/window_stats.hpp"

namespace sil {

/// The agent's mode. The numbers are the values of the sil_agent_state
/// gauge.
enum class agent_mode : std::uint8_t { normal = 0, short_ttl = 1, disabled = 2 };

/// What the agent asks the cache owner to do.
enum class agent_action : std::uint8_t {
  keep,
  shorten_ttl,
  restore_ttl,
  disable,
  enable,
};

/// Every action, in order (per-action counters iterate it).
inline constexpr std::array<agent_action, 5> all_agent_actions{
  agent_action::keep, agent_action::shorten_ttl, agent_action::restore_ttl, agent_action::disable,
  agent_action::enable};

const char* to_string(agent_mode m) noexcept;
const char* to_string(agent_action a) noexcept;

/// What the agent watches.
enum class agent_trigger : std::uint8_t {
  /// p95 cosine divergence of the window's reports.
  cosine,
  /// The served wrong-rate's confidence bounds.
  wrong_rate,
};

const char* to_string(agent_trigger t) noexcept;

/// The trigger named `text` ("wrong-rate" or "cosine", as to_string spells
/// them), or nullopt.
std::optional<agent_trigger> parse_agent_trigger(std::string_view text) noexcept;

/// Thresholds and limits of the policy.
struct policy_config {
  /// The signal (the service configures wrong_rate by default).
  agent_trigger trigger = agent_trigger::cosine;
  /// wrong_rate: the budget (delta); a lower bound above it shortens the TTL.
  double max_wrong_rate = 0.01;
  /// wrong_rate: a lower bound above this disables reuse.
  double disable_wrong_rate = 0.05;
  /// wrong_rate: confidence of the bounds.
  double confidence = 0.95;
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
  /// wrong_rate: labels of served answers in the agent's window, and how
  /// many of them were wrong.
  std::uint64_t labels = 0;
  std::uint64_t wrong = 0;
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
/// [ttl_floor, base_ttl]. (wrong_rate: the same between max_wrong_rate and
/// disable_wrong_rate, for the rate's lower bound.)
double scaled_ttl(double p95, const policy_config& cfg) noexcept;

/// Decides what to do after one window. Pure: no side effects, no clock.
decision decide(const observation& obs, const policy_config& cfg);

} // namespace sil
