// sil-lab: the experiment runner (issue #5). Subcommands so far:
//
//   sil-lab load [options]   open-loop load: cache on vs off, same schedule
//
// Each run starts its own sil-server (next to this binary) on a free
// loopback port, or targets --url. Progress goes to stderr; results go to
// OUT/load/results.json, results.csv and summary.md.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/divergence.hpp"
#include "core/model.hpp"
#include "core/window_stats.hpp"
#include "experiments/analysis.hpp"
#include "experiments/load_generator.hpp"
#include "experiments/server_process.hpp"
#include "experiments/workload.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using namespace sil::lab;

struct options {
  bool quick = false;
  std::string url;
  std::string server;
  std::string out = "reports";
  double rate = 0; // 0: the mode's default
  double duration = 0;
  std::size_t connections = 32;
  arrival kind = arrival::poisson;
  double burst_rate = 0;
  double burst_period = 5;
  double burst_length = 1;
  prefix_kind prefix = prefix_kind::zipf;
  std::size_t zipf_m = 100;
  double zipf_s = 1.1;
  std::uint64_t seed = 1;
  std::vector<std::string> server_args;
  // drift
  std::string preset = "base";
  double steps = 0;
  double strength = 0.25;
  double trials = 0;
  double prefix_k = 4;
};

int fail(const std::string& msg) {
  std::fprintf(stderr, "sil-lab: %s\n", msg.c_str());
  return 2;
}

void usage(FILE* out) {
  std::fprintf(out,
               "usage: sil-lab load [--quick] [--url http://127.0.0.1:PORT] [--server PATH]\n"
               "         [--out DIR] [--rate R] [--duration S] [--connections N]\n"
               "         [--arrival constant|poisson] [--burst-rate R] [--burst-period S]\n"
               "         [--burst-length S] [--prefix hot|zipf|unique] [--zipf-m M]\n"
               "         [--zipf-s S] [--seed N] [--server-arg ARG]...\n"
               "Runs the same open-loop schedule twice, with the cache on and off, and writes\n"
               "OUT/load/results.json, results.csv and summary.md (OUT defaults to reports).\n"
               "--quick: 5 s per run at 300 req/s (well under a minute in all).\n"
               "Its own server runs with --audit.rate=0, so that the agent cannot switch\n"
               "reuse off mid-run; --server-arg passes further sil-server flags.\n"
               "\n"
               "usage: sil-lab drift [--quick] [--out DIR] [--preset base|seed] [--steps N]\n"
               "         [--strength S] [--trials N] [--prefix-k K] [--seed N]\n"
               "Pure-model drift study: the prefix (first K values) stays fixed, the suffix is\n"
               "drawn from N(step x strength, 1); each step compares the embedding cached at\n"
               "step 0 with the fresh one (cosine, L2) and the predictions. Writes\n"
               "OUT/drift/results.json, results.csv, summary.md and PNG plots.\n");
}

bool parse_double(const std::string& s, double& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return errno == 0 && end != s.c_str() && *end == '\0' && std::isfinite(out);
}

std::string parse_args(int argc, char** argv, options& o) {
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& dst) -> bool {
      if (i + 1 >= argc)
        return false;
      dst = argv[++i];
      return true;
    };
    std::string v;
    double d = 0;
    if (a == "--quick") {
      o.quick = true;
    } else if (a == "--url" || a == "--server" || a == "--out" || a == "--server-arg") {
      if (!value(v))
        return a + " needs a value";
      if (a == "--url")
        o.url = v;
      else if (a == "--server")
        o.server = v;
      else if (a == "--out")
        o.out = v;
      else
        o.server_args.push_back(v);
    } else if (a == "--preset") {
      if (!value(o.preset))
        return a + " needs a value";
    } else if (a == "--steps" || a == "--strength" || a == "--trials" || a == "--prefix-k") {
      if (!value(v) || !parse_double(v, d) || d < 0)
        return a + ": expected a non-negative number";
      (a == "--steps"      ? o.steps
       : a == "--strength" ? o.strength
       : a == "--trials"   ? o.trials
                           : o.prefix_k)
        = d;
    } else if (a == "--arrival" || a == "--prefix") {
      if (!value(v))
        return a + " needs a value";
      if (a == "--arrival" && (v == "constant" || v == "poisson"))
        o.kind = v == "constant" ? arrival::constant : arrival::poisson;
      else if (a == "--prefix" && (v == "hot" || v == "zipf" || v == "unique"))
        o.prefix = v == "hot"    ? prefix_kind::hot
                   : v == "zipf" ? prefix_kind::zipf
                                 : prefix_kind::unique;
      else
        return a.append(": unknown value '").append(v).append("'");
    } else if (a == "--rate" || a == "--duration" || a == "--burst-rate" || a == "--burst-period"
               || a == "--burst-length" || a == "--zipf-s" || a == "--connections"
               || a == "--zipf-m" || a == "--seed") {
      if (!value(v) || !parse_double(v, d) || d < 0)
        return a + ": expected a non-negative number";
      if (a == "--rate")
        o.rate = d;
      else if (a == "--duration")
        o.duration = d;
      else if (a == "--burst-rate")
        o.burst_rate = d;
      else if (a == "--burst-period")
        o.burst_period = d;
      else if (a == "--burst-length")
        o.burst_length = d;
      else if (a == "--zipf-s")
        o.zipf_s = d;
      else if (a == "--connections")
        o.connections = static_cast<std::size_t>(d);
      else if (a == "--zipf-m")
        o.zipf_m = static_cast<std::size_t>(d);
      else
        o.seed = static_cast<std::uint64_t>(d);
    } else {
      return "unknown option '" + a + "'";
    }
  }
  return {};
}

/// The body of request i: 4 prefix values from the prefix id, 28 random ones.
std::vector<std::string> make_bodies(const options& o, std::size_t n, bool use_cache) {
  prefix_mix mix{o.prefix, o.zipf_m, o.zipf_s, o.seed};
  std::mt19937_64 rng{o.seed + 1};
  std::normal_distribution<double> normal;
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto id = static_cast<double>(mix.next());
    std::string s = "{\"features\":[[";
    char buf[40];
    for (int k = 0; k < 32; ++k) {
      double v = k < 4 ? id * (k + 1) * 0.25 : normal(rng);
      std::snprintf(buf, sizeof buf, "%s%.6g", k ? "," : "", v);
      s += buf;
    }
    s += "]],\"use_cache\":";
    s += use_cache ? "true}" : "false}";
    out.push_back(std::move(s));
  }
  return out;
}

json run_json(const load_result& r, double target_rate, double duration) {
  std::vector<double> ms;
  std::map<std::string, std::size_t> by_status;
  std::size_t hits = 0;
  std::size_t ok = 0;
  for (const auto& q : r.requests) {
    if (q.dropped) {
      ++by_status["dropped"];
      continue;
    }
    ++by_status[std::to_string(q.status)];
    if (q.status == 200) {
      ++ok;
      hits += q.cache_hit ? 1 : 0;
      ms.push_back(q.latency() * 1e3);
    }
  }
  auto l = sil::summarize(ms);
  return {{"target_rate", target_rate},
          {"achieved_rate", static_cast<double>(ok) / std::max(duration, r.elapsed)},
          {"requests", r.requests.size()},
          {"ok", ok},
          {"status_counts", by_status},
          {"failed", r.failed},
          {"dropped", r.dropped},
          {"generator_max_lag_ms", r.max_lag * 1e3},
          {"hit_rate", ok == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(ok)},
          {"latency_ms",
           {{"mean", l.mean},
            {"p50", l.p50},
            {"p90", l.p90},
            {"p95", l.p95},
            {"p99", l.p99},
            {"p999", l.p999},
            {"max", l.max}}}};
}

int cmd_load(const options& o, const std::string& self_path) {
  schedule_config sc;
  sc.kind = o.kind;
  sc.base_rate = o.rate > 0 ? o.rate : (o.quick ? 300.0 : 1000.0);
  sc.duration = o.duration > 0 ? o.duration : (o.quick ? 5.0 : 30.0);
  sc.burst_rate = o.burst_rate;
  sc.burst_period = o.burst_period;
  sc.burst_length = o.burst_length;
  if (auto st = validate(sc); !st)
    return fail(st.error().message);
  auto schedule = make_schedule(sc, o.seed);
  auto dir = fs::path{o.out} / "load";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return fail("cannot create " + dir.string() + ": " + ec.message());

  std::optional<server_process> own;
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  if (o.url.empty()) {
    auto bin
      = o.server.empty() ? (fs::path{self_path}.parent_path() / "sil-server").string() : o.server;
    // The load experiment measures what caching does to latency: without
    // audits the agent stays idle and cannot switch reuse off mid-run.
    // (--server-arg=--audit.rate=0.05 restores the default.)
    std::vector<std::string> args{"--audit.rate=0"};
    args.insert(args.end(), o.server_args.begin(), o.server_args.end());
    auto s = server_process::start(bin, args, (dir / "server.log").string());
    if (!s)
      return fail(s.error().message);
    port = s->port();
    own.emplace(std::move(*s));
  } else {
    // http://HOST:PORT
    auto u = o.url;
    if (u.rfind("http://", 0) == 0)
      u = u.substr(7);
    auto colon = u.rfind(':');
    if (colon == std::string::npos)
      return fail("--url must look like http://127.0.0.1:8000");
    host = u.substr(0, colon);
    port = static_cast<std::uint16_t>(std::atoi(u.c_str() + colon + 1));
  }

  json runs;
  auto started = std::chrono::steady_clock::now();
  for (bool use_cache : {true, false}) {
    const char* phase = use_cache ? "cache on" : "cache off";
    auto bodies = make_bodies(o, schedule.size(), use_cache);
    load_config lc;
    lc.host = host;
    lc.port = port;
    lc.connections = o.connections;
    lc.schedule = schedule;
    lc.body = [&bodies](std::size_t i) { return bodies[i]; };
    lc.progress = [&](std::size_t done, std::size_t planned) {
      auto t = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      std::fprintf(stderr, "\r[load] %-9s  %6.1f s  %zu / %zu requests", phase, t, done, planned);
    };
    auto r = run_load(lc);
    std::fprintf(stderr, "\n");
    if (!r)
      return fail(r.error().message);
    runs[use_cache ? "cache_on" : "cache_off"] = run_json(*r, sc.base_rate, sc.duration);
  }

  json cfg = {{"arrival", o.kind == arrival::poisson ? "poisson" : "constant"},
              {"rate", sc.base_rate},
              {"duration_s", sc.duration},
              {"burst_rate", sc.burst_rate},
              {"burst_period_s", sc.burst_period},
              {"burst_length_s", sc.burst_length},
              {"prefix", o.prefix == prefix_kind::hot    ? "hot"
                         : o.prefix == prefix_kind::zipf ? "zipf"
                                                         : "unique"},
              {"zipf_m", o.zipf_m},
              {"zipf_s", o.zipf_s},
              {"connections", o.connections},
              {"seed", o.seed},
              {"quick", o.quick}};
  json out = {{"experiment", "load"}, {"config", cfg}, {"runs", runs}};
  std::ofstream{dir / "results.json"} << out.dump(2) << "\n";

  std::ofstream csv{dir / "results.csv"};
  csv << "run,target_rate,achieved_rate,ok,failed,dropped,hit_rate,mean_ms,p50_ms,p90_ms,p95_ms,"
         "p99_ms,p999_ms,max_ms,generator_max_lag_ms\n";
  std::ofstream md{dir / "summary.md"};
  md << "# Load: cache on vs off, same open-loop schedule\n\n"
     << sc.base_rate << " req/s target, " << sc.duration << " s, "
     << cfg["arrival"].get<std::string>() << " arrivals, prefixes "
     << cfg["prefix"].get<std::string>() << ", " << o.connections
     << " connections. Latency from each request's intended send time.\n\n"
     << "| run | achieved req/s | hit rate | mean ms | p50 | p90 | p95 | p99 | p99.9 | max | "
        "errors |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const char* name : {"cache_on", "cache_off"}) {
    const auto& r = runs[name];
    const auto& l = r["latency_ms"];
    csv << name << ',' << r["target_rate"] << ',' << r["achieved_rate"] << ',' << r["ok"] << ','
        << r["failed"] << ',' << r["dropped"] << ',' << r["hit_rate"] << ',' << l["mean"] << ','
        << l["p50"] << ',' << l["p90"] << ',' << l["p95"] << ',' << l["p99"] << ',' << l["p999"]
        << ',' << l["max"] << ',' << r["generator_max_lag_ms"] << "\n";
    char row[512];
    std::snprintf(row, sizeof row,
                  "| %s | %.1f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %zu |\n",
                  name, r["achieved_rate"].get<double>(), r["hit_rate"].get<double>(),
                  l["mean"].get<double>(), l["p50"].get<double>(), l["p90"].get<double>(),
                  l["p95"].get<double>(), l["p99"].get<double>(), l["p999"].get<double>(),
                  l["max"].get<double>(),
                  r["failed"].get<std::size_t>() + r["dropped"].get<std::size_t>());
    md << row;
  }
  std::fprintf(stderr, "[load] wrote %s\n", (dir / "results.json").string().c_str());
  return 0;
}

std::string self_dir_script(const std::string& self_path) {
  // The plot script lives in the source tree (SIL_SOURCE_DIR, set at build).
  (void)self_path;
  return std::string{SIL_SOURCE_DIR} + "/experiments/plot.py";
}

int cmd_drift(const options& o, const std::string& self_path) {
  auto cfg = sil::preset(o.preset);
  if (!cfg)
    return fail(cfg.error().message);
  auto m = sil::model::from_seed(*cfg, 42);
  if (!m)
    return fail(m.error().message);
  auto steps = static_cast<int>(o.steps > 0 ? o.steps : (o.quick ? 10 : 20));
  auto trials = static_cast<int>(o.trials > 0 ? o.trials : (o.quick ? 100 : 1000));
  auto k = static_cast<std::size_t>(o.prefix_k);
  const auto dim = m->input_dim();
  if (k == 0 || k > dim)
    return fail("--prefix-k must be in [1, " + std::to_string(dim) + "]");
  auto dir = fs::path{o.out} / "drift";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return fail("cannot create " + dir.string() + ": " + ec.message());
  std::mt19937_64 rng{o.seed};
  std::normal_distribution<float> normal;
  // cos[step][trial], l2[...], err[...]
  std::vector<std::vector<double>> cos(static_cast<std::size_t>(steps) + 1);
  std::vector<std::vector<double>> l2(cos.size());
  std::vector<std::vector<double>> err(cos.size());
  auto started = std::chrono::steady_clock::now();
  for (int t = 0; t < trials; ++t) {
    std::vector<float> x(dim);
    for (auto& v : x)
      v = normal(rng);
    auto cached = *m->encode({x.data(), 1}); // the embedding cached at step 0
    float p_cached = m->head(cached);
    for (int s = 0; s <= steps; ++s) {
      for (std::size_t i = k; i < dim; ++i) // the prefix stays, the suffix drifts
        x[i] = normal(rng) + static_cast<float>(s * o.strength);
      auto fresh = *m->encode({x.data(), 1});
      auto d = *sil::measure_divergence(cached, fresh);
      auto si = static_cast<std::size_t>(s);
      cos[si].push_back(d.cosine);
      l2[si].push_back(d.l2);
      err[si].push_back(std::abs(static_cast<double>(p_cached - m->head(fresh))));
    }
    if ((t + 1) % 50 == 0 || t + 1 == trials) {
      auto el = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      std::fprintf(stderr, "\r[drift] encode  %6.1f s  %d / %d trials", el, t + 1, trials);
    }
  }
  std::fprintf(stderr, "\n");
  auto pct = [](std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return sil::nearest_rank(v, p);
  };
  json rows = json::array();
  std::ofstream csv{dir / "results.csv"};
  csv << "step,suffix_mean,cosine_p05,cosine_p50,cosine_p95,cosine_mean,l2_p50,l2_p95,"
         "pred_err_p50,pred_err_p95,pred_err_mean,share_err_over_0.05\n";
  std::ofstream md{dir / "summary.md"};
  md << "# Drift: divergence and prediction error of a reused embedding\n\n"
     << "Model `" << o.preset << "` (seed 42), prefix K=" << k << " fixed, suffix ~ N(step x "
     << o.strength << ", 1), " << trials << " trials per step (seed " << o.seed
     << "). The cached embedding is the step-0 one of each trial.\n\n"
     << "| step | suffix mean | cosine p50 | cosine p95 | L2 p50 | pred. error p50 | p95 | "
        "share > 0.05 |\n|---|---|---|---|---|---|---|---|\n";
  for (int s = 0; s <= steps; ++s) {
    auto si = static_cast<std::size_t>(s);
    auto mean = [](const std::vector<double>& v) {
      return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    };
    double over = static_cast<double>(std::count_if(err[si].begin(), err[si].end(),
                                                    [](double e) { return e > 0.05; }))
                  / static_cast<double>(err[si].size());
    json row = {{"step", s},
                {"suffix_mean", s * o.strength},
                {"cosine_p05", pct(cos[si], 5)},
                {"cosine_p50", pct(cos[si], 50)},
                {"cosine_p95", pct(cos[si], 95)},
                {"cosine_mean", mean(cos[si])},
                {"l2_p50", pct(l2[si], 50)},
                {"l2_p95", pct(l2[si], 95)},
                {"pred_err_p50", pct(err[si], 50)},
                {"pred_err_p95", pct(err[si], 95)},
                {"pred_err_mean", mean(err[si])},
                {"share_err_over_0.05", over}};
    csv << s << ',' << row["suffix_mean"] << ',' << row["cosine_p05"] << ',' << row["cosine_p50"]
        << ',' << row["cosine_p95"] << ',' << row["cosine_mean"] << ',' << row["l2_p50"] << ','
        << row["l2_p95"] << ',' << row["pred_err_p50"] << ',' << row["pred_err_p95"] << ','
        << row["pred_err_mean"] << ',' << over << "\n";
    char line[256];
    std::snprintf(line, sizeof line, "| %d | %.2f | %.4f | %.4f | %.3f | %.4f | %.4f | %.2f |\n", s,
                  s * o.strength, row["cosine_p50"].get<double>(), row["cosine_p95"].get<double>(),
                  row["l2_p50"].get<double>(), row["pred_err_p50"].get<double>(),
                  row["pred_err_p95"].get<double>(), over);
    md << line;
    rows.push_back(std::move(row));
  }
  json all_cos;
  std::vector<double> flat_cos;
  std::vector<double> flat_err;
  for (std::size_t s = 0; s < cos.size(); ++s) {
    flat_cos.insert(flat_cos.end(), cos[s].begin(), cos[s].end());
    flat_err.insert(flat_err.end(), err[s].begin(), err[s].end());
  }
  double rho = spearman(flat_cos, flat_err);
  md << "\nSpearman rank correlation between cosine divergence and prediction error over all "
     << flat_cos.size() << " comparisons: **" << rho << "**.\n";
  json out = {{"experiment", "drift"},
              {"config",
               {{"preset", o.preset},
                {"prefix_k", k},
                {"strength", o.strength},
                {"steps", steps},
                {"trials", trials},
                {"seed", o.seed},
                {"quick", o.quick}}},
              {"spearman_cosine_vs_prediction_error", rho},
              {"steps", rows}};
  std::ofstream{dir / "results.json"} << out.dump(2) << "\n";
  csv.close(); // the plot script reads it next
  md.close();
  auto cmd = "/usr/bin/python3 " + self_dir_script(self_path) + " drift " + dir.string();
  if (std::system(cmd.c_str()) != 0)
    std::fprintf(stderr, "[drift] warning: plotting failed (python3-matplotlib installed?)\n");
  std::fprintf(stderr, "[drift] wrote %s (Spearman rho %.3f)\n",
               (dir / "results.json").string().c_str(), rho);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string{argv[1]} == "-h" || std::string{argv[1]} == "--help") {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  options o;
  if (auto err = parse_args(argc, argv, o); !err.empty())
    return fail(err);
  if (cmd == "load")
    return cmd_load(o, argv[0]);
  if (cmd == "drift")
    return cmd_drift(o, argv[0]);
  usage(stderr);
  return fail("unknown subcommand '" + cmd + "' (available: load, drift)");
}
