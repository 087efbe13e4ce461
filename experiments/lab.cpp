#include "experiments/lab.hpp"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/window_stats.hpp"

namespace sil::lab {

namespace {

const auto lab_start = std::chrono::steady_clock::now();

bool parse_double(const std::string& s, double& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return errno == 0 && end != s.c_str() && *end == '\0' && std::isfinite(out);
}

bool parse_list(const std::string& s, std::vector<double>& out) {
  out.clear();
  std::stringstream in{s};
  std::string item;
  while (std::getline(in, item, ',')) {
    double d = 0;
    if (!parse_double(item, d) || d < 0)
      return false;
    out.push_back(d);
  }
  return !out.empty();
}

} // namespace

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
    } else if (a == "--url" || a == "--server" || a == "--out" || a == "--server-arg"
               || a == "--preset" || a == "--admin-token") {
      if (!value(v) || v.empty())
        return a + " needs a value";
      if (a == "--url")
        o.url = v;
      else if (a == "--server")
        o.server = v;
      else if (a == "--out")
        o.out = v;
      else if (a == "--preset")
        o.preset = v;
      else if (a == "--admin-token")
        o.admin_token = v;
      else
        o.server_args.push_back(v);
    } else if (a == "--levels" || a == "--ttls" || a == "--capacities" || a == "--deltas") {
      auto& dst = a == "--levels"   ? o.levels
                  : a == "--ttls"   ? o.ttls
                  : a == "--deltas" ? o.deltas
                                    : o.capacities;
      if (!value(v) || !parse_list(v, dst))
        return a + ": expected comma-separated non-negative numbers, e.g. 0,0.1,0.5";
      if (a == "--capacities")
        for (double c : dst)
          if (c < 1 || c != std::floor(c))
            return "--capacities: expected whole numbers >= 1";
      if (a == "--deltas")
        for (double x : dst)
          if (x <= 0 || x > 1)
            return "--deltas: expected rates in (0, 1]";
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
               || a == "--zipf-m" || a == "--seed" || a == "--steps" || a == "--strength"
               || a == "--trials" || a == "--prefix-k" || a == "--tolerance" || a == "--noise"
               || a == "--reps") {
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
      else if (a == "--seed")
        o.seed = static_cast<std::uint64_t>(d);
      else if (a == "--steps")
        o.steps = d;
      else if (a == "--strength") {
        o.strength = d;
        o.strength_given = true;
      } else if (a == "--trials")
        o.trials = d;
      else if (a == "--prefix-k")
        o.prefix_k = d;
      else if (a == "--tolerance")
        o.tolerance = d;
      else if (a == "--reps") {
        if (d < 1 || d != std::floor(d))
          return "--reps: expected a whole number >= 1";
        o.reps = static_cast<std::size_t>(d);
      } else
        o.noise = d;
    } else {
      return "unknown option '" + a + "'";
    }
  }
  if (o.connections == 0)
    return "--connections must be at least 1";
  return {};
}

std::size_t reps_of(const options& o) {
  return o.reps > 0 ? o.reps : (o.quick ? 1 : 3);
}

std::uint64_t rep_seed(const options& o, std::size_t rep) {
  return o.seed + 1000 * rep;
}

const std::vector<std::string>& old_behaviour_args() {
  static const std::vector<std::string> args{"--risk.guard=off",     "--agent.trigger=cosine",
                                             "--audit.rate=0.05",    "--audit.max-share=0.05",
                                             "--audit.per-second=0", "--audit.max-encoder-share=1"};
  return args;
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "sil-lab: %s\n", msg.c_str());
  return 2;
}

double lab_elapsed() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - lab_start).count();
}

result<fs::path> experiment_dir(const options& o, const std::string& name) {
  auto dir = fs::path{o.out} / name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return error{errc::io_error, "cannot create " + dir.string() + ": " + ec.message()};
  return dir;
}

result<target> open_target(const options& o, const std::vector<std::string>& args,
                           const fs::path& log) {
  target t;
  if (!o.url.empty()) {
    auto u = o.url;
    if (u.rfind("http://", 0) == 0)
      u = u.substr(7);
    if (!u.empty() && u.back() == '/')
      u.pop_back();
    auto colon = u.rfind(':');
    char* end = nullptr;
    long port = colon == std::string::npos ? 0 : std::strtol(u.c_str() + colon + 1, &end, 10);
    if (colon == std::string::npos || port <= 0 || port > 65535 || *end != '\0')
      return error{errc::invalid_config,
                   "--url must look like http://127.0.0.1:8000, got '" + o.url + "'"};
    t.host = u.substr(0, colon);
    t.port = static_cast<std::uint16_t>(port);
    t.token = o.admin_token;
    auto health = http_call(t.host, t.port, "GET", "/health", {}, {}, 5.0);
    if (!health)
      return error{errc::unavailable, "no sil-server at " + o.url + ": " + health.error().message};
    return t;
  }
  auto bin = o.server.empty() ? (fs::path{o.self}.parent_path() / "sil-server").string() : o.server;
  std::random_device rd;
  char token[40];
  std::snprintf(token, sizeof token, "lab-%08x%08x", rd(), rd());
  t.token = token;
  std::vector<std::string> all{"--admin.token=" + t.token};
  all.insert(all.end(), args.begin(), args.end());
  all.insert(all.end(), o.server_args.begin(), o.server_args.end());
  auto s = server_process::start(bin, all, log.string());
  if (!s)
    return s.error();
  t.port = s->port();
  t.own.emplace(std::move(*s));
  return t;
}

json call_json(const target& t, const std::string& method, const std::string& path,
               const std::string& body) {
  auto r = http_call(t.host, t.port, method, path, body, t.token, 10.0);
  if (!r || r->status != 200)
    return nullptr;
  auto j = json::parse(r->body, nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

result<load_result> run_cell(const target& t, const std::string& experiment,
                             const std::string& phase, const std::vector<double>& schedule,
                             const std::vector<std::string>& bodies, std::size_t connections) {
  load_config lc;
  lc.host = t.host;
  lc.port = t.port;
  lc.connections = connections;
  lc.schedule = schedule;
  lc.body = [&bodies](std::size_t i) { return bodies[i]; };
  lc.progress = [&](std::size_t done, std::size_t planned) {
    std::fprintf(stderr, "\r[%s] %-28s %7.1f s  %zu / %zu requests  ", experiment.c_str(),
                 phase.c_str(), lab_elapsed(), done, planned);
  };
  auto r = run_load(lc);
  std::fprintf(stderr, "\n");
  return r;
}

json run_summary(const load_result& r, double target_rate, double duration) {
  std::vector<double> ms;
  std::map<std::string, std::size_t> by_status;
  std::size_t hits = 0;
  std::size_t ok = 0;
  for (const auto& q : r.requests) {
    if (q.dropped) {
      ++by_status["dropped"];
      continue;
    }
    if (q.failed) {
      ++by_status["failed"];
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
          {"reconnects", r.reconnects},
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

void write_json(const fs::path& dir, const json& j) {
  std::ofstream{dir / "results.json"} << j.dump(2) << "\n";
}

void finish_experiment(const std::string& kind, const fs::path& dir, const std::string& note) {
  // The plot script lives in the source tree (SIL_SOURCE_DIR, set at build).
  auto cmd = std::string{"/usr/bin/python3 "} + SIL_SOURCE_DIR + "/experiments/plot.py " + kind
             + " '" + dir.string() + "'";
  if (std::system(cmd.c_str()) != 0)
    std::fprintf(stderr, "[%s] warning: plotting failed (is python3-matplotlib installed?)\n",
                 kind.c_str());
  std::fprintf(stderr, "[%s] wrote %s%s%s\n", kind.c_str(), (dir / "results.json").string().c_str(),
               note.empty() ? "" : " ", note.c_str());
}

std::optional<model> local_model_for(const std::string& version) {
  for (const char* name : {"base", "seed"}) {
    auto cfg = preset(name);
    if (!cfg)
      continue;
    auto m = model::from_seed(*cfg, 42);
    if (m && m->version() == version)
      return std::move(*m);
  }
  return std::nullopt;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::vector<std::vector<const json*>> groups_of(const json& cells) {
  std::vector<std::vector<const json*>> out;
  std::map<std::string, std::size_t> index;
  for (const auto& c : cells) {
    auto g = c.value("group", std::string{});
    auto [it, added] = index.emplace(g, out.size());
    if (added)
      out.emplace_back();
    out[it->second].push_back(&c);
  }
  return out;
}

spread spread_at(const std::vector<const json*>& cells, const std::string& ptr) {
  std::vector<double> v;
  json::json_pointer p{ptr};
  for (const auto* c : cells)
    if (c->contains(p) && c->at(p).is_number())
      v.push_back(c->at(p).get<double>());
  return spread_of(v);
}

json to_json(const spread& s) {
  return {{"n", s.n}, {"mean", s.mean}, {"min", s.min}, {"max", s.max}};
}

std::string spread_text(const json& s, int digits) {
  if (!s.is_object() || !s.contains("n"))
    return "n/a";
  return format_spread({s["n"].get<std::size_t>(), s["mean"].get<double>(), s["min"].get<double>(),
                        s["max"].get<double>()},
                       digits);
}

std::string spread_text(const std::vector<const json*>& cells, const std::string& ptr, int digits) {
  return format_spread(spread_at(cells, ptr), digits);
}

} // namespace sil::lab
