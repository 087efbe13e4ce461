// Shared plumbing of sil-lab's subcommands: options, the server an
// experiment talks to, one open-loop traffic run ("cell") with progress on
// stderr, and the JSON / CSV / plot output.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/model.hpp"
#include "experiments/analysis.hpp"
#include "experiments/load_generator.hpp"
#include "experiments/progress.hpp"
#include "experiments/risk.hpp"
#include "experiments/server_process.hpp"
#include "experiments/workload.hpp"

namespace sil::lab {

using json = nlohmann::json;
namespace fs = std::filesystem;

/// Command-line options of every subcommand (each reads what it needs; 0
/// means "the mode's default").
struct options {
  std::string command;
  bool quick = false;
  std::string url;
  std::string admin_token; // for --url targets
  std::string server;      // sil-server binary
  std::string self;        // argv[0]
  /// Output root; the command line sets reports, or reports/quick with
  /// --quick, unless --out is given.
  std::string out = "reports";
  double rate = 0;
  double duration = 0;
  std::size_t connections = 32;
  arrival kind = arrival::poisson;
  double burst_rate = 0;
  double burst_period = 0;
  double burst_length = 0;
  prefix_kind prefix = prefix_kind::zipf;
  std::size_t zipf_m = 0;
  double zipf_s = 0;
  std::uint64_t seed = 1;
  std::vector<std::string> server_args;
  // drift / correctness
  std::string preset = "base";
  double steps = 0;
  double strength = 0.25;
  bool strength_given = false;
  double trials = 0;
  double prefix_k = 4;
  double tolerance = 0.05;
  double noise = 0;
  std::vector<double> levels;     // correctness: drift strengths
  std::vector<double> ttls;       // sweep-ttl, seconds (0: no TTL)
  std::vector<double> capacities; // sweep-capacity, entries
  std::vector<double> deltas;     // guard: target wrong-rates (risk.max-wrong-rate)
  /// Repetitions with different workload seeds (0: 3, or 1 with --quick).
  std::size_t reps = 0;
};

/// Repetitions to run: --reps, else 3 (1 with --quick).
std::size_t reps_of(const options& o);

/// The workload seed of repetition `rep` (0-based): --seed + 1000 x rep.
std::uint64_t rep_seed(const options& o, std::size_t rep);

/// Server flags that reproduce the service before the reuse guard: guard
/// off, the p95-cosine agent trigger, audits of 5% of hits capped at 5% of
/// requests, no per-second or encoder-share audit cap.
const std::vector<std::string>& old_behaviour_args();

/// Whether progress goes to a terminal (then lines are rewritten in place
/// with '\r'; otherwise plain lines are written, see progress.hpp).
bool stderr_is_tty();

/// A progress line on stderr for one phase, starting now; the clock is
/// lab_elapsed().
progress_meter stderr_progress(const std::string& label, const std::string& unit);

/// Refuses (an error) a --quick run that would overwrite OUT/<name>, when
/// its results.json does not say it came from a quick run: full results
/// are kept. Ok for full runs and new directories.
status quick_may_write(const options& o, const std::string& name);

/// Prints "sil-lab: msg" and returns exit code 2.
int fail(const std::string& msg);

/// Seconds since the process started sil-lab (for progress lines).
double lab_elapsed();

/// Creates OUT/<name> (after quick_may_write); returns the path or an error.
result<fs::path> experiment_dir(const options& o, const std::string& name);

/// The server an experiment talks to: its own child process, or --url.
struct target {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string token;
  std::optional<server_process> own;

  bool external() const noexcept {
    return !own.has_value();
  }
};

/// Starts a sil-server with `args` (plus an admin token and --port=0), its
/// log in `log`, or connects to --url when given (then `args` are not
/// applied). Fails if the server does not come up.
result<target> open_target(const options& o, const std::vector<std::string>& args,
                           const fs::path& log);

/// GET/POST `path` on the target; the body parsed as JSON (null on failure).
json call_json(const target& t, const std::string& method, const std::string& path,
               const std::string& body = {});

/// stats[group][key] of a /stats answer, or `fallback` if it is missing or
/// of another type (e.g. --url points at something else).
template <class T>
T stat_value(const json& stats, const char* group, const char* key, T fallback = T{}) {
  if (!stats.is_object() || !stats.contains(group) || !stats[group].is_object()
      || !stats[group].contains(key))
    return fallback;
  try {
    return stats[group][key].get<T>();
  } catch (const json::exception&) {
    return fallback;
  }
}

/// One open-loop run: the schedule, one body per request, progress on
/// stderr as "[experiment] phase  elapsed  done / planned requests".
result<load_result> run_cell(const target& t, const std::string& experiment,
                             const std::string& phase, const std::vector<double>& schedule,
                             const std::vector<std::string>& bodies, std::size_t connections);

/// Summary of a run: rates, errors by status, latency percentiles (ms from
/// the intended send time), hit rate, generator lag.
json run_summary(const load_result& r, double target_rate, double duration);

/// Writes `j` to dir/results.json.
void write_json(const fs::path& dir, const json& j);

/// Ends an experiment whose files are written and closed: runs
/// plot.py KIND DIR (found at run time, see locate.hpp; matplotlib; warns if
/// it fails or is not found) and prints
/// "[KIND] wrote DIR/results.json NOTE" on stderr.
void finish_experiment(const std::string& kind, const fs::path& dir, const std::string& note = {});

/// The local copy of the server's model (for divergence), if one of the
/// presets with seed 42 has the server's model version.
std::optional<model> local_model_for(const std::string& version);

/// "%.*f" formatting for tables.
std::string fixed(double v, int digits);

/// a / b as a share (0 when b is 0).
double ratio(std::size_t a, std::size_t b) noexcept;

/// Cells of several repetitions grouped by their "group" field, in order of
/// first appearance.
std::vector<std::vector<const json*>> groups_of(const json& cells);

/// The spread over `cells` of the number at JSON pointer `ptr` (e.g.
/// "/counts/hit_rate"); cells without it are left out.
spread spread_at(const std::vector<const json*>& cells, const std::string& ptr);

/// {"n", "mean", "min", "max"}.
json to_json(const spread& s);

/// A spread stored with to_json, formatted as "mean [min, max]" ("n/a" if
/// it is not one).
std::string spread_text(const json& s, int digits);

/// The spread at `ptr`, formatted as "mean [min, max]".
std::string spread_text(const std::vector<const json*>& cells, const std::string& ptr, int digits);

// -- subcommands ---------------------------------------------------------------------

int cmd_load(const options& o);
int cmd_drift(const options& o);
int cmd_correctness(const options& o);
int cmd_guard(const options& o);
int cmd_sweep_ttl(const options& o);
int cmd_sweep_capacity(const options& o);
int cmd_picture(const options& o);
int cmd_canary(const options& o);
int cmd_all(const options& o);
int cmd_report(const options& o);

} // namespace sil::lab
