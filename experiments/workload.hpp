// Open-loop workload generation for the experiments.
//
// Owns: send schedules (when each request is *intended* to leave) and prefix
// mixes (which prefix each request uses). Pure and seeded: the same config
// and seed always give the same workload, so every experiment can be rerun.
// Latency is measured from the intended send time (see latency_recorder), so
// a server that stalls cannot hide the stall (coordinated omission).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "core/error.hpp"

namespace sil::lab {

/// How inter-arrival gaps are drawn.
enum class arrival : std::uint8_t {
  /// Exactly 1/rate apart.
  constant,
  /// Exponential gaps with mean 1/rate (a Poisson process).
  poisson,
};

/// A send schedule: steady, or on/off bursts on top of a base rate.
struct schedule_config {
  arrival kind = arrival::constant;
  /// Requests per second outside bursts.
  double base_rate = 100.0;
  /// Total length, seconds.
  double duration = 10.0;
  /// Requests per second during a burst; 0 means no bursts (steady traffic).
  double burst_rate = 0.0;
  /// A burst starts every `burst_period` seconds and lasts `burst_length`.
  double burst_period = 5.0;
  double burst_length = 1.0;
};

/// Checks rates > 0 (burst_rate >= 0), duration > 0, and
/// 0 < burst_length <= burst_period when bursts are on.
status validate(const schedule_config& cfg);

/// Whether time `t` (seconds from the start) falls inside a burst.
bool in_burst(const schedule_config& cfg, double t) noexcept;

/// The intended send times in seconds from the start, ascending, all in
/// [0, duration). With bursts, the rate switches at burst edges.
std::vector<double> make_schedule(const schedule_config& cfg, std::uint64_t seed);

/// Which prefixes requests use.
enum class prefix_kind : std::uint8_t {
  /// Every request uses prefix 0.
  hot,
  /// Prefix i in [0, M) with probability proportional to 1 / (i+1)^s.
  zipf,
  /// Every request has its own prefix.
  unique,
};

/// Draws prefix ids for a workload.
class prefix_mix {
public:
  /// `m` prefixes and exponent `s` are used by zipf only.
  prefix_mix(prefix_kind kind, std::size_t m, double s, std::uint64_t seed);

  /// The prefix id of the next request.
  std::uint64_t next();

  /// The probability of prefix `i` under zipf (0 for other kinds).
  double zipf_probability(std::size_t i) const;

private:
  prefix_kind kind_;
  std::vector<double> cdf_; // zipf only
  std::mt19937_64 rng_;
  std::uint64_t counter_ = 0;
};

} // namespace sil::lab
