// Progress lines of sil-lab's long phases, on a terminal or in a log.
//
// Owns: the text of a progress line ("[load] steady cache_on  12.3 s  2560 /
// 4000 requests  ETA 3 s"), the estimate of the time left, and when to
// write: on a terminal one line rewritten in place with '\r' at every
// update; anywhere else (a pipe, a CI log, a file) plain lines, at most one
// per `plain_interval` seconds plus the last one, never a '\r'. Pure: the
// caller passes the clock's readings and a sink for the text.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

namespace sil::lab {

/// Seconds left for `planned` items when `done` took `elapsed` seconds, at
/// the same pace; nullopt while nothing is done (no pace yet).
std::optional<double> eta_seconds(double elapsed, std::size_t done, std::size_t planned);

/// "7 s", "2m05s", "1h02m", or "?" for nullopt.
std::string format_eta(std::optional<double> seconds);

class progress_meter {
public:
  using sink = std::function<void(const std::string&)>;

  /// `label` starts every line ("[load] steady cache_on"), `unit` follows
  /// the counts ("requests"); `start` is the phase's start on the caller's
  /// clock (seconds), `lab_start` the run's (the line shows the time since
  /// the run began, the ETA is the phase's).
  progress_meter(std::string label, std::string unit, bool tty, sink out, double start,
                 double lab_start = 0.0, double plain_interval = 5.0);

  /// `done` of `planned` items at time `now`.
  void update(double now, std::size_t done, std::size_t planned);

  /// The last line (always written; ends with a newline).
  void finish(double now, std::size_t done, std::size_t planned);

  /// The text of a line at `now` (no '\r', no newline).
  std::string line(double now, std::size_t done, std::size_t planned, bool finished) const;

private:
  std::string label_;
  std::string unit_;
  bool tty_;
  sink out_;
  double start_;
  double lab_start_;
  double plain_interval_;
  std::optional<double> last_plain_;
  std::size_t last_width_ = 0;
};

} // namespace sil::lab
