// sil-lab drift: the pure-model drift study (no server). The prefix stays
// fixed; each step compares the embedding cached at step 0 with a fresh one.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>

#include "core/divergence.hpp"
#include "core/window_stats.hpp"
#include "experiments/analysis.hpp"
#include "experiments/lab.hpp"

namespace sil::lab {

namespace {

/// Per step: cosine, L2 and prediction error of every trial.
struct series {
  std::vector<std::vector<double>> cos, l2, err;
  explicit series(std::size_t steps)
    : cos(steps)
    , l2(steps)
    , err(steps) {
    // nop
  }
};

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return sil::nearest_rank(v, p);
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double flat_spearman(const series& s) {
  std::vector<double> c;
  std::vector<double> e;
  for (std::size_t i = 0; i < s.cos.size(); ++i) {
    c.insert(c.end(), s.cos[i].begin(), s.cos[i].end());
    e.insert(e.end(), s.err[i].begin(), s.err[i].end());
  }
  return spearman(c, e);
}

} // namespace

int cmd_drift(const options& o) {
  auto cfg = sil::preset(o.preset);
  if (!cfg)
    return fail(cfg.error().message);
  auto m = sil::model::from_seed(*cfg, 42);
  if (!m)
    return fail(m.error().message);
  auto steps = static_cast<std::size_t>(o.steps > 0 ? o.steps : (o.quick ? 10 : 20));
  auto trials = static_cast<int>(o.trials > 0 ? o.trials : (o.quick ? 100 : 1000));
  auto k = static_cast<std::size_t>(o.prefix_k);
  const auto dim = m->input_dim();
  if (k == 0 || k > dim)
    return fail("--prefix-k must be in [1, " + std::to_string(dim) + "]");
  auto dir = experiment_dir(o, "drift");
  if (!dir)
    return fail(dir.error().message);
  std::mt19937_64 rng{o.seed};
  std::normal_distribution<float> normal;
  // Two formulations. "resampled" (the original's): at step s the suffix is
  // a new draw from N(s x strength, 1), so requests sharing a prefix differ
  // in their suffix even at step 0. "shifted": the same request, its suffix
  // moved by s x strength: drift alone.
  series resampled{steps + 1};
  series shifted{steps + 1};
  auto meter = stderr_progress("[drift] encode", "trials");
  for (int t = 0; t < trials; ++t) {
    std::vector<float> x0(dim);
    for (auto& v : x0)
      v = normal(rng);
    auto cached = *m->encode({x0.data(), 1}); // the embedding cached at step 0
    float p_cached = m->head(cached);
    auto record = [&](series& s, std::size_t step, const std::vector<float>& x) {
      auto fresh = *m->encode({x.data(), 1});
      auto d = *sil::measure_divergence(cached, fresh);
      s.cos[step].push_back(d.cosine);
      s.l2[step].push_back(d.l2);
      s.err[step].push_back(std::abs(static_cast<double>(p_cached - m->head(fresh))));
    };
    for (std::size_t s = 0; s <= steps; ++s) {
      auto shift = static_cast<float>(static_cast<double>(s) * o.strength);
      std::vector<float> x = x0;
      for (std::size_t i = k; i < dim; ++i) // the prefix stays, the suffix drifts
        x[i] = normal(rng) + shift;
      record(resampled, s, x);
      for (std::size_t i = k; i < dim; ++i)
        x[i] = x0[i] + shift;
      record(shifted, s, x);
    }
    if ((t + 1) % 50 == 0)
      meter.update(lab_elapsed(), static_cast<std::size_t>(t) + 1,
                   static_cast<std::size_t>(trials));
  }
  meter.finish(lab_elapsed(), static_cast<std::size_t>(trials), static_cast<std::size_t>(trials));

  json rows = json::array();
  std::ofstream csv{*dir / "results.csv"};
  csv << "formulation,step,suffix_mean,cosine_p05,cosine_p50,cosine_p95,cosine_mean,l2_p50,"
         "l2_p95,pred_err_p50,pred_err_p95,pred_err_mean,share_err_over_tolerance\n";
  std::ofstream md{*dir / "summary.md"};
  md << "# Drift: divergence and prediction error of a reused embedding\n\n"
     << "Model `" << o.preset << "` (seed 42), prefix K=" << k << " fixed, " << trials
     << " trials per step (seed " << o.seed << "), drift strength " << o.strength
     << " per step. The cached embedding is the step-0 one of each trial.\n\n"
     << "- **resampled** (the original's formulation): at step s the suffix is a new draw from "
        "N(s x strength, 1).\n"
     << "- **shifted**: the step-0 request with its suffix moved by s x strength (drift "
        "alone).\n\n"
     << "| formulation | step | suffix mean | cosine p50 | cosine p95 | L2 p50 | pred. error p50 "
        "| p95 | share > "
     << o.tolerance << " |\n|---|---|---|---|---|---|---|---|---|\n";
  json rho;
  for (auto* which : {&resampled, &shifted}) {
    const char* name = which == &resampled ? "resampled" : "shifted";
    const auto& sr = *which;
    for (std::size_t s = 0; s <= steps; ++s) {
      double over = static_cast<double>(std::count_if(sr.err[s].begin(), sr.err[s].end(),
                                                      [&](double e) { return e > o.tolerance; }))
                    / static_cast<double>(sr.err[s].size());
      double shift = static_cast<double>(s) * o.strength;
      json row = {{"formulation", name},
                  {"step", s},
                  {"suffix_mean", shift},
                  {"cosine_p05", pct(sr.cos[s], 5)},
                  {"cosine_p50", pct(sr.cos[s], 50)},
                  {"cosine_p95", pct(sr.cos[s], 95)},
                  {"cosine_mean", mean(sr.cos[s])},
                  {"l2_p50", pct(sr.l2[s], 50)},
                  {"l2_p95", pct(sr.l2[s], 95)},
                  {"pred_err_p50", pct(sr.err[s], 50)},
                  {"pred_err_p95", pct(sr.err[s], 95)},
                  {"pred_err_mean", mean(sr.err[s])},
                  {"share_err_over_tolerance", over}};
      csv << name << ',' << s << ',' << shift << ',' << row["cosine_p05"] << ','
          << row["cosine_p50"] << ',' << row["cosine_p95"] << ',' << row["cosine_mean"] << ','
          << row["l2_p50"] << ',' << row["l2_p95"] << ',' << row["pred_err_p50"] << ','
          << row["pred_err_p95"] << ',' << row["pred_err_mean"] << ',' << over << "\n";
      md << "| " << name << " | " << s << " | " << fixed(shift, 2) << " | "
         << fixed(row["cosine_p50"].get<double>(), 4) << " | "
         << fixed(row["cosine_p95"].get<double>(), 4) << " | "
         << fixed(row["l2_p50"].get<double>(), 3) << " | "
         << fixed(row["pred_err_p50"].get<double>(), 4) << " | "
         << fixed(row["pred_err_p95"].get<double>(), 4) << " | " << fixed(over, 2) << " |\n";
      rows.push_back(std::move(row));
    }
    rho[name] = flat_spearman(sr);
  }
  md << "\nSpearman rank correlation between cosine divergence and prediction error, over all "
     << trials * static_cast<int>(steps + 1) << " comparisons of each formulation: resampled **"
     << fixed(rho["resampled"].get<double>(), 3) << "**, shifted **"
     << fixed(rho["shifted"].get<double>(), 3) << "**.\n\nPlots: `divergence.png`, "
     << "`prediction_error.png`.\n";
  write_json(*dir, {{"experiment", "drift"},
                    {"config",
                     {{"preset", o.preset},
                      {"prefix_k", k},
                      {"strength", o.strength},
                      {"steps", steps},
                      {"trials", trials},
                      {"tolerance", o.tolerance},
                      {"seed", o.seed},
                      {"quick", o.quick}}},
                    {"spearman_cosine_vs_prediction_error", rho},
                    {"steps", rows}});
  csv.close(); // the plot script reads it next
  md.close();
  finish_experiment("drift", *dir,
                    "(Spearman rho: resampled " + fixed(rho["resampled"].get<double>(), 3)
                      + ", shifted " + fixed(rho["shifted"].get<double>(), 3) + ")");
  return 0;
}

} // namespace sil::lab
