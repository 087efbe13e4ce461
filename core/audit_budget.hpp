// Which cache hits get audited (recomputed off the request path to measure
// divergence), within a budget of extra encoder work.
//
// Owns: the sliding-window budget and its fair spread over keys. Pure: the
// caller passes the time and a uniform random number, so tests are exact.
// Audits are sized by what the estimates need, not by traffic: a target
// number per second, capped by a share of encoder time.
//  - Pace: at most `per_second` audits per second on average (a token
//    bucket holding one second's worth); 0 turns pacing off. A hit that
//    finds no token costs two comparisons and nothing else.
//  - Encoder time: the audits' encoder time (as measured by the caller,
//    on_audit_done) over the window stays below max_encoder_share x window
//    x encoder_capacity.
//  - Rate: a hit is a candidate with probability `rate`.
//  - Budget: over the last `window`, audits <= floor(max_share * requests) + 1
//    (the +1 lets the first audit of a quiet service happen). The window
//    moves in 64 steps (counts per slice, constant memory at any rate).
//  - Spread: a key may use at most its fair share of that budget,
//    max(1, budget / distinct keys hit recently), so one hot key cannot
//    starve the others; alone, a key may use the whole budget. "Recently" is
//    the last one to two windows (keys are pruned once per window).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>

#include "core/error.hpp"
#include "core/prefix_key.hpp"

namespace sil {

/// Parameters of the audit budget.
struct audit_config {
  /// Probability that a hit is audited, in [0, 1].
  double rate = 0.05;
  /// Audits per request served, at most, over the window, in [0, 1].
  double max_share = 0.05;
  /// Length of the sliding window.
  std::chrono::steady_clock::duration window = std::chrono::seconds{10};
  /// Target audits per second (0: no pacing).
  double per_second = 0.0;
  /// Largest share of encoder time audits may take, in [0, 1].
  double max_encoder_share = 1.0;
  /// Encoder time available per second of wall time (the number of
  /// encoder workers), > 0.
  double encoder_capacity = 1.0;
};

/// Checks 0 <= rate <= 1, 0 <= max_share <= 1, window > 0, per_second >= 0,
/// 0 <= max_encoder_share <= 1 and encoder_capacity > 0 (all finite).
status validate(const audit_config& cfg);

/// Why a hit was or was not audited.
enum class audit_verdict : std::uint8_t {
  audit,
  /// Not drawn (probability `rate`).
  not_sampled,
  /// The global budget is used up.
  over_budget,
  /// This key used its fair share.
  over_key_share,
  /// No token: the target audits per second are reached.
  paced,
  /// Audits used their share of encoder time.
  over_encoder_share,
};

/// The sliding-window audit budget. Not thread-safe (one owner: ingress).
class audit_budget {
public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit audit_budget(const audit_config& cfg)
    : cfg_(cfg) {
    // nop
  }

  /// Counts one request served (hit or miss) at `now`.
  void on_request(time_point now);

  /// Counts `n` requests served by `now` (a batch reported at once).
  void on_requests(time_point now, std::size_t n);

  /// Decides whether the hit on `key` at `now` is audited; `u` is a uniform
  /// random number in [0, 1). An admitted audit is counted at once.
  audit_verdict on_hit(prefix_key key, time_point now, double u);

  /// Records that an audit admitted earlier kept an encoder busy for
  /// `busy` (the caller's measurement), finishing at `now`.
  void on_audit_done(time_point now, std::chrono::nanoseconds busy);

  /// Encoder time of the audits inside the current window.
  std::chrono::nanoseconds encoder_time_in_window() const noexcept {
    return std::chrono::nanoseconds{audit_ns_total_};
  }

  /// Requests and audits inside the current window.
  std::size_t requests_in_window() const noexcept {
    return requests_total_;
  }

  std::size_t audits_in_window() const noexcept {
    return audits_total_;
  }

  /// The current budget: floor(max_share * requests in window) + 1.
  std::size_t budget() const noexcept;

  /// Totals since construction.
  std::uint64_t audited() const noexcept {
    return audited_;
  }

  std::uint64_t skipped() const noexcept {
    return skipped_;
  }

  const audit_config& config() const noexcept {
    return cfg_;
  }

private:
  struct key_state {
    time_point last_hit;
    std::deque<time_point> audits;
  };

  /// Requests and audits of one slice of the window.
  struct bucket {
    std::int64_t index = -1;
    std::size_t requests = 0;
    std::size_t audits = 0;
    std::int64_t audit_ns = 0;
  };

  /// Number of slices: the window moves in steps of window / buckets.
  static constexpr std::int64_t buckets = 64;

  void expire(time_point now);
  bucket& current(time_point now);

  audit_config cfg_;
  // Counts per slice instead of a timestamp per request: memory stays
  // constant whatever the request rate.
  bucket ring_[buckets];
  std::int64_t last_index_ = -1;
  std::size_t requests_total_ = 0;
  std::size_t audits_total_ = 0;
  std::int64_t audit_ns_total_ = 0;
  double tokens_ = 1.0;
  time_point last_refill_{};
  bool refilled_ = false;
  std::unordered_map<prefix_key, key_state> keys_;
  time_point last_key_prune_{};
  std::uint64_t audited_ = 0;
  std::uint64_t skipped_ = 0;
};

} // namespace sil
