#include "experiments/lab.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>

#include "core/window_stats.hpp"
#include "experiments/locate.hpp"
#include "experiments/progress.hpp"

extern char** environ;

namespace sil::lab {

namespace {

const auto lab_start = std::chrono::steady_clock::now();

} // namespace

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

bool stderr_is_tty() {
  static const bool tty = isatty(STDERR_FILENO) == 1;
  return tty;
}

status quick_may_write(const options& o, const std::string& name) {
  if (!o.quick)
    return ok();
  auto file = fs::path{o.out} / name / "results.json";
  std::ifstream in{file};
  if (!in)
    return ok();
  auto j = json::parse(in, nullptr, false);
  // Only a file that says it came from a quick run may be replaced; one
  // that does not say (or cannot be read) is kept, as a full run's would be.
  bool quick = !j.is_discarded() && j.is_object() && j.contains("config") && j["config"].is_object()
               && j["config"].value("quick", false);
  if (quick)
    return ok();
  return error{errc::invalid_argument,
               file.string()
                 + " holds a full run's results; a --quick run does not overwrite "
                   "them (its default output is reports/quick; pass another --out, or delete "
                   "that directory)"};
}

progress_meter stderr_progress(const std::string& label, const std::string& unit) {
  return {label, unit, stderr_is_tty(), [](const std::string& s) { std::fputs(s.c_str(), stderr); },
          lab_elapsed()};
}

result<fs::path> experiment_dir(const options& o, const std::string& name) {
  if (auto st = quick_may_write(o, name); !st)
    return st.error();
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
  auto bin = o.server.empty() ? (executable_dir(o.self.c_str()) / "sil-server").string() : o.server;
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
  auto meter = stderr_progress("[" + experiment + "] " + phase, "requests");
  lc.progress
    = [&](std::size_t done, std::size_t planned) { meter.update(lab_elapsed(), done, planned); };
  auto r = run_load(lc);
  meter.finish(lab_elapsed(), r ? r->requests.size() : 0, schedule.size());
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

namespace {

/// Runs `argv` (argv[0] a path) and waits; its exit status, or -1 if it
/// could not start or did not exit normally.
int run_and_wait(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0)
    return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace

void finish_experiment(const std::string& kind, const fs::path& dir, const std::string& note) {
  // plot.py is found at run time (SIL_PLOT_SCRIPT, the installed layout, the
  // build tree): see experiments/locate.hpp.
  auto script = find_plot_script(std::getenv("SIL_PLOT_SCRIPT"), executable_dir(nullptr));
  if (!script)
    std::fprintf(stderr, "[%s] warning: no plots: %s\n", kind.c_str(),
                 script.error().message.c_str());
  else if (run_and_wait({"/usr/bin/python3", script->string(), kind, dir.string()}) != 0)
    std::fprintf(stderr,
                 "[%s] warning: plotting with %s failed (is python3-matplotlib installed?)\n",
                 kind.c_str(), script->string().c_str());
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

double ratio(std::size_t a, std::size_t b) noexcept {
  return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
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
