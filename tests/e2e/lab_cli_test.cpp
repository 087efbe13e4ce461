// sil-lab's command line, progress output, the protection of full results
// from --quick runs, running installed (no source path compiled in), and
// the picture command. Runs the real sil-lab (and sil-server) binaries.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace sil::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

/// A scratch directory for one test, emptied first.
fs::path scratch(const std::string& name) {
  auto dir = fs::path{SIL_TEST_TMPDIR} / ("lab-cli-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read_file(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, {}};
}

json read_json(const fs::path& p) {
  return json::parse(read_file(p), nullptr, false);
}

std::string shq(const std::string& s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string{"'\\''"} : std::string(1, c);
  return out + "'";
}

struct shell_result {
  int rc = -1;
  std::string out; // stdout
  std::string err; // stderr
};

/// Runs `command` with /bin/sh; stdout and stderr captured apart.
shell_result sh(const std::string& command, const fs::path& scratch_dir) {
  auto err_file = scratch_dir / "stderr.txt";
  shell_result r;
  FILE* p = popen((command + " 2>" + shq(err_file.string())).c_str(), "r");
  if (p == nullptr)
    return r;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
    r.out.append(buf.data(), n);
  int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(err_file);
  return r;
}

std::string lab() {
  return shq(SIL_LAB_BINARY);
}

/// A tiny drift run (the seed model, a few trials): under two seconds.
std::string tiny_drift(const std::string& extra) {
  return lab() + " drift --preset seed --trials 12 --steps 2 " + extra;
}

std::size_t lines(const std::string& s) {
  std::size_t n = 0;
  for (char c : s)
    n += c == '\n' ? 1 : 0;
  return n;
}

TEST(LabCli, VersionNamesTheVersionAndTheCommit) {
  auto d = scratch("version");
  auto r = sh(lab() + " --version", d);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.rfind(std::string{"sil-lab "} + SIL_VERSION + " (commit ", 0), 0u) << r.out;
  EXPECT_EQ(r.out.back(), '\n');
  EXPECT_EQ(lines(r.out), 1u);
  EXPECT_NE(r.out.find(")"), std::string::npos);
}

TEST(LabCli, EveryCommandHasItsOwnHelpWithDefaults) {
  auto d = scratch("help");
  auto top = sh(lab() + " --help", d);
  ASSERT_EQ(top.rc, 0) << top.err;
  for (const char* c : {"load", "drift", "correctness", "guard", "sweep-ttl", "sweep-capacity",
                        "picture", "all", "report"})
    EXPECT_NE(top.out.find(std::string{"  "} + c + " "), std::string::npos) << c;

  auto load = sh(lab() + " load --help", d);
  ASSERT_EQ(load.rc, 0) << load.err;
  EXPECT_NE(load.out.find("sil-lab load"), std::string::npos) << load.out;
  EXPECT_NE(load.out.find("--burst-rate"), std::string::npos);
  EXPECT_NE(load.out.find("[default: 3000]"), std::string::npos) << load.out;
  EXPECT_NE(load.out.find("--duration S"), std::string::npos);
  EXPECT_NE(load.out.find("[default: 7 (--quick: 5)]"), std::string::npos);
  EXPECT_EQ(load.out.find("--levels"), std::string::npos); // correctness's, not load's
  EXPECT_EQ(load.out.find("--trials"), std::string::npos);

  auto drift = sh(lab() + " drift -h", d);
  ASSERT_EQ(drift.rc, 0) << drift.err;
  EXPECT_NE(drift.out.find("--trials N"), std::string::npos) << drift.out;
  EXPECT_NE(drift.out.find("[default: 1000 (--quick: 100)]"), std::string::npos);
  EXPECT_EQ(drift.out.find("--url"), std::string::npos); // no server in drift

  auto all = sh(lab() + " all --help", d);
  ASSERT_EQ(all.rc, 0) << all.err;
  for (const char* o :
       {"--levels", "--ttls", "--capacities", "--deltas", "--burst-rate", "--trials", "--url"})
    EXPECT_NE(all.out.find(o), std::string::npos) << o; // all passes every option on

  auto none = sh(lab(), d); // no command: the usage on stderr, exit 2
  EXPECT_EQ(none.rc, 2);
  EXPECT_NE(none.err.find("sil-lab"), std::string::npos);
}

TEST(LabCli, UnknownOptionsAndBadValuesAreOneLineAndExit2) {
  auto d = scratch("errors");
  struct bad {
    std::string args;
    std::string says;
  };
  const std::vector<bad> cases{
    {"load --bogus 1", "unknown option '--bogus' (sil-lab load --help lists the options)"},
    {"load --bogus=1", "unknown option '--bogus'"},
    {"drift --levels 0,1", "unknown option '--levels'"},
    {"--nope", "unknown option '--nope'"},
    {"frobnicate", "unknown command 'frobnicate'"},
    {"load stray", "unexpected argument 'stray'"},
    {"load --rate=-1", "--rate: expected a non-negative number, got '-1'"},
    {"load --rate abc", "--rate: expected a non-negative number"},
    {"load --reps 1.5", "--reps: expected a whole number >= 1"},
    {"load --connections 0", "--connections must be at least 1"},
    {"load --arrival sometimes", "--arrival: unknown value 'sometimes'"},
    {"guard --deltas 0,2", "--deltas: expected rates in (0, 1]"},
    {"sweep-capacity --capacities 1.5", "--capacities: expected whole numbers >= 1"},
    {"correctness --levels x", "--levels: expected comma-separated non-negative numbers"},
    {"load --server-arg", "--server-arg"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    auto r = sh(lab() + " " + c.args, d);
    EXPECT_EQ(r.rc, 2) << r.err;
    EXPECT_EQ(lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("sil-lab: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST(LabCli, EqualsAndSpaceFormsGiveTheSameRun) {
  auto d = scratch("forms");
  auto spaced
    = sh(tiny_drift("--strength 0.5 --tolerance 0.02 --out " + shq((d / "a").string())), d);
  ASSERT_EQ(spaced.rc, 0) << spaced.err;
  auto equals = sh(lab()
                     + " drift --preset=seed --trials=12 --steps=2 --strength=0.5 "
                       "--tolerance=0.02 --out="
                     + shq((d / "b").string()),
                   d);
  ASSERT_EQ(equals.rc, 0) << equals.err;
  auto a = read_json(d / "a" / "drift" / "results.json");
  auto b = read_json(d / "b" / "drift" / "results.json");
  ASSERT_FALSE(a.is_discarded());
  EXPECT_EQ(a["config"]["trials"], 12);
  EXPECT_EQ(a["config"]["steps"], 2);
  EXPECT_EQ(a["config"]["strength"], 0.5);
  EXPECT_EQ(a["config"]["tolerance"], 0.02);
  EXPECT_EQ(a["config"]["preset"], "seed");
  EXPECT_EQ(a, b); // the same seed and options: the same numbers
}

TEST(LabCli, ProgressInALogIsPlainLinesWithAnEta) {
  auto d = scratch("progress-plain");
  // 120 trials: an update at 50 (written) and at 100 (within 5 s of it:
  // not), then the last line.
  auto r = sh(
    lab() + " drift --preset seed --trials 120 --steps 2 --out " + shq((d / "out").string()), d);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[drift] encode"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("50 / 120 trials  ETA "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("120 / 120 trials  took "), std::string::npos) << r.err;
}

TEST(LabCli, ProgressOnATerminalRewritesOneLine) {
  auto d = scratch("progress-tty");
  // script(1) gives sil-lab a pseudo-terminal as stdout and stderr.
  auto inner
    = lab() + " drift --preset seed --trials 120 --steps 2 --out " + shq((d / "out").string());
  auto r = sh("script -qec " + shq(inner) + " /dev/null", d);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\r[drift] encode"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("50 / 120 trials  ETA "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("100 / 120 trials  ETA "), std::string::npos) << r.out; // every update
}

TEST(LabCli, QuickRunsNeverOverwriteAFullRunsResults) {
  auto d = scratch("quick");
  auto reports = d / "reports";
  auto full = sh(tiny_drift("--out " + shq(reports.string())), d);
  ASSERT_EQ(full.rc, 0) << full.err;
  auto file = reports / "drift" / "results.json";
  auto before = read_file(file);
  ASSERT_FALSE(read_json(file)["config"]["quick"].get<bool>());

  // --quick into the full run's directory: refused, nothing written.
  auto over = sh(tiny_drift("--quick --out " + shq(reports.string())), d);
  EXPECT_EQ(over.rc, 2);
  EXPECT_EQ(lines(over.err), 1u) << over.err;
  EXPECT_NE(over.err.find("holds a full run's results"), std::string::npos) << over.err;
  EXPECT_EQ(read_file(file), before);
  // all and report check every experiment before running any.
  for (const char* cmd : {"all", "report"}) {
    auto r = sh(lab() + " " + cmd + " --quick --out " + shq(reports.string()), d);
    EXPECT_EQ(r.rc, 2) << cmd;
    EXPECT_NE(r.err.find("holds a full run's results"), std::string::npos) << r.err;
  }
  EXPECT_EQ(read_file(file), before);
  EXPECT_FALSE(fs::exists(reports / "REPORT.md"));

  // From the repository's root (here: d), a quick run writes reports/quick.
  auto quick = sh("cd " + shq(d.string()) + " && " + tiny_drift("--quick"), d);
  ASSERT_EQ(quick.rc, 0) << quick.err;
  auto quick_file = reports / "quick" / "drift" / "results.json";
  ASSERT_TRUE(fs::exists(quick_file));
  EXPECT_TRUE(read_json(quick_file)["config"]["quick"].get<bool>());
  EXPECT_EQ(read_file(file), before);
  // A quick run may replace a quick run's results; a full run anything.
  auto again = sh("cd " + shq(d.string()) + " && " + tiny_drift("--quick"), d);
  EXPECT_EQ(again.rc, 0) << again.err;
  auto full_over_quick = sh(tiny_drift("--out " + shq((reports / "quick").string())), d);
  EXPECT_EQ(full_over_quick.rc, 0) << full_over_quick.err;
  EXPECT_FALSE(read_json(quick_file)["config"]["quick"].get<bool>());
}

/// bin/sil-lab and bin/sil-server under `prefix`, as an install puts them.
void install_binaries(const fs::path& prefix) {
  fs::create_directories(prefix / "bin");
  fs::copy_file(SIL_LAB_BINARY, prefix / "bin" / "sil-lab");
  fs::copy_file(SIL_SERVER_BINARY, prefix / "bin" / "sil-server");
}

TEST(LabCli, InstalledItFindsPlotPyUnderShareAndNoSourcePath) {
  auto d = scratch("installed");
  auto prefix = d / "prefix";
  install_binaries(prefix);
  auto bin = shq((prefix / "bin" / "sil-lab").string());
  auto run = [&](const std::string& out, const std::string& env = {}) {
    return sh(
      env + bin + " drift --preset seed --trials 12 --steps 2 --out " + shq((d / out).string()), d);
  };
  // Nothing beside it: results, no plots, and a warning that says where it
  // looked (the source tree is not among the places).
  auto bare = run("bare");
  ASSERT_EQ(bare.rc, 0) << bare.err;
  EXPECT_TRUE(fs::exists(d / "bare" / "drift" / "results.json"));
  EXPECT_FALSE(fs::exists(d / "bare" / "drift" / "divergence.png"));
  EXPECT_NE(bare.err.find("warning: no plots: plot.py not found"), std::string::npos) << bare.err;
  EXPECT_NE(bare.err.find((prefix / "share/sil/plot.py").string()), std::string::npos) << bare.err;
  EXPECT_EQ(bare.err.find(std::string{SIL_SOURCE_DIR} + "/experiments"), std::string::npos)
    << bare.err;

  // The installed layout: share/sil/plot.py.
  fs::create_directories(prefix / "share" / "sil");
  fs::copy_file(fs::path{SIL_SOURCE_DIR} / "experiments" / "plot.py",
                prefix / "share" / "sil" / "plot.py");
  auto installed = run("installed");
  ASSERT_EQ(installed.rc, 0) << installed.err;
  EXPECT_GT(fs::file_size(d / "installed" / "drift" / "divergence.png"), 1000u);
  EXPECT_EQ(installed.err.find("warning"), std::string::npos) << installed.err;

  // SIL_PLOT_SCRIPT wins: a script that records how it was called.
  auto script = d / "record.py";
  std::ofstream{script} << "import sys\nopen(sys.argv[2] + '/called.txt', 'w').write("
                           "' '.join(sys.argv[1:]))\n";
  auto env = run("env", "SIL_PLOT_SCRIPT=" + shq(script.string()) + " ");
  ASSERT_EQ(env.rc, 0) << env.err;
  EXPECT_EQ(read_file(d / "env" / "drift" / "called.txt"),
            "drift " + (d / "env" / "drift").string());
  EXPECT_FALSE(fs::exists(d / "env" / "drift" / "divergence.png"));
}

// The picture, run from an installed layout through PATH (so sil-lab finds
// sil-server next to itself, not by its argv[0]); tiny and fast: the small
// model, 100 req/s for 4 s per arm, a strong drift from 1 s on.
TEST(LabCli, PictureShowsHitErrorsAndTheAgentUnderDrift) {
  auto d = scratch("picture");
  auto prefix = d / "prefix";
  install_binaries(prefix);
  fs::create_directories(prefix / "share" / "sil");
  fs::copy_file(fs::path{SIL_SOURCE_DIR} / "experiments" / "plot.py",
                prefix / "share" / "sil" / "plot.py");
  auto out = d / "out";
  auto r = sh("PATH=" + shq((prefix / "bin").string()) + ":\"$PATH\" sil-lab picture "
                + "--duration 4 --rate 100 --strength 1 --server-arg --model.preset=seed --out "
                + shq(out.string()),
              d);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("[picture] prefix_reuse"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[picture] guard"), std::string::npos);
  auto dir = out / "picture";
  auto j = read_json(dir / "results.json");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["experiment"], "picture");
  EXPECT_DOUBLE_EQ(j["config"]["onset_s"].get<double>(), 1.0);
  ASSERT_EQ(j["cells"].size(), 2u);
  const auto& reuse = j["cells"][0];
  const auto& guard = j["cells"][1];
  EXPECT_EQ(reuse["arm"], "prefix_reuse");
  EXPECT_EQ(guard["arm"], "guard");
  for (const auto* c : {&reuse, &guard}) {
    SCOPED_TRACE((*c)["arm"].get<std::string>());
    // Before the drift, only harmless noise: no served hit is wrong.
    EXPECT_GT((*c)["calm"]["requests"].get<int>(), 0);
    EXPECT_EQ((*c)["calm"]["wrong_hits"].get<int>(), 0);
    EXPECT_EQ((*c)["counts"]["errors"].get<int>(), 0);
    EXPECT_EQ((*c)["calm"]["requests"].get<int>() + (*c)["drifting"]["requests"].get<int>(),
              (*c)["counts"]["requests"].get<int>());
  }
  // Under the drift pure prefix reuse serves wrong answers; the guard far
  // fewer (a rate, not a count: it also serves fewer hits).
  EXPECT_GT(reuse["drifting"]["wrong_hits"].get<int>(), 0);
  EXPECT_LT(guard["drifting"]["wrong_hit_rate"].get<double>(),
            reuse["drifting"]["wrong_hit_rate"].get<double>());
  // The timeline holds every answered request of both arms, with the error
  // of each hit; the decisions file has its header.
  std::ifstream tl{dir / "timeline.csv"};
  std::string line;
  std::getline(tl, line);
  EXPECT_EQ(line, "arm,t_s,hit,basis,error");
  std::size_t rows = 0;
  std::size_t hits = 0;
  while (std::getline(tl, line)) {
    ++rows;
    auto f1 = line.find(',');
    auto f2 = line.find(',', f1 + 1);
    auto f3 = line.find(',', f2 + 1);
    auto f4 = line.find(',', f3 + 1);
    double t = std::stod(line.substr(f1 + 1, f2 - f1 - 1));
    EXPECT_GE(t, 0.0);
    EXPECT_LT(t, 4.0);
    if (line.substr(f2 + 1, f3 - f2 - 1) == "1") {
      ++hits;
      EXPECT_GE(std::stod(line.substr(f4 + 1)), 0.0) << line;
    }
  }
  EXPECT_EQ(rows, reuse["counts"]["requests"].get<std::size_t>()
                    + guard["counts"]["requests"].get<std::size_t>());
  EXPECT_EQ(hits, reuse["counts"]["hits"].get<std::size_t>()
                    + guard["counts"]["hits"].get<std::size_t>());
  EXPECT_EQ(read_file(dir / "decisions.csv").rfind("arm,t_s,action,from,to\n", 0), 0u);
  EXPECT_GT(fs::file_size(dir / "drift.png"), 10000u);
  EXPECT_NE(read_file(dir / "summary.md").find("| prefix_reuse | drifting |"), std::string::npos);
}

} // namespace
} // namespace sil::test
