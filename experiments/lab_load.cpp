// sil-lab load: what caching does to latency, under steady and bursty
// open-loop traffic, with the cache off, on, and on without single-flight.
#include <algorithm>
#include <cstdio>
#include <fstream>

#include "core/window_stats.hpp"
#include "experiments/lab.hpp"

namespace sil::lab {

namespace {

constexpr std::size_t kBurstItems = 10;

struct shape {
  std::string name;
  schedule_config sc;
};

/// Bodies for one run. Prefix ids are offset per shape so runs never share
/// keys; in a burst, requests draw from that burst's own prefix set (a
/// flash crowd on new content: every burst starts cold).
std::vector<std::string> load_bodies(const options& o, const shape& sh,
                                     const std::vector<double>& schedule, std::uint64_t id_base,
                                     bool use_cache) {
  std::size_t m = o.zipf_m > 0 ? o.zipf_m : 100;
  double zs = o.zipf_s > 0 ? o.zipf_s : 1.1;
  prefix_mix mix{o.prefix, m, zs, o.seed};
  // A burst is a flash crowd on a few new items: Zipf over kBurstItems
  // prefixes that no earlier request used.
  prefix_mix burst_mix{prefix_kind::zipf, kBurstItems, zs, o.seed + 7};
  feature_spec spec;
  spec.noise = 1.0; // the suffix differs per request, the prefix is shared
  spec.seed = o.seed;
  std::vector<std::string> out;
  out.reserve(schedule.size());
  for (std::size_t i = 0; i < schedule.size(); ++i) {
    std::uint64_t id = 0;
    if (sh.sc.burst_rate > 0 && in_burst(sh.sc, schedule[i])) {
      auto burst = static_cast<std::uint64_t>(schedule[i] / sh.sc.burst_period);
      id = id_base + (burst + 1) * 1000003 + burst_mix.next();
    } else {
      id = id_base + mix.next();
    }
    out.push_back(predict_body(make_features(spec, id, 0.0, i), use_cache));
  }
  return out;
}

/// p50 / p99 of latency per `bucket` seconds of intended send time.
json timeline(const load_result& r, double bucket) {
  std::vector<std::vector<double>> per;
  for (const auto& q : r.requests) {
    if (q.status != 200)
      continue;
    auto b = static_cast<std::size_t>(q.intended / bucket);
    if (per.size() <= b)
      per.resize(b + 1);
    per[b].push_back(q.latency() * 1e3);
  }
  json out = json::array();
  for (std::size_t b = 0; b < per.size(); ++b) {
    auto s = sil::summarize(per[b]);
    out.push_back(
      {{"t", static_cast<double>(b) * bucket}, {"count", s.count}, {"p50", s.p50}, {"p99", s.p99}});
  }
  return out;
}

} // namespace

int cmd_load(const options& o) {
  auto dir = experiment_dir(o, "load");
  if (!dir)
    return fail(dir.error().message);
  double duration = o.duration > 0 ? o.duration : (o.quick ? 5.0 : 7.0);
  std::vector<shape> shapes;
  {
    shape steady{"steady", {}};
    steady.sc.kind = o.kind;
    steady.sc.base_rate = o.rate > 0 ? o.rate : (o.quick ? 300.0 : 1000.0);
    steady.sc.duration = duration;
    shape bursty{"bursty", steady.sc};
    bursty.sc.base_rate = o.rate > 0 ? o.rate : 200.0;
    bursty.sc.burst_rate = o.burst_rate > 0 ? o.burst_rate : 3000.0;
    bursty.sc.burst_period = o.burst_period > 0 ? o.burst_period : 2.0;
    bursty.sc.burst_length = o.burst_length > 0 ? o.burst_length : 0.4;
    for (auto* s : {&steady, &bursty})
      if (auto st = validate(s->sc); !st)
        return fail(s->name + " schedule: " + st.error().message);
    shapes = {steady, bursty};
  }
  // Server A serves cache on and off (use_cache false), server B runs
  // without single-flight. Every request has its own suffix, so the reuse
  // guard is off (it would refuse them all: load measures what reuse does
  // to latency, not its risk); no audits: the agent stays idle, so it cannot
  // switch reuse off mid-run.
  struct variant {
    std::string name;
    bool use_cache;
    bool single_flight;
  };
  const std::vector<variant> variants{{"cache_off", false, true},
                                      {"cache_on", true, true},
                                      {"cache_on_no_single_flight", true, false}};
  const auto reps = reps_of(o);
  json cells = json::array();
  json timelines;
  json servers = json::array();
  for (std::size_t rep = 0; rep < reps; ++rep) {
    auto seed = rep_seed(o, rep);
    options ro = o;
    ro.seed = seed;
    for (bool sf : {true, false}) {
      if (!sf && !o.url.empty()) {
        std::fprintf(stderr, "[load] --url: skipping the runs without single-flight (a server "
                             "setting)\n");
        continue;
      }
      // The seed's cache policy (LRU+TTL): this experiment re-tests its findings.
      std::vector<std::string> args{"--risk.guard=off", "--audit.rate=0", "--cache.admission=lru"};
      if (!sf)
        args.emplace_back("--cache.single-flight=false");
      auto log = std::string{sf ? "server" : "server-no-single-flight"}
                 + (reps > 1 ? "-rep" + std::to_string(rep + 1) : "") + ".log";
      auto t = open_target(o, args, *dir / log);
      if (!t)
        return fail(t.error().message);
      if (rep == 0)
        servers.push_back({{"single_flight", sf}, {"args", args}, {"external", t->external()}});
      for (std::size_t si = 0; si < shapes.size(); ++si) {
        const auto& sh = shapes[si];
        auto schedule = make_schedule(sh.sc, seed + si);
        for (const auto& v : variants) {
          if (v.single_flight != sf)
            continue;
          // A --url server keeps its cache: each repetition gets its own prefixes.
          auto bodies = load_bodies(ro, sh, schedule,
                                    (si + 1) * 100000000ULL + (sf ? 0 : 50000000)
                                      + (o.url.empty() ? 0 : rep * 1000000000ULL),
                                    v.use_cache);
          auto before = call_json(*t, "GET", "/stats");
          auto phase = sh.name + " " + v.name + (reps > 1 ? " rep" + std::to_string(rep + 1) : "");
          auto r = run_cell(*t, "load", phase, schedule, bodies, o.connections);
          if (!r)
            return fail(r.error().message);
          auto after = call_json(*t, "GET", "/stats");
          auto s = run_summary(*r, static_cast<double>(schedule.size()) / sh.sc.duration,
                               sh.sc.duration);
          s["encoder_items"] = stat_value<std::uint64_t>(after, "encoder", "items")
                               - stat_value<std::uint64_t>(before, "encoder", "items");
          s["single_flight_joins"]
            = stat_value<std::uint64_t>(after, "cache", "single_flight_joins")
              - stat_value<std::uint64_t>(before, "cache", "single_flight_joins");
          s["encodes_per_request"]
            = s["encoder_items"].get<double>() / std::max(1.0, s["ok"].get<double>());
          s["group"] = sh.name + " " + v.name;
          s["shape"] = sh.name;
          s["run"] = v.name;
          s["rep"] = rep;
          s["seed"] = seed;
          if (rep == 0)
            timelines[sh.name][v.name] = timeline(*r, 0.1);
          cells.push_back(std::move(s));
        }
      }
    }
  }

  json cfg = {{"duration_s", duration},
              {"arrival", o.kind == arrival::poisson ? "poisson" : "constant"},
              {"steady_rate", shapes[0].sc.base_rate},
              {"bursty_base_rate", shapes[1].sc.base_rate},
              {"burst_rate", shapes[1].sc.burst_rate},
              {"burst_period_s", shapes[1].sc.burst_period},
              {"burst_length_s", shapes[1].sc.burst_length},
              {"prefix", o.prefix == prefix_kind::hot    ? "hot"
                         : o.prefix == prefix_kind::zipf ? "zipf"
                                                         : "unique"},
              {"zipf_m", o.zipf_m > 0 ? o.zipf_m : 100},
              {"zipf_s", o.zipf_s > 0 ? o.zipf_s : 1.1},
              {"connections", o.connections},
              {"seed", o.seed},
              {"reps", reps},
              {"quick", o.quick},
              {"servers", servers}};
  write_json(*dir, {{"experiment", "load"}, {"config", cfg}, {"cells", cells}});

  std::ofstream csv{*dir / "results.csv"};
  csv << "rep,shape,run,target_rate,achieved_rate,ok,failed,dropped,hit_rate,mean_ms,p50_ms,p90_ms,"
         "p95_ms,p99_ms,p999_ms,max_ms,generator_max_lag_ms,encoder_items,single_flight_joins\n";
  for (const auto& r : cells) {
    const auto& l = r["latency_ms"];
    csv << r["rep"] << ',' << r["shape"].get<std::string>() << ',' << r["run"].get<std::string>()
        << ',' << r["target_rate"] << ',' << r["achieved_rate"] << ',' << r["ok"] << ','
        << r["failed"] << ',' << r["dropped"] << ',' << r["hit_rate"] << ',' << l["mean"] << ','
        << l["p50"] << ',' << l["p90"] << ',' << l["p95"] << ',' << l["p99"] << ',' << l["p999"]
        << ',' << l["max"] << ',' << r["generator_max_lag_ms"] << ',' << r["encoder_items"] << ','
        << r["single_flight_joins"] << "\n";
  }
  csv.close();
  std::ofstream tl{*dir / "timeline.csv"};
  tl << "shape,run,t_s,count,p50_ms,p99_ms\n";
  for (const auto& [shape_name, runs] : timelines.items())
    for (const auto& [run_name, buckets] : runs.items())
      for (const auto& b : buckets)
        tl << shape_name << ',' << run_name << ',' << b["t"] << ',' << b["count"] << ',' << b["p50"]
           << ',' << b["p99"] << "\n";
  tl.close();
  std::ofstream md{*dir / "summary.md"};
  md << "# Load: latency with the cache off, on, and on without single-flight\n\n"
     << "Open-loop " << cfg["arrival"].get<std::string>() << " arrivals, " << o.connections
     << " keep-alive connections, " << duration << " s per run, " << reps
     << (reps == 1 ? " repetition" : " repetitions with different workload seeds (mean [min, max])")
     << "; latency from each request's *intended* send time (no coordinated omission). Prefixes "
        "Zipf("
     << cfg["zipf_m"] << ", " << cfg["zipf_s"]
     << "), suffix different in every request (so the reuse guard is off here: pure prefix "
        "reuse). **steady**: "
     << shapes[0].sc.base_rate << " req/s. **bursty**: " << shapes[1].sc.base_rate
     << " req/s with bursts of " << shapes[1].sc.burst_rate << " req/s for "
     << shapes[1].sc.burst_length << " s every " << shapes[1].sc.burst_period
     << " s; each burst is a flash crowd on " << kBurstItems
     << " new items: Zipf over prefixes never seen before, so every burst starts cold.\n\n"
     << "| shape | run | achieved req/s | hit rate | encodes / request | mean ms | p50 | p90 | "
        "p99 | p99.9 | max | errors |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& g : groups_of(cells)) {
    const auto& r = *g.front();
    std::size_t errors = 0;
    for (const auto* c : g)
      errors += (*c)["failed"].get<std::size_t>() + (*c)["dropped"].get<std::size_t>();
    md << "| " << r["shape"].get<std::string>() << " | " << r["run"].get<std::string>() << " | "
       << spread_text(g, "/achieved_rate", 1) << " | " << spread_text(g, "/hit_rate", 3) << " | "
       << spread_text(g, "/encodes_per_request", 3) << " | "
       << spread_text(g, "/latency_ms/mean", 3) << " | " << spread_text(g, "/latency_ms/p50", 3)
       << " | " << spread_text(g, "/latency_ms/p90", 3) << " | "
       << spread_text(g, "/latency_ms/p99", 3) << " | " << spread_text(g, "/latency_ms/p999", 3)
       << " | " << spread_text(g, "/latency_ms/max", 3) << " | " << errors << " |\n";
  }
  md << "\nPlots: `latency.png` (percentiles per run, mean over repetitions with their range), "
        "`burst_timeline.png` (p99 per 100 ms of intended send time, bursty traffic, first "
        "repetition).\n";
  md.close();
  finish_experiment("load", *dir);
  return 0;
}

} // namespace sil::lab
