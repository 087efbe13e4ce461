// sil-lab sweep-capacity: hit rate vs cache capacity, for LRU+TTL, a plain
// LRU (no TTL) and W-TinyLFU admission (cache.admission=tinylfu, no TTL),
// on three workloads:
//  - zipf: Zipf prefixes (the full capacity grid), next to Che's
//    approximation, and LRU+TTL once more with the read path off (every hit
//    through the cache owner: exact LRU order), to show what the read path's
//    batched, lossy recency costs in hit rate;
//  - scan: the same Zipf prefixes, and every other request a prefix never
//    seen before (a flood of one-off keys);
//  - bursty: the load experiment's bursty mix, a base of Zipf prefixes and
//    on/off bursts, each a flash crowd on 10 new prefixes.
// The last two run on a reduced grid (two capacities), so the sweep stays
// within a few minutes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include "experiments/lab.hpp"

namespace sil::lab {

namespace {

/// One policy under test: the server flags that make it.
struct arm {
  std::string policy;
  bool ttl = true;      // the short TTL (else effectively none)
  bool hop = false;     // the read path off
  bool tinylfu = false; // cache.admission=tinylfu
};

struct workload {
  std::string name;
  schedule_config sc;
  std::vector<double> capacities;
  std::vector<arm> arms;
};

/// Prefixes in a burst (as in the load experiment: a flash crowd).
constexpr std::size_t kBurstItems = 10;

/// The prefix id of every request of `w` (ids below m are the Zipf
/// population; one-off and burst ids lie above it).
std::vector<std::uint64_t> prefix_ids(const workload& w, const std::vector<double>& schedule,
                                      std::size_t m, double s, std::uint64_t seed) {
  prefix_mix mix{prefix_kind::zipf, m, s, seed};
  prefix_mix burst_mix{prefix_kind::zipf, kBurstItems, 1.1, seed + 7};
  std::vector<std::uint64_t> out;
  out.reserve(schedule.size());
  for (std::size_t i = 0; i < schedule.size(); ++i) {
    if (w.name == "scan" && i % 2 == 1) {
      out.push_back(m + i); // never repeats
    } else if (w.name == "bursty" && in_burst(w.sc, schedule[i])) {
      auto burst = static_cast<std::uint64_t>(schedule[i] / w.sc.burst_period);
      out.push_back(m + (burst + 1) * 1000003 + burst_mix.next());
    } else {
      out.push_back(mix.next());
    }
  }
  return out;
}

} // namespace

int cmd_sweep_capacity(const options& o) {
  auto dir = experiment_dir(o, "sweep-capacity");
  if (!dir)
    return fail(dir.error().message);
  if (!o.url.empty())
    return fail("sweep-capacity starts a server per capacity (cache.max-size is a startup "
                "setting); it does not take --url");
  schedule_config sc;
  sc.kind = o.kind;
  sc.base_rate = o.rate > 0 ? o.rate : 2000.0;
  sc.duration = o.duration > 0 ? o.duration : (o.quick ? 2.0 : 3.0);
  if (auto st = validate(sc); !st)
    return fail(st.error().message);
  // The load experiment's bursty shape, at this sweep's rates: a lower base
  // and bursts of 3000 req/s for 0.4 s every 2 s.
  schedule_config bsc = sc;
  bsc.base_rate = o.rate > 0 ? o.rate / 2 : 1000.0;
  bsc.burst_rate = o.burst_rate > 0 ? o.burst_rate : 3000.0;
  bsc.burst_period = o.burst_period > 0 ? o.burst_period : 2.0;
  bsc.burst_length = o.burst_length > 0 ? o.burst_length : 0.4;
  if (auto st = validate(bsc); !st)
    return fail(st.error().message);
  std::size_t m = o.zipf_m > 0 ? o.zipf_m : 1000;
  double s = o.zipf_s > 0 ? o.zipf_s : 0.9;
  // The LRU+TTL variant's TTL: short against the run, so that it matters.
  const double ttl = 1.0;
  std::vector<double> capacities
    = !o.capacities.empty()
        ? o.capacities
        : (o.quick ? std::vector<double>{16, 64, 256, 1024}
                   : std::vector<double>{8, 16, 32, 64, 128, 256, 512, 1024, 2048});
  // The reduced grid of the scan and bursty workloads.
  std::vector<double> reduced = !o.capacities.empty() ? o.capacities
                                : o.quick             ? std::vector<double>{256}
                                                      : std::vector<double>{64, 512};
  const arm lru_ttl{"lru_ttl", true, false, false};
  const arm lru{"lru", false, false, false};
  const arm hop{"lru_ttl_hop", true, true, false};
  const arm tiny{"tinylfu", false, false, true};
  const std::vector<workload> workloads{{"zipf", sc, capacities, {lru_ttl, lru, hop, tiny}},
                                        {"scan", sc, reduced, {lru_ttl, lru, tiny}},
                                        {"bursty", bsc, reduced, {lru_ttl, lru, tiny}}};
  prefix_mix popular{prefix_kind::zipf, m, s, o.seed};
  std::vector<double> popularity(m);
  for (std::size_t i = 0; i < m; ++i)
    popularity[i] = popular.zipf_probability(i);
  // Hit rates over the second half only: the first half warms the cache.
  auto second_half = [&](const load_result& r) {
    std::size_t hits = 0;
    std::size_t n = 0;
    for (std::size_t i = r.requests.size() / 2; i < r.requests.size(); ++i)
      if (r.requests[i].status == 200) {
        ++n;
        hits += r.requests[i].cache_hit ? 1 : 0;
      }
    return n == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(n);
  };
  const auto reps = reps_of(o);
  json cells = json::array();
  for (std::size_t rep = 0; rep < reps; ++rep) {
    auto seed = rep_seed(o, rep);
    for (const auto& w : workloads) {
      auto schedule = make_schedule(w.sc, seed);
      auto ids = prefix_ids(w, schedule, m, s, seed);
      feature_spec spec;
      spec.noise = 1.0;
      spec.seed = seed;
      std::vector<std::string> bodies;
      bodies.reserve(schedule.size());
      for (std::size_t i = 0; i < schedule.size(); ++i)
        bodies.push_back(predict_body(make_features(spec, ids[i], 0.0, i), true));
      for (double cap : w.capacities) {
        auto c = static_cast<std::size_t>(cap);
        for (const auto& a : w.arms) {
          // Zipf cells keep the first version's group names.
          std::string group
            = (w.name == "zipf" ? "" : w.name + "/") + a.policy + "-" + std::to_string(c);
          auto name = group + (reps > 1 ? "-rep" + std::to_string(rep + 1) : "");
          std::replace(name.begin(), name.end(), '/', '-');
          // The seed preset: the sweep measures hit rates, and its cheap
          // misses keep every run at its target rate. Reuse guard (every
          // suffix differs), audits and agent off.
          std::vector<std::string> args{"--model.preset=seed",
                                        "--risk.guard=off",
                                        "--audit.rate=0",
                                        "--agent.enabled=false",
                                        "--cache.max-size=" + std::to_string(c),
                                        "--cache.ttl-seconds="
                                          + (a.ttl ? fixed(ttl, 3) : std::string{"31536000"})};
          if (a.hop)
            args.push_back("--cache.read-path=false");
          args.push_back(std::string{"--cache.admission="} + (a.tinylfu ? "tinylfu" : "lru"));
          auto t = open_target(o, args, *dir / ("server-" + name + ".log"));
          if (!t)
            return fail(t.error().message);
          auto r = run_cell(*t, "sweep-capacity", name, schedule, bodies, o.connections);
          if (!r)
            return fail(r.error().message);
          auto stats = call_json(*t, "GET", "/stats");
          auto sum = run_summary(*r, w.sc.base_rate, w.sc.duration);
          sum["group"] = group;
          sum["workload"] = w.name;
          sum["rep"] = rep;
          sum["seed"] = seed;
          sum["policy"] = a.policy;
          sum["capacity"] = c;
          sum["ttl_seconds"] = a.ttl ? json(ttl) : json(nullptr);
          sum["hit_rate_second_half"] = second_half(*r);
          sum["che_lru_hit_rate"] = w.name == "zipf"
                                      ? json(che_hit_rate(popularity, static_cast<double>(c)))
                                      : json(nullptr);
          if (stats.is_object())
            sum["server"]
              = {{"evictions", stats["cache"]["evictions"]},
                 {"expired", stats["cache"]["expired"]},
                 {"size_at_end", stats["cache"]["size"]},
                 {"admission", stats["cache"].value("admission", std::string{"lru"})},
                 {"admission_rejections", stats["cache"].value("admission_rejections", 0)},
                 {"read_path_hits", stats["cache"].value("read_path_hits", 0)},
                 {"accesses_dropped", stats["cache"].value("accesses_dropped", 0)}};
          cells.push_back(std::move(sum));
        }
      }
    }
  }
  json cfg = {{"rate", sc.base_rate},
              {"duration_s", sc.duration},
              {"zipf_m", m},
              {"zipf_s", s},
              {"ttl_seconds", ttl},
              {"preset", "seed"},
              {"seed", o.seed},
              {"reps", reps},
              {"quick", o.quick},
              {"connections", o.connections},
              {"workloads", {"zipf", "scan", "bursty"}},
              {"scan_share", 0.5},
              {"bursty",
               {{"base_rate", bsc.base_rate},
                {"burst_rate", bsc.burst_rate},
                {"burst_period_s", bsc.burst_period},
                {"burst_length_s", bsc.burst_length},
                {"burst_items", kBurstItems}}}};
  write_json(*dir, {{"experiment", "sweep-capacity"}, {"config", cfg}, {"cells", cells}});
  std::ofstream csv{*dir / "results.csv"};
  csv << "rep,workload,policy,capacity,hit_rate,hit_rate_second_half,che_lru_hit_rate,evictions,"
         "expired,admission_rejections\n";
  for (const auto& c : cells) {
    auto server = [&](const char* k) {
      return c.contains("server") ? c["server"].value(k, json(0)) : json(0);
    };
    csv << c["rep"] << ',' << c["workload"].get<std::string>() << ','
        << c["policy"].get<std::string>() << ',' << c["capacity"] << ',' << c["hit_rate"] << ','
        << c["hit_rate_second_half"] << ','
        << (c["che_lru_hit_rate"].is_null() ? json("") : c["che_lru_hit_rate"]) << ','
        << server("evictions") << ',' << server("expired") << ',' << server("admission_rejections")
        << "\n";
  }
  csv.close();
  std::map<std::string, std::vector<const json*>> by_group;
  for (auto& g : groups_of(cells))
    by_group[g.front()->value("group", std::string{})] = g;
  auto group = [&](const std::string& wl, const std::string& policy, double cap) {
    auto key = (wl == "zipf" ? "" : wl + "/") + policy + "-"
               + std::to_string(static_cast<std::size_t>(cap));
    auto it = by_group.find(key);
    return it == by_group.end() ? std::vector<const json*>{} : it->second;
  };
  auto mean_of
    = [](const std::vector<const json*>& g) { return spread_at(g, "/hit_rate_second_half").mean; };
  std::ofstream md{*dir / "summary.md"};
  md << "# Capacity sweep: hit rate vs cache size\n\n"
     << sc.base_rate << " req/s for " << sc.duration << " s per point, prefixes Zipf(" << m << ", "
     << s << "), the same schedule and requests at every point of a repetition, " << reps
     << (reps == 1 ? " repetition" : " repetitions with different workload seeds (mean [min, max])")
     << ". **lru_ttl**: TTL " << ttl
     << " s, hits answered on the read path (the default); **lru**: no TTL (plain LRU); "
        "**lru_ttl, actor hop**: the same LRU+TTL with `--cache.read-path=false`, every hit "
        "through the cache owner, so recency is exact; **tinylfu**: W-TinyLFU admission "
        "(`--cache.admission=tinylfu`) with no TTL, to compare with plain LRU. Hit rates over the "
        "second half of each run (the first half warms the cache) and over the whole run; Che's "
        "approximation is the steady-state hit rate of a plain LRU under these popularities.\n\n"
     << "| capacity | LRU+TTL hit rate | LRU+TTL, actor hop | read path - hop | plain LRU hit "
        "rate | W-TinyLFU hit rate | Che (LRU) | LRU+TTL whole run | LRU whole run |\n"
        "|---|---|---|---|---|---|---|---|---|\n";
  double worst = 0.0;
  double best_gain = -1.0;
  double best_gain_at = 0;
  for (double cap : capacities) {
    auto a = group("zipf", "lru_ttl", cap);
    auto b = group("zipf", "lru", cap);
    auto h = group("zipf", "lru_ttl_hop", cap);
    auto t = group("zipf", "tinylfu", cap);
    if (a.empty() || b.empty() || h.empty() || t.empty())
      continue;
    double diff = 0.0;
    for (std::size_t r = 0; r < a.size() && r < h.size(); ++r)
      diff += (*a[r])["hit_rate_second_half"].get<double>()
              - (*h[r])["hit_rate_second_half"].get<double>();
    diff /= static_cast<double>(std::max<std::size_t>(1, std::min(a.size(), h.size())));
    worst = std::max(worst, std::abs(diff));
    if (mean_of(t) - mean_of(b) > best_gain) {
      best_gain = mean_of(t) - mean_of(b);
      best_gain_at = cap;
    }
    md << "| " << (*a.front())["capacity"] << " | " << spread_text(a, "/hit_rate_second_half", 3)
       << " | " << spread_text(h, "/hit_rate_second_half", 3) << " | " << fixed(diff, 4) << " | "
       << spread_text(b, "/hit_rate_second_half", 3) << " | "
       << spread_text(t, "/hit_rate_second_half", 3) << " | "
       << fixed((*a.front())["che_lru_hit_rate"], 3) << " | " << spread_text(a, "/hit_rate", 3)
       << " | " << spread_text(b, "/hit_rate", 3) << " |\n";
  }
  md << "\nLargest mean difference between the read path and the actor hop (warm half): **"
     << fixed(worst, 4) << "** (read-path access batches are replayed late and may be dropped "
     << "under overload; see docs/design.md, \"The read path\"). W-TinyLFU's largest gain over "
     << "plain LRU on Zipf traffic: **" << fixed(best_gain, 3) << "** at " << fixed(best_gain_at, 0)
     << " entries.\n\n";
  md << "## Admission under a scan and under bursts\n\n"
     << "**scan**: the Zipf requests above, and every other request a prefix never seen before "
        "(at most half the requests can hit). **bursty**: the load experiment's bursty shape, "
     << bsc.base_rate << " req/s of Zipf prefixes with bursts of " << bsc.burst_rate
     << " req/s for " << bsc.burst_length << " s every " << bsc.burst_period
     << " s, each burst a flash crowd on " << kBurstItems
     << " new prefixes (Zipf(10, 1.1)). Warm-half hit rates; rejections: window candidates "
        "W-TinyLFU did not admit (mean per run).\n\n"
     << "| workload | capacity | LRU+TTL | plain LRU | W-TinyLFU | W-TinyLFU - LRU | "
        "rejections |\n|---|---|---|---|---|---|---|\n";
  for (const auto* wl : {"scan", "bursty"})
    for (double cap : reduced) {
      auto a = group(wl, "lru_ttl", cap);
      auto b = group(wl, "lru", cap);
      auto t = group(wl, "tinylfu", cap);
      if (a.empty() || b.empty() || t.empty())
        continue;
      md << "| " << wl << " | " << fixed(cap, 0) << " | "
         << spread_text(a, "/hit_rate_second_half", 3) << " | "
         << spread_text(b, "/hit_rate_second_half", 3) << " | "
         << spread_text(t, "/hit_rate_second_half", 3) << " | " << fixed(mean_of(t) - mean_of(b), 3)
         << " | " << fixed(spread_at(t, "/server/admission_rejections").mean, 0) << " |\n";
    }
  md << "\nPlot: `capacity.png`.\n";
  md.close();
  finish_experiment("sweep-capacity", *dir);
  return 0;
}

} // namespace sil::lab
