// sil-lab: the experiment runner.
//
//   sil-lab COMMAND [options]      (sil-lab --help, sil-lab COMMAND --help)
//
// Each experiment that needs a server starts its own sil-server (next to
// this binary) on a free loopback port with the configuration it needs, or
// targets --url. Progress goes to stderr; results to OUT/<experiment>/.
//
// The command line is CLI11's: `--opt value` and `--opt=value`, one
// subcommand per experiment, each with only the options it reads and their
// defaults in its --help. Every parse error is one line on stderr and exit
// code 2, as a failed experiment's.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/build_info.hpp"
#include "experiments/lab.hpp"

namespace {

using namespace sil::lab;

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

const CLI::Validator non_negative{[](std::string& s) -> std::string {
                                    double d = 0;
                                    if (!parse_double(s, d) || d < 0)
                                      return "expected a non-negative number, got '" + s + "'";
                                    return {};
                                  },
                                  "", "non-negative"};

const CLI::Validator number_list{
  [](std::string& s) -> std::string {
    std::vector<double> v;
    if (!parse_list(s, v))
      return "expected comma-separated non-negative numbers, e.g. 0,0.1,0.5, got '" + s + "'";
    return {};
  },
  "", "list"};

const CLI::Validator not_empty{
  [](std::string& s) -> std::string { return s.empty() ? "needs a value" : ""; }, "", "not-empty"};

/// A validator that accepts the listed words only.
CLI::Validator one_of(const std::vector<std::string>& words) {
  return {[words](std::string& s) -> std::string {
            std::string all;
            for (const auto& w : words) {
              if (s == w)
                return {};
              all += (all.empty() ? "" : ", ") + w;
            }
            return "unknown value '" + s + "' (one of: " + all + ")";
          },
          "", "one-of"};
}

/// The experiments, in the order `sil-lab --help` lists them.
struct command_info {
  const char* name;
  const char* about;
};

const command_info commands[] = {
  {"load", "latency with the cache off / on / on without single-flight, under\n"
           "steady and bursty open-loop traffic"},
  {"drift", "pure-model drift study: divergence and prediction error of a reused\n"
            "embedding as the suffix drifts (no server)"},
  {"correctness", "hit / wrong-hit / miss table across drift levels: the service before\n"
                  "the reuse guard (agent off, on, on_tight) and with it; Spearman rho\n"
                  "between divergence and prediction error; hit rate vs wrong rate of\n"
                  "the guard, static thresholds (replayed offline) and the oracle"},
  {"guard", "the reuse guard: achieved vs target wrong-rate, a phased scenario\n"
            "(harmless noise, sudden shift, one drifting feature), a timeline"},
  {"sweep-ttl", "TTL vs hit rate, entry age at hit and divergence under drift"},
  {"sweep-capacity", "capacity vs hit rate, LRU+TTL vs plain LRU vs W-TinyLFU, on Zipf,\n"
                     "Zipf + one-off prefixes and bursty traffic"},
  {"picture", "the cache and the agent at work under drift: errors of served hits\n"
              "against the tolerance over time, and the agent's and the guard's state\n"
              "(prefix reuse with the cosine agent vs the reuse guard); drift.png"},
  {"canary", "canary cache policies judged live on a drifting workload: a shorter TTL\n"
             "promoted, a looser risk budget rolled back; canary.png"},
  {"all", "every experiment, then OUT/REPORT.md with the findings\n"
          "(its options apply to every experiment)"},
  {"report", "only rewrite OUT/REPORT.md from the results already in OUT"},
};

/// Numbers the experiments keep as integers, read as numbers first (so that
/// `--seed 1e3` works as it always did).
struct integers {
  double connections = 32;
  double zipf_m = 0;
  double seed = 1;
  double reps = 0;
};

/// Text options converted after parsing.
struct texts {
  std::string arrival = "poisson";
  std::string prefix = "zipf";
  std::string levels;
  std::string ttls;
  std::string capacities;
  std::string deltas;
};

using adder
  = std::function<CLI::Option*(CLI::App&, const std::string& flags, const std::string& help)>;

/// One option: where it appears (command -> the default shown in that
/// command's --help; "" shows none) and how it binds. `all` takes every
/// option, as it passes them on to each experiment.
struct option_spec {
  std::string flags;
  std::string type;
  std::string help;
  std::map<std::string, std::string> defaults;
  adder add;
};

const std::set<std::string> server_commands{"load",           "correctness", "guard", "sweep-ttl",
                                            "sweep-capacity", "picture",     "canary"};
const std::set<std::string> seeded_commands{"load",      "drift",          "correctness", "guard",
                                            "sweep-ttl", "sweep-capacity", "picture",     "canary"};

std::map<std::string, std::string> in(const std::set<std::string>& cmds, const std::string& d) {
  std::map<std::string, std::string> m;
  for (const auto& c : cmds)
    m[c] = d;
  return m;
}

std::vector<option_spec> option_table(options& o, integers& n, texts& t) {
  auto number = [](double& dst) -> adder {
    return [&dst](CLI::App& app, const std::string& f, const std::string& h) {
      return app.add_option(f, dst, h)->check(non_negative);
    };
  };
  auto text = [](std::string& dst, const CLI::Validator& v) -> adder {
    return [&dst, &v](CLI::App& app, const std::string& f, const std::string& h) {
      return app.add_option(f, dst, h)->check(v);
    };
  };
  auto traffic = std::set<std::string>{"load",           "correctness", "guard", "sweep-ttl",
                                       "sweep-capacity", "picture",     "canary"};
  std::vector<option_spec> v;
  v.push_back({"--out",
               "DIR",
               "output root",
               {{"load", "reports (--quick: reports/quick)"},
                {"drift", "reports (--quick: reports/quick)"},
                {"correctness", "reports (--quick: reports/quick)"},
                {"guard", "reports (--quick: reports/quick)"},
                {"sweep-ttl", "reports (--quick: reports/quick)"},
                {"sweep-capacity", "reports (--quick: reports/quick)"},
                {"picture", "reports (--quick: reports/quick)"},
                {"canary", "reports (--quick: reports/quick)"},
                {"report", "reports (--quick: reports/quick)"}},
               text(o.out, not_empty)});
  v.push_back({"--url", "URL",
               "target a running server (http://127.0.0.1:PORT) instead of\nstarting one; "
               "settings the experiment varies are then not applied",
               in(server_commands, ""), text(o.url, not_empty)});
  v.push_back({"--admin-token", "T", "the --url server's admin token (to read GET /agent)",
               in(server_commands, ""), text(o.admin_token, not_empty)});
  v.push_back({"--server", "PATH", "sil-server binary", in(server_commands, "next to sil-lab"),
               text(o.server, not_empty)});
  v.push_back(
    {"--server-arg", "ARG", "extra sil-server flag, repeatable (--server-arg --cache.max-size=64)",
     in(server_commands, ""), [&o](CLI::App& app, const std::string& f, const std::string& h) {
       return app.add_option(f, o.server_args, h)->allow_extra_args(false)->check(not_empty);
     }});
  v.push_back({"--seed", "N", "workload seed; repetition r uses seed + 1000 r",
               in(seeded_commands, "1"), number(n.seed)});
  v.push_back({"--reps",
               "N",
               "repetitions with different workload seeds",
               {{"load", "3 (--quick: 1)"},
                {"correctness", "3 (--quick: 1)"},
                {"guard", "3 (--quick: 1)"},
                {"sweep-ttl", "3 (--quick: 1)"},
                {"sweep-capacity", "3 (--quick: 1)"}},
               number(n.reps)});
  v.push_back({"--rate",
               "R",
               "requests per second",
               {{"load", "steady 1000 (--quick: 300), bursty base 200"},
                {"correctness", "300"},
                {"guard", "300"},
                {"sweep-ttl", "300"},
                {"sweep-capacity", "2000 (bursty base: half of it)"},
                {"picture", "300"},
                {"canary", "300"}},
               number(o.rate)});
  v.push_back({"--duration",
               "S",
               "seconds per run",
               {{"load", "7 (--quick: 5)"},
                {"correctness", "7 (--quick: 5)"},
                {"guard", "calibration 7, scenario 12, timeline 20 (--quick: 5, 9, 8)"},
                {"sweep-ttl", "6 (--quick: 5)"},
                {"sweep-capacity", "3 (--quick: 2)"},
                {"picture", "40 (--quick: 16)"},
                {"canary", "60 per case (--quick: 16)"}},
               number(o.duration)});
  v.push_back(
    {"--connections", "N", "client connections", in(traffic, "32"), number(n.connections)});
  v.push_back({"--arrival", "constant|poisson", "inter-arrival gaps", in(traffic, "poisson"),
               [&t](CLI::App& app, const std::string& f, const std::string& h) {
                 return app.add_option(f, t.arrival, h)->check(one_of({"constant", "poisson"}));
               }});
  v.push_back({"--prefix", "hot|zipf|unique", "which prefixes requests use",
               in({"load", "correctness", "guard", "sweep-ttl", "picture", "canary"}, "zipf"),
               [&t](CLI::App& app, const std::string& f, const std::string& h) {
                 return app.add_option(f, t.prefix, h)->check(one_of({"hot", "zipf", "unique"}));
               }});
  v.push_back({"--zipf-m",
               "M",
               "number of Zipf prefixes",
               {{"load", "100"},
                {"correctness", "50"},
                {"guard", "50"},
                {"sweep-ttl", "50"},
                {"sweep-capacity", "1000"},
                {"picture", "50"},
                {"canary", "50"}},
               number(n.zipf_m)});
  v.push_back({"--zipf-s",
               "S",
               "Zipf exponent",
               {{"load", "1.1"},
                {"correctness", "1.1"},
                {"guard", "1.1"},
                {"sweep-ttl", "1.1"},
                {"sweep-capacity", "0.9"},
                {"picture", "1.1"},
                {"canary", "1.1"}},
               number(o.zipf_s)});
  for (const char* b : {"--burst-rate", "--burst-period", "--burst-length"}) {
    std::string name = b;
    double& dst = name == "--burst-rate"     ? o.burst_rate
                  : name == "--burst-period" ? o.burst_period
                                             : o.burst_length;
    const char* d = name == "--burst-rate" ? "3000" : name == "--burst-period" ? "2" : "0.4";
    const char* h = name == "--burst-rate"     ? "requests per second during a burst"
                    : name == "--burst-period" ? "a burst starts every S seconds"
                                               : "a burst lasts S seconds";
    v.push_back({name,
                 name == "--burst-rate" ? "R" : "S",
                 h,
                 {{"load", d}, {"sweep-capacity", d}},
                 number(dst)});
  }
  v.push_back({"--preset",
               "base|seed",
               "model preset (seed 42)",
               {{"drift", "base"}},
               text(o.preset, not_empty)});
  v.push_back(
    {"--steps",
     "N",
     "drift steps per run",
     {{"drift", "20 (--quick: 10)"}, {"correctness", "10"}, {"guard", "10"}, {"sweep-ttl", "10"}},
     number(o.steps)});
  v.push_back({"--strength",
               "S",
               "drift per step",
               {{"drift", "0.25"},
                {"correctness", "0.25 (the resampled row's drift per step)"},
                {"guard", "0.1 (the timeline's drift per step)"},
                {"sweep-ttl", "0.1"},
                {"picture", "0.05 (drift per second, from a quarter of the run on)"},
                {"canary", "0.03 (drift per second)"}},
               [&o](CLI::App& app, const std::string& f, const std::string& h) {
                 return app.add_option(f, o.strength, h)->check(non_negative);
               }});
  v.push_back(
    {"--trials", "N", "random inputs", {{"drift", "1000 (--quick: 100)"}}, number(o.trials)});
  v.push_back({"--prefix-k", "K", "key length (values)", {{"drift", "4"}}, number(o.prefix_k)});
  v.push_back({"--tolerance", "T", "a hit is wrong when |prediction - fresh| > T",
               in({"drift", "correctness", "guard", "sweep-ttl", "picture", "canary"}, "0.05"),
               number(o.tolerance)});
  v.push_back({"--noise",
               "S",
               "per-value noise of every request (standard deviation)",
               {{"correctness", "0"},
                {"guard", "0 (timeline: 0.001)"},
                {"sweep-ttl", "0"},
                {"picture", "0.001"},
                {"canary", "0.001"}},
               number(o.noise)});
  v.push_back({"--levels",
               "LIST",
               "drift per step of the table's rows",
               {{"correctness", "0,0.02,0.05,0.1,0.25 (--quick: 0,0.05,0.25)"}},
               text(t.levels, number_list)});
  v.push_back({"--deltas",
               "LIST",
               "risk.max-wrong-rate targets, in (0, 1]",
               {{"guard", "0.005,0.01,0.05"}},
               text(t.deltas, number_list)});
  v.push_back({"--ttls",
               "LIST",
               "TTLs in seconds, 0 = no TTL",
               {{"sweep-ttl", "0.25,0.5,1,2,4,0 (--quick: 0.25,1,4,0)"}},
               text(t.ttls, number_list)});
  v.push_back({"--capacities",
               "LIST",
               "cache capacities (entries)",
               {{"sweep-capacity", "8,16,32,64,128,256,512,1024,2048 (--quick: 16,64,256,1024)"}},
               text(t.capacities, number_list)});
  return v;
}

/// Copies the parsed numbers and texts into `o`; an error message or "".
std::string finish_options(options& o, const integers& n, const texts& t, bool strength_given) {
  o.connections = static_cast<std::size_t>(n.connections);
  o.zipf_m = static_cast<std::size_t>(n.zipf_m);
  o.seed = static_cast<std::uint64_t>(n.seed);
  if (n.reps != 0) {
    if (n.reps < 1 || n.reps != std::floor(n.reps))
      return "--reps: expected a whole number >= 1";
    o.reps = static_cast<std::size_t>(n.reps);
  }
  if (o.connections == 0)
    return "--connections must be at least 1";
  o.strength_given = strength_given;
  o.kind = t.arrival == "constant" ? arrival::constant : arrival::poisson;
  o.prefix = t.prefix == "hot"      ? prefix_kind::hot
             : t.prefix == "unique" ? prefix_kind::unique
                                    : prefix_kind::zipf;
  if (!t.levels.empty())
    parse_list(t.levels, o.levels);
  if (!t.ttls.empty())
    parse_list(t.ttls, o.ttls);
  if (!t.deltas.empty()) {
    parse_list(t.deltas, o.deltas);
    for (double x : o.deltas)
      if (x <= 0 || x > 1)
        return "--deltas: expected rates in (0, 1]";
  }
  if (!t.capacities.empty()) {
    parse_list(t.capacities, o.capacities);
    for (double c : o.capacities)
      if (c < 1 || c != std::floor(c))
        return "--capacities: expected whole numbers >= 1";
  }
  return {};
}

/// `--server-arg VALUE` where VALUE starts with '-' (as every sil-server
/// flag does): CLI11 would read VALUE as an option of its own, so the pair
/// becomes `--server-arg=VALUE` before parsing.
std::vector<std::string> joined_args(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--server-arg" && i + 1 < argc)
      out.push_back(a + "=" + argv[++i]);
    else
      out.push_back(std::move(a));
  }
  return out;
}

std::string one_line(std::string s) {
  for (auto& c : s)
    if (c == '\n')
      c = ' ';
  while (!s.empty() && s.back() == ' ')
    s.pop_back();
  return s;
}

int run(const options& o) {
  if (o.command == "load")
    return cmd_load(o);
  if (o.command == "drift")
    return cmd_drift(o);
  if (o.command == "correctness")
    return cmd_correctness(o);
  if (o.command == "guard")
    return cmd_guard(o);
  if (o.command == "sweep-ttl")
    return cmd_sweep_ttl(o);
  if (o.command == "sweep-capacity")
    return cmd_sweep_capacity(o);
  if (o.command == "picture")
    return cmd_picture(o);
  if (o.command == "canary")
    return cmd_canary(o);
  if (o.command == "all")
    return cmd_all(o);
  return cmd_report(o);
}

} // namespace

int main(int argc, char** argv) {
  options o;
  o.self = argv[0];
  integers n;
  texts t;
  std::string version
    = std::string{"sil-lab "} + sil::build_version() + " (commit " + sil::build_commit() + ")";
  CLI::App app{"sil-lab: Stateful Inference Lab's experiments. Each command writes\n"
               "OUT/<command>/: results.json, results.csv, summary.md, PNG plots.",
               "sil-lab"};
  app.set_version_flag("--version", version, "print the version and commit, then exit");
  app.require_subcommand(1);
  app.footer("Options differ by command: sil-lab COMMAND --help lists them with their defaults.\n"
             "Every option takes its value as --opt value or --opt=value. --quick runs write to\n"
             "reports/quick unless --out says otherwise, and never overwrite a full run's "
             "results.");
  auto specs = option_table(o, n, t);
  std::map<std::string, CLI::App*> subs;
  for (const auto& c : commands) {
    auto* sub = app.add_subcommand(c.name, c.about);
    subs[c.name] = sub;
    sub->add_flag("--quick", o.quick, "short runs (each command under a minute on 2 cores)");
    for (const auto& s : specs) {
      bool here = s.defaults.count(c.name) > 0;
      if (!here && std::string{c.name} != "all")
        continue;
      auto help = s.help;
      // `all` passes every option on to each experiment: its defaults are
      // theirs, except the output root, the seed and the server.
      auto d = here ? s.defaults.at(c.name) : std::string{"per experiment"};
      if (!here && (s.flags == "--out" || s.flags == "--seed" || s.flags == "--server"))
        d = s.defaults.begin()->second;
      if (!d.empty())
        help += " [default: " + d + "]";
      s.add(*sub, s.flags, help)->type_name(s.type);
    }
  }
  if (argc < 2) {
    std::fputs(app.help().c_str(), stderr);
    return 2;
  }
  std::string first = argv[1];
  if (!first.empty() && first[0] == '-' && first != "-h" && first != "--help"
      && first != "--version")
    return fail("unknown option '" + first.substr(0, first.find('='))
                + "' before the command (sil-lab --help)");
  if (!first.empty() && first[0] != '-' && subs.count(first) == 0) {
    std::string names;
    for (const auto& c : commands)
      names += (names.empty() ? "" : ", ") + std::string{c.name};
    return fail("unknown command '" + first + "' (available: " + names + "; sil-lab --help)");
  }
  auto args = joined_args(argc, argv);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    // After a command, its own options (CLI11 shows the selected command's).
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    std::printf("%s\n", e.what());
    return 0;
  } catch (const CLI::ExtrasError&) {
    // What CLI11 left over: the first option it did not know (or a stray
    // word), named in one line.
    auto selected = app.get_subcommands();
    auto* where = selected.empty() ? &app : selected.front();
    auto left = where->remaining();
    std::string word = left.empty() ? std::string{} : left.front();
    for (const auto& a : left)
      if (!a.empty() && a[0] == '-') {
        word = a.substr(0, a.find('='));
        break;
      }
    std::string cmd = selected.empty() ? "" : selected.front()->get_name() + " ";
    bool option = !word.empty() && word[0] == '-';
    return fail(std::string{option ? "unknown option '" : "unexpected argument '"} + word
                + "' (sil-lab " + cmd + "--help lists the options)");
  } catch (const CLI::ParseError& e) {
    return fail(one_line(e.what()));
  }
  o.command = app.get_subcommands().front()->get_name();
  const auto* strength = subs[o.command]->get_option_no_throw("--strength");
  bool strength_given = strength != nullptr && strength->count() > 0;
  if (auto err = finish_options(o, n, t, strength_given); !err.empty())
    return fail(err);
  if (subs[o.command]->get_option("--out")->count() == 0)
    o.out = o.quick ? "reports/quick" : "reports";
  int rc = run(o);
  // A server this run started and stopped that did not exit 0 (a
  // sanitizer's report at exit, a crash) fails the run, even if its
  // answers were fine.
  if (rc == 0 && server_process::failures() > 0)
    return fail(std::to_string(server_process::failures())
                + " sil-server process(es) it started did not exit 0 (see above)");
  return rc;
}
