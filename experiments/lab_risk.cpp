// sil-lab correctness and sweep-ttl: traffic from a drifting client
// population against the real server, every answer checked against a fresh
// computation (use_cache: false) afterwards.
#include "experiments/lab_risk.hpp"

#include <thread>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>
#include <set>

#include "core/divergence.hpp"
#include "core/window_stats.hpp"
#include "experiments/analysis.hpp"

namespace sil::lab {

namespace {

/// Cosine distance below which two embeddings count as from identical
/// features (float rounding of batched vs single encodes is ~1e-7).
constexpr double kSameFeatures = 1e-6;

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double unix_ms_now() {
  using namespace std::chrono;
  return static_cast<double>(
    duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

/// The local model's embedding of every answered request (batched).
std::vector<embedding> embed_all(const model& m, const std::vector<std::vector<float>>& features,
                                 const std::vector<std::size_t>& answered) {
  std::vector<embedding> out(features.size());
  constexpr std::size_t kBatch = 64;
  for (std::size_t b = 0; b < answered.size(); b += kBatch) {
    std::vector<input_view> xs;
    for (std::size_t j = b; j < std::min(answered.size(), b + kBatch); ++j)
      xs.push_back({features[answered[j]].data(), 1});
    auto e = m.encode_batch(xs);
    if (!e)
      continue;
    for (std::size_t j = 0; j < e->size(); ++j)
      out[answered[b + j]] = std::move((*e)[j]);
  }
  return out;
}

json outcome_json(const replay_outcome& r) {
  return {{"requests", r.requests},
          {"hits", r.hits},
          {"wrong", r.wrong},
          {"hit_rate", r.hit_rate()},
          {"wrong_rate", r.wrong_rate()}};
}

} // namespace

risk_workload workload_for(const options& o, double full_seconds, double quick_seconds) {
  risk_workload w;
  w.sc.kind = o.kind;
  w.sc.base_rate = o.rate > 0 ? o.rate : 300.0;
  w.sc.duration = o.duration > 0 ? o.duration : (o.quick ? quick_seconds : full_seconds);
  w.zipf_m = o.zipf_m > 0 ? o.zipf_m : 50;
  w.zipf_s = o.zipf_s > 0 ? o.zipf_s : 1.1;
  w.noise = o.noise;
  return w;
}

double steps_of(const options& o) {
  return o.steps > 0 ? o.steps : 10.0;
}

feature_fn drifting_features(const risk_workload& w, std::uint64_t seed, double strength,
                             double step_seconds, bool resampled) {
  feature_spec spec;
  spec.strength = strength;
  spec.noise = w.noise;
  spec.seed = seed;
  spec.resampled = resampled;
  return [spec, step_seconds](std::uint64_t prefix, double t, std::size_t i) {
    return make_features(spec, prefix, std::floor(t / step_seconds), i);
  };
}

namespace {

/// Log-spaced thresholds, then infinity: the loosest point reuses every hit
/// (pure prefix reuse).
std::vector<double> with_everything(std::vector<double> t) {
  t.push_back(std::numeric_limits<double>::infinity());
  return t;
}

} // namespace

std::vector<double> cosine_thresholds() {
  return with_everything(log_thresholds(1e-7, 1.0, 43));
}

std::vector<double> distance_thresholds() {
  return with_everything(log_thresholds(1e-4, 4.0, 47));
}

result<drifting_run> drifting_experiment(const options& o, const std::string& name,
                                         double full_seconds, double quick_seconds, double noise,
                                         double drift_per_second) {
  if (!o.url.empty())
    return error{errc::invalid_argument,
                 name
                   + " starts its own servers with the settings it compares; it does not "
                     "take --url"};
  drifting_run out;
  out.w = workload_for(o, full_seconds, quick_seconds);
  if (auto st = validate(out.w.sc); !st)
    return st.error();
  auto dir = experiment_dir(o, name);
  if (!dir)
    return dir.error();
  out.dir = *dir;
  if (out.w.noise <= 0)
    out.w.noise = noise;
  out.drift_per_second = o.strength_given ? o.strength : drift_per_second;
  return out;
}

result<risk_outcome> run_risk_cell(const options& o, const fs::path& dir, const risk_cell& cell,
                                   const risk_workload& w) {
  auto t = open_target(o, cell.server_args, dir / ("server-" + cell.name + ".log"));
  if (!t)
    return t.error();
  auto schedule = make_schedule(w.sc, cell.seed);
  prefix_mix mix{o.prefix, w.zipf_m, w.zipf_s, cell.seed};
  const auto n = schedule.size();
  std::vector<std::uint64_t> prefix(n);
  std::vector<std::vector<float>> features(n);
  std::vector<std::string> bodies(n);
  for (std::size_t i = 0; i < n; ++i) {
    prefix[i] = cell.id_base + mix.next();
    features[i] = cell.features(prefix[i], schedule[i], i);
    bodies[i] = predict_body(features[i], true);
  }
  risk_outcome out;
  out.start_unix_ms = unix_ms_now();
  std::thread acting;
  if (cell.action) {
    auto at = std::chrono::steady_clock::now()
              + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                std::chrono::duration<double>(cell.action_at));
    acting = std::thread{[&cell, &t, at] {
      std::this_thread::sleep_until(at);
      cell.action(*t);
    }};
  }
  auto r = run_cell(*t, cell.experiment, cell.name, schedule, bodies, o.connections);
  if (acting.joinable())
    acting.join();
  if (!r)
    return r.error();
  auto stats = call_json(*t, "GET", "/stats");
  out.agent = call_json(*t, "GET", "/agent");

  // The fresh answer to every answered request, computed with use_cache
  // false after the run (the model is deterministic, so when does not
  // matter; use_cache false neither reads nor writes the cache).
  std::vector<std::size_t> answered;
  std::vector<std::string> fresh_bodies;
  for (std::size_t i = 0; i < n; ++i)
    if (r->requests[i].status == 200) {
      answered.push_back(i);
      fresh_bodies.push_back(predict_body(features[i], false));
    }
  std::vector<double> fresh(n, std::numeric_limits<double>::quiet_NaN());
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

  std::vector<observed_request> obs(n);
  std::vector<double> ages;
  std::map<char, std::size_t> basis;
  out.records.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
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
    auto& rec = out.records[i];
    rec.t = schedule[i];
    rec.prefix = prefix[i];
    if (cell.action)
      rec.features = features[i];
    rec.ok = obs[i].ok;
    rec.hit = obs[i].ok && q.cache_hit;
    rec.basis = q.basis;
    if (rec.ok) {
      rec.error = std::abs(q.prediction - fresh[i]);
      ++basis[q.basis];
    }
  }
  auto counts = classify(obs, fresh, o.tolerance);
  // Hit rate over repeats: a prefix's first answered request cannot hit.
  std::set<std::uint64_t> seen;
  for (auto i : answered)
    seen.insert(prefix[i]);
  auto repeats = counts.hits + counts.misses - std::min(seen.size(), counts.hits + counts.misses);
  auto version = stat_value<std::string>(stats, "model", "version");
  auto key_len = stat_value<std::size_t>(stats, "cache", "prefix_k", 4);

  // Each attributed hit: the input distance to the request whose
  // computation it reused, and (with the server's model here) the cosine
  // divergence of that embedding from its own fresh one.
  auto src = attribute_sources(obs);
  std::size_t attributed = 0;
  std::vector<double> distances;
  auto local = local_model_for(version);
  std::vector<embedding> emb;
  if (local)
    emb = embed_all(*local, features, answered);
  for (std::size_t i = 0; i < n; ++i) {
    if (src[i] < 0 || std::isnan(fresh[i]))
      continue;
    ++attributed;
    auto j = static_cast<std::size_t>(src[i]);
    distances.push_back(input_distance(features[i], features[j], key_len));
    if (!local)
      continue;
    auto d = measure_divergence(emb[j], emb[i]);
    if (!d)
      continue;
    out.cos.push_back(d->cosine);
    out.err.push_back(std::abs(obs[i].prediction - fresh[i]));
  }

  if (cell.replay && local) {
    // Answered requests in send order; a recorded hit had a live entry.
    std::vector<std::size_t> order = answered;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return obs[a].sent < obs[b].sent; });
    std::vector<replay_request> reqs;
    std::vector<double> pred(n, 0.0);
    for (auto i : order) {
      reqs.push_back({prefix[i], obs[i].cache_hit});
      pred[i] = local->head(emb[i]);
    }
    pair_measure error
      = [&](std::size_t a, std::size_t b) { return std::abs(pred[order[a]] - pred[order[b]]); };
    pair_measure cosine = [&](std::size_t a, std::size_t b) {
      auto d = measure_divergence(emb[order[b]], emb[order[a]]);
      return d ? d->cosine : 2.0;
    };
    pair_measure distance = [&](std::size_t a, std::size_t b) {
      return input_distance(features[order[a]], features[order[b]], key_len);
    };
    out.cosine_curve = threshold_curve(reqs, cosine, cosine_thresholds(), error, o.tolerance);
    out.distance_curve = threshold_curve(reqs, distance, distance_thresholds(), error, o.tolerance);
    out.oracle = replay_threshold(reqs, error, o.tolerance, error, o.tolerance);
  }

  std::vector<double> sorted_ages = ages;
  std::sort(sorted_ages.begin(), sorted_ages.end());
  std::vector<double> sorted_cos = out.cos;
  std::sort(sorted_cos.begin(), sorted_cos.end());
  std::sort(distances.begin(), distances.end());
  auto s = run_summary(*r, w.sc.base_rate, w.sc.duration);
  s["cell"] = cell.name;
  s["seed"] = cell.seed;
  s["server_args"] = cell.server_args;
  s["external_server"] = t->external();
  s["counts"]
    = {{"requests", counts.requests},
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
       {"max_miss_error", counts.max_miss_error},
       {"repeat_hit_rate",
        repeats == 0 ? 0.0 : static_cast<double>(counts.hits) / static_cast<double>(repeats)}};
  auto hits = static_cast<double>(std::max<std::size_t>(1, counts.hits));
  s["guard"] = {{"exact", basis['e']},
                {"certified", basis['c']},
                {"refused", basis['r']},
                {"unguarded", basis['u']},
                {"certified_share_of_hits", static_cast<double>(basis['c']) / hits},
                {"exact_share_of_hits", static_cast<double>(basis['e']) / hits}};
  s["age_at_hit_ms"] = {{"count", ages.size()},
                        {"mean", mean(ages)},
                        {"p50", sil::nearest_rank(sorted_ages, 50)},
                        {"p95", sil::nearest_rank(sorted_ages, 95)}};
  s["divergence_at_hit"] = {{"attributed_hits", attributed},
                            {"model_matched", local.has_value()},
                            {"cosine_mean", mean(out.cos)},
                            {"cosine_p50", sil::nearest_rank(sorted_cos, 50)},
                            {"cosine_p95", sil::nearest_rank(sorted_cos, 95)},
                            {"input_distance_p50", sil::nearest_rank(distances, 50)},
                            {"input_distance_p95", sil::nearest_rank(distances, 95)},
                            {"spearman_cosine_vs_error", spearman(out.cos, out.err)}};
  if (cell.replay && local)
    s["oracle"] = outcome_json(out.oracle);
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
    if (stats.contains("risk"))
      s["server"]["risk"] = stats["risk"];
  }
  s["encodes_per_request"]
    = static_cast<double>(encodes) / std::max<double>(1.0, static_cast<double>(counts.requests));
  json decisions = json::array();
  const auto& agent = out.agent;
  if (agent.is_object())
    for (const auto& d : agent["decisions"])
      decisions.push_back(d["from"].get<std::string>() + "->" + d["to"].get<std::string>());
  s["agent"] = {{"state_at_end", agent.is_object() ? agent["state"] : json("unknown")},
                {"trigger", agent.is_object() ? agent.value("trigger", json(nullptr)) : json()},
                {"decisions", decisions}};
  out.summary = std::move(s);
  return out;
}

namespace {

/// Writes the (cosine, error) pairs of attributed hits for the scatter plot.
void write_pairs(std::ofstream& f, const std::string& cell, const risk_outcome& r,
                 std::size_t limit) {
  // Every k-th pair, at most `limit` per cell (the plot needs no more).
  std::size_t k = std::max<std::size_t>(1, r.cos.size() / std::max<std::size_t>(1, limit));
  for (std::size_t i = 0; i < r.cos.size(); i += k)
    f << cell << ',' << r.cos[i] << ',' << r.err[i] << "\n";
}

/// A row of the correctness table: a drift level of the shifted
/// formulation, or the resampled formulation.
struct drift_row {
  double strength = 0.0;
  bool resampled = false;

  std::string label() const {
    return fixed(strength, 3) + (resampled ? " resampled" : "");
  }
};

struct arm {
  std::string name;
  std::vector<std::string> args;
};

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// One repetition's totals over the table's rows, for the trade-off plot:
/// the replayed policies of the agent-off arm and the live guard.
struct pooled {
  std::vector<threshold_point> cosine;
  std::vector<threshold_point> distance;
  replay_outcome oracle;
  replay_outcome guard;
  bool replayed = false;
  bool guarded = false;
};

void add_to(replay_outcome& a, const replay_outcome& b) {
  a.requests += b.requests;
  a.hits += b.hits;
  a.wrong += b.wrong;
}

void add_curve(std::vector<threshold_point>& a, const std::vector<threshold_point>& b) {
  if (a.empty()) {
    a = b;
    return;
  }
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i)
    add_to(a[i].outcome, b[i].outcome);
}

json best_json(const std::vector<threshold_point>& curve, double bound) {
  const auto* p = best_within(curve, bound);
  if (p == nullptr)
    return nullptr;
  return {{"threshold", p->threshold},
          {"hit_rate", p->outcome.hit_rate()},
          {"wrong_rate", p->outcome.wrong_rate()}};
}

/// The trade-off numbers of one repetition.
json tradeoff_json(const pooled& p, double delta) {
  double guard_wrong = p.guard.wrong_rate();
  double oracle_hits = p.oracle.hit_rate();
  return {{"guard", outcome_json(p.guard)},
          {"oracle", outcome_json(p.oracle)},
          {"delta", delta},
          {"guard_over_oracle", oracle_hits > 0 ? p.guard.hit_rate() / oracle_hits : 0.0},
          {"best_cosine_within_delta", best_json(p.cosine, delta)},
          {"best_distance_within_delta", best_json(p.distance, delta)},
          {"best_cosine_within_guard", best_json(p.cosine, guard_wrong)},
          {"best_distance_within_guard", best_json(p.distance, guard_wrong)}};
}

void write_curve(std::ofstream& f, std::size_t rep, const char* policy,
                 const std::vector<threshold_point>& curve) {
  for (const auto& q : curve)
    f << rep << ',' << policy << ',' << q.threshold << ',' << q.outcome.hit_rate() << ','
      << q.outcome.wrong_rate() << ',' << q.outcome.hits << ',' << q.outcome.wrong << ','
      << q.outcome.requests << "\n";
}

/// The distinct values of a string field over cells, joined with "/".
std::string distinct(const std::vector<const json*>& cells, const json::json_pointer& ptr) {
  std::set<std::string> seen;
  std::string out;
  for (const auto* c : cells) {
    auto v = c->contains(ptr) && c->at(ptr).is_string() ? c->at(ptr).get<std::string>() : "?";
    if (seen.insert(v).second)
      out += (out.empty() ? "" : "/") + v;
  }
  return out;
}

} // namespace

int cmd_correctness(const options& o) {
  auto dir = experiment_dir(o, "correctness");
  if (!dir)
    return fail(dir.error().message);
  auto w = workload_for(o, 7.0);
  if (auto st = validate(w.sc); !st)
    return fail(st.error().message);
  std::vector<double> levels = !o.levels.empty()
                                 ? o.levels
                                 : (o.quick ? std::vector<double>{0.0, 0.05, 0.25}
                                            : std::vector<double>{0.0, 0.02, 0.05, 0.1, 0.25});
  std::vector<drift_row> rows;
  rows.reserve(levels.size() + 1);
  for (double l : levels)
    rows.push_back({l, false});
  // The drift study's original formulation, at the drift study's strength.
  double resampled_strength = o.strength;
  rows.push_back({resampled_strength, true});
  double step_seconds = w.sc.duration / steps_of(o);
  const auto& old = old_behaviour_args();
  std::vector<arm> arms{{"off", plus(old, {"--agent.enabled=false"})}, {"on", old}};
  // Full mode adds the agent with thresholds an order of magnitude tighter
  // (see the calibration table: the defaults let many wrong hits through).
  if (!o.quick)
    arms.push_back(
      {"on_tight",
       plus(old, {"--agent.recover-threshold=0.001", "--agent.ttl-threshold=0.005",
                  "--agent.disable-threshold=0.02", "--agent.entry-evict-threshold=0.02"})});
  arms.push_back({"guard", {}}); // the server's defaults
  if (!o.url.empty()) {
    std::fprintf(stderr, "[correctness] --url: the server's own settings are used (one "
                         "column, 'as configured')\n");
    arms = {{"as_configured", {}}};
  }
  const auto reps = reps_of(o);
  json cells = json::array();
  std::ofstream pairs{*dir / "pairs.csv"};
  pairs << "cell,cosine,prediction_error\n";
  std::vector<double> all_cos_off;
  std::vector<double> all_err_off;
  std::vector<double> all_cos;
  std::vector<double> all_err;
  std::vector<pooled> pool(reps);
  double delta = 0.01;
  std::uint64_t id_base = 0;
  for (std::size_t rep = 0; rep < reps; ++rep) {
    for (const auto& row : rows) {
      for (const auto& a : arms) {
        risk_cell cell;
        cell.experiment = "correctness";
        cell.name = "drift" + fixed(row.strength, 3) + (row.resampled ? "-resampled" : "")
                    + "-agent-" + a.name;
        auto group = cell.name;
        if (reps > 1)
          cell.name += "-rep" + std::to_string(rep + 1);
        cell.server_args = a.args;
        cell.seed = rep_seed(o, rep);
        cell.features = drifting_features(w, cell.seed, row.strength, step_seconds, row.resampled);
        cell.replay = a.name == "off";
        // Every cell of a repetition sends the same client population (a
        // paired comparison: each has a fresh server). A shared --url server
        // keeps its cache across cells, so there each cell gets prefixes of
        // its own.
        if (!o.url.empty()) {
          cell.id_base = id_base;
          id_base += 10000000;
        }
        auto r = run_risk_cell(o, *dir, cell, w);
        if (!r)
          return fail(r.error().message);
        auto& sum = r->summary;
        sum["group"] = group;
        sum["rep"] = rep;
        sum["drift_strength"] = row.strength;
        sum["formulation"] = row.resampled ? "resampled" : "shifted";
        sum["step_seconds"] = step_seconds;
        sum["agent"]["mode"] = a.name;
        write_pairs(pairs, cell.name, *r, 400);
        all_cos.insert(all_cos.end(), r->cos.begin(), r->cos.end());
        all_err.insert(all_err.end(), r->err.begin(), r->err.end());
        auto& p = pool[rep];
        if (a.name == "off" || a.name == "as_configured") {
          all_cos_off.insert(all_cos_off.end(), r->cos.begin(), r->cos.end());
          all_err_off.insert(all_err_off.end(), r->err.begin(), r->err.end());
          if (!r->cosine_curve.empty()) {
            add_curve(p.cosine, r->cosine_curve);
            add_curve(p.distance, r->distance_curve);
            add_to(p.oracle, r->oracle);
            p.replayed = true;
          }
        }
        if (a.name == "guard") {
          const auto& k = sum["counts"];
          add_to(p.guard, {k["hits"].get<std::size_t>() + k["misses"].get<std::size_t>(),
                           k["hits"].get<std::size_t>(), k["wrong_hits"].get<std::size_t>()});
          p.guarded = true;
          if (sum.contains("server") && sum["server"].contains("risk"))
            delta = sum["server"]["risk"].value("max_wrong_rate", delta);
        }
        cells.push_back(std::move(sum));
      }
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
    calibration.push_back({{"cosine_threshold", th},
                           {"hits_at_or_below", below},
                           {"wrong_share_at_or_below", ratio(below_wrong, below)},
                           {"hits_above", above},
                           {"wrong_share_above", ratio(above_wrong, above)},
                           {"wrong_hits_caught", ratio(above_wrong, above_wrong + below_wrong)}});
  }

  // The trade-off: the live guard against static thresholds and the oracle,
  // replayed offline on the agent-off run of the same workload.
  json tradeoff = json::array();
  std::ofstream tcsv{*dir / "tradeoff.csv"};
  tcsv << "rep,policy,threshold,hit_rate,wrong_rate,hits,wrong,requests\n";
  for (std::size_t rep = 0; rep < reps; ++rep) {
    const auto& p = pool[rep];
    if (!p.replayed || !p.guarded)
      continue;
    auto t = tradeoff_json(p, delta);
    t["rep"] = rep;
    tradeoff.push_back(std::move(t));
    write_curve(tcsv, rep, "static_cosine", p.cosine);
    write_curve(tcsv, rep, "static_distance", p.distance);
    write_curve(tcsv, rep, "guard", {{delta, p.guard}});
    write_curve(tcsv, rep, "oracle", {{o.tolerance, p.oracle}});
  }
  tcsv.close();
  json tradeoff_spread;
  if (!tradeoff.empty()) {
    std::vector<const json*> ts;
    for (const auto& t : tradeoff)
      ts.push_back(&t);
    for (const char* ptr :
         {"/guard/hit_rate", "/guard/wrong_rate", "/oracle/hit_rate", "/guard_over_oracle",
          "/best_cosine_within_delta/hit_rate", "/best_distance_within_delta/hit_rate",
          "/best_cosine_within_guard/hit_rate", "/best_distance_within_guard/hit_rate"})
      tradeoff_spread[std::string{ptr}.substr(1)] = to_json(spread_at(ts, ptr));
  }

  json cfg = {{"rate", w.sc.base_rate},  {"duration_s", w.sc.duration},
              {"steps", steps_of(o)},    {"step_seconds", step_seconds},
              {"levels", levels},        {"resampled_strength", resampled_strength},
              {"zipf_m", w.zipf_m},      {"zipf_s", w.zipf_s},
              {"noise", w.noise},        {"tolerance", o.tolerance},
              {"max_wrong_rate", delta}, {"connections", o.connections},
              {"seed", o.seed},          {"reps", reps},
              {"quick", o.quick}};
  write_json(*dir, {{"experiment", "correctness"},
                    {"config", cfg},
                    {"spearman_cosine_vs_error",
                     {{"all", rho},
                      {"agent_off", rho_off},
                      {"agent_off_drifted", rho_drifted},
                      {"pairs", all_cos.size()},
                      {"drifted_pairs_agent_off", drift_cos.size()}}},
                    {"threshold_calibration", calibration},
                    {"tradeoff", {{"reps", tradeoff}, {"spread", tradeoff_spread}}},
                    {"cells", cells}});

  double max_miss = 0.0;
  for (const auto& c : cells)
    max_miss = std::max(max_miss, c["counts"]["max_miss_error"].get<double>());
  std::ofstream csv{*dir / "results.csv"};
  csv << "rep,drift_strength,formulation,agent,requests,hits,correct_hits,wrong_hits,misses,"
         "errors,hit_rate,wrong_hit_rate,wrong_answer_rate,mean_hit_error,max_hit_error,"
         "max_miss_error,cosine_at_hit_mean,spearman,audits,exact,certified,refused,"
         "agent_state_at_end,p50_ms,p99_ms\n";
  for (const auto& c : cells) {
    const auto& k = c["counts"];
    const auto& d = c["divergence_at_hit"];
    const auto& g = c["guard"];
    std::string state = c["agent"]["state_at_end"].is_string()
                          ? c["agent"]["state_at_end"].get<std::string>()
                          : "?";
    csv << c["rep"] << ',' << c["drift_strength"] << ',' << c["formulation"].get<std::string>()
        << ',' << c["agent"]["mode"].get<std::string>() << ',' << k["requests"] << ',' << k["hits"]
        << ',' << k["correct_hits"] << ',' << k["wrong_hits"] << ',' << k["misses"] << ','
        << k["errors"] << ',' << k["hit_rate"] << ',' << k["wrong_hit_rate"] << ','
        << k["wrong_answer_rate"] << ',' << k["mean_hit_error"] << ',' << k["max_hit_error"] << ','
        << k["max_miss_error"] << ',' << d["cosine_mean"] << ',' << d["spearman_cosine_vs_error"]
        << ',' << (c.contains("server") ? c["server"]["audits"] : json(0)) << ',' << g["exact"]
        << ',' << g["certified"] << ',' << g["refused"] << ',' << state << ','
        << c["latency_ms"]["p50"] << ',' << c["latency_ms"]["p99"] << "\n";
  }
  csv.close();
  auto groups = groups_of(cells);
  std::ofstream md{*dir / "summary.md"};
  md << "# Correctness risk: hits, wrong hits and misses under drift\n\n"
     << "Against the real server, " << w.sc.base_rate << " req/s for " << w.sc.duration
     << " s per cell, prefixes Zipf(" << w.zipf_m << ", " << w.zipf_s << "), " << reps
     << (reps == 1 ? " repetition" : " repetitions with different workload seeds")
     << "; every number is the mean over repetitions with [min, max] where they differ. Each "
        "prefix has its own suffix, which drifts by *strength* per step ("
     << steps_of(o) << " steps of " << fixed(step_seconds, 2) << " s; total shift " << steps_of(o)
     << " x strength)" << (w.noise > 0 ? ", plus per-request noise" : "")
     << ". The **resampled** row is the drift study's original formulation: every request's "
        "suffix is a new draw from N(step x "
     << resampled_strength << ", 1) per value (the drift study's strength). A hit is **wrong** "
     << "when |prediction - fresh| > " << o.tolerance
     << ", the fresh answer coming from the same features sent with `use_cache: false`. "
     << "**off**, **on**, **on_tight** run the service as it was before the reuse guard (`"
     << "--risk.guard=off --agent.trigger=cosine`, audits of 5% of hits): **off** with "
        "`--agent.enabled=false` (audits measure, nothing acts); **on** the cosine agent's "
        "defaults (p95 thresholds 0.01 / 0.05 / 0.2, entry eviction at 0.3); **on_tight** (full "
        "mode) thresholds 0.001 / 0.005 / 0.02, eviction at 0.02. **guard**: the server's "
        "defaults (reuse guard on, tolerance 0.05, max wrong-rate "
     << delta << ", agent with the wrong-rate trigger).\n\n"
     << "| drift / step | agent | requests | correct hits | wrong hits | misses | hit rate | "
        "wrong / hits | wrong / answers | cosine at hit (mean) | agent at end |\n"
     << "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& g : groups) {
    const auto& c = *g.front();
    std::string label
      = drift_row{c["drift_strength"].get<double>(), c["formulation"] == "resampled"}.label();
    md << "| " << label << " | " << c["agent"]["mode"].get<std::string>() << " | "
       << spread_text(g, "/counts/requests", 0) << " | "
       << spread_text(g, "/counts/correct_hits", 0) << " | **"
       << spread_text(g, "/counts/wrong_hits", 0) << "** | " << spread_text(g, "/counts/misses", 0)
       << " | " << spread_text(g, "/counts/hit_rate", 3) << " | "
       << spread_text(g, "/counts/wrong_hit_rate", 3) << " | "
       << spread_text(g, "/counts/wrong_answer_rate", 3) << " | "
       << spread_text(g, "/divergence_at_hit/cosine_mean", 4) << " | "
       << distinct(g, json::json_pointer{"/agent/state_at_end"}) << " |\n";
  }
  bool any_guard = false;
  for (const auto& g : groups)
    any_guard = any_guard || (*g.front())["agent"]["mode"] == "guard";
  if (any_guard) {
    md << "\nThe guard's decisions (answers' `risk.basis`): hits reused an **exact** source "
          "(bit-identical suffix) or a **certified** one (the estimator bounded the wrong-rate at "
          "that input distance); **refused** requests were computed fresh.\n\n"
       << "| drift / step | hit rate | wrong / hits | exact | certified | refused | certified / "
          "hits | served wrong-rate upper bound (server) |\n|---|---|---|---|---|---|---|---|\n";
    for (const auto& g : groups) {
      const auto& c = *g.front();
      if (c["agent"]["mode"] != "guard")
        continue;
      md << "| "
         << drift_row{c["drift_strength"].get<double>(), c["formulation"] == "resampled"}.label()
         << " | " << spread_text(g, "/counts/hit_rate", 3) << " | "
         << spread_text(g, "/counts/wrong_hit_rate", 4) << " | "
         << spread_text(g, "/guard/exact", 0) << " | " << spread_text(g, "/guard/certified", 0)
         << " | " << spread_text(g, "/guard/refused", 0) << " | "
         << spread_text(g, "/guard/certified_share_of_hits", 3) << " | "
         << spread_text(g, "/server/risk/served/upper", 4) << " |\n";
    }
  }
  if (!tradeoff.empty()) {
    auto sp = [&](const char* k, int digits) { return spread_text(tradeoff_spread[k], digits); };
    md << "\n## Hit rate vs wrong rate: the guard, static thresholds and the oracle\n\n"
       << "Totals over every row of the table, per repetition. **Static thresholds are replayed "
          "offline** on the agent-off run of the same workload (same requests, same order): a "
          "request that found a live entry reuses it iff the score is at or below the threshold, "
          "otherwise it is computed fresh and replaces the entry; the score is the cosine "
          "divergence of the cached from the fresh embedding, or the input distance (RMS of the "
          "suffix difference to the request that computed the entry). The **oracle** reuses "
          "exactly the answers within the tolerance (the same replay, scored by the error "
          "itself). The **guard** is measured live. Predictions in the replay come from a local "
          "copy of the server's model.\n\n"
       << "| | hit rate | wrong / hits |\n|---|---|---|\n"
       << "| guard (live, delta " << delta << ") | " << sp("guard/hit_rate", 3) << " | "
       << sp("guard/wrong_rate", 4) << " |\n"
       << "| best static cosine threshold, wrong / hits <= delta | "
       << sp("best_cosine_within_delta/hit_rate", 3) << " | |\n"
       << "| best static input-distance threshold, wrong / hits <= delta | "
       << sp("best_distance_within_delta/hit_rate", 3) << " | |\n"
       << "| best static cosine threshold, wrong / hits <= the guard's | "
       << sp("best_cosine_within_guard/hit_rate", 3) << " | |\n"
       << "| best static input-distance threshold, wrong / hits <= the guard's | "
       << sp("best_distance_within_guard/hit_rate", 3) << " | |\n"
       << "| oracle | " << sp("oracle/hit_rate", 3) << " | 0 |\n\n"
       << "The guard reaches **" << sp("guard_over_oracle", 3)
       << "** of the oracle's hit rate. Plot: `tradeoff.png`; curves in `tradeoff.csv`.\n";
  }
  md << "\nSpearman rank correlation between the cosine divergence of a reused embedding and "
        "its prediction error: **"
     << fixed(rho_drifted, 3) << "** over the " << drift_cos.size()
     << " agent-off hits (all repetitions) whose features had drifted since the entry was stored "
        "(cosine > "
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
     << "Plots: `risk_table.png` (the table as bars), `divergence_vs_error.png` (scatter), "
        "`tradeoff.png` (hit rate vs wrong rate).\n";
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
  auto w = workload_for(o, 6.0);
  if (auto st = validate(w.sc); !st)
    return fail(st.error().message);
  double step_seconds = w.sc.duration / steps_of(o);
  double strength = o.strength_given ? o.strength : 0.1;
  // 0 in the list (or the default's last point) means no TTL: plain LRU.
  std::vector<double> ttls = !o.ttls.empty()
                               ? o.ttls
                               : (o.quick ? std::vector<double>{0.25, 1, 4, 0}
                                          : std::vector<double>{0.25, 0.5, 1, 2, 4, 0});
  const auto reps = reps_of(o);
  json cells = json::array();
  for (std::size_t rep = 0; rep < reps; ++rep) {
    for (double ttl : ttls) {
      bool plain = ttl == 0;
      risk_cell cell;
      cell.experiment = "sweep-ttl";
      cell.name = plain ? "ttl-none" : "ttl-" + fixed(ttl, 2);
      auto group = cell.name;
      if (reps > 1)
        cell.name += "-rep" + std::to_string(rep + 1);
      // Guard, agent and audits off: the TTL is the only thing that bounds
      // staleness; a cache big enough that nothing is evicted.
      cell.server_args
        = {"--risk.guard=off", "--agent.enabled=false", "--audit.rate=0", "--cache.max-size=100000",
           "--cache.ttl-seconds=" + (plain ? std::string{"31536000"} : fixed(ttl, 3))};
      cell.seed = rep_seed(o, rep);
      cell.features = drifting_features(w, cell.seed, strength, step_seconds);
      auto r = run_risk_cell(o, *dir, cell, w);
      if (!r)
        return fail(r.error().message);
      r->summary["group"] = group;
      r->summary["rep"] = rep;
      r->summary["ttl_seconds"] = plain ? json(nullptr) : json(ttl);
      r->summary["plain_lru"] = plain;
      cells.push_back(std::move(r->summary));
    }
  }
  json cfg = {{"rate", w.sc.base_rate},
              {"duration_s", w.sc.duration},
              {"strength_per_step", strength},
              {"step_seconds", step_seconds},
              {"zipf_m", w.zipf_m},
              {"zipf_s", w.zipf_s},
              {"tolerance", o.tolerance},
              {"seed", o.seed},
              {"reps", reps},
              {"quick", o.quick}};
  write_json(*dir, {{"experiment", "sweep-ttl"}, {"config", cfg}, {"cells", cells}});
  std::ofstream csv{*dir / "results.csv"};
  csv << "rep,ttl_s,plain_lru,hit_rate,encodes_per_request,age_mean_ms,age_p95_ms,"
         "cosine_at_hit_mean,cosine_at_hit_p95,wrong_hit_rate,wrong_answer_rate,mean_hit_error\n";
  for (const auto& c : cells) {
    const auto& k = c["counts"];
    const auto& a = c["age_at_hit_ms"];
    const auto& d = c["divergence_at_hit"];
    csv << c["rep"] << ','
        << (c["ttl_seconds"].is_null() ? std::string{""} : fixed(c["ttl_seconds"], 4)) << ','
        << (c["plain_lru"].get<bool>() ? 1 : 0) << ',' << k["hit_rate"] << ','
        << c["encodes_per_request"] << ',' << a["mean"] << ',' << a["p95"] << ','
        << d["cosine_mean"] << ',' << d["cosine_p95"] << ',' << k["wrong_hit_rate"] << ','
        << k["wrong_answer_rate"] << ',' << k["mean_hit_error"] << "\n";
  }
  csv.close();
  std::ofstream md{*dir / "summary.md"};
  md << "# TTL sweep: hit rate vs staleness\n\n"
     << w.sc.base_rate << " req/s for " << w.sc.duration << " s per TTL, prefixes Zipf(" << w.zipf_m
     << ", " << w.zipf_s << "), suffix drift " << strength << " per " << fixed(step_seconds, 2)
     << " s step, " << reps << (reps == 1 ? " repetition" : " repetitions (mean [min, max])")
     << ". Reuse guard, agent and audits off, cache large enough that nothing is evicted: the "
        "TTL alone bounds staleness. **none** is a plain LRU without TTL. Age at hit comes from "
        "the server (`cache_age_ms`); divergence at hit is computed for attributed hits.\n\n"
     << "| TTL s | hit rate | encodes / request | age at hit mean ms | p95 ms | cosine at hit "
        "mean | p95 | wrong / hits | wrong / answers |\n|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& g : groups_of(cells)) {
    const auto& c = *g.front();
    std::string ttl = c["ttl_seconds"].is_null() ? "none" : fixed(c["ttl_seconds"], 2);
    md << "| " << ttl << " | " << spread_text(g, "/counts/hit_rate", 3) << " | "
       << spread_text(g, "/encodes_per_request", 3) << " | "
       << spread_text(g, "/age_at_hit_ms/mean", 1) << " | "
       << spread_text(g, "/age_at_hit_ms/p95", 1) << " | "
       << spread_text(g, "/divergence_at_hit/cosine_mean", 4) << " | "
       << spread_text(g, "/divergence_at_hit/cosine_p95", 4) << " | "
       << spread_text(g, "/counts/wrong_hit_rate", 3) << " | "
       << spread_text(g, "/counts/wrong_answer_rate", 3) << " |\n";
  }
  md << "\nPlot: `ttl_tradeoff.png`.\n";
  md.close();
  finish_experiment("sweep-ttl", *dir);
  return 0;
}

} // namespace sil::lab
