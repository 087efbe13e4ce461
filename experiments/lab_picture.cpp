// sil-lab picture: the cache and the agent at work under drift, in one
// figure (drift.png, shown in the README). One drifting client population,
// calm for the first quarter of the run, then every prefix's suffix drifts
// steadily; two servers see the same traffic:
//   prefix_reuse: pure prefix reuse with the cosine agent (the service
//                 before the reuse guard);
//   guard:        the server's defaults (the reuse guard, the wrong-rate
//                 agent).
// Every served hit's error (|cached answer - fresh answer|, the fresh one
// computed afterwards with use_cache: false) is plotted against the
// tolerance over time, and under it, on the same time axis, what the guard
// decided per second and the agent's mode (from GET /agent's decision log).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "experiments/lab_risk.hpp"

namespace sil::lab {

namespace {

/// Per-value noise of every request when --noise is not given: harmless,
/// but no two inputs are identical, so reuse needs certification.
constexpr double kPictureNoise = 1e-3;
/// Drift per second after the onset when --strength is not given.
constexpr double kPictureDriftPerSecond = 0.05;

const char* basis_name(const request_record& r) {
  switch (r.basis) {
    case 'e':
      return "exact";
    case 'c':
      return "certified";
    case 'r':
      return "refused";
    case 'u':
      return "unguarded";
    default:
      return r.hit ? "hit" : "miss";
  }
}

/// Hits and wrong hits among the ok requests of [from, to) seconds.
json window_counts(const std::vector<request_record>& records, double from, double to,
                   double tolerance) {
  std::size_t requests = 0;
  std::size_t hits = 0;
  std::size_t wrong = 0;
  double worst = 0.0;
  for (const auto& r : records) {
    if (!r.ok || r.t < from || r.t >= to)
      continue;
    ++requests;
    if (!r.hit)
      continue;
    ++hits;
    if (r.error > tolerance)
      ++wrong;
    if (std::isfinite(r.error))
      worst = std::max(worst, r.error);
  }
  return {{"requests", requests},
          {"hits", hits},
          {"wrong_hits", wrong},
          {"hit_rate", ratio(hits, requests)},
          {"wrong_hit_rate", ratio(wrong, hits)},
          {"max_hit_error", worst}};
}

} // namespace

int cmd_picture(const options& o) {
  auto run = drifting_experiment(o, "picture", 40.0, 16.0, kPictureNoise, kPictureDriftPerSecond);
  if (!run)
    return fail(run.error().message);
  const auto& w = run->w;
  const auto* dir = &run->dir;
  const double strength = run->drift_per_second;
  const double onset = w.sc.duration / 4.0;
  const std::vector<std::pair<std::string, std::vector<std::string>>> arms{
    {"prefix_reuse", old_behaviour_args()}, {"guard", {}}};

  std::ofstream csv{*dir / "timeline.csv"};
  csv << "arm,t_s,hit,basis,error\n";
  std::ofstream dcsv{*dir / "decisions.csv"};
  dcsv << "arm,t_s,action,from,to\n";
  json cells = json::array();
  for (const auto& [arm, args] : arms) {
    risk_cell cell;
    cell.experiment = "picture";
    cell.name = arm;
    cell.server_args = args;
    cell.seed = o.seed;
    feature_spec spec;
    spec.seed = cell.seed;
    spec.noise = w.noise;
    spec.strength = strength;
    cell.features = [spec, onset](std::uint64_t prefix, double t, std::size_t i) {
      return make_features(spec, prefix, std::max(0.0, t - onset), i);
    };
    auto r = run_risk_cell(o, *dir, cell, w);
    if (!r)
      return fail(r.error().message);
    for (const auto& rec : r->records)
      if (rec.ok)
        csv << arm << ',' << rec.t << ',' << (rec.hit ? 1 : 0) << ',' << basis_name(rec) << ','
            << rec.error << "\n";
    std::size_t decisions = 0;
    if (r->agent.is_object() && r->agent.contains("decisions"))
      for (const auto& d : r->agent["decisions"]) {
        ++decisions;
        dcsv << arm << ',' << (d.value("unix_ms", 0.0) - r->start_unix_ms) / 1000.0 << ','
             << d.value("action", std::string{}) << ',' << d.value("from", std::string{}) << ','
             << d.value("to", std::string{}) << "\n";
      }
    auto& s = r->summary;
    s["arm"] = arm;
    s["calm"] = window_counts(r->records, 0.0, onset, o.tolerance);
    s["drifting"] = window_counts(r->records, onset, w.sc.duration + 1.0, o.tolerance);
    s["agent"]["decision_count"] = decisions;
    cells.push_back(std::move(s));
  }
  csv.close();
  dcsv.close();

  std::ofstream md{*dir / "summary.md"};
  md << "# The cache and the agent under drift\n\n"
     << "One run per arm (a picture, not a verdict): " << w.sc.base_rate << " req/s for "
     << w.sc.duration << " s, prefixes Zipf(" << w.zipf_m << ", " << w.zipf_s << "), N(0, "
     << w.noise << "^2) noise per value; from " << fixed(onset, 1)
     << " s on every prefix's suffix drifts by " << strength
     << " per second. **prefix_reuse**: pure prefix reuse with the cosine agent (the service "
        "before the reuse guard); **guard**: the server's defaults. Wrong hit: |prediction - "
        "fresh| > "
     << o.tolerance << ".\n\n"
     << "| arm | phase | requests | hit rate | wrong hits | wrong / hits | max hit error | agent "
        "decisions |\n|---|---|---|---|---|---|---|---|\n";
  for (const auto& c : cells)
    for (const char* phase : {"calm", "drifting"}) {
      const auto& k = c[phase];
      md << "| " << c["arm"].get<std::string>() << " | " << phase << " | " << k["requests"] << " | "
         << fixed(k["hit_rate"].get<double>(), 3) << " | " << k["wrong_hits"] << " | "
         << fixed(k["wrong_hit_rate"].get<double>(), 4) << " | "
         << fixed(k["max_hit_error"].get<double>(), 4) << " | " << c["agent"]["decision_count"]
         << " |\n";
    }
  md << "\n![the cache and the agent under drift](drift.png)\n";
  md.close();
  write_json(*dir, {{"experiment", "picture"},
                    {"config",
                     {{"tolerance", o.tolerance},
                      {"seed", o.seed},
                      {"quick", o.quick},
                      {"rate", w.sc.base_rate},
                      {"duration_s", w.sc.duration},
                      {"onset_s", onset},
                      {"drift_per_second", strength},
                      {"noise", w.noise}}},
                    {"cells", cells}});
  finish_experiment("picture", *dir);
  return 0;
}

} // namespace sil::lab
