// End-to-end tests: the real sil-server binary on a free loopback port,
// spoken to over a plain socket.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.hpp"

namespace sil::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::string row(float first, float last = 0.0f) {
  std::string s = "[";
  for (int i = 0; i < 32; ++i) {
    float v = i == 0 ? first : (i == 31 ? last : (i < 4 ? 1.0f : 0.0f));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%g", i ? "," : "", static_cast<double>(v));
    s += buf;
  }
  return s + "]";
}

std::string features(const std::vector<std::string>& rows) {
  std::string s = "{\"features\":[";
  for (std::size_t i = 0; i < rows.size(); ++i)
    s += (i ? "," : "") + rows[i];
  return s + "]";
}

std::string body(float first, float last = 0.0f) {
  return features({row(first, last)}) + "}";
}

/// A server with the small model, started once per test.
class E2E : public ::testing::Test {
protected:
  void start(std::vector<std::string> extra = {}) {
    // No audits unless a test asks for them (a later flag wins): an audit of
    // a hit whose suffix moved far evicts the entry, so a test expecting the
    // next request to hit would fail at random.
    std::vector<std::string> args{"--port=0", "--model.preset=seed", "--workers=2",
                                  "--audit.rate=0"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = server_process::start(SIL_SERVER_BINARY, args);
    ASSERT_TRUE(server_) << "sil-server did not print its listening line";
  }

  int port() const {
    return server_->port();
  }

  std::optional<server_process> server_;
};

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
  EXPECT_EQ(s["cache"]["policy"], "LRU+TTL");
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

TEST_F(E2E, TheOriginalClientContract) {
  start();
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

TEST_F(E2E, SigtermDrainsRequestsInFlightAndExitsZero) {
  server_ = server_process::start(SIL_SERVER_BINARY, {"--port=0", "--workers=1"});
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

// -- the agent, audits and the admin API (issue #4) -------------------------------

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

json get_json(http_client& c, const std::string& target, const std::string& token = "") {
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!token.empty())
    req += "Authorization: Bearer " + token + "\r\n";
  auto r = c.raw(req + "\r\n");
  return json::parse(r.body, nullptr, false);
}

http_response admin(http_client& c, const std::string& method, const std::string& target,
                    const std::string& token, const std::string& body = "") {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!token.empty())
    req += "Authorization: Bearer " + token + "\r\n";
  req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size())
         + "\r\n\r\n" + body;
  return c.raw(req);
}

TEST_F(E2E, DriftDisablesReuseAndUndriftedTrafficBringsItBack) {
  start({"--admin.token=t0k3n", "--audit.rate=1", "--audit.max-share=1", "--agent.interval=0.1",
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
  start({"--audit.rate=1", "--audit.max-share=0.05"});
  http_client c{port()};
  const int n = 600;
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(c.request("POST", "/predict", body(1.0f)).status, 200);
  // Audits run after the answers; give the last ones a moment.
  std::this_thread::sleep_for(200ms);
  auto s = get_json(c, "/stats");
  auto audits = s["divergence"]["audits"].get<int>();
  EXPECT_GT(audits, 0);
  EXPECT_LE(audits, n / 20 + 2);
  EXPECT_GT(s["divergence"]["audits_skipped"].get<int>(), 0);
  // Encoder work: one miss plus the audits, nothing else.
  EXPECT_EQ(s["encoder"]["items"].get<int>(), 1 + audits);
  EXPECT_EQ(s["divergence"]["cosine"]["count"].get<int>(), audits);
  EXPECT_LT(s["divergence"]["cosine"]["max"].get<double>(), 1e-9); // same input: rounding only
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

TEST(Lab, LoadQuickWritesValidResults) {
  std::string out = std::string{SIL_TEST_TMPDIR} + "/lab-load";
  auto [rc, err]
    = run_to_exit(SIL_LAB_BINARY,
                  {"load", "--quick", "--duration", "2", "--rate", "200", "--burst-rate", "600",
                   "--server-arg", "--model.preset=seed", "--out", out},
                  {}, 90);
  ASSERT_EQ(rc, 0) << err;
  EXPECT_NE(err.find("[load] steady cache_on"), std::string::npos); // progress on stderr
  EXPECT_NE(err.find(" requests"), std::string::npos);
  std::ifstream in{out + "/load/results.json"};
  ASSERT_TRUE(in);
  auto j = json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["experiment"], "load");
  for (const char* shape : {"steady", "bursty"}) {
    for (const char* run : {"cache_off", "cache_on", "cache_on_no_single_flight"}) {
      SCOPED_TRACE(std::string{shape} + " " + run);
      ASSERT_TRUE(j["runs"][shape].contains(run));
      const auto& r = j["runs"][shape][run];
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
    const auto& off = j["runs"][shape]["cache_off"];
    const auto& on = j["runs"][shape]["cache_on"];
    EXPECT_EQ(off["hit_rate"].get<double>(), 0.0);
    // With the cache off every request is encoded exactly once.
    EXPECT_EQ(off["encoder_items"].get<int>(), off["ok"].get<int>());
    EXPECT_GT(on["hit_rate"].get<double>(), 0.5);
    EXPECT_LT(on["encoder_items"].get<int>(), on["ok"].get<int>() / 2);
    EXPECT_EQ(j["runs"][shape]["cache_on_no_single_flight"]["single_flight_joins"].get<int>(), 0);
  }
  // Bursts raise the offered rate above the steady base.
  EXPECT_GT(j["runs"]["bursty"]["cache_on"]["target_rate"].get<double>(),
            j["config"]["bursty_base_rate"].get<double>());
  for (const char* f : {"/load/results.csv", "/load/timeline.csv", "/load/summary.md",
                        "/load/latency.png", "/load/burst_timeline.png"}) {
    std::ifstream file{out + f, std::ios::binary};
    EXPECT_TRUE(file) << f;
  }
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

json read_results(const std::string& path) {
  std::ifstream in{path};
  return json::parse(in, nullptr, false);
}

// A small `sil-lab all`: every experiment with tiny settings, then
// REPORT.md. Checks the files and the invariants of each experiment.
TEST(Lab, AllWritesEveryReportFileAndTheFindings) {
  std::string out = std::string{SIL_TEST_TMPDIR} + "/lab-all";
  std::filesystem::remove_all(out);
  auto [rc, err]
    = run_to_exit(SIL_LAB_BINARY,
                  {"all", "--quick", "--duration", "1.5", "--levels", "0,0.5", "--ttls", "0.2,0",
                   "--capacities", "8,512", "--trials", "10", "--steps", "3", "--out", out},
                  {}, 150);
  ASSERT_EQ(rc, 0) << err;
  for (const char* exp : {"load", "drift", "correctness", "sweep-ttl", "sweep-capacity"})
    for (const char* f : {"results.json", "results.csv", "summary.md"}) {
      std::ifstream file{out + "/" + exp + "/" + f};
      EXPECT_TRUE(file) << exp << "/" << f;
    }
  for (const char* png : {"correctness/risk_table.png", "correctness/divergence_vs_error.png",
                          "sweep-ttl/ttl_tradeoff.png", "sweep-capacity/capacity.png"}) {
    std::ifstream file{out + "/" + png};
    EXPECT_TRUE(file) << png;
  }

  // Correctness: the counts add up; without drift no hit is wrong; with
  // strong drift and the agent off, some are; misses are fresh.
  auto c = read_results(out + "/correctness/results.json");
  ASSERT_FALSE(c.is_discarded());
  ASSERT_EQ(c["cells"].size(), 4u); // 2 levels x agent off/on
  for (const auto& cell : c["cells"]) {
    SCOPED_TRACE(cell["cell"].get<std::string>());
    const auto& k = cell["counts"];
    EXPECT_EQ(k["correct_hits"].get<int>() + k["wrong_hits"].get<int>(), k["hits"].get<int>());
    EXPECT_EQ(k["hits"].get<int>() + k["misses"].get<int>() + k["errors"].get<int>(),
              k["requests"].get<int>());
    EXPECT_EQ(k["errors"].get<int>(), 0);
    EXPECT_LT(k["max_miss_error"].get<double>(), 1e-4);
    if (cell["drift_strength"].get<double>() == 0.0) {
      EXPECT_EQ(k["wrong_hits"].get<int>(), 0);
      EXPECT_GT(k["hit_rate"].get<double>(), 0.5);
    }
    // Hits are attributed to the computation they reused.
    EXPECT_EQ(cell["divergence_at_hit"]["attributed_hits"].get<int>(), k["hits"].get<int>());
  }
  const auto& drifted_off = c["cells"][2];
  EXPECT_EQ(drifted_off["agent"]["mode"], "off");
  EXPECT_GT(drifted_off["counts"]["wrong_hits"].get<int>(), 0);
  EXPECT_TRUE(drifted_off["agent"]["decisions"].empty()); // agent.enabled=false never acts
  EXPECT_TRUE(c["spearman_cosine_vs_error"]["agent_off_drifted"].is_number());

  // sweep-ttl: a 0.2 s TTL serves nothing older; no TTL hits more.
  auto t = read_results(out + "/sweep-ttl/results.json");
  ASSERT_EQ(t["cells"].size(), 2u);
  EXPECT_LT(t["cells"][0]["age_at_hit_ms"]["p95"].get<double>(), 200.0);
  EXPECT_TRUE(t["cells"][1]["ttl_seconds"].is_null());
  EXPECT_GT(t["cells"][1]["counts"]["hit_rate"].get<double>(),
            t["cells"][0]["counts"]["hit_rate"].get<double>());

  // sweep-capacity: LRU+TTL then plain LRU per capacity; more room, more hits.
  auto cap = read_results(out + "/sweep-capacity/results.json");
  ASSERT_EQ(cap["cells"].size(), 4u);
  EXPECT_EQ(cap["cells"][1]["policy"], "lru");
  EXPECT_GT(cap["cells"][3]["hit_rate"].get<double>(), cap["cells"][1]["hit_rate"].get<double>());
  EXPECT_LE(cap["cells"][1]["server"]["size_at_end"].get<int>(), 8);

  std::ifstream report{out + "/REPORT.md"};
  ASSERT_TRUE(report);
  std::string text(std::istreambuf_iterator<char>{report}, {});
  for (const char* s : {"## Headline: correctness risk under drift", "| drift / step | agent |",
                        "Spearman rho", "### 1. Prefix caching", "### 2. Drift raises",
                        "### 3. TTL bounds", "### 4. Caching helps tail latency"})
    EXPECT_NE(text.find(s), std::string::npos) << s;
}

} // namespace
} // namespace sil::test
