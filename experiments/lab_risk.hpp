// One drifting-client run against the real server ("risk cell"), shared by
// sil-lab correctness, sweep-ttl and guard: the traffic, every answer
// checked against a fresh computation (use_cache: false) afterwards, hits
// attributed to the computation they reused, and the offline replay of
// static reuse thresholds and of the oracle.
#pragma once

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "experiments/lab.hpp"

namespace sil::lab {

/// The features of request `i` of prefix `prefix`, intended at `t` seconds.
using feature_fn = std::function<std::vector<float>(std::uint64_t prefix, double t, std::size_t i)>;

/// One server configuration under one workload.
struct risk_cell {
  std::string experiment; // for progress and file names
  std::string name;
  std::vector<std::string> server_args;
  std::uint64_t seed = 1;    // workload seed (schedule, prefixes, features)
  std::uint64_t id_base = 0; // prefix ids (distinct per cell for --url)
  feature_fn features;
  /// Replay static cosine / input-distance thresholds and the oracle on
  /// this run's requests (needs the server's model locally).
  bool replay = false;
  /// Something done to the server while the traffic runs (e.g. starting a
  /// canary), `action_at` seconds after the first request is due.
  std::function<void(const target&)> action;
  double action_at = 0.0;
};

/// What the lab knows about one request after the run.
struct request_record {
  double t = 0.0; // intended send time, seconds from the start
  std::uint64_t prefix = 0;
  /// The request's features (kept only when the cell has an action, whose
  /// analysis may need them).
  std::vector<float> features;
  bool ok = false;
  bool hit = false;
  char basis = 0; // the guard's basis ('e', 'c', 'r', 'u'), 0 if absent
  /// |answer - fresh answer|, NaN if unknown.
  double error = std::numeric_limits<double>::quiet_NaN();
};

/// Everything measured in one cell.
struct risk_outcome {
  json summary;
  /// Attributed hits: cosine distance (cached vs fresh embedding) and
  /// prediction error, for the pooled Spearman and the scatter plot.
  std::vector<double> cos;
  std::vector<double> err;
  /// Every request of the schedule, in schedule order.
  std::vector<request_record> records;
  /// GET /agent at the end (null without one) and the wall clock at the
  /// start of the run (Unix ms), to place its decisions on the timeline.
  json agent;
  double start_unix_ms = 0.0;
  /// The replay (risk_cell::replay): one point per threshold, and the oracle.
  std::vector<threshold_point> cosine_curve;
  std::vector<threshold_point> distance_curve;
  replay_outcome oracle;
};

/// Rate, duration and prefix mix of the drifting-client experiments.
struct risk_workload {
  schedule_config sc;
  std::size_t zipf_m = 50;
  double zipf_s = 1.1;
  double noise = 0.0;
};

/// The workload from the options; a run lasts --duration, else
/// `full_seconds` (`quick_seconds` with --quick).
risk_workload workload_for(const options& o, double full_seconds, double quick_seconds = 5.0);

/// What a drifting-client experiment that starts its own servers needs:
/// the workload, its output directory, the noise and the drift per second.
struct drifting_run {
  risk_workload w;
  fs::path dir;
  double drift_per_second = 0.0;
};

/// Refuses --url (the experiment starts servers with the settings it
/// compares), reads the workload (runs of --duration, else `full_seconds`,
/// `quick_seconds` with --quick), creates OUT/<name>, and applies the
/// default noise and drift per second unless --noise / --strength say
/// otherwise.
result<drifting_run> drifting_experiment(const options& o, const std::string& name,
                                         double full_seconds, double quick_seconds, double noise,
                                         double drift_per_second);

/// Drift steps per run (--steps, default 10).
double steps_of(const options& o);

/// Features of the usual drifting client: the prefix's suffix moved by
/// `strength` per step of `step_seconds` (every value re-drawn per request
/// when `resampled`), plus the workload's noise.
feature_fn drifting_features(const risk_workload& w, std::uint64_t seed, double strength,
                             double step_seconds, bool resampled = false);

/// Thresholds replayed for the static policies, ascending, the last one
/// infinite (every hit reused).
std::vector<double> cosine_thresholds();
std::vector<double> distance_thresholds();

/// Runs one cell: starts its server (or uses --url), sends the traffic,
/// checks every answer, and summarizes.
result<risk_outcome> run_risk_cell(const options& o, const fs::path& dir, const risk_cell& cell,
                                   const risk_workload& w);

} // namespace sil::lab
