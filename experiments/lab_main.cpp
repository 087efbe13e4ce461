// sil-lab: the experiment runner.
//
//   sil-lab load | drift | correctness | guard | sweep-ttl | sweep-capacity | all
//
// Each experiment that needs a server starts its own sil-server (next to
// this binary) on a free loopback port with the configuration it needs, or
// targets --url. Progress goes to stderr; results to OUT/<experiment>/.
#include <cstdio>
#include <string>

#include "experiments/lab.hpp"

namespace {

void usage(FILE* out) {
  std::fprintf(
    out,
    "usage: sil-lab COMMAND [--quick] [options]\n"
    "\n"
    "Commands (each writes OUT/<command>/results.json, results.csv, summary.md, PNG plots):\n"
    "  load            latency with the cache off / on / on without single-flight, under\n"
    "                  steady and bursty open-loop traffic\n"
    "  drift           pure-model drift study: divergence and prediction error of a reused\n"
    "                  embedding as the suffix drifts (no server)\n"
    "  correctness     hit / wrong-hit / miss table across drift levels: the service before\n"
    "                  the reuse guard (agent off, on, on_tight) and with it; Spearman rho\n"
    "                  between divergence and prediction error; hit rate vs wrong rate of\n"
    "                  the guard, static thresholds (replayed offline) and the oracle\n"
    "  guard           the reuse guard: achieved vs target wrong-rate, a phased scenario\n"
    "                  (harmless noise, sudden shift, one drifting feature), a timeline\n"
    "  sweep-ttl       TTL vs hit rate, entry age at hit and divergence under drift\n"
    "  sweep-capacity  capacity vs hit rate, LRU+TTL vs plain LRU vs W-TinyLFU, on Zipf,\n"
    "                  Zipf + one-off prefixes and bursty traffic\n"
    "  all             every experiment, then OUT/REPORT.md with the findings\n"
    "  report          only rewrite OUT/REPORT.md from the results already in OUT\n"
    "\n"
    "Common options:\n"
    "  --quick             short runs (each command under a minute on 2 cores)\n"
    "                      (options given to 'all' apply to every experiment)\n"
    "  --out DIR           output root (default: reports)\n"
    "  --url URL           target a running server (http://127.0.0.1:PORT) instead of starting\n"
    "                      one; settings the experiment varies are then not applied\n"
    "  --admin-token T     the --url server's admin token (to read GET /agent)\n"
    "  --server PATH       sil-server binary (default: next to sil-lab)\n"
    "  --server-arg ARG    extra sil-server flag, repeatable\n"
    "  --seed N            workload seed (default 1); repetition r uses seed + 1000 r\n"
    "  --reps N            repetitions with different workload seeds (default 3, --quick 1)\n"
    "  --rate R --duration S --connections N --arrival constant|poisson\n"
    "  --prefix hot|zipf|unique --zipf-m M --zipf-s S\n"
    "load:           --burst-rate R --burst-period S --burst-length S\n"
    "drift:          --preset base|seed --steps N --strength S --trials N --prefix-k K\n"
    "correctness:    --levels 0,0.05,0.25 (drift per step) --steps N --tolerance T --noise S\n"
    "                --strength S (the resampled row's drift per step, default 0.25)\n"
    "guard:          --deltas 0.005,0.01,0.05 (risk.max-wrong-rate targets) --steps N\n"
    "                --strength S (the timeline's drift per step, default 0.1)\n"
    "sweep-ttl:      --ttls 0.25,1,4,0 (seconds, 0 = no TTL) --strength S --steps N\n"
    "sweep-capacity: --capacities 16,64,256 (entries)\n");
}

} // namespace

int main(int argc, char** argv) {
  using namespace sil::lab;
  if (argc < 2 || std::string{argv[1]} == "-h" || std::string{argv[1]} == "--help") {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  options o;
  o.command = argv[1];
  o.self = argv[0];
  if (auto err = parse_args(argc, argv, o); !err.empty())
    return fail(err);
  auto run = [&]() -> int {
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
    if (o.command == "all")
      return cmd_all(o);
    if (o.command == "report")
      return cmd_report(o);
    return -1;
  };
  if (int rc = run(); rc != -1) {
    // A server this run started and stopped that did not exit 0 (a
    // sanitizer's report at exit, a crash) fails the run, even if its
    // answers were fine.
    if (rc == 0 && server_process::failures() > 0)
      return fail(std::to_string(server_process::failures())
                  + " sil-server process(es) it started did not exit 0 (see above)");
    return rc;
  }
  usage(stderr);
  return fail(
    "unknown command '" + o.command
    + "' (available: load, drift, correctness, guard, sweep-ttl, sweep-capacity, all, report)");
}
