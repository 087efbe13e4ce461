// sil-lab canary: two canary cache policies on a drifting workload, each
// judged live by the server against the policy in place.
//   shorter-ttl:   pure prefix reuse (risk.guard=off), TTL 30 s, under a
//                  user budget of 10% wrong; the candidate shortens the TTL
//                  to 3 s. It cuts wrong answers at a small hit-rate cost
//                  and should be promoted.
//   looser-budget: the defaults (the reuse guard at 1%); the candidate lets
//                  its guard certify reuse up to 30% wrong. Its served
//                  wrong-rate breaches the service's 1% and it should be
//                  rolled back at once.
// The candidate takes half of the prefixes from a quarter of the run on.
// Every answer is checked against a fresh computation afterwards, and each
// request is attributed to the policy that served it (the split hash of its
// first values, as the server computes it, until the decision).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include "core/canary.hpp"
#include "experiments/lab_risk.hpp"

namespace sil::lab {

namespace {

/// Per-value noise and drift per second when --noise / --strength are not
/// given.
constexpr double kCanaryNoise = 1e-3;
constexpr double kCanaryDriftPerSecond = 0.03;
/// The candidate's share of the prefixes.
constexpr double kCanaryShare = 0.5;

struct canary_case {
  std::string name;
  std::string what;
  std::vector<std::string> server_args;
  cache_policy incumbent;
  std::string candidate_json;
  cache_policy candidate;
  std::string expected;
  /// Per-value noise of this case's requests (0: the workload's).
  double noise = 0.0;
};

std::vector<canary_case> cases() {
  // Evidence comes from audits of served hits: more of them than the
  // defaults allow, so that a decision comes within seconds.
  const std::vector<std::string> audits{"--audit.per-second=60", "--audit.max-encoder-share=0.5",
                                        "--canary.interval=0.5", "--agent.enabled=false"};
  canary_case ttl;
  ttl.name = "shorter-ttl";
  ttl.what = "pure prefix reuse with a 30 s TTL under a 10% budget; the candidate's TTL is 3 s";
  ttl.server_args = {"--risk.guard=off", "--risk.max-wrong-rate=0.1",
                     "--agent.disable-wrong-rate=0.3", "--cache.ttl-seconds=30"};
  ttl.incumbent.ttl_seconds = 30.0;
  ttl.candidate_json = R"({"name":"ttl-3s","ttl_seconds":3})";
  ttl.candidate = ttl.incumbent;
  ttl.candidate.name = "ttl-3s";
  ttl.candidate.ttl_seconds = 3.0;
  ttl.expected = "promote";
  canary_case loose;
  loose.name = "looser-budget";
  loose.what = "the reuse guard at 1% (the defaults); the candidate's guard calls an answer "
               "wrong only beyond 0.3 and certifies reuse up to 30% wrong";
  loose.candidate_json = R"({"name":"loose-30pct","max_wrong_rate":0.3,"tolerance":0.3})";
  loose.candidate = loose.incumbent;
  loose.candidate.name = "loose-30pct";
  loose.candidate.max_wrong_rate = 0.3;
  loose.candidate.tolerance = 0.3;
  loose.expected = "rollback";
  // Requests scatter around their prefix's suffix: the distances a budget
  // decides on are the ones where answers start to differ.
  loose.noise = 0.15;
  for (auto* c : {&ttl, &loose})
    c->server_args.insert(c->server_args.end(), audits.begin(), audits.end());
  return {ttl, loose};
}

struct arm_tally {
  std::size_t requests = 0;
  std::size_t hits = 0;
  std::size_t wrong = 0;

  json to_json() const {
    return {{"requests", requests},
            {"hits", hits},
            {"wrong_hits", wrong},
            {"hit_rate", ratio(hits, requests)},
            {"wrong_per_request", ratio(wrong, requests)},
            {"wrong_per_hit", ratio(wrong, hits)}};
  }
};

} // namespace

int cmd_canary(const options& o) {
  auto run = drifting_experiment(o, "canary", 60.0, 16.0, kCanaryNoise, kCanaryDriftPerSecond);
  if (!run)
    return fail(run.error().message);
  const auto& w = run->w;
  const auto* dir = &run->dir;
  const double strength = run->drift_per_second;
  const double start_at = w.sc.duration / 4.0;

  std::ofstream csv{*dir / "timeline.csv"};
  csv << "case,t_s,arm,requests,hits,wrong_hits\n";
  std::ofstream ecsv{*dir / "events.csv"};
  ecsv << "case,t_s,action,manual\n";
  json results = json::array();
  for (const auto& c : cases()) {
    risk_cell cell;
    cell.experiment = "canary";
    cell.name = c.name;
    cell.server_args = c.server_args;
    cell.seed = o.seed;
    feature_spec spec;
    spec.seed = cell.seed;
    spec.noise = c.noise > 0 && o.noise <= 0 ? c.noise : w.noise;
    spec.strength = strength;
    cell.features = [spec](std::uint64_t prefix, double t, std::size_t i) {
      return make_features(spec, prefix, t, i);
    };
    json started;
    cell.action_at = start_at;
    cell.action = [&](const target& t) {
      auto body = std::string{R"({"policy":)"} + c.candidate_json + R"(,"share":)"
                  + std::to_string(kCanaryShare) + "}";
      // The default model's default version, by its declared name.
      auto models = call_json(t, "GET", "/admin/models");
      std::string model = "seed";
      std::string version = "s42";
      if (models.is_object() && !models["versions"].empty()) {
        model = models["versions"][0].value("model", model);
        version = models["versions"][0].value("version", version);
      }
      started
        = call_json(t, "POST", "/admin/models/" + model + "/versions/" + version + "/canary", body);
    };
    auto r = run_risk_cell(o, *dir, cell, w);
    if (!r)
      return fail(r.error().message);
    if (!started.is_object())
      return fail("case " + c.name + ": the server did not start the canary");

    // The decisions, on the run's time axis.
    double t_start = start_at;
    double t_end = w.sc.duration + 1.0;
    std::string verdict = "none";
    json decision;
    if (r->agent.is_object() && r->agent.contains("canaries"))
      for (const auto& d : r->agent["canaries"]["decisions"]) {
        auto t = (d.value("unix_ms", 0.0) - r->start_unix_ms) / 1000.0;
        auto action = d.value("action", std::string{});
        ecsv << c.name << ',' << t << ',' << action << ',' << (d.value("manual", false) ? 1 : 0)
             << "\n";
        if (action == "start")
          t_start = t;
        else if (verdict == "none") {
          verdict = action;
          t_end = t;
          decision = d;
        }
      }
    // Who served each request: the incumbent before the canary and after a
    // rollback, the candidate after a promotion, the split in between.
    auto split = split_values(c.incumbent, c.candidate, 32);
    std::map<std::string, arm_tally> during;
    std::map<std::string, arm_tally> after;
    std::map<std::pair<int, std::string>, arm_tally> per_second;
    for (const auto& rec : r->records) {
      if (!rec.ok)
        continue;
      std::string arm = "A";
      bool in_canary = rec.t >= t_start && rec.t < t_end;
      if (in_canary) {
        auto h = split_hash(rec.features.data(), rec.features.size(), split);
        arm = takes_canary(h, kCanaryShare) ? "B" : "A";
      } else if (rec.t >= t_end && verdict == "promote") {
        arm = "B";
      }
      bool wrong = rec.hit && rec.error > o.tolerance;
      for (auto* tally :
           {&per_second[{static_cast<int>(rec.t), arm}], in_canary        ? &during[arm]
                                                         : rec.t >= t_end ? &after[arm]
                                                                          : nullptr}) {
        if (tally == nullptr)
          continue;
        ++tally->requests;
        tally->hits += rec.hit ? 1 : 0;
        tally->wrong += wrong ? 1 : 0;
      }
    }
    for (const auto& [key, tally] : per_second)
      csv << c.name << ',' << key.first << ',' << key.second << ',' << tally.requests << ','
          << tally.hits << ',' << tally.wrong << "\n";
    json arms = json::object();
    for (const auto& [arm, tally] : during)
      arms[arm] = tally.to_json();
    json afterwards = json::object();
    for (const auto& [arm, tally] : after)
      afterwards[arm] = tally.to_json();
    auto s = r->summary;
    results.push_back({{"case", c.name},
                       {"what", c.what},
                       {"server_args", c.server_args},
                       {"candidate", json::parse(c.candidate_json)},
                       {"share", kCanaryShare},
                       {"expected", c.expected},
                       {"verdict", verdict},
                       {"as_expected", verdict == c.expected},
                       {"canary_start_s", t_start},
                       {"decision_s", verdict == "none" ? json(nullptr) : json(t_end)},
                       {"decision", decision},
                       {"during_canary", arms},
                       {"after_decision", afterwards},
                       {"run", s}});
  }
  csv.close();
  ecsv.close();

  std::ofstream md{*dir / "summary.md"};
  md << "# Canary cache policies\n\n"
     << "One run per case (" << w.sc.base_rate << " req/s for " << w.sc.duration
     << " s, prefixes Zipf(" << w.zipf_m << ", " << w.zipf_s << "), N(0, " << w.noise
     << "^2) noise per value, every prefix's suffix drifting by " << strength
     << " per second). From " << fixed(start_at, 1) << " s a candidate policy takes "
     << static_cast<int>(kCanaryShare * 100)
     << "% of the prefixes; the server's judge compares it with the policy in place every "
        "0.5 s and promotes or rolls it back (README: Canary cache policies). A wrong hit: "
        "|prediction - fresh| > "
     << o.tolerance << ", each answer checked afterwards.\n\n"
     << "| case | candidate | expected | decision | at (s) | arm | requests | hit rate | wrong "
        "hits | wrong / hits |\n|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& c : results) {
    for (const char* arm : {"A", "B"}) {
      if (!c["during_canary"].contains(arm))
        continue;
      const auto& k = c["during_canary"][arm];
      md << "| " << c["case"].get<std::string>() << " | " << c["candidate"].dump() << " | "
         << c["expected"].get<std::string>() << " | " << c["verdict"].get<std::string>() << " | "
         << (c["decision_s"].is_number() ? fixed(c["decision_s"].get<double>(), 1) : "-") << " | "
         << (std::string{arm} == "A" ? "A (in place)" : "B (candidate)") << " | " << k["requests"]
         << " | " << fixed(k["hit_rate"].get<double>(), 3) << " | " << k["wrong_hits"] << " | "
         << fixed(k["wrong_per_hit"].get<double>(), 4) << " |\n";
    }
  }
  md << "\nDuring the canary, by the policy that served the request. The judge's reasons:\n\n";
  for (const auto& c : results)
    md << "- **" << c["case"].get<std::string>() << "**: "
       << (c["decision"].is_object() ? c["decision"].value("reason", std::string{"-"})
                                     : std::string{"no decision"})
       << "\n";
  md << "\n![canary cache policies](canary.png)\n";
  md.close();
  write_json(*dir, {{"experiment", "canary"},
                    {"config",
                     {{"tolerance", o.tolerance},
                      {"seed", o.seed},
                      {"quick", o.quick},
                      {"rate", w.sc.base_rate},
                      {"duration_s", w.sc.duration},
                      {"canary_start_s", start_at},
                      {"share", kCanaryShare},
                      {"drift_per_second", strength},
                      {"noise", w.noise}}},
                    {"cases", results}});
  finish_experiment("canary", *dir);
  for (const auto& c : results)
    if (!c["as_expected"].get<bool>())
      std::fprintf(stderr, "[canary] case %s: expected %s, the judge decided %s\n",
                   c["case"].get<std::string>().c_str(), c["expected"].get<std::string>().c_str(),
                   c["verdict"].get<std::string>().c_str());
  return 0;
}

} // namespace sil::lab
