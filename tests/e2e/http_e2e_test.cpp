// End-to-end tests: the real sil-server binary on a free loopback port,
// spoken to over a plain socket.
#include <gtest/gtest.h>

#include <unistd.h>

#include <array>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/e2e_support.hpp"
#include "tests/support/process.hpp"

namespace sil::test {
namespace {

using namespace std::chrono_literals;

TEST_F(E2E, EveryRouteAnswers) {
  start();
  http_client c{port()};
  ASSERT_TRUE(c.connected());
  auto health = c.request("GET", "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.headers["content-type"], "application/json");
  auto h = json::parse(health.body);
  EXPECT_EQ(h["status"], "ok");
  EXPECT_TRUE(h["cache_enabled"].get<bool>());

  auto p = c.request("POST", "/predict", body(1.0f));
  ASSERT_EQ(p.status, 200) << p.body;

  auto stats = c.request("GET", "/stats");
  ASSERT_EQ(stats.status, 200);
  auto s = json::parse(stats.body);
  EXPECT_EQ(s["cache"]["policy"], "W-TinyLFU+TTL");
  EXPECT_EQ(s["cache"]["admission"], "tinylfu");
  EXPECT_EQ(s["cache"]["admission_rejections"], 0);
  EXPECT_EQ(s["cache"]["misses"], 1);
  EXPECT_EQ(s["cache"]["max_size"], 256);
  EXPECT_DOUBLE_EQ(s["cache"]["ttl_seconds"].get<double>(), 30.0);
  EXPECT_EQ(s["latency"]["count"], 1);

  auto metrics = c.request("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.headers["content-type"].rfind("text/plain", 0), 0u);
  EXPECT_NE(metrics.body.find("sil_cache_misses_total 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("sil_request_duration_seconds_bucket"), std::string::npos);
}

// cache.admission=tinylfu end to end: a hot prefix, hit on the read path
// (its accesses replayed to the owner), survives a scan of one-off prefixes
// four times the cache's size; /stats and /metrics say so.
TEST_F(E2E, TinyLfuKeepsAHotPrefixThroughAScan) {
  start({"--cache.admission=tinylfu", "--cache.max-size=4"});
  http_client c{port()};
  for (int i = 0; i < 6; ++i) {
    auto r = c.request("POST", "/predict", body(1.0f));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["cache_hit"].get<bool>(), i > 0) << i;
  }
  // /stats flushes the read path's accesses to the owner first.
  auto before = json::parse(c.request("GET", "/stats").body);
  EXPECT_EQ(before["cache"]["admission"], "tinylfu");
  EXPECT_EQ(before["cache"]["policy"], "W-TinyLFU+TTL");
  for (int i = 0; i < 16; ++i)
    ASSERT_EQ(c.request("POST", "/predict", body(100.0f + static_cast<float>(i))).status, 200);
  auto hot = c.request("POST", "/predict", body(1.0f));
  EXPECT_TRUE(json::parse(hot.body)["cache_hit"].get<bool>()) << hot.body;
  auto s = json::parse(c.request("GET", "/stats").body);
  EXPECT_EQ(s["cache"]["size"], 4);
  EXPECT_GE(s["cache"]["admission_rejections"].get<int>(), 10);
  auto metrics = c.request("GET", "/metrics");
  EXPECT_NE(metrics.body.find("sil_cache_admission_rejections_total "), std::string::npos);
}

// The seed's contract, pure prefix reuse: --risk.guard=off.
TEST_F(E2E, TheOriginalClientContract) {
  start({"--risk.guard=off"});
  http_client c{port()};
  // Exactly the seed README's request: no use_cache field.
  auto first = c.request("POST", "/predict", body(1.0f));
  ASSERT_EQ(first.status, 200) << first.body;
  auto a = json::parse(first.body);
  EXPECT_FALSE(a["cache_hit"].get<bool>());
  auto pred = a["prediction"].get<double>();
  EXPECT_GE(pred, 0.0);
  EXPECT_LE(pred, 1.0);
  EXPECT_GE(a["latency_ms"].get<double>(), 0.0);
  // Same prefix, different suffix: a hit with the cached embedding's score.
  auto second = json::parse(c.request("POST", "/predict", body(1.0f, 9.0f)).body);
  EXPECT_TRUE(second["cache_hit"].get<bool>());
  EXPECT_DOUBLE_EQ(second["prediction"].get<double>(), pred);
  EXPECT_TRUE(second.contains("cache_age_ms"));
  // use_cache: true behaves like the default, false forces a fresh encode.
  auto on = json::parse(
    c.request("POST", "/predict", features({row(1.0f)}) + ",\"use_cache\":true}").body);
  EXPECT_TRUE(on["cache_hit"].get<bool>());
  auto off = json::parse(
    c.request("POST", "/predict", features({row(1.0f, 9.0f)}) + ",\"use_cache\":false}").body);
  EXPECT_FALSE(off["cache_hit"].get<bool>());
  EXPECT_NE(off["prediction"].get<double>(), pred); // its own suffix counts now
}

// With the guard on (the default), an unproven reuse is refused and the
// answer says so; the same input again is an exact reuse.
TEST_F(E2E, TheGuardRefusesUnprovenReuseAndSaysWhy) {
  start();
  http_client c{port()};
  auto a = json::parse(c.request("POST", "/predict", body(1.0f)).body);
  EXPECT_FALSE(a["cache_hit"].get<bool>());
  EXPECT_FALSE(a.contains("risk")); // no entry: nothing was weighed
  auto b = json::parse(c.request("POST", "/predict", body(1.0f, 9.0f)).body);
  EXPECT_FALSE(b["cache_hit"].get<bool>());
  EXPECT_EQ(b["source"], "encoder");
  EXPECT_EQ(b["risk"]["basis"], "refused");
  EXPECT_NEAR(b["risk"]["distance"].get<double>(), 9.0 / std::sqrt(28.0), 1e-4);
  EXPECT_DOUBLE_EQ(b["risk"]["p_wrong_upper"].get<double>(), 1.0);
  auto fresh = json::parse(
    c.request("POST", "/predict", features({row(1.0f, 9.0f)}) + ",\"use_cache\":false}").body);
  EXPECT_DOUBLE_EQ(b["prediction"].get<double>(), fresh["prediction"].get<double>());
  auto again = json::parse(c.request("POST", "/predict", body(1.0f, 9.0f)).body);
  EXPECT_TRUE(again["cache_hit"].get<bool>());
  EXPECT_EQ(again["risk"]["basis"], "exact");
  EXPECT_DOUBLE_EQ(again["risk"]["distance"].get<double>(), 0.0);
  auto s = json::parse(c.request("GET", "/stats").body);
  EXPECT_TRUE(s["risk"]["guard"].get<bool>());
  EXPECT_DOUBLE_EQ(s["risk"]["tolerance"].get<double>(), 0.05);
  EXPECT_DOUBLE_EQ(s["risk"]["max_wrong_rate"].get<double>(), 0.01);
  EXPECT_EQ(s["risk"]["refused"], 1);
  EXPECT_EQ(s["risk"]["exact"], 1);
  EXPECT_EQ(s["risk"]["labels"], 1);
  EXPECT_EQ(s["risk"]["prefix_unit"], "values");
  auto metrics = c.request("GET", "/metrics").body;
  EXPECT_NE(metrics.find("sil_risk_max_wrong_rate 0.01"), std::string::npos);
  EXPECT_NE(metrics.find("sil_reuse_decisions_total{basis=\"refused\"} 1"), std::string::npos);
}

TEST_F(E2E, TheGuardIsOffThroughTheEnvironmentToo) {
  server_ = server_process::start(SIL_SERVER_BINARY, {"--port=0", "--model.preset=seed"},
                                  {{"SIL_RISK_GUARD", "off"}});
  ASSERT_TRUE(server_);
  http_client c{port()};
  c.request("POST", "/predict", body(1.0f));
  auto b = json::parse(c.request("POST", "/predict", body(1.0f, 9.0f)).body);
  EXPECT_TRUE(b["cache_hit"].get<bool>());
  EXPECT_EQ(b["risk"]["basis"], "unguarded");
}

TEST_F(E2E, BadRiskRequestsAndSettingsAreRefused) {
  start();
  http_client c{port()};
  for (const char* v : {"0", "-0.1", "1.5", "\"x\"", "null", "true"}) {
    auto r
      = c.request("POST", "/predict", features({row(1.0f)}) + ",\"max_wrong_rate\":" + v + "}");
    EXPECT_EQ(r.status, 400) << v;
    EXPECT_NE(json::parse(r.body)["error"]["message"].get<std::string>().find("max_wrong_rate"),
              std::string::npos)
      << r.body;
  }
  auto ok = c.request("POST", "/predict", features({row(1.0f)}) + ",\"max_wrong_rate\":0.001}");
  EXPECT_EQ(ok.status, 200) << ok.body;
  for (const char* flag :
       {"--risk.max-wrong-rate=0", "--risk.max-wrong-rate=1", "--risk.tolerance=-1",
        "--risk.confidence=0.2", "--risk.guard=maybe", "--cache.prefix-unit=cols",
        "--agent.trigger=p95", "--cache.admission=lfu"}) {
    auto [rc, err] = run_to_exit(SIL_SERVER_BINARY, {flag, "--port=0"});
    EXPECT_EQ(rc, 2) << flag;
    std::string key{flag + 2, static_cast<std::size_t>(std::strchr(flag, '=') - flag - 2)};
    EXPECT_NE(err.find(key), std::string::npos) << err;
  }
}

// A drifting client, the guard at its defaults: every answer is checked
// against a fresh computation; wrong cached answers stay within the budget,
// and the guard still reuses (exact repeats, and certified near inputs).
TEST_F(E2E, UnderDriftWrongCachedAnswersStayWithinTheBudget) {
  start();
  http_client c{port()};
  auto suffix_body = [](int prefix, double shift, bool use_cache) {
    std::string s = "{\"features\":[[" + std::to_string(prefix) + ",0.25,-0.5,0.75";
    for (int i = 4; i < 32; ++i) {
      char buf[40];
      std::snprintf(buf, sizeof buf, ",%.6f", std::cos(i * 0.7 + prefix) + shift);
      s += buf;
    }
    return s + "]],\"use_cache\":" + (use_cache ? "true" : "false") + "}";
  };
  int hits = 0;
  int wrong = 0;
  int certified = 0;
  const int n = 3000;
  for (int i = 0; i < n; ++i) {
    int prefix = i % 8;
    // Every prefix drifts by 0.002 per request of its own, with small noise;
    // one request in four carries no noise.
    int step = i / 8;
    double shift = 0.002 * step + (i % 4 == 3 ? 0.0 : 1e-4 * ((i * 7919) % 13));
    auto r = json::parse(c.request("POST", "/predict", suffix_body(prefix, shift, true)).body);
    if (!r["cache_hit"].get<bool>())
      continue;
    ++hits;
    if (r["risk"]["basis"] == "certified")
      ++certified;
    auto f = json::parse(c.request("POST", "/predict", suffix_body(prefix, shift, false)).body);
    if (std::abs(r["prediction"].get<double>() - f["prediction"].get<double>()) > 0.05)
      ++wrong;
  }
  std::printf("[ guard ] %d requests, %d hits (%d certified), %d wrong\n", n, hits, certified,
              wrong);
  EXPECT_GT(hits, n / 10);
  EXPECT_LE(wrong, 0.01 * hits);
}

struct bad_input {
  const char* name;
  std::string method;
  std::string target;
  std::string body;
  std::string content_type;
  int status;
};

TEST_F(E2E, EveryBadInputGetsA4xxWithAJsonErrorAndTheServerKeepsServing) {
  start({"--http.body-limit=4096", "--http.max-rows=4"});
  std::string big(5000, ' ');
  std::vector<bad_input> cases{
    {"malformed JSON", "POST", "/predict", "{\"features\": [[1,2", "application/json", 400},
    {"missing features", "POST", "/predict", "{\"use_cache\": true}", "application/json", 400},
    {"wrong type", "POST", "/predict", "{\"features\": \"abc\"}", "application/json", 400},
    {"wrong value type", "POST", "/predict", "{\"features\": [[\"a\"]]}", "application/json", 400},
    {"use_cache type", "POST", "/predict", features({row(1)}) + ",\"use_cache\":1}",
     "application/json", 400},
    {"short row", "POST", "/predict", "{\"features\": [[1,2,3]]}", "application/json", 400},
    {"zero rows", "POST", "/predict", "{\"features\": []}", "application/json", 400},
    {"too many rows", "POST", "/predict", features({row(1), row(1), row(1), row(1), row(1)}) + "}",
     "application/json", 400},
    {"non-finite", "POST", "/predict", "{\"features\": [[1e999]]}", "application/json", 400},
    {"float overflow", "POST", "/predict", features({"[1e39" + row(1.0f).substr(2)}) + "}",
     "application/json", 400},
    {"oversize body", "POST", "/predict", big, "application/json", 413},
    {"wrong content type", "POST", "/predict", body(1.0f), "text/plain", 415},
    {"no content type", "POST", "/predict", body(1.0f), "", 415},
    {"unknown path", "GET", "/nope", "", "", 404},
    {"wrong method", "GET", "/predict", "", "", 405},
    {"wrong method on stats", "POST", "/stats", "{}", "application/json", 405},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    http_client client{port()};
    auto r = client.request(c.method, c.target, c.body, c.content_type);
    EXPECT_EQ(r.status, c.status) << r.body;
    EXPECT_LT(r.status, 500);
    EXPECT_EQ(r.headers["content-type"], "application/json");
    auto j = json::parse(r.body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.body;
    EXPECT_TRUE(j["error"]["code"].is_string());
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
    if (c.status == 405) {
      EXPECT_FALSE(r.headers["allow"].empty());
    }
  }
  // Malformed HTTP itself.
  http_client raw{port()};
  auto garbage = raw.raw("NOT AN HTTP REQUEST\r\n\r\n");
  EXPECT_EQ(garbage.status, 400);
  // Still serving, on a new and on a reused connection.
  http_client c{port()};
  EXPECT_EQ(c.request("GET", "/health").status, 200);
  auto ok = c.request("POST", "/predict", body(2.0f));
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(c.request("POST", "/predict", "{bad").status, 400);
  EXPECT_EQ(c.request("POST", "/predict", body(2.0f)).status, 200);
  auto s = json::parse(c.request("GET", "/stats").body);
  EXPECT_GE(s["requests"]["errors"].get<int>(), 12);
}

TEST_F(E2E, OverloadGets503WithRetryAfter) {
  // One request in flight at most; a slow one (64 rows, heavy preset) holds it.
  server_ = server_process::start(SIL_SERVER_BINARY,
                                  {"--port=0", "--workers=1", "--http.max-inflight=1"});
  ASSERT_TRUE(server_);
  std::vector<std::string> rows(64, row(3.0f));
  http_client probe{port()};
  bool saw_503 = false;
  // Timing decides whether the slow request is still in flight when the
  // second arrives, so wait until /health shows it, and retry a few times.
  for (int attempt = 0; attempt < 5 && !saw_503; ++attempt) {
    rows[0] = row(3.0f + static_cast<float>(attempt)); // a miss every time
    http_client slow{port()};
    http_client fast{port()};
    slow.send_request("POST", "/predict", features(rows) + "}");
    for (int i = 0; i < 200; ++i) {
      auto h = json::parse(probe.request("GET", "/health").body);
      if (h["in_flight"].get<int>() >= 1)
        break;
    }
    auto rejected = fast.request("POST", "/predict", body(4.0f));
    if (rejected.status == 503) {
      saw_503 = true;
      EXPECT_EQ(rejected.headers["retry-after"], "1");
      EXPECT_EQ(json::parse(rejected.body)["error"]["code"], "overloaded");
    } else {
      EXPECT_EQ(rejected.status, 200) << rejected.body;
    }
    EXPECT_EQ(slow.read_response().status, 200);
  }
  EXPECT_TRUE(saw_503);
  // Below the cap again: served.
  http_client after{port()};
  EXPECT_EQ(after.request("POST", "/predict", body(4.0f)).status, 200);
}

TEST_F(E2E, MetricsPassPromtool) {
  start();
  http_client c{port()};
  c.request("POST", "/predict", body(1.0f));
  c.request("POST", "/predict", body(1.0f));
  c.request("POST", "/predict", "{bad");
  auto m = c.request("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  std::string path = std::string{SIL_TEST_TMPDIR} + "/metrics-" + std::to_string(port()) + ".txt";
  std::ofstream{path} << m.body;
  std::string cmd = std::string{SIL_PROMTOOL} + " check metrics < " + path + " 2>&1";
  auto* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe))
    out += buf;
  int rc = pclose(pipe);
  EXPECT_EQ(rc, 0) << "promtool check metrics failed:\n" << out;
}

// sil-server --probe URL, the containers' health check: 0 on 2xx, 1 with a
// line that says why otherwise; it runs before (and without) the
// configuration, so a broken environment does not break the probe.
TEST_F(E2E, ProbeExitsZeroOnA2xxAndOneOtherwise) {
  start();
  auto base = "http://127.0.0.1:" + std::to_string(port());
  auto [ok, ok_err] = run_to_exit(SIL_SERVER_BINARY, {"--probe", base + "/health"});
  EXPECT_EQ(ok, 0) << ok_err;
  auto [env_ok, env_err]
    = run_to_exit(SIL_SERVER_BINARY, {"--probe=" + base + "/health"}, {{"SIL_PORT", "nope"}});
  EXPECT_EQ(env_ok, 0) << env_err;
  auto [missing, missing_err] = run_to_exit(SIL_SERVER_BINARY, {"--probe", base + "/nope"});
  EXPECT_EQ(missing, 1);
  EXPECT_NE(missing_err.find("404"), std::string::npos) << missing_err;
  EXPECT_EQ(std::count(missing_err.begin(), missing_err.end(), '\n'), 1) << missing_err;
  server_->stop();
  auto [closed, closed_err] = run_to_exit(SIL_SERVER_BINARY, {"--probe", base + "/health"});
  EXPECT_EQ(closed, 1);
  EXPECT_NE(closed_err.find("cannot connect"), std::string::npos) << closed_err;
  auto [usage, usage_err] = run_to_exit(SIL_SERVER_BINARY, {"--probe"});
  EXPECT_EQ(usage, 2);
  EXPECT_NE(usage_err.find("needs a URL"), std::string::npos) << usage_err;
}

TEST_F(E2E, SigtermDrainsRequestsInFlightAndExitsZero) {
  // A generous encoder timeout: this test is about draining, and a sanitizer
  // build encodes the batch below slower than the default 2 s allow.
  // No admission by expected wait: under a sanitizer the first batch's
  // cost would make the pool refuse the others at once, ending the drain.
  server_
    = server_process::start(SIL_SERVER_BINARY, {"--port=0", "--workers=1", "--encoder.timeout=20",
                                                "--http.max-queue-delay=0"});
  ASSERT_TRUE(server_);
  // Twelve slow requests (64 rows each through the default, heavier preset,
  // one worker): tens of milliseconds of encoding in all.
  std::vector<std::unique_ptr<http_client>> clients;
  for (int i = 0; i < 12; ++i) {
    clients.push_back(std::make_unique<http_client>(port()));
    std::vector<std::string> rows(64, row(10.0f + static_cast<float>(i)));
    clients.back()->send_request("POST", "/predict", features(rows) + "}");
  }
  // Wait until the server has read all twelve (in flight or answered):
  // connections still in the accept backlog at shutdown are not in flight.
  http_client probe{port()};
  for (int i = 0; i < 500; ++i) {
    int answered = 0;
    for (auto& c : clients)
      answered += c->has_data() ? 1 : 0;
    auto h = json::parse(probe.request("GET", "/health").body);
    if (h["in_flight"].get<int>() + answered >= 12)
      break;
    std::this_thread::sleep_for(2ms);
  }
  server_->signal(SIGTERM);
  int unanswered = 0;
  for (auto& c : clients)
    unanswered += c->has_data() ? 0 : 1;
  // Otherwise this test would not test draining at all.
  ASSERT_GT(unanswered, 0) << "every request finished before SIGTERM";
  for (auto& c : clients) {
    auto r = c->read_response();
    EXPECT_EQ(r.status, 200) << r.body;
  }
  EXPECT_EQ(server_->wait(10s), 0);
  // The listening socket is gone.
  http_client late{port()};
  EXPECT_FALSE(late.connected());
}

TEST_F(E2E, InvalidConfigurationExitsTwoWithOneLineNamingTheKey) {
  struct bad {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::string key;
  };
  for (const auto& b : std::vector<bad>{
         {{"--cache.max-size=-1"}, {}, "cache.max-size"},
         {{"--cache.prefix-k=0"}, {}, "cache.prefix-k"},
         {{"--cache.prefix-k=40"}, {}, "cache.prefix-k"},
         {{"--model.preset=enormous"}, {}, "model.preset"},
         {{"--model.weights=/nonexistent.silw"}, {}, "model.weights"},
         {{}, {{"CACHE_MAX_SIZE", "-4"}}, "cache.max-size"},
         {{}, {{"PREFIX_K", "x"}}, "PREFIX_K"},
       }) {
    auto [rc, err] = run_to_exit(SIL_SERVER_BINARY, b.args, b.env);
    EXPECT_EQ(rc, 2) << err;
    EXPECT_NE(err.find(b.key), std::string::npos) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
}

TEST_F(E2E, EnvironmentVariablesOfTheOriginalAreHonoured) {
  server_ = server_process::start(
    SIL_SERVER_BINARY, {"--port=0", "--model.preset=seed"},
    {{"CACHE_MAX_SIZE", "7"}, {"CACHE_TTL_SECONDS", "1.5"}, {"CACHE_ENABLED", "false"}});
  ASSERT_TRUE(server_);
  http_client c{port()};
  auto s = json::parse(c.request("GET", "/stats").body);
  EXPECT_EQ(s["cache"]["max_size"], 7);
  EXPECT_DOUBLE_EQ(s["cache"]["ttl_seconds"].get<double>(), 1.5);
  EXPECT_FALSE(s["cache"]["enabled"].get<bool>());
  c.request("POST", "/predict", body(1.0f));
  auto again = json::parse(c.request("POST", "/predict", body(1.0f)).body);
  EXPECT_FALSE(again["cache_hit"].get<bool>());
}

// -- the agent, audits and the admin API ---------------------------

std::string drift_body(int step) {
  // A fixed prefix; the suffix moves further from its start at every step.
  std::string s = "{\"features\":[[0.5,-0.3,0.2,0.9";
  for (int i = 4; i < 32; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, ",%g", std::sin(i * 1.7) + 0.1 * step);
    s += buf;
  }
  return s + "]]}";
}

// The cosine trigger with pure prefix reuse (the first version's agent).
TEST_F(E2E, DriftDisablesReuseAndUndriftedTrafficBringsItBack) {
  start({"--risk.guard=off", "--agent.trigger=cosine", "--admin.token=t0k3n", "--audit.rate=1",
         "--audit.max-share=1", "--audit.per-second=0", "--agent.interval=0.1",
         "--agent.recover-threshold=0.001", "--agent.ttl-threshold=0.003",
         "--agent.disable-threshold=0.01", "--agent.min-samples=3", "--agent.recover-windows=2",
         "--agent.entry-evict-threshold=2"});
  http_client c{port()};
  // Phase 1: drift until the agent disables reuse.
  int disabled_after = -1;
  for (int i = 0; i < 1500 && disabled_after < 0; ++i) {
    auto r = c.request("POST", "/predict", drift_body(i / 10));
    ASSERT_EQ(r.status, 200) << r.body;
    if (i % 5 == 4 && !get_json(c, "/health")["cache_enabled"].get<bool>())
      disabled_after = i + 1;
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_GT(disabled_after, 0) << "the agent never disabled reuse";
  std::printf("[ drift ] reuse disabled after %d drifting requests\n", disabled_after);
  RecordProperty("requests_until_disabled", disabled_after);
  auto agent = get_json(c, "/agent", "t0k3n");
  EXPECT_EQ(agent["state"], "disabled");
  ASSERT_FALSE(agent["decisions"].empty());
  EXPECT_EQ(agent["decisions"].back()["action"], "disable");
  // While disabled (the agent needs 2 clean 100 ms windows to change that),
  // every answer is fresh.
  for (int i = 0; i < 10; ++i) {
    auto r = json::parse(c.request("POST", "/predict", drift_body(200)).body);
    EXPECT_FALSE(r["cache_hit"].get<bool>());
  }
  // Phase 2: undrifted traffic (one input, again and again) brings reuse back.
  int back_after = -1;
  for (int i = 0; i < 1500 && back_after < 0; ++i) {
    auto r = json::parse(c.request("POST", "/predict", drift_body(0)).body);
    if (r["cache_hit"].get<bool>())
      back_after = i + 1;
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_GT(back_after, 0) << "reuse never came back";
  std::printf("[ drift ] reuse back after %d undrifted requests\n", back_after);
  RecordProperty("requests_until_reenabled", back_after);
  EXPECT_TRUE(get_json(c, "/health")["cache_enabled"].get<bool>());
  EXPECT_NE(get_json(c, "/agent", "t0k3n")["state"], "disabled");
}

TEST_F(E2E, AuditsStayWithinTheirShareOfEncoderWork) {
  // No pacing: hits answered on the read path are offered for audit at up
  // to 1000 per second, and the share budget (1% of requests, +1) refuses
  // the rest of the offers (counted as skipped). The short pauses make the
  // run last long enough for more offers than the budget.
  start({"--audit.rate=1", "--audit.max-share=0.01", "--audit.per-second=0"});
  http_client c{port()};
  const int n = 600;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(c.request("POST", "/predict", body(1.0f)).status, 200);
    if (i % 50 == 49)
      std::this_thread::sleep_for(3ms);
  }
  // Audits run after the answers; give the last ones a moment.
  std::this_thread::sleep_for(200ms);
  auto s = get_json(c, "/stats");
  auto audits = s["divergence"]["audits"].get<int>();
  EXPECT_GT(audits, 0);
  EXPECT_LE(audits, n / 100 + 2);
  EXPECT_GT(s["divergence"]["audits_skipped"].get<int>(), 0);
  // Encoder work: one miss plus the audits, nothing else.
  EXPECT_EQ(s["encoder"]["items"].get<int>(), 1 + audits);
  EXPECT_EQ(s["divergence"]["cosine"]["count"].get<int>(), audits);
  EXPECT_LT(s["divergence"]["cosine"]["max"].get<double>(), 1e-9); // same input: rounding only
}

// The defaults size audits by need: a target per second, whatever the
// traffic; and a zero share of encoder time means none at all.
TEST_F(E2E, AuditsArePacedPerSecondAndCappedByEncoderTime) {
  start({"--audit.rate=1"}); // the default pacing: 20 per second
  http_client c{port()};
  auto t0 = std::chrono::steady_clock::now();
  int n = 0;
  while (std::chrono::steady_clock::now() - t0 < 1500ms) {
    ASSERT_EQ(c.request("POST", "/predict", body(1.0f)).status, 200);
    ++n;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::this_thread::sleep_for(200ms);
  auto s = get_json(c, "/stats");
  auto audits = s["divergence"]["audits"].get<int>();
  std::printf("[ audits ] %d requests in %.2f s, %d audits\n", n, secs, audits);
  EXPECT_GE(audits, 10);
  EXPECT_LE(audits, static_cast<int>(20 * secs) + 21); // the bucket holds one second
  EXPECT_LT(audits, n / 5);
  EXPECT_EQ(s["risk"]["served"]["audits"].get<int>(), audits);
  EXPECT_EQ(s["risk"]["served"]["wrong"].get<int>(), 0);

  server_.reset();
  start({"--audit.rate=1", "--audit.max-encoder-share=0"});
  http_client c2{port()};
  for (int i = 0; i < 50; ++i)
    c2.request("POST", "/predict", body(1.0f));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(get_json(c2, "/stats")["divergence"]["audits"].get<int>(), 0);
}

// Every series the Grafana dashboard queries (panels and annotations) is
// one the server exports; every query filters by the instance variable.
TEST_F(E2E, TheDashboardQueriesOnlyExportedMetrics) {
  start();
  http_client c{port()};
  c.request("POST", "/predict", body(1.0f));
  auto metrics = c.request("GET", "/metrics").body;
  std::ifstream in{std::string{SIL_SOURCE_DIR} + "/deploy/grafana/dashboards/sil.json"};
  ASSERT_TRUE(in);
  auto dashboard = json::parse(in);
  std::vector<std::string> exprs;
  for (const auto& panel : dashboard["panels"])
    for (const auto& target : panel.value("targets", json::array()))
      exprs.push_back(target["expr"].get<std::string>());
  for (const auto& a : dashboard["annotations"]["list"])
    if (a.contains("expr"))
      exprs.push_back(a["expr"].get<std::string>());
  int checked = 0;
  for (const auto& expr : exprs) {
    EXPECT_NE(expr.find("instance=~\"$instance\""), std::string::npos) << expr;
    for (const char* prefix : {"sil_", "process_"})
      for (std::size_t i = expr.find(prefix); i != std::string::npos; i = expr.find(prefix, i)) {
        auto end = expr.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_", i);
        auto name = expr.substr(i, end == std::string::npos ? std::string::npos : end - i);
        i += name.size();
        for (const char* suffix : {"_bucket", "_count", "_sum"})
          if (name.size() > std::strlen(suffix)
              && name.compare(name.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
            name.erase(name.size() - std::strlen(suffix));
        EXPECT_NE(metrics.find("# TYPE " + name + " "), std::string::npos) << name;
        ++checked;
      }
  }
  EXPECT_GT(checked, 30);
}

TEST_F(E2E, AdminApiIsClosedWithoutAToken) {
  start();
  http_client c{port()};
  auto r = admin(c, "POST", "/admin/cache/disable", "anything");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "forbidden");
  http_client c2{port()};
  EXPECT_EQ(c2.request("GET", "/agent").status, 403);
  EXPECT_TRUE(get_json(c2, "/health")["cache_enabled"].get<bool>());
}

TEST_F(E2E, AdminApiNeedsTheRightTokenAndWorksWithIt) {
  start({"--admin.token=s3cr3t"});
  http_client c{port()};
  auto none = admin(c, "POST", "/admin/cache/disable", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.headers["www-authenticate"], "Bearer");
  EXPECT_EQ(admin(c, "POST", "/admin/cache/disable", "s3cr3").status, 401);
  EXPECT_EQ(admin(c, "POST", "/admin/cache/disable", "s3cr3t-").status, 401);
  EXPECT_TRUE(get_json(c, "/health")["cache_enabled"].get<bool>());

  c.request("POST", "/predict", body(1.0f));
  auto off = admin(c, "POST", "/admin/cache/disable", "s3cr3t");
  ASSERT_EQ(off.status, 200) << off.body;
  auto a = json::parse(off.body);
  EXPECT_EQ(a["state"], "disabled");
  EXPECT_TRUE(a["manual_override"].get<bool>());
  EXPECT_FALSE(get_json(c, "/health")["cache_enabled"].get<bool>());
  EXPECT_FALSE(
    json::parse(c.request("POST", "/predict", body(1.0f)).body)["cache_hit"].get<bool>());

  EXPECT_EQ(admin(c, "PUT", "/admin/cache/ttl", "s3cr3t", "{\"ttl_seconds\": 5.5}").status, 200);
  EXPECT_DOUBLE_EQ(get_json(c, "/stats")["cache"]["ttl_seconds"].get<double>(), 5.5);
  EXPECT_EQ(admin(c, "PUT", "/admin/cache/ttl", "s3cr3t", "{\"ttl_seconds\": -1}").status, 400);
  EXPECT_EQ(admin(c, "PUT", "/admin/cache/ttl", "s3cr3t", "{\"ttl\": 1}").status, 400);
  EXPECT_EQ(admin(c, "PUT", "/admin/cache/ttl", "s3cr3t", "nope").status, 400);
  EXPECT_EQ(admin(c, "GET", "/admin/cache/disable", "s3cr3t").status, 405);
  EXPECT_EQ(admin(c, "POST", "/admin/nothing", "s3cr3t").status, 404);

  EXPECT_EQ(admin(c, "POST", "/admin/cache/enable", "s3cr3t").status, 200);
  EXPECT_TRUE(get_json(c, "/health")["cache_enabled"].get<bool>());
  EXPECT_EQ(admin(c, "POST", "/admin/cache/clear", "s3cr3t").status, 200);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(get_json(c, "/stats")["cache"]["size"].get<int>(), 0);
  auto resumed = json::parse(admin(c, "POST", "/admin/agent/resume", "s3cr3t").body);
  EXPECT_FALSE(resumed["manual_override"].get<bool>());
  auto log = get_json(c, "/agent", "s3cr3t")["decisions"];
  ASSERT_GE(log.size(), 5u);
  for (const auto& d : log)
    EXPECT_TRUE(d["manual"].get<bool>());
  EXPECT_EQ(log.back()["action"], "resume");
}

// -- health, request ids, KServe v2, OpenAPI, CORS, the admin log -----------

/// Sends one request with extra header fields and reads the answer.
http_response send_with(http_client& c, const std::string& method, const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& fields,
                        const std::string& body = "") {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [name, value] : fields)
    req += name + ": " + value + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return c.raw(req + "\r\n" + body);
}

bool is_generated_id(const std::string& id) {
  return id.size() == 16 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string infer_body(float first, const std::string& extra = "", bool nested = false) {
  auto r = row(first);
  auto data = nested ? "[" + r + "]" : r;
  return R"({"inputs":[{"name":"features","datatype":"FP32","shape":[1,32],"data":)" + data + "}]"
         + extra + "}";
}

TEST_F(E2E, HealthLiveReadyAndTheirKServeAliases) {
  start();
  http_client c{port()};
  for (const char* path : {"/health/live", "/v2/health/live"}) {
    auto r = c.request("GET", path);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.headers["content-type"], "application/json");
    EXPECT_TRUE(json::parse(r.body)["live"].get<bool>()) << path;
  }
  for (const char* path : {"/health/ready", "/v2/health/ready"}) {
    auto r = c.request("GET", path);
    EXPECT_EQ(r.status, 200) << path << " " << r.body;
    auto j = json::parse(r.body);
    EXPECT_TRUE(j["ready"].get<bool>());
    EXPECT_EQ(j["status"], "ok");
    EXPECT_NE(j["reason"].get<std::string>().find("2 encoder workers"), std::string::npos);
  }
  // The first version's /health: same body, 200 while ready.
  auto h = c.request("GET", "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(json::parse(h.body)["status"], "ok");
  auto model = c.request("GET", "/v2/models/seed/ready");
  EXPECT_EQ(model.status, 200);
  EXPECT_TRUE(json::parse(model.body)["ready"].get<bool>());
  EXPECT_EQ(c.request("POST", "/health/ready", "{}").status, 405);
}

TEST_F(E2E, ReadinessTurns503WhileDrainingAndHealthKeepsItsBody) {
  // Slow requests (64 rows through the default, heavier preset, one worker)
  // keep the drain going while the probes ask.
  server_
    = server_process::start(SIL_SERVER_BINARY, {"--port=0", "--workers=1", "--encoder.timeout=20"});
  ASSERT_TRUE(server_);
  http_client ready_probe{port()};
  http_client health_probe{port()};
  ASSERT_EQ(ready_probe.request("GET", "/health/ready").status, 200);
  auto before = health_probe.request("GET", "/health");
  ASSERT_EQ(before.status, 200);
  std::vector<std::unique_ptr<http_client>> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(std::make_unique<http_client>(port()));
    std::vector<std::string> rows(64, row(20.0f + static_cast<float>(i)));
    clients.back()->send_request("POST", "/predict", features(rows) + "}");
  }
  for (int i = 0; i < 500; ++i) {
    if (json::parse(health_probe.request("GET", "/health").body)["in_flight"].get<int>() > 0)
      break;
    std::this_thread::sleep_for(2ms);
  }
  server_->signal(SIGTERM);
  // Open connections are still served while the server drains; readiness
  // says so (and the answer closes its connection).
  http_response r;
  for (int i = 0; i < 2000; ++i) {
    r = ready_probe.request("GET", "/health/ready");
    if (r.status != 200)
      break;
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_EQ(r.headers["connection"], "close");
  auto j = json::parse(r.body);
  EXPECT_FALSE(j["ready"].get<bool>());
  EXPECT_EQ(j["status"], "draining");
  auto during = health_probe.request("GET", "/health");
  EXPECT_EQ(during.status, 503);
  auto a = json::parse(before.body);
  auto b = json::parse(during.body);
  EXPECT_EQ(b["status"], a["status"]); // the body is the first version's
  EXPECT_EQ(b["model_version"], a["model_version"]);
  for (auto& c : clients)
    EXPECT_EQ(c->read_response().status, 200);
  EXPECT_EQ(server_->wait(10s), 0);
}

TEST_F(E2E, EveryAnswerCarriesARequestIdAndPredictionsEchoTheBodyId) {
  start();
  http_client c{port()};
  auto mine = send_with(c, "GET", "/health", {{"X-Request-Id", "trace-7:a/b"}});
  EXPECT_EQ(mine.headers["x-request-id"], "trace-7:a/b");
  auto too_long = send_with(c, "GET", "/health", {{"X-Request-Id", std::string(129, 'x')}});
  EXPECT_TRUE(is_generated_id(too_long.headers["x-request-id"]))
    << too_long.headers["x-request-id"];
  auto a = c.request("GET", "/health");
  auto b = c.request("GET", "/health");
  EXPECT_TRUE(is_generated_id(a.headers["x-request-id"]));
  EXPECT_NE(a.headers["x-request-id"], b.headers["x-request-id"]);
  // Errors too, the transport's own included.
  for (auto r : {c.request("GET", "/nope"), c.request("GET", "/predict"),
                 c.request("POST", "/predict", "{bad")})
    EXPECT_TRUE(is_generated_id(r.headers["x-request-id"])) << r.status;
  http_client raw{port()};
  auto garbage = raw.raw("NOT AN HTTP REQUEST\r\n\r\n");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_TRUE(is_generated_id(garbage.headers["x-request-id"]));
  // The body's "id", as KServe v2 echoes it.
  http_client p{port()};
  auto echoed = send_with(p, "POST", "/predict",
                          {{"Content-Type", "application/json"}, {"X-Request-Id", "r-1"}},
                          features({row(1.0f)}) + ",\"id\":\"client-42\"}");
  ASSERT_EQ(echoed.status, 200) << echoed.body;
  EXPECT_EQ(json::parse(echoed.body)["id"], "client-42");
  EXPECT_EQ(echoed.headers["x-request-id"], "r-1");
  EXPECT_FALSE(json::parse(p.request("POST", "/predict", body(1.0f)).body).contains("id"));
}

TEST_F(E2E, KServeV2MetadataAndInferenceShareThePredictPath) {
  start();
  http_client c{port()};
  auto version = json::parse(c.request("GET", "/health").body)["model_version"].get<std::string>();
  auto server = json::parse(c.request("GET", "/v2").body);
  EXPECT_EQ(server["name"], "sil-server");
  EXPECT_FALSE(server["version"].get<std::string>().empty());
  auto meta = c.request("GET", "/v2/models/seed");
  ASSERT_EQ(meta.status, 200);
  auto m = json::parse(meta.body);
  EXPECT_EQ(m["versions"], json::array({version}));
  EXPECT_EQ(m["inputs"][0]["datatype"], "FP32");
  EXPECT_EQ(m["inputs"][0]["shape"], json::array({-1, 32}));
  EXPECT_EQ(c.request("GET", "/v2/models/seed/versions/" + version).body, meta.body);
  auto unknown = c.request("GET", "/v2/models/resnet");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_TRUE(json::parse(unknown.body)["error"].is_string());
  EXPECT_EQ(c.request("GET", "/v2/models/seed/versions/v0").status, 404);

  int predictions = 0;
  // A flat tensor, with an id; Triton's client sends no Content-Type.
  auto first = send_with(c, "POST", "/v2/models/seed/infer", {}, infer_body(1.0f, R"(,"id":"42")"));
  ++predictions;
  ASSERT_EQ(first.status, 200) << first.body;
  auto f = json::parse(first.body);
  EXPECT_EQ(f["model_name"], "seed");
  EXPECT_EQ(f["model_version"], version);
  EXPECT_EQ(f["id"], "42");
  EXPECT_EQ(f["outputs"][0]["name"], "prediction");
  EXPECT_EQ(f["outputs"][0]["datatype"], "FP32");
  EXPECT_EQ(f["outputs"][0]["shape"], json::array({1}));
  auto score = f["outputs"][0]["data"][0].get<double>();
  // The same input nested by rows, through the versioned path: a hit on the
  // entry the first made.
  auto nested = c.request("POST", "/v2/models/seed/versions/" + version + "/infer",
                          infer_body(1.0f, "", true));
  ++predictions;
  auto n = json::parse(nested.body);
  EXPECT_TRUE(n["parameters"]["cache_hit"].get<bool>()) << nested.body;
  EXPECT_DOUBLE_EQ(n["outputs"][0]["data"][0].get<double>(), score);
  // /predict shares the cache.
  auto p = json::parse(c.request("POST", "/predict", body(1.0f)).body);
  ++predictions;
  EXPECT_TRUE(p["cache_hit"].get<bool>());
  EXPECT_DOUBLE_EQ(p["prediction"].get<double>(), score);
  // Cache control through the protocol's parameters.
  auto fresh = json::parse(c.request("POST", "/v2/models/seed/infer",
                                     infer_body(1.0f, R"(,"parameters":{"use_cache":false})"))
                             .body);
  ++predictions;
  EXPECT_FALSE(fresh["parameters"]["cache_hit"].get<bool>());
  EXPECT_EQ(fresh["parameters"]["source"], "encoder");

  // Errors in the protocol's form.
  auto bad = c.request(
    "POST", "/v2/models/seed/infer",
    R"({"inputs":[{"name":"features","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]})");
  ++predictions;
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(json::parse(bad.body)["error"].get<std::string>().find("shape"), std::string::npos);
  auto fp64
    = c.request("POST", "/v2/models/seed/infer",
                R"({"inputs":[{"name":"features","datatype":"FP64","shape":[1,32],"data":[]}]})");
  ++predictions;
  EXPECT_EQ(fp64.status, 400);
  auto text = c.request("POST", "/v2/models/seed/infer", infer_body(1.0f), "text/plain");
  ++predictions;
  EXPECT_EQ(text.status, 415);
  EXPECT_TRUE(json::parse(text.body)["error"].is_string());
  auto other = c.request("POST", "/v2/models/base/infer", infer_body(1.0f));
  ++predictions;
  EXPECT_EQ(other.status, 404);
  // The same metrics: every one of them counts as a prediction.
  auto s = json::parse(c.request("GET", "/stats").body);
  EXPECT_EQ(s["requests"]["predict"].get<int>(), predictions);
  EXPECT_EQ(s["requests"]["errors"].get<int>(), 4);
  EXPECT_EQ(s["cache"]["misses"].get<int>(), 1);
}

TEST_F(E2E, TheOpenApiDocumentIsServedFromTheBinary) {
  start();
  http_client c{port()};
  auto r = c.request("GET", "/openapi.json");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "application/json");
  std::ifstream in{std::string{SIL_SOURCE_DIR} + "/http/openapi.json"};
  ASSERT_TRUE(in);
  std::string file{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  EXPECT_EQ(r.body, file);
  EXPECT_EQ(json::parse(r.body)["openapi"].get<std::string>().substr(0, 2), "3.");
}

TEST_F(E2E, CorsOnlyWhenConfigured) {
  const std::vector<std::pair<std::string, std::string>> preflight{
    {"Origin", "https://app.example.com"},
    {"Access-Control-Request-Method", "POST"},
    {"Access-Control-Request-Headers", "content-type"}};
  start();
  {
    http_client c{port()};
    auto r = send_with(c, "GET", "/health", {{"Origin", "https://app.example.com"}});
    EXPECT_EQ(r.status, 200);
    for (const auto& [name, value] : r.headers)
      EXPECT_NE(name.rfind("access-control-", 0), 0u) << name;
    EXPECT_EQ(r.headers.count("vary"), 0u);
    EXPECT_EQ(send_with(c, "OPTIONS", "/predict", preflight).status, 405);
  }
  server_.reset();
  start({"--http.cors-origins=https://app.example.com, http://localhost:3000"});
  http_client c{port()};
  auto pre = send_with(c, "OPTIONS", "/predict", preflight);
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.headers["access-control-allow-origin"], "https://app.example.com");
  EXPECT_NE(pre.headers["access-control-allow-methods"].find("POST"), std::string::npos);
  EXPECT_NE(pre.headers["access-control-allow-headers"].find("Content-Type"), std::string::npos);
  EXPECT_EQ(pre.headers.count("content-length"), 0u);
  auto simple = send_with(
    c, "POST", "/predict",
    {{"Origin", "http://localhost:3000"}, {"Content-Type", "application/json"}}, body(1.0f));
  EXPECT_EQ(simple.status, 200);
  EXPECT_EQ(simple.headers["access-control-allow-origin"], "http://localhost:3000");
  EXPECT_NE(simple.headers["access-control-expose-headers"].find("X-Request-Id"),
            std::string::npos);
  EXPECT_EQ(simple.headers["vary"], "Origin");
  auto error = send_with(c, "GET", "/nope", {{"Origin", "http://localhost:3000"}});
  EXPECT_EQ(error.status, 404);
  EXPECT_EQ(error.headers["access-control-allow-origin"], "http://localhost:3000");
  auto other = send_with(c, "GET", "/health", {{"Origin", "https://evil.example.com"}});
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(other.headers.count("access-control-allow-origin"), 0u);
  http_client c2{port()};
  auto refused = send_with(
    c2, "OPTIONS", "/predict",
    {{"Origin", "https://evil.example.com"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(json::parse(refused.body)["error"]["code"], "forbidden");
  // Not an origin: the configuration is refused, naming the key.
  auto [rc, err] = run_to_exit(SIL_SERVER_BINARY, {"--http.cors-origins=app.example.com/"});
  EXPECT_EQ(rc, 2) << err;
  EXPECT_NE(err.find("http.cors-origins"), std::string::npos) << err;
}

TEST_F(E2E, AdminActionsAreLoggedWithATokenFingerprintNeverTheToken) {
  // stderr into a file, through a shell that then becomes the server.
  std::string log
    = std::string{SIL_TEST_TMPDIR} + "/admin-log-" + std::to_string(::getpid()) + ".txt";
  server_ = server_process::start("/bin/sh", {"-c", std::string{"exec '"} + SIL_SERVER_BINARY
                                                      + "' --port=0 --model.preset=seed "
                                                        "--workers=1 --admin.token=s3cr3t 2>'"
                                                      + log + "'"});
  ASSERT_TRUE(server_);
  http_client c{port()};
  auto bearer = [](const char* t) {
    return std::make_pair(std::string{"Authorization"}, std::string{"Bearer "} + t);
  };
  EXPECT_EQ(
    send_with(c, "POST", "/admin/cache/disable", {bearer("s3cr3t"), {"X-Request-Id", "adm-1"}})
      .status,
    200);
  EXPECT_EQ(
    send_with(c, "POST", "/admin/cache/enable", {bearer("wrong-one"), {"X-Request-Id", "adm-2"}})
      .status,
    401);
  EXPECT_EQ(send_with(c, "PUT", "/admin/cache/ttl",
                      {bearer("s3cr3t"), {"X-Request-Id", "adm-3"}, {"Content-Type", "text/plain"}},
                      R"({"ttl_seconds":5})")
              .status,
            415);
  EXPECT_EQ(
    send_with(c, "POST", "/admin/agent/resume", {bearer("s3cr3t"), {"X-Request-Id", "adm-4"}})
      .status,
    200);
  EXPECT_EQ(server_->stop(), 0);
  std::ifstream in{log};
  ASSERT_TRUE(in) << log;
  std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  EXPECT_EQ(text.find("s3cr3t"), std::string::npos) << "the token is in the log";
  EXPECT_EQ(text.find("wrong-one"), std::string::npos) << "a presented token is in the log";
  auto line_of = [&](const std::string& id) {
    auto at = text.find(id);
    if (at == std::string::npos)
      return std::string{};
    auto begin = text.rfind('\n', at);
    auto end = text.find('\n', at);
    return text.substr(begin == std::string::npos ? 0 : begin + 1,
                       end == std::string::npos ? std::string::npos : end - begin - 1);
  };
  auto token_of = [](const std::string& line) {
    auto at = line.find("token_id");
    if (at == std::string::npos)
      return std::string{};
    auto hex = line.find_first_of("0123456789abcdef", at + 8);
    return hex == std::string::npos ? std::string{} : line.substr(hex, 8);
  };
  auto disable = line_of("adm-1");
  ASSERT_FALSE(disable.empty()) << text;
  EXPECT_NE(disable.find("admin"), std::string::npos) << disable;
  EXPECT_NE(disable.find("disable_cache"), std::string::npos) << disable;
  EXPECT_NE(disable.find("127.0.0.1:"), std::string::npos) << disable;
  EXPECT_NE(disable.find("ok"), std::string::npos) << disable;
  auto wrong = line_of("adm-2");
  EXPECT_NE(wrong.find("unauthorized"), std::string::npos) << wrong;
  auto ttl = line_of("adm-3");
  EXPECT_NE(ttl.find("unsupported_media_type"), std::string::npos) << ttl;
  auto resume = line_of("adm-4");
  EXPECT_NE(resume.find("resume_agent"), std::string::npos) << resume;
  // The same token has the same fingerprint; another token another one.
  EXPECT_EQ(token_of(disable).size(), 8u) << disable;
  EXPECT_EQ(token_of(disable), token_of(resume));
  EXPECT_EQ(token_of(disable), token_of(ttl));
  EXPECT_NE(token_of(disable), token_of(wrong));
}

TEST_F(E2E, TheAccessLogHasOneLinePerExchangeWithItsRequestIdStatusAndOutcome) {
  auto dir = std::string{SIL_TEST_TMPDIR} + "/access-" + std::to_string(::getpid());
  auto file = dir + "/access.log";
  server_ = server_process::start(
    SIL_SERVER_BINARY, {"--port=0", "--model.preset=seed", "--workers=1", "--log.access=true",
                        "--log.format=json", "--log.access-file=" + file});
  ASSERT_TRUE(server_);
  http_client c{port()};
  auto json_headers = [](const char* id) {
    return std::vector<std::pair<std::string, std::string>>{{"Content-Type", "application/json"},
                                                            {"X-Request-Id", id}};
  };
  EXPECT_EQ(send_with(c, "POST", "/predict", json_headers("acc-miss"), body(0.25f)).status, 200);
  EXPECT_EQ(send_with(c, "POST", "/predict", json_headers("acc-hit"), body(0.25f)).status, 200);
  EXPECT_EQ(send_with(c, "POST", "/predict", json_headers("acc-bad"), "{\"features\": 1}").status,
            400);
  EXPECT_EQ(send_with(c, "GET", "/no/such/route", {{"X-Request-Id", "acc-404"}}).status, 404);
  EXPECT_EQ(server_->stop(), 0);

  std::ifstream in{file};
  ASSERT_TRUE(in) << file;
  std::map<std::string, json> by_id;
  std::string line;
  while (std::getline(in, line)) {
    auto j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not a JSON line: " << line;
    EXPECT_EQ(j.value("component", ""), "access") << line;
    if (j.contains("request_id"))
      by_id[j["request_id"].get<std::string>()] = j;
  }
  ASSERT_EQ(by_id.size(), 4u) << "one line per exchange";
  const auto& miss = by_id["acc-miss"];
  EXPECT_EQ(miss["method"], "POST");
  EXPECT_EQ(miss["target"], "/predict");
  EXPECT_EQ(miss["status"], 200);
  EXPECT_EQ(miss["outcome"], "miss");
  EXPECT_EQ(miss["bytes_in"].get<std::uint64_t>(), body(0.25f).size());
  EXPECT_GT(miss["bytes_out"].get<std::uint64_t>(), 10u);
  EXPECT_GE(miss["latency_ms"].get<double>(), 0.0);
  EXPECT_NE(miss["remote"].get<std::string>().find("127.0.0.1:"), std::string::npos);
  EXPECT_EQ(by_id["acc-hit"]["outcome"], "hit");
  EXPECT_EQ(by_id["acc-bad"]["status"], 400);
  EXPECT_EQ(by_id["acc-404"]["status"], 404);
  EXPECT_EQ(by_id["acc-404"]["target"], "/no/such/route");
}

/// The cells of a sil-lab results.json whose values at the JSON pointers of
/// `match` equal the given ones.
std::vector<json> cells_where(const json& results,
                              const std::vector<std::pair<std::string, json>>& match) {
  std::vector<json> out;
  for (const auto& c : results["cells"]) {
    bool all = true;
    for (const auto& [ptr, v] : match) {
      json::json_pointer p{ptr};
      all = all && c.contains(p) && c.at(p) == v;
    }
    if (all)
      out.push_back(c);
  }
  return out;
}

TEST(Lab, LoadQuickWritesValidResults) {
  std::string out = std::string{SIL_TEST_TMPDIR} + "/lab-load";
  auto [rc, err]
    = run_to_exit(SIL_LAB_BINARY,
                  {"load", "--quick", "--duration", "2", "--rate", "200", "--burst-rate", "600",
                   "--server-arg", "--model.preset=seed", "--reps", "2", "--out", out},
                  {}, 90);
  ASSERT_EQ(rc, 0) << err;
  EXPECT_NE(err.find("[load] steady cache_on rep2"), std::string::npos); // progress on stderr
  EXPECT_NE(err.find(" requests"), std::string::npos);
  std::ifstream in{out + "/load/results.json"};
  ASSERT_TRUE(in);
  auto j = json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["experiment"], "load");
  EXPECT_EQ(j["config"]["reps"], 2);
  ASSERT_EQ(j["cells"].size(), 12u); // 2 repetitions x 2 shapes x 3 runs
  for (int rep : {0, 1}) {
    for (const char* shape : {"steady", "bursty"}) {
      auto find = [&](const char* run) {
        auto v = cells_where(j, {{"/rep", rep}, {"/shape", shape}, {"/run", run}});
        return v.size() == 1 ? v.front() : json(nullptr);
      };
      for (const char* run : {"cache_off", "cache_on", "cache_on_no_single_flight"}) {
        SCOPED_TRACE(std::string{shape} + " " + run + " rep " + std::to_string(rep));
        auto r = find(run);
        ASSERT_TRUE(r.is_object());
        EXPECT_EQ(r["seed"].get<int>(), 1 + 1000 * rep); // a different workload per repetition
        for (const char* k : {"target_rate", "achieved_rate", "status_counts", "hit_rate",
                              "generator_max_lag_ms", "dropped", "failed", "encoder_items"})
          EXPECT_TRUE(r.contains(k)) << k;
        for (const char* k : {"mean", "p50", "p90", "p95", "p99", "p999", "max"})
          EXPECT_TRUE(r["latency_ms"].contains(k)) << k;
        EXPECT_GT(r["achieved_rate"].get<double>(), 0.8 * r["target_rate"].get<double>());
        EXPECT_EQ(r["failed"].get<int>(), 0);
        EXPECT_EQ(r["dropped"].get<int>(), 0);
        EXPECT_EQ(r["status_counts"]["200"].get<int>(), r["ok"].get<int>());
        EXPECT_LE(r["latency_ms"]["p50"].get<double>(), r["latency_ms"]["p99"].get<double>());
      }
      auto off = find("cache_off");
      auto on = find("cache_on");
      EXPECT_EQ(off["hit_rate"].get<double>(), 0.0);
      // With the cache off every request is encoded exactly once.
      EXPECT_EQ(off["encoder_items"].get<int>(), off["ok"].get<int>());
      EXPECT_GT(on["hit_rate"].get<double>(), 0.5);
      EXPECT_LT(on["encoder_items"].get<int>(), on["ok"].get<int>() / 2);
      EXPECT_EQ(find("cache_on_no_single_flight")["single_flight_joins"].get<int>(), 0);
    }
    // Bursts raise the offered rate above the steady base.
    EXPECT_GT(cells_where(j, {{"/rep", rep}, {"/shape", "bursty"}, {"/run", "cache_on"}})
                .front()["target_rate"]
                .get<double>(),
              j["config"]["bursty_base_rate"].get<double>());
  }
  for (const char* f : {"/load/results.csv", "/load/timeline.csv", "/load/summary.md",
                        "/load/latency.png", "/load/burst_timeline.png"}) {
    std::ifstream file{out + f, std::ios::binary};
    EXPECT_TRUE(file) << f;
  }
  std::ifstream summary{out + "/load/summary.md"};
  std::string text(std::istreambuf_iterator<char>{summary}, {});
  EXPECT_NE(text.find("2 repetitions with different workload seeds (mean [min, max])"),
            std::string::npos);
}

TEST(Lab, DriftWritesResultsAndPlots) {
  std::string out = std::string{SIL_TEST_TMPDIR} + "/lab-drift";
  auto [rc, err] = run_to_exit(SIL_LAB_BINARY, {"drift", "--quick", "--preset", "seed", "--trials",
                                                "20", "--steps", "3", "--out", out});
  ASSERT_EQ(rc, 0) << err;
  EXPECT_NE(err.find("[drift]"), std::string::npos);
  std::ifstream in{out + "/drift/results.json"};
  auto j = json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  ASSERT_EQ(j["steps"].size(), 8u); // 2 formulations x 4 steps
  for (const auto& row : j["steps"]) {
    EXPECT_GE(row["cosine_p50"].get<double>(), 0.0);
    EXPECT_LE(row["cosine_p95"].get<double>(), 2.0);
    EXPECT_GE(row["pred_err_p95"].get<double>(), row["pred_err_p50"].get<double>());
    if (row["formulation"] == "shifted" && row["step"] == 0) {
      // The unshifted request is the cached one: no divergence, no error.
      EXPECT_LE(row["cosine_p95"].get<double>(), 1e-6);
      EXPECT_LE(row["pred_err_p95"].get<double>(), 1e-6);
    }
  }
  EXPECT_TRUE(j["spearman_cosine_vs_prediction_error"].contains("resampled"));
  for (const char* f : {"/drift/results.csv", "/drift/summary.md", "/drift/divergence.png",
                        "/drift/prediction_error.png"}) {
    std::ifstream file{out + f, std::ios::binary};
    EXPECT_TRUE(file) << f;
    EXPECT_GT(std::string(std::istreambuf_iterator<char>{file}, {}).size(), 100u) << f;
  }
}

// The canary experiment's two cases, judged live by the server: the
// shorter TTL cuts wrong answers and is promoted; the looser budget breaches
// the service's budget and is rolled back.
TEST(Lab, CanaryPromotesAShorterTtlAndRollsBackALooserBudget) {
  std::string out = std::string{SIL_TEST_TMPDIR} + "/lab-canary";
  std::filesystem::remove_all(out);
  auto [rc, err] = run_to_exit(
    SIL_LAB_BINARY, {"canary", "--quick", "--server-arg", "--model.preset=seed", "--out", out}, {},
    300);
  ASSERT_EQ(rc, 0) << err;
  std::ifstream in{out + "/canary/results.json"};
  auto j = json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  ASSERT_EQ(j["cases"].size(), 2u);
  for (const auto& c : j["cases"]) {
    SCOPED_TRACE(c["case"].get<std::string>());
    EXPECT_EQ(c["verdict"], c["expected"]) << c["decision"].dump();
    EXPECT_FALSE(c["decision"]["manual"].get<bool>());
    EXPECT_GT(c["decision_s"].get<double>(), c["canary_start_s"].get<double>());
    EXPECT_EQ(c["run"]["counts"]["errors"].get<int>(), 0);
    ASSERT_TRUE(c["during_canary"].contains("A") && c["during_canary"].contains("B"));
  }
  const auto& ttl = j["cases"][0];
  const auto& loose = j["cases"][1];
  // Checked offline against fresh answers: the promoted candidate served
  // fewer wrong hits than the policy in place, the rolled-back one more.
  EXPECT_LT(ttl["during_canary"]["B"]["wrong_per_hit"].get<double>(),
            ttl["during_canary"]["A"]["wrong_per_hit"].get<double>());
  EXPECT_GT(loose["during_canary"]["B"]["wrong_per_hit"].get<double>(), 0.01);
  EXPECT_NE(loose["decision"]["reason"].get<std::string>().find("breaches the error budget"),
            std::string::npos);
  for (const char* f :
       {"/canary/summary.md", "/canary/timeline.csv", "/canary/events.csv", "/canary/canary.png"}) {
    std::ifstream file{out + f, std::ios::binary};
    EXPECT_TRUE(file) << f;
    EXPECT_GT(std::string(std::istreambuf_iterator<char>{file}, {}).size(), 100u) << f;
  }
}

json read_results(const std::string& path) {
  std::ifstream in{path};
  return json::parse(in, nullptr, false);
}

/// The lines of a CSV file, split at commas (the header first).
std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in{path};
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    rows.emplace_back();
    std::size_t at = 0;
    for (auto comma = line.find(','); comma != std::string::npos; comma = line.find(',', at)) {
      rows.back().push_back(line.substr(at, comma - at));
      at = comma + 1;
    }
    rows.back().push_back(line.substr(at));
  }
  return rows;
}

// A small `sil-lab all`: every experiment with tiny settings, then
// REPORT.md. Checks the files and the invariants of each experiment.
TEST(Lab, AllWritesEveryReportFileAndTheFindings) {
  std::string out = std::string{SIL_TEST_TMPDIR} + "/lab-all";
  std::filesystem::remove_all(out);
  auto [rc, err] = run_to_exit(SIL_LAB_BINARY,
                               {"all", "--quick", "--duration", "1.5", "--levels", "0,0.5",
                                "--ttls", "0.2,0", "--capacities", "8,512", "--trials", "10",
                                "--steps", "3", "--deltas", "0.01,0.05", "--out", out},
                               {}, 330); // ~1 min in Release; ThreadSanitizer is far slower
  ASSERT_EQ(rc, 0) << err;
  EXPECT_NE(err.find("[all] wrote"), std::string::npos);
  EXPECT_NE(err.find(" min)"), std::string::npos); // the elapsed time
  for (const char* exp : {"load", "drift", "correctness", "guard", "sweep-ttl", "sweep-capacity"})
    for (const char* f : {"results.json", "results.csv", "summary.md"}) {
      std::ifstream file{out + "/" + exp + "/" + f};
      EXPECT_TRUE(file) << exp << "/" << f;
    }
  for (const char* f : {"canary/results.json", "canary/summary.md", "canary/timeline.csv"}) {
    std::ifstream file{out + "/" + f};
    EXPECT_TRUE(file) << f;
  }
  for (const char* png :
       {"correctness/risk_table.png", "correctness/divergence_vs_error.png",
        "correctness/tradeoff.png", "guard/calibration.png", "guard/scenario.png",
        "guard/timeline.png", "sweep-ttl/ttl_tradeoff.png", "sweep-capacity/capacity.png"}) {
    std::ifstream file{out + "/" + png};
    EXPECT_TRUE(file) << png;
  }

  // Correctness: the counts add up; without drift no hit is wrong; with
  // strong drift and the agent off, some are; misses are fresh.
  auto c = read_results(out + "/correctness/results.json");
  ASSERT_FALSE(c.is_discarded());
  // (2 levels + the resampled row) x arms off, on, guard; one repetition
  ASSERT_EQ(c["cells"].size(), 9u);
  for (const auto& cell : c["cells"]) {
    SCOPED_TRACE(cell["cell"].get<std::string>());
    const auto& k = cell["counts"];
    const auto& g = cell["guard"];
    EXPECT_EQ(k["correct_hits"].get<int>() + k["wrong_hits"].get<int>(), k["hits"].get<int>());
    EXPECT_EQ(k["hits"].get<int>() + k["misses"].get<int>() + k["errors"].get<int>(),
              k["requests"].get<int>());
    EXPECT_EQ(k["errors"].get<int>(), 0);
    EXPECT_LT(k["max_miss_error"].get<double>(), 1e-4);
    bool guarded = cell["agent"]["mode"] == "guard";
    // Every answer says why it was (not) reused: hits are exact or
    // certified with the guard, unguarded without; refusals are misses.
    if (guarded) {
      EXPECT_EQ(g["exact"].get<int>() + g["certified"].get<int>(), k["hits"].get<int>());
      EXPECT_LE(g["refused"].get<int>(), k["misses"].get<int>());
      EXPECT_EQ(g["unguarded"].get<int>(), 0);
      EXPECT_TRUE(cell["server"]["risk"]["guard"].get<bool>());
    } else {
      EXPECT_EQ(g["unguarded"].get<int>(), k["hits"].get<int>());
      EXPECT_EQ(g["refused"].get<int>(), 0);
    }
    if (cell["drift_strength"].get<double>() == 0.0) {
      EXPECT_EQ(k["wrong_hits"].get<int>(), 0);
      EXPECT_GT(k["hit_rate"].get<double>(), 0.5);
      if (guarded) { // identical features: every hit is exact
        EXPECT_EQ(g["exact"].get<int>(), k["hits"].get<int>());
      }
    }
    // Hits are attributed to the computation they reused.
    EXPECT_EQ(cell["divergence_at_hit"]["attributed_hits"].get<int>(), k["hits"].get<int>());
  }
  auto drifted_off = cells_where(
    c, {{"/drift_strength", 0.5}, {"/formulation", "shifted"}, {"/agent/mode", "off"}});
  ASSERT_EQ(drifted_off.size(), 1u);
  EXPECT_GT(drifted_off[0]["counts"]["wrong_hits"].get<int>(), 0);
  EXPECT_TRUE(drifted_off[0]["agent"]["decisions"].empty()); // agent.enabled=false never acts
  EXPECT_TRUE(c["spearman_cosine_vs_error"]["agent_off_drifted"].is_number());
  auto resampled = cells_where(c, {{"/formulation", "resampled"}});
  ASSERT_EQ(resampled.size(), 3u);
  EXPECT_EQ(resampled[0]["drift_strength"].get<double>(), 0.25); // the drift study's strength

  // The trade-off: the oracle serves no wrong answer and never more hits
  // than the recorded run had live entries; the loosest static threshold
  // reuses every recorded hit.
  std::size_t off_hits = 0;
  std::size_t oracle_hits = 0;
  for (const auto& cell : c["cells"])
    if (cell["agent"]["mode"] == "off") {
      off_hits += cell["counts"]["hits"].get<std::size_t>();
      EXPECT_EQ(cell["oracle"]["wrong"].get<int>(), 0);
      oracle_hits += cell["oracle"]["hits"].get<std::size_t>();
    }
  EXPECT_LE(oracle_hits, off_hits);
  ASSERT_EQ(c["tradeoff"]["reps"].size(), 1u);
  const auto& t = c["tradeoff"]["reps"][0];
  EXPECT_EQ(t["oracle"]["hits"].get<std::size_t>(), oracle_hits);
  EXPECT_EQ(t["guard"]["wrong_rate"].get<double>() * t["guard"]["hits"].get<double>(),
            t["guard"]["wrong"].get<double>());
  EXPECT_GT(t["guard_over_oracle"].get<double>(), 0.0);
  auto curve = read_csv(out + "/correctness/tradeoff.csv");
  ASSERT_GT(curve.size(), 1u);
  EXPECT_EQ(curve[0][1], "policy");
  std::size_t loosest_cosine_hits = 0;
  for (const auto& row : curve)
    if (row[1] == "static_cosine")
      loosest_cosine_hits = std::stoul(row[5]); // rows ascend by threshold
  EXPECT_EQ(loosest_cosine_hits, off_hits);

  // The guard experiment: calibration cells per target, a scenario in three
  // phases per arm, a timeline with the agent's log.
  auto g = read_results(out + "/guard/results.json");
  ASSERT_FALSE(g.is_discarded());
  ASSERT_EQ(g["calibration"]["cells"].size(), 2u);
  for (const auto& cell : g["calibration"]["cells"]) {
    auto args = cell["server_args"].dump(); // "...=0.010000" or "...=0.050000"
    auto flag = "--risk.max-wrong-rate=" + std::string{cell["delta"] == 0.01 ? "0.01" : "0.05"};
    EXPECT_NE(args.find(flag), std::string::npos) << args;
    EXPECT_DOUBLE_EQ(cell["server"]["risk"]["max_wrong_rate"].get<double>(),
                     cell["delta"].get<double>());
  }
  ASSERT_EQ(g["scenario"]["cells"].size(), 2u);
  for (const auto& cell : g["scenario"]["cells"]) {
    SCOPED_TRACE(cell["arm"].get<std::string>());
    std::size_t requests = 0;
    for (const char* phase : {"noise", "shift", "one_feature"}) {
      const auto& p = cell["phases"][phase];
      requests += p["requests"].get<std::size_t>();
      EXPECT_EQ(p["exact"].get<int>(), 0) << phase; // noise: no two requests are identical
      EXPECT_LE(p["hits"].get<int>(), p["requests"].get<int>());
    }
    EXPECT_EQ(requests, cell["counts"]["requests"].get<std::size_t>());
  }
  EXPECT_TRUE(g["timeline"]["agent"].contains("decisions"));
  EXPECT_EQ(g["timeline"]["agent"]["trigger"], "wrong-rate");
  auto tl = read_csv(out + "/guard/timeline.csv");
  ASSERT_GT(tl.size(), 100u);
  EXPECT_EQ(tl[0], (std::vector<std::string>{"t_s", "hit", "basis", "error"}));
  std::ifstream decisions{out + "/guard/decisions.csv"};
  EXPECT_TRUE(decisions);

  // sweep-ttl: a 0.2 s TTL serves nothing older; no TTL hits more.
  auto ttl = read_results(out + "/sweep-ttl/results.json");
  ASSERT_EQ(ttl["cells"].size(), 2u);
  EXPECT_LT(ttl["cells"][0]["age_at_hit_ms"]["p95"].get<double>(), 200.0);
  EXPECT_TRUE(ttl["cells"][1]["ttl_seconds"].is_null());
  EXPECT_GT(ttl["cells"][1]["counts"]["hit_rate"].get<double>(),
            ttl["cells"][0]["counts"]["hit_rate"].get<double>());

  // sweep-capacity, Zipf: LRU+TTL, plain LRU, LRU+TTL through the actor hop
  // and W-TinyLFU per capacity; more room, more hits; the read path serves
  // the default arm's hits and none of the hop arm's. Then the scan and
  // bursty workloads: LRU+TTL, plain LRU, W-TinyLFU per capacity.
  auto cap = read_results(out + "/sweep-capacity/results.json");
  ASSERT_EQ(cap["cells"].size(), 8u + 2 * 2 * 3);
  EXPECT_EQ(cap["cells"][1]["policy"], "lru");
  EXPECT_EQ(cap["cells"][2]["policy"], "lru_ttl_hop");
  EXPECT_EQ(cap["cells"][3]["policy"], "tinylfu");
  EXPECT_GT(cap["cells"][5]["hit_rate"].get<double>(), cap["cells"][1]["hit_rate"].get<double>());
  EXPECT_LE(cap["cells"][1]["server"]["size_at_end"].get<int>(), 8);
  EXPECT_GT(cap["cells"][4]["server"]["read_path_hits"].get<int>(), 0);
  EXPECT_EQ(cap["cells"][6]["server"]["read_path_hits"].get<int>(), 0);
  EXPECT_EQ(cap["cells"][3]["server"]["admission"], "tinylfu");
  EXPECT_EQ(cap["cells"][1]["server"]["admission"], "lru");
  for (std::size_t i = 8; i < cap["cells"].size(); ++i) {
    const auto& c = cap["cells"][i];
    EXPECT_EQ(c["workload"], i < 14 ? "scan" : "bursty") << i;
    EXPECT_EQ(c["policy"], (std::array<const char*, 3>{"lru_ttl", "lru", "tinylfu"}[(i - 8) % 3]))
      << i;
  }
  // A scan through 8 entries: W-TinyLFU turns one-off prefixes away.
  EXPECT_GT(cap["cells"][10]["server"]["admission_rejections"].get<int>(), 100);
  EXPECT_EQ(cap["cells"][9]["server"]["admission_rejections"].get<int>(), 0);
  auto cap_csv = read_csv(out + "/sweep-capacity/results.csv");
  ASSERT_EQ(cap_csv.size(), 1u + cap["cells"].size());
  EXPECT_EQ(cap_csv[0][1], "workload");
  std::ifstream cap_md{out + "/sweep-capacity/summary.md"};
  std::string cap_text(std::istreambuf_iterator<char>{cap_md}, {});
  EXPECT_NE(cap_text.find("W-TinyLFU hit rate"), std::string::npos);
  EXPECT_NE(cap_text.find("| scan | 8 |"), std::string::npos);
  EXPECT_NE(cap_text.find("| bursty | 512 |"), std::string::npos);

  std::ifstream report{out + "/REPORT.md"};
  ASSERT_TRUE(report);
  std::string text(std::istreambuf_iterator<char>{report}, {});
  for (const char* s : {"## Headline: correctness risk under drift", "| drift / step | agent |",
                        "| 0.250 resampled |", "Spearman rho", "## The reuse guard",
                        "replayed offline", "### Calibration", "### Scenario", "guard/timeline.png",
                        "### 1. Prefix caching", "### 2. Drift raises", "### 3. TTL bounds",
                        "### 4. Caching helps tail latency", "one repetition"})
    EXPECT_NE(text.find(s), std::string::npos) << s;
}

} // namespace
} // namespace sil::test
