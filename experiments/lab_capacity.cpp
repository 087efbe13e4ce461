// sil-lab sweep-capacity: hit rate vs cache capacity on Zipf prefixes, for
// LRU+TTL and for a plain LRU (no TTL), next to Che's approximation, and
// LRU+TTL once more with the read path off (every hit through the cache
// owner: exact LRU order), to show what the read path's batched, lossy
// recency costs in hit rate.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "experiments/lab.hpp"

namespace sil::lab {

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
  sc.duration = o.duration > 0 ? o.duration : 3.0;
  if (auto st = validate(sc); !st)
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
    auto schedule = make_schedule(sc, seed);
    prefix_mix mix{prefix_kind::zipf, m, s, seed};
    feature_spec spec;
    spec.noise = 1.0;
    spec.seed = seed;
    std::vector<std::string> bodies;
    bodies.reserve(schedule.size());
    for (std::size_t i = 0; i < schedule.size(); ++i)
      bodies.push_back(predict_body(make_features(spec, mix.next(), 0.0, i), true));
    for (double cap : capacities) {
      auto c = static_cast<std::size_t>(cap);
      for (int arm = 0; arm < 3; ++arm) {
        bool plain = arm == 1;
        bool hop = arm == 2;
        std::string policy = plain ? "lru" : hop ? "lru_ttl_hop" : "lru_ttl";
        std::string group = policy + "-" + std::to_string(c);
        auto name = group + (reps > 1 ? "-rep" + std::to_string(rep + 1) : "");
        // The seed preset: the sweep measures hit rates, and its cheap misses
        // keep every run at its target rate. Reuse guard (every suffix
        // differs), audits and agent off.
        std::vector<std::string> args{"--model.preset=seed",
                                      "--risk.guard=off",
                                      "--audit.rate=0",
                                      "--agent.enabled=false",
                                      "--cache.max-size=" + std::to_string(c),
                                      "--cache.ttl-seconds="
                                        + (plain ? std::string{"31536000"} : fixed(ttl, 3))};
        if (hop)
          args.push_back("--cache.read-path=false");
        auto t = open_target(o, args, *dir / ("server-" + name + ".log"));
        if (!t)
          return fail(t.error().message);
        auto r = run_cell(*t, "sweep-capacity", name, schedule, bodies, o.connections);
        if (!r)
          return fail(r.error().message);
        auto stats = call_json(*t, "GET", "/stats");
        auto sum = run_summary(*r, sc.base_rate, sc.duration);
        sum["group"] = group;
        sum["rep"] = rep;
        sum["seed"] = seed;
        sum["policy"] = policy;
        sum["capacity"] = c;
        sum["ttl_seconds"] = plain ? json(nullptr) : json(ttl);
        sum["hit_rate_second_half"] = second_half(*r);
        sum["che_lru_hit_rate"] = che_hit_rate(popularity, static_cast<double>(c));
        if (stats.is_object())
          sum["server"] = {{"evictions", stats["cache"]["evictions"]},
                           {"expired", stats["cache"]["expired"]},
                           {"size_at_end", stats["cache"]["size"]},
                           {"read_path_hits", stats["cache"].value("read_path_hits", 0)},
                           {"accesses_dropped", stats["cache"].value("accesses_dropped", 0)}};
        cells.push_back(std::move(sum));
      }
    }
  }
  json cfg = {{"rate", sc.base_rate}, {"duration_s", sc.duration},
              {"zipf_m", m},          {"zipf_s", s},
              {"ttl_seconds", ttl},   {"preset", "seed"},
              {"seed", o.seed},       {"reps", reps},
              {"quick", o.quick},     {"connections", o.connections}};
  write_json(*dir, {{"experiment", "sweep-capacity"}, {"config", cfg}, {"cells", cells}});
  std::ofstream csv{*dir / "results.csv"};
  csv << "rep,policy,capacity,hit_rate,hit_rate_second_half,che_lru_hit_rate,evictions,expired\n";
  for (const auto& c : cells)
    csv << c["rep"] << ',' << c["policy"].get<std::string>() << ',' << c["capacity"] << ','
        << c["hit_rate"] << ',' << c["hit_rate_second_half"] << ',' << c["che_lru_hit_rate"] << ','
        << (c.contains("server") ? c["server"]["evictions"] : json(0)) << ','
        << (c.contains("server") ? c["server"]["expired"] : json(0)) << "\n";
  csv.close();
  std::ofstream md{*dir / "summary.md"};
  md << "# Capacity sweep: hit rate vs cache size\n\n"
     << sc.base_rate << " req/s for " << sc.duration << " s per point, prefixes Zipf(" << m << ", "
     << s << "), the same schedule and requests at every point of a repetition, " << reps
     << (reps == 1 ? " repetition" : " repetitions with different workload seeds (mean [min, max])")
     << ". **lru_ttl**: TTL " << ttl
     << " s, hits answered on the read path (the default); **lru**: no TTL (plain LRU); "
        "**lru_ttl, actor hop**: the same LRU+TTL with `--cache.read-path=false`, every hit "
        "through the cache owner, so recency is exact. Hit rates over the second half of each "
        "run (the first half warms the cache) and over the whole run; Che's approximation is the "
        "steady-state hit rate of a plain LRU under these popularities.\n\n"
     << "| capacity | LRU+TTL hit rate | LRU+TTL, actor hop | read path - hop | plain LRU hit "
        "rate | Che (LRU) | LRU+TTL whole run | LRU whole run |\n"
        "|---|---|---|---|---|---|---|---|\n";
  auto groups = groups_of(cells);
  double worst = 0.0;
  for (std::size_t i = 0; i + 2 < groups.size(); i += 3) {
    const auto& a = groups[i];
    const auto& b = groups[i + 1];
    const auto& h = groups[i + 2];
    double diff = 0.0;
    for (std::size_t r = 0; r < a.size() && r < h.size(); ++r)
      diff += (*a[r])["hit_rate_second_half"].get<double>()
              - (*h[r])["hit_rate_second_half"].get<double>();
    diff /= static_cast<double>(std::max<std::size_t>(1, std::min(a.size(), h.size())));
    worst = std::max(worst, std::abs(diff));
    md << "| " << (*a.front())["capacity"] << " | " << spread_text(a, "/hit_rate_second_half", 3)
       << " | " << spread_text(h, "/hit_rate_second_half", 3) << " | " << fixed(diff, 4) << " | "
       << spread_text(b, "/hit_rate_second_half", 3) << " | "
       << fixed((*a.front())["che_lru_hit_rate"], 3) << " | " << spread_text(a, "/hit_rate", 3)
       << " | " << spread_text(b, "/hit_rate", 3) << " |\n";
  }
  md << "\nLargest mean difference between the read path and the actor hop (warm half): **"
     << fixed(worst, 4) << "** (read-path access batches are replayed late and may be dropped "
     << "under overload; see docs/design.md, \"The read path\").\n";
  md << "\nPlot: `capacity.png`.\n";
  md.close();
  finish_experiment("sweep-capacity", *dir);
  return 0;
}

} // namespace sil::lab
