// sil-lab correctness and sweep-ttl: traffic from a drifting client
// population against the real server, every answer checked against a fresh
// computation (use_cache: false) afterwards.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "core/divergence.hpp"
#include "core/window_stats.hpp"
#include "experiments/analysis.hpp"
#include "experiments/lab.hpp"

namespace sil::lab {

namespace {

/// One server configuration under one drifting workload.
struct risk_cell {
  std::string experiment; // for progress and file names
  std::string name;
  std::vector<std::string> server_args;
  double strength = 0.0;     // suffix shift per step
  double step_seconds = 0.5; // drift step length
  std::uint64_t id_base = 0; // prefix ids (distinct per cell for --url)
};

/// Everything measured in one cell.
struct risk_outcome {
  json summary;
  /// Attributed hits: cosine distance (cached vs fresh embedding) and
  /// prediction error, for the pooled Spearman and the scatter plot.
  std::vector<double> cos;
  std::vector<double> err;
};

struct risk_workload {
  schedule_config sc;
  std::size_t zipf_m = 100;
  double zipf_s = 1.1;
  double noise = 0.0;
};

risk_workload workload_for(const options& o) {
  risk_workload w;
  w.sc.kind = o.kind;
  w.sc.base_rate = o.rate > 0 ? o.rate : 300.0;
  w.sc.duration = o.duration > 0 ? o.duration : (o.quick ? 5.0 : 20.0);
  w.zipf_m = o.zipf_m > 0 ? o.zipf_m : 100;
  w.zipf_s = o.zipf_s > 0 ? o.zipf_s : 1.1;
  w.noise = o.noise;
  return w;
}

double steps_of(const options& o) {
  return o.steps > 0 ? o.steps : 10.0;
}

/// Cosine distance below which two embeddings count as from identical
/// features (float rounding of batched vs single encodes is ~1e-7).
constexpr double kSameFeatures = 1e-6;

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

result<risk_outcome> run_risk_cell(const options& o, const fs::path& dir, const risk_cell& cell,
                                   const risk_workload& w) {
  auto t = open_target(o, cell.server_args, dir / ("server-" + cell.name + ".log"));
  if (!t)
    return t.error();
  auto schedule = make_schedule(w.sc, o.seed);
  prefix_mix mix{o.prefix, w.zipf_m, w.zipf_s, o.seed};
  feature_spec spec;
  spec.strength = cell.strength;
  spec.noise = w.noise;
  spec.seed = o.seed;
  std::vector<std::uint64_t> prefix(schedule.size());
  std::vector<std::vector<float>> features(schedule.size());
  std::vector<std::string> bodies(schedule.size());
  for (std::size_t i = 0; i < schedule.size(); ++i) {
    prefix[i] = cell.id_base + mix.next();
    double step = std::floor(schedule[i] / cell.step_seconds);
    features[i] = make_features(spec, prefix[i], step, i);
    bodies[i] = predict_body(features[i], true);
  }
  auto r = run_cell(*t, cell.experiment, cell.name, schedule, bodies, o.connections);
  if (!r)
    return r.error();
  auto stats = call_json(*t, "GET", "/stats");
  auto agent = call_json(*t, "GET", "/agent");

  // The fresh answer to every answered request, computed with use_cache
  // false after the run (the model is deterministic, so when does not
  // matter; use_cache false neither reads nor writes the cache).
  std::vector<std::size_t> answered;
  std::vector<std::string> fresh_bodies;
  for (std::size_t i = 0; i < schedule.size(); ++i)
    if (r->requests[i].status == 200) {
      answered.push_back(i);
      fresh_bodies.push_back(predict_body(features[i], false));
    }
  std::vector<double> fresh(schedule.size(), std::numeric_limits<double>::quiet_NaN());
  if (!answered.empty()) {
    std::vector<double> now(answered.size(), 0.0); // all due at once, closed by connections
    auto v = run_cell(*t, cell.experiment, cell.name + " (fresh check)", now, fresh_bodies,
                      o.connections);
    if (!v)
      return v.error();
    for (std::size_t j = 0; j < answered.size(); ++j)
      if (v->requests[j].status == 200)
        fresh[answered[j]] = v->requests[j].prediction;
  }

  std::vector<observed_request> obs(schedule.size());
  std::vector<double> ages;
  for (std::size_t i = 0; i < schedule.size(); ++i) {
    const auto& q = r->requests[i];
    obs[i].prefix = prefix[i];
    obs[i].sent = q.sent;
    obs[i].done = q.done;
    obs[i].ok = q.status == 200;
    obs[i].cache_hit = q.cache_hit;
    obs[i].computed = q.status == 200 && q.source == 'e';
    obs[i].prediction = q.prediction;
    if (q.status == 200 && q.cache_age_ms >= 0)
      ages.push_back(q.cache_age_ms);
  }
  auto counts = classify(obs, fresh, o.tolerance);

  // Divergence of each attributed hit: the embedding it reused (its
  // source's features) vs the fresh one (its own), with the server's model.
  risk_outcome out;
  auto src = attribute_sources(obs);
  std::size_t attributed = 0;
  auto version = stat_value<std::string>(stats, "model", "version");
  auto local = local_model_for(version);
  if (local) {
    std::unordered_map<std::string, embedding> memo; // distinct bodies only
    auto embed = [&](std::size_t i) -> const embedding& {
      auto it = memo.find(bodies[i]);
      if (it == memo.end())
        it = memo.emplace(bodies[i], *local->encode({features[i].data(), 1})).first;
      return it->second;
    };
    for (std::size_t i = 0; i < schedule.size(); ++i) {
      if (src[i] < 0 || std::isnan(fresh[i]))
        continue;
      ++attributed;
      auto d = measure_divergence(embed(static_cast<std::size_t>(src[i])), embed(i));
      if (!d)
        continue;
      out.cos.push_back(d->cosine);
      out.err.push_back(std::abs(obs[i].prediction - fresh[i]));
    }
  }
  std::vector<double> sorted_ages = ages;
  std::sort(sorted_ages.begin(), sorted_ages.end());
  std::vector<double> sorted_cos = out.cos;
  std::sort(sorted_cos.begin(), sorted_cos.end());
  auto s = run_summary(*r, w.sc.base_rate, w.sc.duration);
  s["cell"] = cell.name;
  s["server_args"] = cell.server_args;
  s["external_server"] = t->external();
  s["strength_per_step"] = cell.strength;
  s["step_seconds"] = cell.step_seconds;
  s["counts"] = {{"requests", counts.requests},
                 {"errors", counts.errors},
                 {"hits", counts.hits},
                 {"correct_hits", counts.correct_hits},
                 {"wrong_hits", counts.wrong_hits},
                 {"misses", counts.misses},
                 {"hit_rate", counts.hit_rate()},
                 {"wrong_hit_rate", counts.wrong_hit_rate()},
                 {"wrong_answer_rate", counts.wrong_answer_rate()},
                 {"mean_hit_error", counts.mean_hit_error},
                 {"max_hit_error", counts.max_hit_error},
                 {"max_miss_error", counts.max_miss_error}};
  s["age_at_hit_ms"] = {{"count", ages.size()},
                        {"mean", mean(ages)},
                        {"p50", sil::nearest_rank(sorted_ages, 50)},
                        {"p95", sil::nearest_rank(sorted_ages, 95)}};
  s["divergence_at_hit"] = {{"attributed_hits", attributed},
                            {"model_matched", local.has_value()},
                            {"cosine_mean", mean(out.cos)},
                            {"cosine_p50", sil::nearest_rank(sorted_cos, 50)},
                            {"cosine_p95", sil::nearest_rank(sorted_cos, 95)},
                            {"spearman_cosine_vs_error", spearman(out.cos, out.err)}};
  std::uint64_t encodes = 0;
  if (stats.is_object()) {
    encodes = stat_value<std::uint64_t>(stats, "encoder", "items");
    s["server"] = {{"hits", stats["cache"]["hits"]},
                   {"misses", stats["cache"]["misses"]},
                   {"expired", stats["cache"]["expired"]},
                   {"invalidations", stats["divergence"]["invalidations"]},
                   {"audits", stats["divergence"]["audits"]},
                   {"shadow_comparisons", stats["divergence"]["shadow_comparisons"]},
                   {"audit_cosine", stats["divergence"]["cosine"]},
                   {"encoder_items", encodes},
                   {"ttl_seconds_at_end", stats["cache"]["ttl_seconds"]},
                   {"cache_enabled_at_end", stats["cache"]["enabled"]},
                   {"model_version", version}};
  }
  s["encodes_per_request"]
    = static_cast<double>(encodes) / std::max<double>(1.0, static_cast<double>(counts.requests));
  json decisions = json::array();
  if (agent.is_object())
    for (const auto& d : agent["decisions"])
      decisions.push_back(d["from"].get<std::string>() + "->" + d["to"].get<std::string>());
  s["agent"] = {{"state_at_end", agent.is_object() ? agent["state"] : json("unknown")},
                {"decisions", decisions}};
  out.summary = std::move(s);
  return out;
}

/// Writes the (cosine, error) pairs of attributed hits for the scatter plot.
void write_pairs(std::ofstream& f, const std::string& cell, const risk_outcome& r,
                 std::size_t limit) {
  // Every k-th pair, at most `limit` per cell (the plot needs no more).
  std::size_t k = std::max<std::size_t>(1, r.cos.size() / std::max<std::size_t>(1, limit));
  for (std::size_t i = 0; i < r.cos.size(); i += k)
    f << cell << ',' << r.cos[i] << ',' << r.err[i] << "\n";
}

} // namespace

int cmd_correctness(const options& o) {
  auto dir = experiment_dir(o, "correctness");
  if (!dir)
    return fail(dir.error().message);
  auto w = workload_for(o);
  if (auto st = validate(w.sc); !st)
    return fail(st.error().message);
  std::vector<double> levels = !o.levels.empty()
                                 ? o.levels
                                 : (o.quick ? std::vector<double>{0.0, 0.05, 0.25}
                                            : std::vector<double>{0.0, 0.02, 0.05, 0.1, 0.25});
  double step_seconds = w.sc.duration / steps_of(o);
  struct agent_mode {
    const char* name;
    std::vector<std::string> args;
  };
  std::vector<agent_mode> modes{{"off", {"--agent.enabled=false"}}, {"on", {}}};
  // Full mode adds the agent with thresholds an order of magnitude tighter
  // (see the calibration table: the defaults let many wrong hits through).
  if (!o.quick)
    modes.push_back({"on_tight",
                     {"--agent.recover-threshold=0.001", "--agent.ttl-threshold=0.005",
                      "--agent.disable-threshold=0.02", "--agent.entry-evict-threshold=0.02"}});
  if (!o.url.empty()) {
    std::fprintf(stderr, "[correctness] --url: the server's own agent setting is used (one "
                         "column, 'as configured')\n");
    modes = {{"as_configured", {}}};
  }
  json cells = json::array();
  std::ofstream pairs{*dir / "pairs.csv"};
  pairs << "cell,cosine,prediction_error\n";
  std::vector<double> all_cos_off;
  std::vector<double> all_err_off;
  std::vector<double> all_cos;
  std::vector<double> all_err;
  std::uint64_t id_base = 0;
  for (double level : levels) {
    for (const auto& m : modes) {
      risk_cell cell;
      cell.experiment = "correctness";
      cell.name = "drift" + fixed(level, 3) + "-agent-" + m.name;
      cell.server_args = m.args;
      cell.strength = level;
      cell.step_seconds = step_seconds;
      // Every cell sends the same client population (a paired comparison:
      // each has a fresh server). A shared --url server keeps its cache
      // across cells, so there each cell gets prefixes of its own.
      if (!o.url.empty()) {
        cell.id_base = id_base;
        id_base += 10000000;
      }
      auto r = run_risk_cell(o, *dir, cell, w);
      if (!r)
        return fail(r.error().message);
      r->summary["drift_strength"] = level;
      r->summary["agent"]["mode"] = m.name;
      write_pairs(pairs, cell.name, *r, 400);
      all_cos.insert(all_cos.end(), r->cos.begin(), r->cos.end());
      all_err.insert(all_err.end(), r->err.begin(), r->err.end());
      if (std::string{m.name}.rfind("on", 0) != 0) {
        all_cos_off.insert(all_cos_off.end(), r->cos.begin(), r->cos.end());
        all_err_off.insert(all_err_off.end(), r->err.begin(), r->err.end());
      }
      cells.push_back(std::move(r->summary));
    }
  }
  pairs.close();
  double rho = spearman(all_cos, all_err);
  double rho_off = spearman(all_cos_off, all_err_off);
  // Hits that reused an embedding of identical features (no drift between
  // store and hit) have divergence 0 and only float-rounding error; they are
  // easy. The proxy has to rank the others.
  std::vector<double> drift_cos;
  std::vector<double> drift_err;
  for (std::size_t i = 0; i < all_cos_off.size(); ++i)
    if (all_cos_off[i] > kSameFeatures) {
      drift_cos.push_back(all_cos_off[i]);
      drift_err.push_back(all_err_off[i]);
    }
  double rho_drifted = spearman(drift_cos, drift_err);
  // How well a cosine threshold separates wrong hits from right ones (agent
  // off, drifted hits): what the agent's thresholds should be.
  json calibration = json::array();
  for (double th : {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3}) {
    std::size_t below = 0, below_wrong = 0, above = 0, above_wrong = 0;
    for (std::size_t i = 0; i < drift_cos.size(); ++i) {
      bool wrong = drift_err[i] > o.tolerance;
      if (drift_cos[i] <= th) {
        ++below;
        below_wrong += wrong ? 1 : 0;
      } else {
        ++above;
        above_wrong += wrong ? 1 : 0;
      }
    }
    auto share = [](std::size_t a, std::size_t b) {
      return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
    };
    calibration.push_back({{"cosine_threshold", th},
                           {"hits_at_or_below", below},
                           {"wrong_share_at_or_below", share(below_wrong, below)},
                           {"hits_above", above},
                           {"wrong_share_above", share(above_wrong, above)},
                           {"wrong_hits_caught", share(above_wrong, above_wrong + below_wrong)}});
  }
  json cfg = {{"rate", w.sc.base_rate},   {"duration_s", w.sc.duration},
              {"steps", steps_of(o)},     {"step_seconds", step_seconds},
              {"levels", levels},         {"zipf_m", w.zipf_m},
              {"zipf_s", w.zipf_s},       {"noise", w.noise},
              {"tolerance", o.tolerance}, {"connections", o.connections},
              {"seed", o.seed},           {"quick", o.quick}};
  write_json(*dir, {{"experiment", "correctness"},
                    {"config", cfg},
                    {"spearman_cosine_vs_error",
                     {{"all", rho},
                      {"agent_off", rho_off},
                      {"agent_off_drifted", rho_drifted},
                      {"pairs", all_cos.size()},
                      {"drifted_pairs_agent_off", drift_cos.size()}}},
                    {"threshold_calibration", calibration},
                    {"cells", cells}});

  double max_miss = 0.0;
  for (const auto& c : cells)
    max_miss = std::max(max_miss, c["counts"]["max_miss_error"].get<double>());
  std::ofstream csv{*dir / "results.csv"};
  csv << "drift_strength,agent,requests,hits,correct_hits,wrong_hits,misses,errors,hit_rate,"
         "wrong_hit_rate,wrong_answer_rate,mean_hit_error,max_hit_error,max_miss_error,"
         "cosine_at_hit_mean,spearman,audits,agent_state_at_end,p50_ms,p99_ms\n";
  std::ofstream md{*dir / "summary.md"};
  md << "# Correctness risk: hits, wrong hits and misses under drift\n\n"
     << "Against the real server (audit sampling on: `audit.rate` 0.05), " << w.sc.base_rate
     << " req/s for " << w.sc.duration << " s per cell, prefixes Zipf(" << w.zipf_m << ", "
     << w.zipf_s << "). Each prefix has its own suffix, which drifts by *strength* per step ("
     << steps_of(o) << " steps of " << fixed(step_seconds, 2) << " s; total shift " << steps_of(o)
     << " x strength)" << (w.noise > 0 ? ", plus per-request noise" : "")
     << ". A hit is **wrong** when |prediction - fresh| > " << o.tolerance
     << ", the fresh answer coming from the same features sent with `use_cache: false`. "
     << "Agent **off**: `--agent.enabled=false` (audits measure, nothing acts); **on**: the "
        "defaults (p95 cosine thresholds 0.01 / 0.05 / 0.2, entry eviction at 0.3); "
        "**on_tight** (full mode): thresholds 0.001 / 0.005 / 0.02, eviction at 0.02.\n\n"
     << "| drift / step | agent | requests | correct hits | wrong hits | misses | hit rate | "
        "wrong / hits | wrong / answers | cosine at hit (mean) | agent at end |\n"
     << "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& c : cells) {
    const auto& k = c["counts"];
    const auto& d = c["divergence_at_hit"];
    std::string state = c["agent"]["state_at_end"].is_string()
                          ? c["agent"]["state_at_end"].get<std::string>()
                          : "?";
    csv << c["drift_strength"] << ',' << c["agent"]["mode"].get<std::string>() << ','
        << k["requests"] << ',' << k["hits"] << ',' << k["correct_hits"] << ',' << k["wrong_hits"]
        << ',' << k["misses"] << ',' << k["errors"] << ',' << k["hit_rate"] << ','
        << k["wrong_hit_rate"] << ',' << k["wrong_answer_rate"] << ',' << k["mean_hit_error"] << ','
        << k["max_hit_error"] << ',' << k["max_miss_error"] << ',' << d["cosine_mean"] << ','
        << d["spearman_cosine_vs_error"] << ','
        << (c.contains("server") ? c["server"]["audits"] : json(0)) << ',' << state << ','
        << c["latency_ms"]["p50"] << ',' << c["latency_ms"]["p99"] << "\n";
    md << "| " << fixed(c["drift_strength"].get<double>(), 3) << " | "
       << c["agent"]["mode"].get<std::string>() << " | " << k["requests"] << " | "
       << k["correct_hits"] << " | **" << k["wrong_hits"] << "** | " << k["misses"] << " | "
       << fixed(k["hit_rate"].get<double>(), 3) << " | "
       << fixed(k["wrong_hit_rate"].get<double>(), 3) << " | "
       << fixed(k["wrong_answer_rate"].get<double>(), 3) << " | "
       << fixed(d["cosine_mean"].get<double>(), 4) << " | " << state << " |\n";
  }
  md << "\nSpearman rank correlation between the cosine divergence of a reused embedding and "
        "its prediction error: **"
     << fixed(rho_drifted, 3) << "** over the " << drift_cos.size()
     << " agent-off hits whose features had drifted since the entry was stored (cosine > "
     << kSameFeatures << "); " << fixed(rho, 3) << " over all " << all_cos.size()
     << " attributed hits, which include exact reuses (divergence 0, error only float "
        "rounding).\n\n"
     << "How well a cosine threshold separates wrong hits from right ones (agent off, drifted "
        "hits), i.e. what `agent.*-threshold` values mean in prediction error:\n\n"
     << "| cosine threshold | hits at or below | wrong among them | hits above | wrong among "
        "them | wrong hits above (caught) |\n|---|---|---|---|---|---|\n";
  for (const auto& c : calibration)
    md << "| " << c["cosine_threshold"].get<double>() << " | " << c["hits_at_or_below"] << " | "
       << fixed(c["wrong_share_at_or_below"], 3) << " | " << c["hits_above"] << " | "
       << fixed(c["wrong_share_above"], 3) << " | " << fixed(c["wrong_hits_caught"], 3) << " |\n";
  md << "\n"
     << "A hit is attributed to the request whose computation it reused (same prefix, same "
        "prediction bit for bit); the divergence is computed with a local copy of the server's "
        "model. Misses are checked against the fresh answers too: their largest difference is "
     << max_miss
     << " (batched and single encodes round floats differently; results.csv, "
        "max_miss_error).\n\n"
     << "Plots: `risk_table.png` (the table as bars), `divergence_vs_error.png` (scatter).\n";
  csv.close();
  md.close();
  finish_experiment("correctness", *dir,
                    "(Spearman rho " + fixed(rho_drifted, 3) + " on drifted hits)");
  return 0;
}

int cmd_sweep_ttl(const options& o) {
  auto dir = experiment_dir(o, "sweep-ttl");
  if (!dir)
    return fail(dir.error().message);
  if (!o.url.empty())
    return fail("sweep-ttl starts a server per TTL (cache.ttl-seconds is a startup setting); "
                "it does not take --url");
  auto w = workload_for(o);
  if (auto st = validate(w.sc); !st)
    return fail(st.error().message);
  double step_seconds = w.sc.duration / steps_of(o);
  double strength = o.strength_given ? o.strength : 0.1;
  // 0 in the list (or the default's last point) means no TTL: plain LRU.
  std::vector<double> ttls = !o.ttls.empty()
                               ? o.ttls
                               : (o.quick ? std::vector<double>{0.25, 1, 4, 0}
                                          : std::vector<double>{0.25, 0.5, 1, 2, 4, 8, 0});
  json cells = json::array();
  for (double ttl : ttls) {
    bool plain = ttl == 0;
    risk_cell cell;
    cell.experiment = "sweep-ttl";
    cell.name = plain ? "ttl-none" : "ttl-" + fixed(ttl, 2);
    // Agent and audits off: the TTL is the only thing that bounds staleness;
    // a cache big enough that nothing is evicted.
    cell.server_args = {"--agent.enabled=false", "--audit.rate=0", "--cache.max-size=100000",
                        "--cache.ttl-seconds=" + (plain ? std::string{"31536000"} : fixed(ttl, 3))};
    cell.strength = strength;
    cell.step_seconds = step_seconds;
    auto r = run_risk_cell(o, *dir, cell, w);
    if (!r)
      return fail(r.error().message);
    r->summary["ttl_seconds"] = plain ? json(nullptr) : json(ttl);
    r->summary["plain_lru"] = plain;
    cells.push_back(std::move(r->summary));
  }
  json cfg = {{"rate", w.sc.base_rate},
              {"duration_s", w.sc.duration},
              {"strength_per_step", strength},
              {"step_seconds", step_seconds},
              {"zipf_m", w.zipf_m},
              {"zipf_s", w.zipf_s},
              {"tolerance", o.tolerance},
              {"seed", o.seed},
              {"quick", o.quick}};
  write_json(*dir, {{"experiment", "sweep-ttl"}, {"config", cfg}, {"cells", cells}});
  std::ofstream csv{*dir / "results.csv"};
  csv << "ttl_s,plain_lru,hit_rate,encodes_per_request,age_mean_ms,age_p95_ms,cosine_at_hit_mean,"
         "cosine_at_hit_p95,wrong_hit_rate,wrong_answer_rate,mean_hit_error\n";
  std::ofstream md{*dir / "summary.md"};
  md << "# TTL sweep: hit rate vs staleness\n\n"
     << w.sc.base_rate << " req/s for " << w.sc.duration << " s per TTL, prefixes Zipf(" << w.zipf_m
     << ", " << w.zipf_s << "), suffix drift " << strength << " per " << fixed(step_seconds, 2)
     << " s step. Agent and audits off, cache large enough that nothing is evicted: the TTL "
        "alone bounds staleness. **none** is a plain LRU without TTL. Age at hit comes from the "
        "server (`cache_age_ms`); divergence at hit is computed for attributed hits.\n\n"
     << "| TTL s | hit rate | encodes / request | age at hit mean ms | p95 ms | cosine at hit "
        "mean | p95 | wrong / hits | wrong / answers |\n|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& c : cells) {
    const auto& k = c["counts"];
    const auto& a = c["age_at_hit_ms"];
    const auto& d = c["divergence_at_hit"];
    std::string ttl = c["ttl_seconds"].is_null() ? "none" : fixed(c["ttl_seconds"], 2);
    csv << (c["ttl_seconds"].is_null() ? std::string{""} : fixed(c["ttl_seconds"], 4)) << ','
        << (c["plain_lru"].get<bool>() ? 1 : 0) << ',' << k["hit_rate"] << ','
        << c["encodes_per_request"] << ',' << a["mean"] << ',' << a["p95"] << ','
        << d["cosine_mean"] << ',' << d["cosine_p95"] << ',' << k["wrong_hit_rate"] << ','
        << k["wrong_answer_rate"] << ',' << k["mean_hit_error"] << "\n";
    md << "| " << ttl << " | " << fixed(k["hit_rate"], 3) << " | "
       << fixed(c["encodes_per_request"], 3) << " | " << fixed(a["mean"], 1) << " | "
       << fixed(a["p95"], 1) << " | " << fixed(d["cosine_mean"], 4) << " | "
       << fixed(d["cosine_p95"], 4) << " | " << fixed(k["wrong_hit_rate"], 3) << " | "
       << fixed(k["wrong_answer_rate"], 3) << " |\n";
  }
  md << "\nPlot: `ttl_tradeoff.png`.\n";
  csv.close();
  md.close();
  finish_experiment("sweep-ttl", *dir);
  return 0;
}

} // namespace sil::lab
