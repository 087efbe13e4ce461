// End-to-end tests of startup and operation: the command lines of
// sil-server and sil-model (--version, --help, unknown flags), strict config
// files, --dump-config, the precedence of the layers, and the log (file,
// JSON lines, SIGHUP reopening, the agent's decisions), all through the real
// binaries.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.hpp"

namespace sil::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

/// A finished run of a binary: exit code, stdout, stderr.
struct run_result {
  int code = -1;
  std::string out;
  std::string err;
};

/// Runs `binary args...` with `env` added, to completion (at most 20 s).
run_result run(const std::string& binary, const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env = {}) {
  int out[2];
  int err[2];
  run_result r;
  if (pipe(out) != 0 || pipe(err) != 0)
    return r;
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(1);
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    for (const auto& [k, v] : env)
      setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(binary.c_str())};
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  auto deadline = std::chrono::steady_clock::now() + 20s;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* into[2] = {&r.out, &r.err};
  int open = 2;
  while (open > 0 && std::chrono::steady_clock::now() < deadline) {
    if (poll(fds, 2, 100) <= 0)
      continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP)) == 0)
        continue;
      char buf[4096];
      auto n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      } else {
        into[i]->append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) {
      close(f.fd);
      kill(pid, SIGKILL);
    }
  int status = 0;
  waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string tmp(const std::string& name) {
  auto path = std::string{SIL_TEST_TMPDIR} + "/" + name;
  std::remove(path.c_str());
  return path;
}

std::string write_file(const std::string& name, const std::string& text) {
  auto path = tmp(name);
  std::ofstream{path} << text;
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

/// Polls `path` until it contains `needle` (up to `timeout`).
bool wait_for_text(const std::string& path, const std::string& needle,
                   std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_file(path).find(needle) != std::string::npos)
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

int count_lines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

// -- the command line ---------------------------------------------------------

TEST(Startup, VersionOfBothBinaries) {
  const std::regex server{R"(sil-server \d+\.\d+\.\d+ \(commit [0-9a-z-]+\)\n)"};
  auto s = run(SIL_SERVER_BINARY, {"--version"});
  EXPECT_EQ(s.code, 0);
  EXPECT_TRUE(std::regex_match(s.out, server)) << s.out;
  EXPECT_EQ(s.err, "");
  // --version wins over anything else on the line, even a bad option.
  EXPECT_EQ(run(SIL_SERVER_BINARY, {"--no-such", "--version"}).out, s.out);
  const std::regex model{R"(sil-model \d+\.\d+\.\d+ \(commit [0-9a-z-]+\)\n)"};
  auto m = run(SIL_MODEL_BINARY, {"--version"});
  EXPECT_EQ(m.code, 0);
  EXPECT_TRUE(std::regex_match(m.out, model)) << m.out;
  // Both report the same build.
  EXPECT_EQ(s.out.substr(std::string{"sil-server"}.size()),
            m.out.substr(std::string{"sil-model"}.size()));
}

TEST(Startup, UnknownFlagsAndBadValuesExitTwoWithOneLine) {
  struct bad {
    std::string binary;
    std::vector<std::string> args;
    std::string line;
  };
  for (const auto& b : std::vector<bad>{
         {SIL_SERVER_BINARY,
          {"--cache.ttl=3"},
          "sil-server: unknown option --cache.ttl; see --help"},
         {SIL_SERVER_BINARY,
          {"--port=0", "--bogus"},
          "sil-server: unknown option --bogus; see --help"},
         {SIL_SERVER_BINARY,
          {"--cache.max-size=big"},
          "sil-server: --cache.max-size: expected an integer, got \"big\"; see --help"},
         {SIL_SERVER_BINARY,
          {"--cache.enabled=perhaps"},
          "sil-server: --cache.enabled: expected true or false, got \"perhaps\"; see --help"},
         {SIL_SERVER_BINARY, {"serve"}, "sil-server: unexpected argument \"serve\"; see --help"},
         {SIL_MODEL_BINARY, {"info", "--frob"}, "sil-model: unknown option --frob; see --help"},
         {SIL_MODEL_BINARY, {"--frob=1"}, "sil-model: unknown option --frob; see --help"},
         {SIL_MODEL_BINARY,
          {"export", "--out", "x.silw", "--seed=many"},
          "sil-model: --seed: expected a non-negative integer, got \"many\"; see --help"},
         {SIL_MODEL_BINARY,
          {"frobnicate"},
          "sil-model: unknown command \"frobnicate\"; see --help"},
       }) {
    auto r = run(b.binary, b.args);
    EXPECT_EQ(r.code, 2) << b.line;
    EXPECT_EQ(r.err, b.line + "\n");
    EXPECT_EQ(r.out, "");
  }
}

TEST(Startup, HelpShowsSilOptionsWithDefaultsAndLongHelpAddsCafs) {
  auto h = run(SIL_SERVER_BINARY, {"--help"});
  EXPECT_EQ(h.code, 0);
  EXPECT_EQ(h.err, "");
  for (const char* needle :
       {"--cache.max-size=INT", "[default: 256]", "--http.threads=INT", "--risk.tolerance=NUM",
        "--agent.trigger=TEXT", "--encoder.max-batch=INT", "--cluster.port=INT", "--log.level=TEXT",
        "[default: \"info\"]", "--log.format=TEXT", "--log.file=TEXT", "--log.access=BOOL",
        "--model.preset=TEXT", "--version", "--dump-config", "--long-help"})
    EXPECT_NE(h.out.find(needle), std::string::npos) << needle;
  for (const char* caf_option : {"--scheduler.", "--middleman.", "--logger.", "--work-stealing."})
    EXPECT_EQ(h.out.find(caf_option), std::string::npos) << caf_option;
  EXPECT_EQ(run(SIL_SERVER_BINARY, {"-h"}).out, h.out);
  auto l = run(SIL_SERVER_BINARY, {"--long-help"});
  EXPECT_EQ(l.code, 0);
  for (const char* needle : {"--cache.max-size=INT", "--scheduler.policy=ATOM",
                             "--middleman.heartbeat-interval=DURATION", "--logger.verbosity"})
    EXPECT_NE(l.out.find(needle), std::string::npos) << needle;
  // --help works even next to a mistake.
  EXPECT_EQ(run(SIL_SERVER_BINARY, {"--cache.max-size=big", "--help"}).code, 0);
  auto m = run(SIL_MODEL_BINARY, {"--help"});
  EXPECT_EQ(m.code, 0);
  EXPECT_NE(m.out.find("--seed N"), std::string::npos);
  EXPECT_NE(m.out.find("[default: 42]"), std::string::npos);
}

// -- config files, --dump-config, precedence -----------------------------------

TEST(Startup, ConfigFileMistakesExitTwoNamingFileKeyAndProblem) {
  struct bad {
    std::string text;
    std::string problem;
  };
  for (const auto& b : std::vector<bad>{
         {"[cache]\nmax-size=\"big\"\n", "cache.max-size: expected an integer, got \"big\""},
         {"[cache]\nttl=7\n", "cache.ttl: unknown key (did you mean cache.ttl-seconds?)"},
         {"[cahce]\nttl-seconds=7\n", "cahce.ttl-seconds: unknown section [cahce]"},
         {"[cache]\nmax-size=1\nmax-size=2\n", "cache.max-size: set twice (lines 2 and 3)"},
         {"[log]\nlevel=debug\n", "line 2, column 8: syntax error"},
       }) {
    auto path = write_file("bad.conf", b.text);
    auto r = run(SIL_SERVER_BINARY, {"--config-file=" + path, "--port=0", "--model.preset=seed"});
    EXPECT_EQ(r.code, 2) << b.text << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_EQ(r.err.rfind("sil-server: " + path + ": " + b.problem, 0), 0u) << r.err;
    EXPECT_EQ(r.out, "") << "it must not start listening";
  }
  auto missing = run(SIL_SERVER_BINARY, {"--config-file=" + tmp("absent.conf")});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("absent.conf: cannot open the config file"), std::string::npos);
}

TEST(Startup, DumpConfigRoundTripsThroughTheConfigFile) {
  auto file = write_file("layers.conf", "[cache]\nttl-seconds=7\n[http]\nthreads=3\n"
                                        "[caf.scheduler]\nmax-threads=2\n");
  auto first = run(SIL_SERVER_BINARY,
                   {"--config-file=" + file, "--cache.enabled=false", "--agent.interval=0.25",
                    "--admin.token=s3cr3t", "--log.format=json", "--dump-config"},
                   {{"SIL_NODE_NAME", "edge \"1\""}, {"PREFIX_K", "6"}});
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(first.err, "");
  for (const char* line :
       {"ttl-seconds=7.0\n", "threads=3\n", "enabled=false\n", "interval=0.25\n",
        "token=\"s3cr3t\"\n", "format=\"json\"\n", "node-name=\"edge \\\"1\\\"\"\n", "prefix-k=6\n",
        "max-size=256\n", "max-threads=2\n", "policy='sharing'\n"})
    EXPECT_NE(first.out.find(line), std::string::npos) << line << "\n" << first.out;
  auto dumped = write_file("dumped.conf", first.out);
  auto second = run(SIL_SERVER_BINARY, {"--config-file=" + dumped, "--dump-config"});
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_EQ(second.out, first.out);
  // The defaults alone round-trip too.
  auto defaults = run(SIL_SERVER_BINARY, {"--dump-config"});
  ASSERT_EQ(defaults.code, 0);
  auto again = run(SIL_SERVER_BINARY,
                   {"--config-file=" + write_file("defaults.conf", defaults.out), "--dump-config"});
  EXPECT_EQ(again.out, defaults.out);
  // An invalid configuration is refused, not dumped.
  auto invalid = run(SIL_SERVER_BINARY, {"--cache.prefix-k=40", "--dump-config"});
  EXPECT_EQ(invalid.code, 2);
  EXPECT_EQ(invalid.out, "");
}

TEST(Startup, OnePrecedenceFlagSilVariableLegacyVariableFileDefault) {
  auto file = write_file("precedence.conf", "[cache]\nmax-size=11\nttl-seconds=11\n"
                                            "prefix-k=11\n[http]\nmax-rows=11\n");
  auto max_size = [](const std::string& dump, const std::string& key) {
    std::smatch m;
    std::regex re{"\n" + key + "=([0-9.]+)\n"};
    return std::regex_search(dump, m, re) ? m[1].str() : std::string{"?"};
  };
  auto r = run(SIL_SERVER_BINARY, {"--config-file=" + file, "--cache.max-size=44", "--dump-config"},
               {{"SIL_CACHE_MAX_SIZE", "22"},
                {"CACHE_MAX_SIZE", "33"},
                {"SIL_CACHE_TTL_SECONDS", "22"},
                {"CACHE_TTL_SECONDS", "33"},
                {"PREFIX_K", "5"}});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(max_size(r.out, "max-size"), "44");      // the flag
  EXPECT_EQ(max_size(r.out, "ttl-seconds"), "22.0"); // SIL_* over the legacy variable
  EXPECT_EQ(max_size(r.out, "prefix-k"), "5");       // the legacy variable over the file
  EXPECT_EQ(max_size(r.out, "max-rows"), "11");      // the file over the default
  EXPECT_EQ(max_size(r.out, "threads"), "2");        // the default
}

// -- the log ---------------------------------------------------------------------

/// Every line of `text`.
std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  for (auto nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', at)) {
    out.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

TEST(Logs, SighupReopensTheLogFileAndTheServerKeepsServing) {
  auto log = tmp("server.log");
  auto rotated = tmp("server.log.1");
  auto server = server_process::start(
    SIL_SERVER_BINARY, {"--port=0", "--model.preset=seed", "--workers=1", "--log.file=" + log});
  ASSERT_TRUE(server);
  ASSERT_TRUE(wait_for_text(log, "server: serving"));
  auto before = read_file(log);
  // Every line: a UTC timestamp with milliseconds and a level.
  const std::regex stamped{
    R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info |warn |error) .+)"};
  for (const auto& l : lines(before))
    EXPECT_TRUE(std::regex_match(l, stamped)) << l;
  EXPECT_NE(
    before.find("config: effective configuration cache.max-size=256 cache.admission=tinylfu"),
    std::string::npos)
    << before;
  ASSERT_EQ(std::rename(log.c_str(), rotated.c_str()), 0);
  server->signal(SIGHUP);
  ASSERT_TRUE(wait_for_text(log, "log: reopened the log files reason=SIGHUP"))
    << "no new log file after SIGHUP";
  http_client c{server->port()};
  EXPECT_EQ(c.request("GET", "/health").status, 200);
  // A second rotation works the same way.
  ASSERT_EQ(std::rename(log.c_str(), rotated.c_str()), 0);
  server->signal(SIGHUP);
  ASSERT_TRUE(wait_for_text(log, "reopened the log files"));
  EXPECT_EQ(c.request("GET", "/health").status, 200);
  EXPECT_EQ(server->stop(), 0);
  auto after = read_file(log);
  EXPECT_NE(after.find("server: stopped"), std::string::npos) << after;
  EXPECT_EQ(read_file(rotated).find("server: stopped"), std::string::npos);
  EXPECT_EQ(after.find("server: serving"), std::string::npos);
}

TEST(Logs, AWorkerNodeReopensItsLogOnSighupToo) {
  auto log = tmp("worker.log");
  // No gateway listens there: the worker keeps retrying until stopped.
  auto worker = server_process::start(SIL_SERVER_BINARY,
                                      {"--role=worker", "--gateway=127.0.0.1:1", "--workers=1",
                                       "--model.preset=seed", "--port=0", "--log.file=" + log},
                                      {}, 20s, "");
  ASSERT_TRUE(worker);
  ASSERT_TRUE(wait_for_text(log, "server: worker node started"));
  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  worker->signal(SIGHUP);
  ASSERT_TRUE(wait_for_text(log, "reopened the log files"));
  EXPECT_EQ(worker->stop(), 0);
  EXPECT_NE(read_file(log).find("server: stopped"), std::string::npos);
}

TEST(Logs, JsonLinesCarryTheAgentsDecisionsAndModeChanges) {
  auto log = tmp("agent.jsonl");
  // The cosine trigger with pure prefix reuse: a drifting suffix makes the
  // agent act within a few hundred requests.
  auto server = server_process::start(
    SIL_SERVER_BINARY,
    {"--port=0", "--model.preset=seed", "--workers=2", "--log.format=json", "--log.level=debug",
     "--log.file=" + log, "--admin.token=t0k3n", "--risk.guard=off", "--agent.trigger=cosine",
     "--audit.rate=1", "--audit.max-share=1", "--audit.per-second=0", "--agent.interval=0.1",
     "--agent.recover-threshold=0.001", "--agent.ttl-threshold=0.003",
     "--agent.disable-threshold=0.01", "--agent.min-samples=3", "--agent.entry-evict-threshold=2"});
  ASSERT_TRUE(server);
  http_client c{server->port()};
  bool decided = false;
  for (int i = 0; i < 1500 && !decided; ++i) {
    std::string body = "{\"features\":[[0.5,-0.3,0.2,0.9";
    for (int k = 4; k < 32; ++k)
      body += "," + std::to_string(std::sin(k * 1.7) + 0.1 * static_cast<double>(i / 10));
    ASSERT_EQ(c.request("POST", "/predict", body + "]]}").status, 200);
    if (i % 20 == 19)
      decided = read_file(log).find("\"msg\":\"decision\"") != std::string::npos;
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_TRUE(decided) << "no agent decision was logged";
  // A few more windows (100 ms each) pass before the operator steps in.
  std::this_thread::sleep_for(400ms);
  // An operator's commands change the mode too: whatever the agent chose,
  // enable and then disable change it at least once.
  for (const char* cmd : {"enable", "disable"}) {
    std::string req = std::string{"POST /admin/cache/"} + cmd
                      + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0k3n\r\n"
                        "Content-Length: 0\r\n\r\n";
    EXPECT_EQ(c.raw(req).status, 200) << cmd;
  }
  EXPECT_EQ(server->stop(), 0);
  int decisions = 0;
  int windows = 0;
  bool operator_override = false;
  bool mode_change = false;
  for (const auto& l : lines(read_file(log))) {
    auto j = json::parse(l, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << l;
    ASSERT_TRUE(j["ts"].is_string() && j["level"].is_string() && j["component"].is_string()
                && j["msg"].is_string())
      << l;
    if (j["component"] != "agent")
      continue;
    if (j["msg"] == "decision") {
      ++decisions;
      EXPECT_EQ(j["level"], "info");
      for (const char* k : {"action", "from", "to", "ttl_s", "trigger", "p95", "samples", "reason"})
        EXPECT_TRUE(j.contains(k)) << k << " missing: " << l;
      EXPECT_EQ(j["trigger"], "cosine");
      EXPECT_GT(j["p95"].get<double>(), 0.003) << l; // the figure that triggered it
    }
    if (j["msg"] == "window") {
      ++windows;
      EXPECT_EQ(j["level"], "debug");
    }
    if (j["msg"] == "mode changed") {
      mode_change = true;
      EXPECT_NE(j["from"], j["to"]) << l;
    }
    if (j["msg"] == "mode changed" && j["by"] == "operator")
      operator_override = true;
  }
  EXPECT_GE(decisions, 1);
  EXPECT_GE(windows, 1);
  EXPECT_TRUE(mode_change);
  EXPECT_TRUE(operator_override) << "the operator's disable changed the mode";
}

TEST(Logs, ALogFileThatCannotBeOpenedStopsStartup) {
  // A regular file where a directory should be (missing directories are
  // created, but not through a file).
  auto file = write_file("not-a-dir", "");
  auto r
    = run(SIL_SERVER_BINARY, {"--port=0", "--model.preset=seed", "--log.file=" + file + "/x.log"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("sil-server: log.file: cannot open", 0), 0u) << r.err;
  auto bad_level = run(SIL_SERVER_BINARY, {"--log.level=loud"});
  EXPECT_EQ(bad_level.code, 2);
  EXPECT_NE(bad_level.err.find("log.level"), std::string::npos) << bad_level.err;
}

} // namespace
} // namespace sil::test
