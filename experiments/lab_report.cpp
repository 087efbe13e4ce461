// sil-lab all: every experiment, then OUT/REPORT.md, which states the
// original study's four findings as measured here. Every number and every
// verdict in the report is computed from the experiments' results.json, by
// the rules written next to each finding below.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "core/build_info.hpp"
#include "experiments/lab.hpp"

namespace sil::lab {

namespace {

json load_results(const fs::path& root, const char* name) {
  std::ifstream in{root / name / "results.json"};
  if (!in)
    return nullptr;
  auto j = json::parse(in, nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

std::string cpu_model() {
  std::ifstream in{"/proc/cpuinfo"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      auto c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  return "unknown CPU";
}

/// The lines of the `n`-th (0-based) markdown table in `path`.
std::string nth_table(const fs::path& path, std::size_t n) {
  std::ifstream in{path};
  std::string line;
  std::string out;
  std::size_t seen = 0;
  bool in_table = false;
  while (std::getline(in, line)) {
    bool row = line.rfind('|', 0) == 0;
    if (row && seen == n)
      out += line + "\n";
    if (in_table && !row && seen++ == n)
      break;
    in_table = row;
  }
  return out;
}

double ms(const json& run, const char* p) {
  return run["latency_ms"][p].get<double>();
}

/// The cells of one repetition (0-based).
std::vector<const json*> rep_cells(const json& cells, std::size_t rep) {
  std::vector<const json*> out;
  for (const auto& c : cells)
    if (c.value("rep", std::size_t{0}) == rep)
      out.push_back(&c);
  return out;
}

std::size_t reps_in(const json& results) {
  return results["config"].value("reps", std::size_t{1});
}

/// The cell of a repetition whose fields equal `match` (nullptr if none).
const json* find_cell(const json& cells, std::size_t rep, const json& match) {
  for (const auto* c : rep_cells(cells, rep)) {
    bool all = true;
    for (const auto& [k, v] : match.items())
      all = all && c->contains(k) && (*c)[k] == v;
    if (all)
      return c;
  }
  return nullptr;
}

/// The cells of every repetition whose fields equal `match`.
std::vector<const json*> matching(const json& cells, const json& match) {
  std::vector<const json*> out;
  for (const auto& c : cells) {
    bool all = true;
    for (const auto& [k, v] : match.items())
      all = all && c.contains(k) && c[k] == v;
    if (all)
      out.push_back(&c);
  }
  return out;
}

std::string reps_note(std::size_t reps) {
  return reps == 1 ? " (one repetition: a quick run, not a verdict)" : "";
}

void finding_latency(std::ostream& md, const json& load) {
  md << "### 1. Prefix caching cuts latency for repeated requests\n\n";
  if (!load.is_object() || !load.contains("cells")) {
    md << "Not measured (load results missing).\n\n";
    return;
  }
  const auto& cells = load["cells"];
  auto reps = reps_in(load);
  // Rule, per repetition: holds if the cache lowers both the mean and the
  // median latency under steady traffic.
  std::size_t holds = 0;
  for (std::size_t r = 0; r < reps; ++r) {
    const auto* on = find_cell(cells, r, {{"shape", "steady"}, {"run", "cache_on"}});
    const auto* off = find_cell(cells, r, {{"shape", "steady"}, {"run", "cache_off"}});
    if (on != nullptr && off != nullptr && ms(*on, "mean") < ms(*off, "mean")
        && ms(*on, "p50") < ms(*off, "p50"))
      ++holds;
  }
  auto on = matching(cells, {{"shape", "steady"}, {"run", "cache_on"}});
  auto off = matching(cells, {{"shape", "steady"}, {"run", "cache_off"}});
  md << rep_verdict(holds, reps) << reps_note(reps) << " Steady traffic ("
     << load["config"]["steady_rate"] << " req/s, Zipf prefixes, hit rate "
     << spread_text(on, "/hit_rate", 3) << "): mean latency "
     << spread_text(on, "/latency_ms/mean", 3) << " ms with the cache vs "
     << spread_text(off, "/latency_ms/mean", 3) << " ms without, p50 "
     << spread_text(on, "/latency_ms/p50", 3) << " vs " << spread_text(off, "/latency_ms/p50", 3)
     << " ms (mean [min, max] over repetitions); the encoder did "
     << spread_text(on, "/encodes_per_request", 3)
     << " encodes per request instead of 1. Condition: requests must share prefixes; the gain "
        "is the encoder time a hit skips (a hit's latency is mostly HTTP and actor hops, see "
        "[performance.md](performance.md)).\n\n";
}

/// The agent-off (or --url) cells of the shifted formulation, by drift level.
std::vector<std::vector<const json*>> off_levels(const json& cor) {
  std::vector<std::vector<const json*>> out;
  for (const auto& g : groups_of(cor["cells"])) {
    const auto& c = *g.front();
    auto mode = c["agent"]["mode"].get<std::string>();
    if ((mode == "off" || mode == "as_configured") && c.value("formulation", "") == "shifted")
      out.push_back(g);
  }
  return out;
}

void finding_drift(std::ostream& md, const json& cor, const json& drift) {
  md << "### 2. Drift raises correctness risk even while the hit rate stays high\n\n";
  if (!cor.is_object()) {
    md << "Not measured (correctness results missing).\n\n";
    return;
  }
  auto off = off_levels(cor);
  if (off.size() < 2) {
    md << "Not enough drift levels measured.\n\n";
    return;
  }
  auto reps = reps_in(cor);
  const auto& cells = cor["cells"];
  auto lo_strength = (*off.front().front())["drift_strength"];
  auto hi_strength = (*off.back().front())["drift_strength"];
  // Rule, per repetition: holds if, with the agent off, the share of wrong
  // answers at the strongest drift exceeds that at the weakest while the hit
  // rate stays within 10% of it.
  std::size_t holds = 0;
  for (std::size_t r = 0; r < reps; ++r) {
    const json* lo = nullptr;
    const json* hi = nullptr;
    for (const auto* c : rep_cells(cells, r)) {
      if ((*c)["formulation"] != "shifted"
          || (*c)["agent"]["mode"] != (*off.front().front())["agent"]["mode"])
        continue;
      if ((*c)["drift_strength"] == lo_strength)
        lo = c;
      if ((*c)["drift_strength"] == hi_strength)
        hi = c;
    }
    if (lo != nullptr && hi != nullptr
        && (*hi)["counts"]["wrong_answer_rate"].get<double>()
             > (*lo)["counts"]["wrong_answer_rate"].get<double>()
        && (*hi)["counts"]["hit_rate"].get<double>()
             >= 0.9 * (*lo)["counts"]["hit_rate"].get<double>())
      ++holds;
  }
  md << rep_verdict(holds, reps) << reps_note(reps) << " With the agent off, the hit rate is "
     << spread_text(off.front(), "/counts/hit_rate", 3) << " at drift " << lo_strength
     << " per step and " << spread_text(off.back(), "/counts/hit_rate", 3) << " at " << hi_strength
     << ", while the share of wrong answers (prediction error > " << cor["config"]["tolerance"]
     << ") grows:";
  for (const auto& g : off)
    md << " " << spread_text(g, "/counts/wrong_answer_rate", 3) << " at "
       << (*g.front())["drift_strength"] << ";";
  md << " the hit rate says nothing about it. ";
  for (const char* mode : {"on", "on_tight", "guard"}) {
    auto g = matching(cells, {{"formulation", "shifted"}, {"drift_strength", hi_strength}});
    std::vector<const json*> arm;
    for (const auto* c : g)
      if ((*c)["agent"]["mode"] == mode)
        arm.push_back(c);
    if (arm.empty())
      continue;
    md << "At the strongest drift, "
       << (std::string{mode} == "guard" ? "with the reuse guard"
           : std::string{mode} == "on"  ? "with the cosine agent (default thresholds)"
                                        : "with the cosine agent's tight thresholds")
       << ": wrong answers " << spread_text(arm, "/counts/wrong_answer_rate", 3) << " at hit rate "
       << spread_text(arm, "/counts/hit_rate", 3) << ". ";
  }
  const auto& rho = cor["spearman_cosine_vs_error"];
  // Conventional bands for a rank correlation.
  double r = rho["agent_off_drifted"].get<double>();
  const char* strength = r >= 0.7 ? "strong" : r >= 0.4 ? "moderate" : "weak";
  md << "Is the divergence the audits measure a trustworthy proxy? Spearman rho(cosine "
        "divergence, prediction error) = **"
     << fixed(r, 3) << "** over " << rho["drifted_pairs_agent_off"]
     << " drifted hits of all repetitions, a " << strength << " rank correlation ("
     << fixed(rho["all"], 3) << " over all " << rho["pairs"]
     << " attributed hits, which include exact reuses with divergence 0 and no error): larger "
        "divergence does mean larger error, but the same divergence gives different errors on "
        "different inputs, so a threshold on it is a statistical bound, not a guarantee. ";
  // The loosest threshold under which at most 5% of hits are wrong.
  double safe = -1;
  for (const auto& c : cor["threshold_calibration"])
    if (c["hits_at_or_below"].get<double>() > 0
        && c["wrong_share_at_or_below"].get<double>() <= 0.05)
      safe = c["cosine_threshold"].get<double>();
  if (safe > 0)
    md << "Its scale matters: hits with cosine divergence at or below " << safe
       << " were wrong at most 5% of the time, well under the cosine agent's default thresholds "
          "(0.05 to shorten the TTL, 0.2 to disable), which let many wrong hits through. ";
  if (drift.is_object())
    for (const auto& row : drift["steps"])
      if (row["formulation"] == "resampled" && row["step"] == 0)
        md << "Condition: the risk comes from what the key leaves out. In the drift study's "
              "original formulation (suffix re-drawn per request) the p50 cosine divergence is "
           << fixed(row["cosine_p50"], 3) << " already at step 0 and "
           << fixed(row["share_err_over_tolerance"], 2)
           << " of reuses are wrong before any drift: with K=4 of 32 features as the key, reuse "
              "across different suffixes is unsafe for this model regardless of drift (the "
              "table's resampled row measures it against the server).";
  md << "\n\n";
}

void finding_ttl(std::ostream& md, const json& ttl) {
  md << "### 3. TTL bounds staleness at the cost of recomputation\n\n";
  if (!ttl.is_object() || ttl["cells"].size() < 2) {
    md << "Not measured (sweep-ttl results missing).\n\n";
    return;
  }
  // Rule, per repetition: holds if every finite TTL bounds the age of what
  // hits are served (p95 age below the TTL), the shortest TTL serves less
  // divergence than no TTL, and pays for it with more encodes per request.
  auto reps = reps_in(ttl);
  std::size_t holds = 0;
  std::size_t bounded_reps = 0;
  bool measured = false;
  for (std::size_t r = 0; r < reps; ++r) {
    bool bounded = true;
    const json* shortest = nullptr;
    const json* none = nullptr;
    for (const auto* c : rep_cells(ttl["cells"], r)) {
      if ((*c)["ttl_seconds"].is_null()) {
        none = c;
        continue;
      }
      if (shortest == nullptr)
        shortest = c;
      if ((*c)["age_at_hit_ms"]["p95"].get<double>() > (*c)["ttl_seconds"].get<double>() * 1000.0)
        bounded = false;
    }
    if (shortest == nullptr || none == nullptr)
      continue;
    measured = true;
    auto cos = [](const json* c) { return (*c)["divergence_at_hit"]["cosine_mean"].get<double>(); };
    auto enc = [](const json* c) { return (*c)["encodes_per_request"].get<double>(); };
    bounded_reps += bounded ? 1 : 0;
    holds += bounded && cos(shortest) < cos(none) && enc(shortest) > enc(none) ? 1 : 0;
  }
  if (!measured) {
    md << "Needs a finite TTL and the plain-LRU point.\n\n";
    return;
  }
  md << rep_verdict(holds, reps) << reps_note(reps) << " Under drift of "
     << ttl["config"]["strength_per_step"] << " per " << fixed(ttl["config"]["step_seconds"], 2)
     << " s, with nothing evicted (mean [min, max] over repetitions):";
  for (const auto& g : groups_of(ttl["cells"])) {
    const auto& c = *g.front();
    std::string t
      = c["ttl_seconds"].is_null() ? "no TTL" : "TTL " + fixed(c["ttl_seconds"], 2) + " s";
    md << " " << t << ": hit rate " << spread_text(g, "/counts/hit_rate", 3) << ", age at hit p95 "
       << spread_text(g, "/age_at_hit_ms/p95", 0) << " ms, mean cosine at hit "
       << spread_text(g, "/divergence_at_hit/cosine_mean", 4) << ", wrong answers "
       << spread_text(g, "/counts/wrong_answer_rate", 3) << ", "
       << spread_text(g, "/encodes_per_request", 3) << " encodes/request;";
  }
  md << " Every finite TTL kept the p95 age of served entries under the TTL in " << bounded_reps
     << " of " << reps
     << " repetitions. Condition: the TTL bounds *age*, and age bounds staleness only as fast as "
        "the inputs drift; the right TTL is the one at which drift in that time stays under the "
        "tolerance.\n\n";
}

void finding_tail(std::ostream& md, const json& load) {
  md << "### 4. Caching helps tail latency under steady traffic but can hurt it under bursts; "
        "single-flight\n\n";
  if (!load.is_object() || !load.contains("cells")) {
    md << "Not measured (load results missing).\n\n";
    return;
  }
  const auto& cells = load["cells"];
  auto reps = reps_in(load);
  // Rules, per repetition: "helps under steady" if the cache lowers p99
  // under steady traffic; "hurts under bursts" if the cache's p99 under
  // bursts is above the cache-off p99.
  std::size_t helps = 0;
  std::size_t hurts = 0;
  for (std::size_t r = 0; r < reps; ++r) {
    auto p99 = [&](const char* shape, const char* run) {
      const auto* c = find_cell(cells, r, {{"shape", shape}, {"run", run}});
      return c == nullptr ? NAN : ms(*c, "p99");
    };
    helps += p99("steady", "cache_on") < p99("steady", "cache_off") ? 1 : 0;
    hurts += p99("bursty", "cache_on") > p99("bursty", "cache_off") ? 1 : 0;
  }
  auto g = [&](const char* shape, const char* run) {
    return matching(cells, {{"shape", shape}, {"run", run}});
  };
  auto lat = [&](const char* shape, const char* run, const char* p) {
    return spread_text(g(shape, run), std::string{"/latency_ms/"} + p, 3);
  };
  md << "Latencies are mean [min, max] over " << reps << " repetition" << (reps == 1 ? "" : "s")
     << reps_note(reps) << ". Steady: p99 " << lat("steady", "cache_on", "p99")
     << " ms with the cache vs " << lat("steady", "cache_off", "p99") << " ms without; p99.9 "
     << lat("steady", "cache_on", "p999") << " vs " << lat("steady", "cache_off", "p999")
     << " ms. Bursts (" << load["config"]["burst_rate"] << " req/s for "
     << load["config"]["burst_length_s"] << " s every " << load["config"]["burst_period_s"]
     << " s, each a flash crowd on new prefixes): p99 " << lat("bursty", "cache_on", "p99")
     << " ms with the cache vs " << lat("bursty", "cache_off", "p99") << " ms without; p99.9 "
     << lat("bursty", "cache_on", "p999") << " vs " << lat("bursty", "cache_off", "p999")
     << " ms. So: helps the p99 under steady traffic: " << rep_verdict(helps, reps)
     << "; hurts the p99 under bursts: " << rep_verdict(hurts, reps) << ".";
  auto nsf = g("bursty", "cache_on_no_single_flight");
  if (!nsf.empty()) {
    auto on = g("bursty", "cache_on");
    md << " Single-flight: under bursts it merged " << spread_text(on, "/single_flight_joins", 0)
       << " concurrent misses into their leaders' computations ("
       << spread_text(on, "/encodes_per_request", 3) << " encodes per request vs "
       << spread_text(nsf, "/encodes_per_request", 3) << " without it); p99 "
       << lat("bursty", "cache_on", "p99") << " ms with vs "
       << lat("bursty", "cache_on_no_single_flight", "p99") << " ms without, p99.9 "
       << lat("bursty", "cache_on", "p999") << " vs "
       << lat("bursty", "cache_on_no_single_flight", "p999") << " ms.";
  }
  md << " Why: here a miss costs the same with the cache on as with it off (the lookup is a "
        "few microseconds), so the cache cannot make a burst worse than no cache; it sheds the "
        "encoder work of every hit, which is what keeps bursts from queueing. Single-flight only "
        "matters while a key's arrival rate times the encode time is well above 1; at these "
        "rates a base-model encode (~0.5 ms) finishes before many duplicates arrive. A verdict "
        "that flips between repetitions means the difference is within run-to-run noise on "
        "this machine.\n\n";
}

void guard_section(std::ostream& md, const fs::path& root, const json& cor, const json& guard) {
  md << "## The reuse guard: wrong answers within an error budget\n\n";
  if (cor.is_object()) {
    auto reps = reps_in(cor);
    double delta = cor["config"].value("max_wrong_rate", 0.01);
    // Rule: holds if, in every row and every repetition, the guard's wrong
    // hits are at most delta of its hits.
    std::size_t rows = 0;
    std::size_t rows_ok = 0;
    std::vector<bool> rep_ok(reps, true);
    std::vector<const json*> exact0;
    for (const auto& g : groups_of(cor["cells"])) {
      if ((*g.front())["agent"]["mode"] != "guard")
        continue;
      ++rows;
      bool ok = true;
      for (const auto* c : g)
        if ((*c)["counts"]["wrong_hit_rate"].get<double>() > delta) {
          ok = false;
          rep_ok[std::min(reps - 1, c->value("rep", std::size_t{0}))] = false;
        }
      rows_ok += ok ? 1 : 0;
      if ((*g.front())["drift_strength"] == 0.0 && (*g.front())["formulation"] == "shifted")
        exact0 = g;
    }
    if (rows > 0) {
      auto holds = static_cast<std::size_t>(std::count(rep_ok.begin(), rep_ok.end(), true));
      md << "**Wrong / hits <= " << delta << " in every row of the correctness table:** "
         << rep_verdict(holds, reps) << reps_note(reps) << "; " << rows_ok << " of " << rows
         << " rows kept it in every repetition.";
      if (!exact0.empty())
        md << " Without drift (every request of a prefix repeats the same features) the guard's "
              "hit rate is "
           << spread_text(exact0, "/counts/hit_rate", 3) << ", "
           << spread_text(exact0, "/counts/repeat_hit_rate", 3)
           << " of the requests that repeat a prefix (a prefix's first request is always a "
              "miss).";
      md << "\n\n";
    }
    const auto& sp = cor["tradeoff"]["spread"];
    if (sp.is_object() && !sp.empty()) {
      auto f = [&](const char* k, int digits) {
        return spread_text(sp.contains(k) ? sp[k] : json(nullptr), digits);
      };
      md << "**Against static thresholds and the oracle** (totals over the correctness table's "
            "rows; static thresholds and the oracle are **replayed offline** on the agent-off "
            "run of the same workload, the guard is measured live): the guard serves a hit rate "
            "of "
         << f("guard/hit_rate", 3) << " at wrong / hits " << f("guard/wrong_rate", 4)
         << ". The best static threshold with wrong / hits <= " << delta << " reaches "
         << f("best_cosine_within_delta/hit_rate", 3) << " (cosine divergence) or "
         << f("best_distance_within_delta/hit_rate", 3)
         << " (input distance); at wrong / hits no higher than the guard's achieved rate, "
         << f("best_cosine_within_guard/hit_rate", 3) << " (cosine) or "
         << f("best_distance_within_guard/hit_rate", 3) << " (input distance). The oracle "
         << "(reuse exactly when the answer is within the tolerance) reaches "
         << f("oracle/hit_rate", 3) << "; the guard gets **" << f("guard_over_oracle", 3)
         << "** of it. A static threshold has to be chosen after the fact for one workload; "
            "the guard learns its reach online and needs no threshold. Details: "
            "[correctness/summary.md](correctness/summary.md).\n\n"
         << "![hit rate vs wrong rate](correctness/tradeoff.png)\n\n";
    }
  }
  if (!guard.is_object()) {
    md << "Calibration, scenario and timeline not measured (guard results missing).\n\n";
    return;
  }
  md << "### Calibration: achieved vs target wrong-rate\n\n"
     << nth_table(root / "guard" / "summary.md", 0) << "\n"
     << "![achieved vs target](guard/calibration.png)\n\n"
     << "### Scenario: harmless noise, a sudden shift, one drifting feature\n\n"
     << nth_table(root / "guard" / "summary.md", 1) << "\n";
  const auto& sc = guard["scenario"];
  std::vector<const json*> noise;
  for (const auto& c : sc["cells"])
    if (c["arm"] == "guard")
      noise.push_back(&c);
  if (!noise.empty())
    md << "Harmless noise is still reused: in phase (i), where no two requests are "
          "bit-identical, the guard's hit rate is "
       << spread_text(noise, "/phases/noise/hit_rate", 3) << " and "
       << spread_text(noise, "/phases/noise/certified_share_of_hits", 3)
       << " of its hits are certified (not exact). Details: "
          "[guard/summary.md](guard/summary.md).\n\n";
  md << "![scenario](guard/scenario.png)\n\n"
     << "### Timeline of one drifting run\n\n"
     << "![errors of served hits, the guard's decisions and the agent's mode over "
        "time](guard/timeline.png)\n\n";
}

std::string capacity_text(const json& cap) {
  // Zipf groups per capacity by name: lru_ttl-C, lru-C, and if run
  // lru_ttl_hop-C (the read path off) and tinylfu-C; scan/ and bursty/
  // groups for the other workloads. Means over repetitions.
  std::map<std::string, std::vector<const json*>> by_group;
  std::vector<double> caps;
  for (auto& g : groups_of(cap["cells"])) {
    const auto& first = *g.front();
    by_group[first.value("group", std::string{})] = g;
    if (first.value("workload", std::string{"zipf"}) == "zipf"
        && first.value("policy", std::string{}) == "lru")
      caps.push_back(first["capacity"].get<double>());
  }
  auto mean = [&](const std::string& prefix, const std::string& policy, double c) {
    auto it = by_group.find(prefix + policy + "-" + fixed(c, 0));
    return it == by_group.end()
             ? std::optional<double>{}
             : std::optional<double>{spread_at(it->second, "/hit_rate_second_half").mean};
  };
  double m = cap["config"]["zipf_m"].get<double>();
  double worst_che = 0;
  double worst_hop = 0;
  bool hop = false;
  double ttl_equal_up_to = 0;
  bool ttl_diverged = false;
  std::string first_gap;
  double tiny_best = -1;
  double tiny_best_at = 0;
  double tiny_worst = 1;
  for (double c : caps) {
    auto a = mean("", "lru_ttl", c);
    auto b = mean("", "lru", c);
    if (!a || !b)
      continue;
    if (auto h = mean("", "lru_ttl_hop", c)) {
      hop = true;
      worst_hop = std::max(worst_hop, std::abs(*a - *h));
    }
    if (auto t = mean("", "tinylfu", c)) {
      if (*t - *b > tiny_best) {
        tiny_best = *t - *b;
        tiny_best_at = c;
      }
      tiny_worst = std::min(tiny_worst, *t - *b);
    }
    const auto& cell = *by_group.at("lru-" + fixed(c, 0)).front();
    if (c <= m / 2)
      worst_che = std::max(worst_che, std::abs(*b - cell["che_lru_hit_rate"].get<double>()));
    double gap = *b - *a;
    if (!ttl_diverged && gap <= 0.02) {
      ttl_equal_up_to = c;
    } else if (!ttl_diverged) {
      ttl_diverged = true;
      first_gap = "at " + fixed(c, 0) + " entries plain LRU reaches " + fixed(*b, 3)
                  + " and LRU+TTL " + fixed(*a, 3);
    }
  }
  std::string out = "Up to half as many entries as prefixes, the measured plain-LRU hit rate "
                    "(mean over repetitions) is within "
                    + fixed(worst_che, 3)
                    + " of Che's approximation (beyond that, the first requests of rare prefixes "
                      "are still compulsory misses in a run this short). ";
  if (ttl_equal_up_to > 0)
    out += "The " + fixed(cap["config"]["ttl_seconds"], 1)
           + " s TTL costs at most 0.02 of hit rate up to " + fixed(ttl_equal_up_to, 0)
           + " entries";
  out += ttl_diverged ? "; " + first_gap
                          + ": a large cache holds the long tail, whose entries "
                            "expire before they are reused."
                      : ".";
  if (hop)
    out += " Answering hits on the read path (batched, lossy recency) instead of through the "
           "cache owner changes the LRU+TTL hit rate by at most "
           + fixed(worst_hop, 4) + " at any capacity.";
  if (tiny_best > -1)
    out += " W-TinyLFU admission changes the Zipf hit rate by " + fixed(tiny_worst, 3) + " to "
           + fixed(tiny_best, 3) + " against plain LRU (largest gain at " + fixed(tiny_best_at, 0)
           + " entries).";
  for (const char* wl : {"scan", "bursty"}) {
    std::string part;
    for (double c : caps) {
      auto b = mean(std::string{wl} + "/", "lru", c);
      auto t = mean(std::string{wl} + "/", "tinylfu", c);
      if (b && t)
        part += std::string{part.empty() ? "" : ", "} + fixed(*t, 3) + " vs " + fixed(*b, 3)
                + " at " + fixed(c, 0) + " entries";
    }
    if (!part.empty())
      out += std::string{" Under the "} + wl + " workload W-TinyLFU vs plain LRU: " + part + ".";
  }
  return out;
}

void write_report(const options& o, double seconds) {
  fs::path root{o.out};
  auto load = load_results(root, "load");
  auto drift = load_results(root, "drift");
  auto cor = load_results(root, "correctness");
  auto guard = load_results(root, "guard");
  auto ttl = load_results(root, "sweep-ttl");
  auto cap = load_results(root, "sweep-capacity");
  std::ofstream md{root / "REPORT.md"};
  auto now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  // The commit sil-lab was built from ("-dirty": built with local changes).
  std::string commit = sil::build_commit();
  bool dirty = false;
  if (auto d = commit.find("-dirty"); d != std::string::npos) {
    commit.erase(d);
    dirty = true;
  }
  md << "# Stateful Inference Lab: experiment report\n\n"
     << "Generated by `./build/sil-lab " << (seconds > 0 ? "all" : "report")
     << (o.quick ? " --quick" : "") << "` on " << date;
  if (seconds > 0)
    md << " in " << fixed(seconds / 60.0, 1) << " minutes";
  md << "; commit " << (commit.empty() ? "unknown" : commit)
     << (dirty ? " (with local changes)" : "") << "; " << cpu_model() << ", "
     << std::thread::hardware_concurrency() << " hardware threads; "
     << (reps_of(o) == 1 ? std::string{"one repetition per experiment (a quick run: numbers, not "
                                       "verdicts)"}
                         : std::to_string(reps_of(o))
                             + " repetitions with different workload seeds per experiment "
                               "(numbers are mean [min, max] over them)")
     << ". Every number below comes from the `results.json` files next to this report; the "
        "verdict rules are in `experiments/lab_report.cpp`.\n\n"
     << "Reproduce (after the README's build command): `./build/sil-lab all` (full, about "
        "25 minutes) or `./build/sil-lab all --quick` (under 5 minutes, one repetition).\n\n";
  md << "## Headline: correctness risk under drift\n\n";
  if (cor.is_object()) {
    md << nth_table(root / "correctness" / "summary.md", 0) << "\n"
       << "Wrong hit: |prediction - fresh| > " << cor["config"]["tolerance"]
       << ", the fresh answer from the same features with `use_cache: false`. Spearman rho "
          "between cosine divergence and prediction error: **"
       << fixed(cor["spearman_cosine_vs_error"]["agent_off_drifted"], 3)
       << "** on drifted hits. Details, threshold calibration and plots: "
          "[correctness/summary.md](correctness/summary.md).\n\n"
       << "![correct hits, wrong hits, misses](correctness/risk_table.png)\n\n";
  } else {
    md << "Not measured.\n\n";
  }
  guard_section(md, root, cor, guard);
  md << "## The original study's four findings, re-tested\n\n";
  finding_latency(md, load);
  finding_drift(md, cor, drift);
  finding_ttl(md, ttl);
  finding_tail(md, load);
  md << "## Capacity\n\n";
  if (cap.is_object()) {
    md << nth_table(root / "sweep-capacity" / "summary.md", 0) << "\n"
       << capacity_text(cap) << "\n\n"
       << "![hit rate vs capacity](sweep-capacity/capacity.png)\n\n";
  }
  md << "## Canary cache policies\n\n";
  if (auto canary = load_results(root, "canary"); canary.is_object()) {
    md << nth_table(root / "canary" / "summary.md", 0) << "\n";
    for (const auto& c : canary["cases"])
      md << "- **" << c["case"].get<std::string>() << "** (" << c["what"].get<std::string>()
         << "): expected " << c["expected"].get<std::string>() << ", the judge decided **"
         << c["verdict"].get<std::string>() << "**"
         << (c["decision_s"].is_number()
               ? " after "
                   + fixed(c["decision_s"].get<double>() - c["canary_start_s"].get<double>(), 1)
                   + " s of canary"
               : std::string{})
         << ".\n";
    md << "\nDetails: [canary/summary.md](canary/summary.md).\n\n"
       << "![canary cache policies](canary/canary.png)\n\n";
  } else {
    md << "Not measured (`sil-lab canary`).\n\n";
  }
  md << "## All experiments\n\n"
     << "| experiment | summary | plots |\n|---|---|---|\n"
     << "| load | [load/summary.md](load/summary.md) | [latency](load/latency.png), "
        "[burst timeline](load/burst_timeline.png) |\n"
     << "| drift (pure model) | [drift/summary.md](drift/summary.md) | "
        "[divergence](drift/divergence.png), [prediction error](drift/prediction_error.png) |\n"
     << "| correctness | [correctness/summary.md](correctness/summary.md) | "
        "[table](correctness/risk_table.png), "
        "[divergence vs error](correctness/divergence_vs_error.png), "
        "[hit rate vs wrong rate](correctness/tradeoff.png) |\n"
     << "| guard | [guard/summary.md](guard/summary.md) | "
        "[calibration](guard/calibration.png), [scenario](guard/scenario.png), "
        "[timeline](guard/timeline.png) |\n"
     << "| sweep-ttl | [sweep-ttl/summary.md](sweep-ttl/summary.md) | "
        "[trade-off](sweep-ttl/ttl_tradeoff.png) |\n"
     << "| sweep-capacity | [sweep-capacity/summary.md](sweep-capacity/summary.md) | "
        "[capacity](sweep-capacity/capacity.png) |\n"
     << "| canary | [canary/summary.md](canary/summary.md) | [canary](canary/canary.png) |\n";
}

} // namespace

namespace {

const char* const report_experiments[]
  = {"load", "drift", "correctness", "guard", "sweep-ttl", "sweep-capacity", "canary"};

/// A --quick `all` or `report` must not touch a full run's results (nor
/// rewrite its REPORT.md as a quick one): checked before anything runs.
status quick_may_write_all(const options& o) {
  for (const char* name : report_experiments)
    if (auto st = quick_may_write(o, name); !st)
      return st;
  return ok();
}

} // namespace

int cmd_report(const options& o) {
  if (auto st = quick_may_write_all(o); !st)
    return fail(st.error().message);
  if (!fs::exists(fs::path{o.out} / "correctness" / "results.json"))
    return fail("no results under " + o.out + " (run sil-lab all first)");
  write_report(o, 0.0);
  std::fprintf(stderr, "[report] wrote %s\n", (fs::path{o.out} / "REPORT.md").string().c_str());
  return 0;
}

int cmd_all(const options& o) {
  using cmd_fn = int (*)(const options&);
  const std::pair<const char*, cmd_fn> steps[]
    = {{"load", cmd_load},    {"drift", cmd_drift},         {"correctness", cmd_correctness},
       {"guard", cmd_guard},  {"sweep-ttl", cmd_sweep_ttl}, {"sweep-capacity", cmd_sweep_capacity},
       {"canary", cmd_canary}};
  if (auto st = quick_may_write_all(o); !st)
    return fail(st.error().message);
  auto started = lab_elapsed();
  for (const auto& [name, fn] : steps) {
    std::fprintf(stderr, "[all] %s (%.1f s so far)\n", name, lab_elapsed() - started);
    if (!o.url.empty()
        && (std::string{name}.rfind("sweep-", 0) == 0 || std::string{name} == "guard"
            || std::string{name} == "canary")) {
      std::fprintf(stderr, "[all] --url: skipping %s (it varies startup settings)\n", name);
      continue;
    }
    options sub = o;
    sub.command = name;
    if (fn(sub) != 0)
      return fail(std::string{"all: "} + name + " failed");
  }
  write_report(o, lab_elapsed() - started);
  auto took = lab_elapsed() - started;
  std::fprintf(stderr, "[all] wrote %s in %.1f s (%.1f min)\n",
               (fs::path{o.out} / "REPORT.md").string().c_str(), took, took / 60.0);
  return 0;
}

} // namespace sil::lab
