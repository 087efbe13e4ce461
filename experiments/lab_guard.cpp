// sil-lab guard: the reuse guard against its own promise. Calibration (the
// achieved wrong-rate of served hits vs the target max wrong-rate), a
// scenario in phases (harmless noise, a sudden shift, one feature drifting)
// and a timeline of one drifting run (errors of served hits, the guard's
// decisions and the agent's mode over time).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "experiments/lab_risk.hpp"

namespace sil::lab {

namespace {

/// Phase (i) noise: per value, around the prefix's fixed suffix.
constexpr double kHarmlessNoise = 1e-3;
/// Phase (iii): how fast the one drifting value moves, per second.
constexpr double kFeatureDriftPerSecond = 0.5;
constexpr const char* kPhaseNames[] = {"noise", "shift", "one_feature"};

/// Hits, wrong hits and the guard's bases over some requests.
struct tally {
  std::size_t requests = 0;
  std::size_t hits = 0;
  std::size_t wrong = 0;
  std::size_t exact = 0;
  std::size_t certified = 0;
  std::size_t refused = 0;

  void add(const request_record& r, double tolerance) {
    if (!r.ok)
      return;
    ++requests;
    exact += r.basis == 'e' ? 1 : 0;
    certified += r.basis == 'c' ? 1 : 0;
    refused += r.basis == 'r' ? 1 : 0;
    if (r.hit) {
      ++hits;
      wrong += r.error > tolerance ? 1 : 0;
    }
  }

  json to_json() const {
    return {{"requests", requests},
            {"hits", hits},
            {"wrong_hits", wrong},
            {"exact", exact},
            {"certified", certified},
            {"refused", refused},
            {"hit_rate", ratio(hits, requests)},
            {"wrong_hit_rate", ratio(wrong, hits)},
            {"certified_share_of_hits", ratio(certified, hits)}};
  }
};

/// Whether every repetition of a group kept wrong / hits at or below `bound`.
std::size_t reps_within(const std::vector<const json*>& g, const std::string& ptr, double bound) {
  std::size_t n = 0;
  json::json_pointer p{ptr};
  for (const auto* c : g)
    n += c->at(p).get<double>() <= bound ? 1 : 0;
  return n;
}

std::string rate(double v) {
  return fixed(v, 4);
}

/// Calibration: achieved wrong / hits at each target max wrong-rate.
result<json> calibration(const options& o, const fs::path& dir, std::ostream& md) {
  auto w = workload_for(o, 7.0);
  std::vector<double> deltas
    = !o.deltas.empty() ? o.deltas : std::vector<double>{0.005, 0.01, 0.05};
  std::vector<double> levels = o.quick ? std::vector<double>{0.1} : std::vector<double>{0.05, 0.1};
  double step_seconds = w.sc.duration / steps_of(o);
  const auto reps = reps_of(o);
  json cells = json::array();
  for (std::size_t rep = 0; rep < reps; ++rep)
    for (double level : levels)
      for (double delta : deltas) {
        risk_cell cell;
        cell.experiment = "guard";
        cell.name = "calibration-delta" + fixed(delta, 4) + "-drift" + fixed(level, 3);
        auto group = cell.name;
        if (reps > 1)
          cell.name += "-rep" + std::to_string(rep + 1);
        // The agent disables reuse at 5 x delta, as the defaults do (0.05
        // for 0.01); it must lie above delta.
        cell.server_args = {"--risk.max-wrong-rate=" + fixed(delta, 6),
                            "--agent.disable-wrong-rate=" + fixed(std::min(1.0, 5 * delta), 6)};
        cell.seed = rep_seed(o, rep);
        cell.features = drifting_features(w, cell.seed, level, step_seconds);
        auto r = run_risk_cell(o, dir, cell, w);
        if (!r)
          return r.error();
        auto& s = r->summary;
        s["group"] = group;
        s["rep"] = rep;
        s["delta"] = delta;
        s["drift_strength"] = level;
        cells.push_back(std::move(s));
      }
  std::ofstream csv{dir / "results.csv"};
  csv << "rep,delta,drift_strength,requests,hits,wrong_hits,hit_rate,wrong_hit_rate,certified,"
         "refused\n";
  for (const auto& c : cells) {
    const auto& k = c["counts"];
    csv << c["rep"] << ',' << c["delta"] << ',' << c["drift_strength"] << ',' << k["requests"]
        << ',' << k["hits"] << ',' << k["wrong_hits"] << ',' << k["hit_rate"] << ','
        << k["wrong_hit_rate"] << ',' << c["guard"]["certified"] << ',' << c["guard"]["refused"]
        << "\n";
  }
  md << "## Calibration: achieved wrong-rate vs target\n\n"
     << "Guard on (server defaults) with `--risk.max-wrong-rate` = delta and "
        "`--agent.disable-wrong-rate` = 5 x delta (as the defaults: 0.05 for 0.01), the "
        "correctness workload ("
     << w.sc.base_rate << " req/s for " << w.sc.duration << " s, drift per step as listed, "
     << steps_of(o) << " steps), " << reps
     << (reps == 1 ? " repetition" : " repetitions (mean [min, max])")
     << ". Holds when wrong / hits <= delta in every repetition.\n\n"
     << "| delta | drift / step | hits | wrong hits | hit rate | wrong / hits | within delta |\n"
     << "|---|---|---|---|---|---|---|\n";
  for (const auto& g : groups_of(cells)) {
    const auto& c = *g.front();
    double delta = c["delta"].get<double>();
    md << "| " << delta << " | " << c["drift_strength"] << " | "
       << spread_text(g, "/counts/hits", 0) << " | " << spread_text(g, "/counts/wrong_hits", 0)
       << " | " << spread_text(g, "/counts/hit_rate", 3) << " | "
       << spread_text(g, "/counts/wrong_hit_rate", 4) << " | "
       << rep_verdict(reps_within(g, "/counts/wrong_hit_rate", delta), g.size()) << " |\n";
  }
  md << "\nPlot: `calibration.png` (achieved vs target, with y = x).\n\n";
  return json{{"deltas", deltas}, {"levels", levels}, {"cells", cells}};
}

/// The scenario: one run per arm in three phases.
result<json> scenario(const options& o, const fs::path& dir, std::ostream& md) {
  auto w = workload_for(o, 12.0, 9.0);
  double phase_s = w.sc.duration / 3.0;
  const auto reps = reps_of(o);
  std::vector<std::pair<std::string, std::vector<std::string>>> arms{
    {"guard", {}}, {"unguarded", old_behaviour_args()}};
  arms[1].second.emplace_back("--agent.enabled=false");
  json cells = json::array();
  for (std::size_t rep = 0; rep < reps; ++rep)
    for (const auto& [arm, args] : arms) {
      risk_cell cell;
      cell.experiment = "guard";
      cell.name = "scenario-" + arm;
      auto group = cell.name;
      if (reps > 1)
        cell.name += "-rep" + std::to_string(rep + 1);
      cell.server_args = args;
      cell.seed = rep_seed(o, rep);
      feature_spec spec;
      spec.seed = cell.seed;
      spec.noise = kHarmlessNoise;
      spec.drifting = 1;
      spec.strength = kFeatureDriftPerSecond;
      cell.features = [spec, phase_s](std::uint64_t prefix, double t, std::size_t i) {
        auto s = spec;
        auto phase = std::min(2.0, std::floor(t / phase_s));
        s.suffix_epoch = phase >= 1 ? 1 : 0;              // (ii) a new suffix per prefix
        double step = phase >= 2 ? t - 2 * phase_s : 0.0; // (iii) one value drifts
        return make_features(s, prefix, step, i);
      };
      auto r = run_risk_cell(o, dir, cell, w);
      if (!r)
        return r.error();
      tally phases[3];
      for (const auto& rec : r->records)
        phases[std::min<std::size_t>(2, static_cast<std::size_t>(rec.t / phase_s))].add(
          rec, o.tolerance);
      auto& s = r->summary;
      s["group"] = group;
      s["rep"] = rep;
      s["arm"] = arm;
      s["phases"] = json::object();
      for (std::size_t p = 0; p < 3; ++p)
        s["phases"][kPhaseNames[p]] = phases[p].to_json();
      cells.push_back(std::move(s));
    }
  double delta = 0.01;
  for (const auto& c : cells)
    if (c.contains("server") && c["server"].contains("risk"))
      delta = c["server"]["risk"].value("max_wrong_rate", delta);
  std::ofstream csv{dir / "scenario.csv"};
  csv << "rep,arm,phase,requests,hits,wrong_hits,hit_rate,wrong_hit_rate,exact,certified,refused,"
         "certified_share_of_hits\n";
  for (const auto& c : cells)
    for (const char* p : kPhaseNames) {
      const auto& k = c["phases"][p];
      csv << c["rep"] << ',' << c["arm"].get<std::string>() << ',' << p << ',' << k["requests"]
          << ',' << k["hits"] << ',' << k["wrong_hits"] << ',' << k["hit_rate"] << ','
          << k["wrong_hit_rate"] << ',' << k["exact"] << ',' << k["certified"] << ','
          << k["refused"] << ',' << k["certified_share_of_hits"] << "\n";
    }
  md << "## Scenario: harmless noise, a sudden shift, one drifting feature\n\n"
     << "One run per arm, " << w.sc.base_rate << " req/s, prefixes Zipf(" << w.zipf_m << ", "
     << w.zipf_s << "), three phases of " << fixed(phase_s, 1) << " s: **(i) noise**: every "
     << "prefix sends its fixed suffix plus N(0, " << kHarmlessNoise
     << "^2) per value (never bit-identical, harmless); **(ii) shift**: at once every prefix's "
        "suffix is a new draw (same noise); **(iii) one_feature**: the first value after the key "
        "drifts by "
     << kFeatureDriftPerSecond
     << " per second, the rest stays. **guard**: server defaults; **unguarded**: the service "
        "before the guard, agent off. "
     << reps << (reps == 1 ? " repetition" : " repetitions (mean [min, max])") << ".\n\n"
     << "| phase | arm | hit rate | wrong / hits | certified / hits | exact | refused | "
        "wrong / hits <= "
     << delta << " |\n|---|---|---|---|---|---|---|---|\n";
  auto groups = groups_of(cells);
  for (const char* p : kPhaseNames)
    for (const auto& g : groups) {
      auto base = std::string{"/phases/"} + p;
      md << "| " << p << " | " << (*g.front())["arm"].get<std::string>() << " | "
         << spread_text(g, base + "/hit_rate", 3) << " | "
         << spread_text(g, base + "/wrong_hit_rate", 4) << " | "
         << spread_text(g, base + "/certified_share_of_hits", 3) << " | "
         << spread_text(g, base + "/exact", 0) << " | " << spread_text(g, base + "/refused", 0)
         << " | " << rep_verdict(reps_within(g, base + "/wrong_hit_rate", delta), g.size())
         << " |\n";
    }
  md << "\nPlot: `scenario.png`.\n\n";
  return json{{"phase_seconds", phase_s},
              {"noise", kHarmlessNoise},
              {"feature_drift_per_second", kFeatureDriftPerSecond},
              {"delta", delta},
              {"cells", cells}};
}

/// The timeline: one drifting run, guard defaults, with the agent's log.
result<json> timeline(const options& o, const fs::path& dir, std::ostream& md) {
  auto w = workload_for(o, 20.0, 8.0);
  double strength = o.strength_given ? o.strength : 0.1;
  double step_seconds = w.sc.duration / steps_of(o);
  // Harmless per-request noise on top of the drift, so that reuse needs
  // certification, not only exact repeats.
  if (w.noise <= 0)
    w.noise = kHarmlessNoise;
  risk_cell cell;
  cell.experiment = "guard";
  cell.name = "timeline";
  cell.seed = o.seed;
  cell.features = drifting_features(w, cell.seed, strength, step_seconds);
  auto r = run_risk_cell(o, dir, cell, w);
  if (!r)
    return r.error();
  tally all;
  std::ofstream csv{dir / "timeline.csv"};
  csv << "t_s,hit,basis,error\n";
  for (const auto& rec : r->records) {
    all.add(rec, o.tolerance);
    if (!rec.ok)
      continue;
    csv << rec.t << ',' << (rec.hit ? 1 : 0) << ','
        << (rec.basis == 'e'   ? "exact"
            : rec.basis == 'c' ? "certified"
            : rec.basis == 'r' ? "refused"
            : rec.basis == 'u' ? "unguarded"
                               : (rec.hit ? "hit" : "miss"))
        << ',' << rec.error << "\n";
  }
  csv.close();
  std::ofstream dcsv{dir / "decisions.csv"};
  dcsv << "t_s,action,from,to\n";
  std::size_t decisions = 0;
  if (r->agent.is_object() && r->agent.contains("decisions"))
    for (const auto& d : r->agent["decisions"]) {
      ++decisions;
      dcsv << (d.value("unix_ms", 0.0) - r->start_unix_ms) / 1000.0 << ','
           << d.value("action", std::string{}) << ',' << d.value("from", std::string{}) << ','
           << d.value("to", std::string{}) << "\n";
    }
  dcsv.close();
  auto k = all.to_json();
  md << "## Timeline of one drifting run\n\n"
     << "Guard and agent at the server's defaults (agent trigger: "
     << r->summary["agent"]["trigger"].dump() << "), drift " << strength << " per "
     << fixed(step_seconds, 2) << " s step plus N(0, " << w.noise << "^2) noise per value and "
     << "request, " << w.sc.base_rate << " req/s for " << w.sc.duration
     << " s (one run: a picture, not a verdict). " << k["hits"] << " hits, " << k["wrong_hits"]
     << " of them wrong (" << rate(k["wrong_hit_rate"].get<double>()) << "); " << k["exact"]
     << " exact, " << k["certified"] << " certified, " << k["refused"] << " refused; " << decisions
     << " agent decisions (`decisions.csv`).\n\n"
     << "![timeline](timeline.png)\n\n";
  return json{{"strength_per_step", strength},
              {"step_seconds", step_seconds},
              {"duration_s", w.sc.duration},
              {"noise", w.noise},
              {"totals", k},
              {"agent", r->agent},
              {"cell", r->summary}};
}

} // namespace

int cmd_guard(const options& o) {
  auto dir = experiment_dir(o, "guard");
  if (!dir)
    return fail(dir.error().message);
  if (!o.url.empty())
    return fail("guard starts servers with the settings it varies (risk.max-wrong-rate); it "
                "does not take --url");
  if (auto st = validate(workload_for(o, 7.0).sc); !st)
    return fail(st.error().message);
  std::ofstream md{*dir / "summary.md"};
  md << "# The reuse guard: calibration, a phased scenario, a timeline\n\n"
     << "Wrong hit: |prediction - fresh| > " << o.tolerance
     << ", the fresh answer from the same features with `use_cache: false`.\n\n";
  auto cal = calibration(o, *dir, md);
  if (!cal)
    return fail(cal.error().message);
  auto sc = scenario(o, *dir, md);
  if (!sc)
    return fail(sc.error().message);
  auto tl = timeline(o, *dir, md);
  if (!tl)
    return fail(tl.error().message);
  md.close();
  write_json(
    *dir,
    {{"experiment", "guard"},
     {"config",
      {{"tolerance", o.tolerance}, {"seed", o.seed}, {"reps", reps_of(o)}, {"quick", o.quick}}},
     {"calibration", *cal},
     {"scenario", *sc},
     {"timeline", *tl}});
  finish_experiment("guard", *dir);
  return 0;
}

} // namespace sil::lab
