// Multi-node tests: a gateway and worker nodes as separate
// sil-server processes on 127.0.0.1, bounded in time. Failover figures are
// printed and recorded as test properties.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "experiments/load_generator.hpp"
#include "experiments/workload.hpp"
#include "tests/support/process.hpp"

namespace sil::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

std::string predict_body(int i, bool use_cache = true) {
  std::string s = "{\"features\":[[";
  for (int k = 0; k < 32; ++k) {
    s += k ? "," : "";
    s += std::to_string(k < 4 ? i * 0.01 + k : (i % 7) * 0.1 - k * 0.01);
  }
  s += use_cache ? "]],\"use_cache\":true}" : "]],\"use_cache\":false}";
  return s;
}

json get_json(int port, const std::string& path) {
  http_client c{port};
  auto r = c.request("GET", path, "");
  auto j = json::parse(r.body, nullptr, false);
  return j.is_discarded() ? json{} : j;
}

/// The node named `name` in /stats, or null.
json node(int port, const std::string& name) {
  auto s = get_json(port, "/stats");
  if (s.is_object())
    for (const auto& n : s["encoder"]["nodes"])
      if (n["name"] == name)
        return n;
  return nullptr;
}

/// Polls until node `name` has `state`; returns the seconds it took, or -1.
double wait_for_state(int port, const std::string& name, const std::string& state,
                      std::chrono::milliseconds timeout) {
  auto start = clock_type::now();
  while (clock_type::now() - start < timeout) {
    auto n = node(port, name);
    if (n.is_object() && n["state"] == state)
      return std::chrono::duration<double>(clock_type::now() - start).count();
    std::this_thread::sleep_for(20ms);
  }
  return -1;
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0
      || getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    ADD_FAILURE() << "no free loopback port";
    return 0;
  }
  close(fd);
  return ntohs(a.sin_port);
}

struct Cluster : ::testing::Test {
  std::optional<server_process> gateway;
  int registry = 0;
  std::map<std::string, server_process> workers;

  void start_gateway(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--role=gateway",      "--port=0",       "--workers=0",
                                  "--model.preset=seed", "--audit.rate=0", "--node-name=gw"};
    if (std::none_of(extra.begin(), extra.end(),
                     [](const std::string& a) { return a.rfind("--cluster.port", 0) == 0; }))
      args.emplace_back("--cluster.port=0");
    args.insert(args.end(), extra.begin(), extra.end());
    gateway = server_process::start(SIL_SERVER_BINARY, args);
    ASSERT_TRUE(gateway) << "the gateway did not start";
    registry = gateway->port_after("registry on ");
    ASSERT_GT(registry, 0);
  }

  /// Starts worker node `name` with one encoder; waits until it joined.
  void start_worker(const std::string& name, int port = 0, bool wait = true) {
    // --port=0: each worker node's own HTTP listener (health, /metrics) on
    // a free port.
    auto w = server_process::start(
      SIL_SERVER_BINARY,
      {"--role=worker", "--gateway=127.0.0.1:" + std::to_string(port ? port : registry),
       "--workers=1", "--model.preset=seed", "--node-name=" + name, "--port=0"},
      {}, std::chrono::seconds{20}, wait ? "joined " : "");
    ASSERT_TRUE(w) << "worker " << name << " did not join";
    workers.emplace(name, std::move(*w));
  }

  int http() const {
    return gateway->port();
  }
};

TEST_F(Cluster, PredictionsMatchStandaloneModeAndSpreadOverNodes) {
  auto standalone
    = server_process::start(SIL_SERVER_BINARY, {"--port=0", "--model.preset=seed", "--workers=1"});
  ASSERT_TRUE(standalone);
  start_gateway();
  start_worker("w1");
  start_worker("w2");
  http_client a{standalone->port()};
  http_client b{http()};
  for (int i = 0; i < 20; ++i) {
    auto x = json::parse(a.request("POST", "/predict", predict_body(i, false)).body);
    auto y = json::parse(b.request("POST", "/predict", predict_body(i, false)).body);
    ASSERT_TRUE(y.contains("prediction")) << y.dump();
    EXPECT_NEAR(x["prediction"].get<double>(), y["prediction"].get<double>(), 1e-6) << i;
    EXPECT_EQ(x["model_version"], y["model_version"]);
  }
  // Idle workers take turns: both nodes encoded.
  EXPECT_GE(node(http(), "w1")["encodes"].get<int>(), 5);
  EXPECT_GE(node(http(), "w2")["encodes"].get<int>(), 5);
  EXPECT_EQ(node(http(), "gw")["state"], "local");
  EXPECT_EQ(get_json(http(), "/health")["status"], "ok");
  // /metrics lists the nodes.
  http_client m{http()};
  auto metrics = m.request("GET", "/metrics", "").body;
  EXPECT_NE(metrics.find("sil_node_up{node=\"w1\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("sil_node_state{node=\"w1\",state=\"up\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("sil_node_state{node=\"gw\",state=\"local\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("sil_node_encodes_total{node=\"w2\"}"), std::string::npos);
}

TEST_F(Cluster, KillingAWorkerUnderLoadFailsNoRequest) {
  start_gateway();
  start_worker("w1");
  start_worker("w2");
  // 300 req/s for 10 s, every request a miss (encoder work on the nodes).
  lab::schedule_config sc;
  sc.base_rate = 300;
  sc.duration = 10;
  lab::load_config lc;
  lc.port = static_cast<std::uint16_t>(http());
  lc.connections = 16;
  lc.schedule = lab::make_schedule(sc, 1);
  lc.body = [](std::size_t i) { return predict_body(static_cast<int>(i) + 1000); };
  result<lab::load_result> r = error{errc::internal, "not run"};
  std::thread load{[&] { r = lab::run_load(lc); }};
  std::this_thread::sleep_for(3s);
  auto w1_before = node(http(), "w1")["encodes"].get<int>();
  workers.at("w1").signal(SIGKILL);
  double detect = wait_for_state(http(), "w1", "down", 10s);
  load.join();
  ASSERT_TRUE(r) << r.error().message;
  std::size_t ok = 0;
  for (const auto& q : r->requests)
    ok += q.status == 200 ? 1 : 0;
  auto stats = get_json(http(), "/stats");
  auto retries = stats["encoder"]["retries"].get<int>();
  std::printf("[ failover ] kill -9: %zu requests sent, %zu failed, %zu dropped, %d retried; "
              "node marked down after %.3f s\n",
              r->requests.size(), r->failed, r->dropped, retries, detect);
  RecordProperty("requests", static_cast<int>(r->requests.size()));
  RecordProperty("retried", retries);
  RecordProperty("detect_kill_ms", static_cast<int>(detect * 1000));
  EXPECT_EQ(r->failed, 0u);
  EXPECT_EQ(r->dropped, 0u);
  EXPECT_EQ(ok, r->requests.size());
  ASSERT_GE(detect, 0.0) << "w1 never marked down";
  EXPECT_LT(detect, 3.0);
  EXPECT_EQ(node(http(), "w1")["state"], "down");
  // The load moved: w1 encoded at most the batch it finished while /stats
  // was read, w2 everything after the kill.
  EXPECT_LE(node(http(), "w1")["encodes"].get<int>(), w1_before + 32);
  EXPECT_GT(node(http(), "w2")["encodes"].get<int>(), 1500);
  EXPECT_EQ(stats["encoder"]["fallback_items"].get<int>(), 0);
}

TEST_F(Cluster, AFrozenWorkerIsMarkedDownAndRejoinsAfterItThaws) {
  start_gateway();
  start_worker("w1");
  start_worker("w2");
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::atomic<int> failed{0};
  std::thread client{[&] {
    http_client c{http()};
    for (int i = 0; !stop; ++i) {
      auto res = c.request("POST", "/predict", predict_body(5000 + i));
      ++sent;
      failed += res.status == 200 ? 0 : 1;
      std::this_thread::sleep_for(10ms);
    }
  }};
  std::this_thread::sleep_for(500ms);
  workers.at("w1").signal(SIGSTOP); // frozen: its sockets stay open
  double detect = wait_for_state(http(), "w1", "down", 10s);
  std::this_thread::sleep_for(500ms);
  workers.at("w1").signal(SIGCONT);
  bool rejoined = workers.at("w1").wait_for_output("joined ", 15s, 2);
  double back = wait_for_state(http(), "w1", "up", 5s);
  stop = true;
  client.join();
  std::printf("[ failover ] SIGSTOP: %d requests, %d failed; node marked down after %.3f s; "
              "rejoined after SIGCONT: %s\n",
              sent.load(), failed.load(), detect, rejoined ? "yes" : "no");
  RecordProperty("detect_freeze_ms", static_cast<int>(detect * 1000));
  ASSERT_GE(detect, 0.0) << "w1 never marked down";
  // Heartbeats: 500 ms interval, 2 s connection timeout (or the 2 s encoder
  // timeout of a batch it holds), plus slack for a loaded machine.
  EXPECT_LT(detect, 5.0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(sent.load(), 50);
  EXPECT_TRUE(rejoined);
  EXPECT_GE(back, 0.0);
}

TEST_F(Cluster, TheConfiguredHeartbeatTimeoutDetectsAnIdleFrozenNode) {
  // No traffic and a long encoder timeout: only heartbeats can notice.
  start_gateway({"--middleman.heartbeat-interval=100ms", "--middleman.connection-timeout=600ms",
                 "--encoder.timeout=30"});
  start_worker("w1");
  std::this_thread::sleep_for(300ms);
  workers.at("w1").signal(SIGSTOP);
  double detect = wait_for_state(http(), "w1", "down", 10s);
  workers.at("w1").signal(SIGCONT);
  std::printf("[ failover ] idle SIGSTOP, connection-timeout 600 ms: marked down after %.3f s\n",
              detect);
  ASSERT_GE(detect, 0.0) << "heartbeats never noticed the frozen node";
  EXPECT_LT(detect, 1.6); // the default (2 s) would not make it
}

TEST_F(Cluster, WithEveryWorkerGoneTheGatewayEncodesLocallyWhenAllowed) {
  start_gateway(); // cluster.fallback=local (the default)
  start_worker("w1");
  workers.at("w1").signal(SIGKILL);
  ASSERT_GE(wait_for_state(http(), "w1", "down", 5s), 0.0);
  EXPECT_EQ(get_json(http(), "/health")["status"], "degraded");
  // Still ready: the local fallback answers predictions.
  http_client probe{http()};
  auto ready = probe.request("GET", "/health/ready");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(json::parse(ready.body)["status"], "degraded");
  EXPECT_EQ(probe.request("GET", "/health").status, 200);
  http_client c{http()};
  auto start = clock_type::now();
  auto r = c.request("POST", "/predict", predict_body(1));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_LT(clock_type::now() - start, 2s);
  EXPECT_GE(get_json(http(), "/stats")["encoder"]["fallback_items"].get<int>(), 1);
  EXPECT_EQ(get_json(http(), "/health")["status"], "degraded"); // the fallback does not count
}

TEST_F(Cluster, WithEveryWorkerGoneARejectingGatewayAnswers503Fast) {
  start_gateway({"--cluster.fallback=reject"});
  EXPECT_EQ(get_json(http(), "/health")["status"], "degraded");
  // Not ready: nothing could encode a miss.
  http_client probe{http()};
  auto ready = probe.request("GET", "/health/ready");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_EQ(ready.headers["retry-after"], "1");
  auto why = json::parse(ready.body);
  EXPECT_EQ(why["status"], "unavailable");
  EXPECT_NE(why["reason"].get<std::string>().find("cluster.fallback=reject"), std::string::npos);
  EXPECT_EQ(probe.request("GET", "/v2/health/ready").status, 503);
  EXPECT_EQ(probe.request("GET", "/health").status, 503); // same body, status of readiness
  EXPECT_EQ(probe.request("GET", "/health/live").status, 200);
  http_client c{http()};
  auto start = clock_type::now();
  auto r = c.request("POST", "/predict", predict_body(1));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_NE(r.body.find("no encoder node is reachable"), std::string::npos) << r.body;
  EXPECT_LT(clock_type::now() - start, 1s);
}

TEST_F(Cluster, AWorkerStartedBeforeTheGatewayJoinsOnceItIsUp) {
  int port = free_port();
  start_worker("early", port, false);
  std::this_thread::sleep_for(700ms); // it is retrying by now
  start_gateway({"--cluster.port=" + std::to_string(port)});
  ASSERT_EQ(registry, port);
  EXPECT_TRUE(workers.at("early").wait_for_output("joined ", 10s));
  EXPECT_GE(wait_for_state(http(), "early", "up", 5s), 0.0);
  http_client c{http()};
  EXPECT_EQ(c.request("POST", "/predict", predict_body(3)).status, 200);
  EXPECT_EQ(node(http(), "early")["encodes"].get<int>(), 1);
}

TEST_F(Cluster, AWorkerWithAnotherModelIsRefused) {
  start_gateway();
  auto w = server_process::start(
    SIL_SERVER_BINARY,
    {"--role=worker", "--gateway=127.0.0.1:" + std::to_string(registry), "--workers=1",
     "--model.preset=seed", "--model.seed=7", "--node-name=other", "--port=0"},
    {}, std::chrono::seconds{3}, "joined ");
  EXPECT_FALSE(w) << "a worker with other weights joined";
  EXPECT_TRUE(node(http(), "other").is_null());
}

// A gateway serving two versions: each worker node serves its one version,
// a version no node serves is refused with a clear 503, and a node of that
// version may join and then serves it.
TEST_F(Cluster, EachNodeServesItsVersionAndAVersionNoNodeServesIsRefusedClearly) {
  start_gateway({"--cluster.fallback=reject", "--models.load=name=other,preset=seed,seed=7"});
  start_worker("w42");
  http_client c{http()};
  auto other = [](int i) {
    auto b = predict_body(i);
    return b.substr(0, b.size() - 1) + ",\"model\":\"other\"}";
  };
  auto served = c.request("POST", "/predict", predict_body(1));
  ASSERT_EQ(served.status, 200) << served.body;
  auto refused = c.request("POST", "/predict", other(2));
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("no encoder node serves model version s7-"), std::string::npos)
    << refused.body;
  auto w = server_process::start(
    SIL_SERVER_BINARY,
    {"--role=worker", "--gateway=127.0.0.1:" + std::to_string(registry), "--workers=1",
     "--model.preset=seed", "--model.seed=7", "--node-name=w7", "--port=0"},
    {}, std::chrono::seconds{20}, "joined ");
  ASSERT_TRUE(w) << "a worker of a served version did not join";
  workers.emplace("w7", std::move(*w));
  auto now_served = c.request("POST", "/predict", other(3));
  ASSERT_EQ(now_served.status, 200) << now_served.body;
  EXPECT_EQ(json::parse(now_served.body)["model_version"].get<std::string>().rfind("s7-", 0), 0u);
  EXPECT_GE(node(http(), "w7")["encodes"].get<int>(), 1);
  // The first node never got the other version's work.
  auto before = node(http(), "w42")["encodes"].get<int>();
  for (int i = 10; i < 20; ++i)
    ASSERT_EQ(c.request("POST", "/predict", other(i)).status, 200);
  EXPECT_EQ(node(http(), "w42")["encodes"].get<int>(), before);
}

/// Polls a worker node's /health/ready until its status is `status`;
/// returns the last answer.
http_response wait_ready_status(int port, int status, std::chrono::milliseconds timeout) {
  http_response r;
  auto start = clock_type::now();
  while (clock_type::now() - start < timeout) {
    http_client c{port};
    r = c.request("GET", "/health/ready");
    if (r.status == status)
      break;
    std::this_thread::sleep_for(50ms);
  }
  return r;
}

TEST_F(Cluster, AWorkerNodeAnswersHealthAndItsOwnMetricsOnItsPort) {
  start_gateway();
  start_worker("w1");
  int wport = workers.at("w1").port_after("listening on ");
  ASSERT_GT(wport, 0) << workers.at("w1").output();
  http_client w{wport};
  EXPECT_EQ(w.request("GET", "/health/live").status, 200);
  EXPECT_EQ(w.request("GET", "/v2/health/live").status, 200);
  auto ready = wait_ready_status(wport, 200, 5s);
  ASSERT_EQ(ready.status, 200) << ready.body;
  EXPECT_TRUE(json::parse(ready.body)["ready"].get<bool>());
  EXPECT_EQ(w.request("GET", "/v2/health/ready").status, 200);
  // Predictions through the gateway are encoded here.
  http_client g{http()};
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(g.request("POST", "/predict", predict_body(100 + i, false)).status, 200);
  auto m = w.request("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.headers["content-type"].rfind("text/plain", 0), 0u);
  EXPECT_NE(m.body.find("sil_worker_gateway_connected 1\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("sil_worker_encoder_workers 1\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("sil_worker_encodes_total 5\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("node=\"w1\""), std::string::npos) << m.body;
  // promtool accepts it.
  std::string path
    = std::string{SIL_TEST_TMPDIR} + "/worker-metrics-" + std::to_string(wport) + ".txt";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fwrite(m.body.data(), 1, m.body.size(), f);
    std::fclose(f);
  }
  auto check = std::string{SIL_PROMTOOL} + " check metrics < " + path + " 2>&1";
  EXPECT_EQ(std::system(check.c_str()), 0) << m.body;
  std::remove(path.c_str());
  // Anything else is a JSON 404.
  auto nf = w.request("POST", "/predict", predict_body(1));
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(json::parse(nf.body)["error"]["code"], "not_found");
  EXPECT_FALSE(nf.headers["x-request-id"].empty());
  // Without its gateway the node is alive but not ready.
  gateway->signal(SIGKILL);
  auto lost = wait_ready_status(wport, 503, 10s);
  ASSERT_EQ(lost.status, 503) << lost.body;
  EXPECT_EQ(json::parse(lost.body)["status"], "disconnected");
  http_client after{wport};
  EXPECT_EQ(after.request("GET", "/health/live").status, 200);
  auto m2 = after.request("GET", "/metrics").body;
  EXPECT_NE(m2.find("sil_worker_gateway_connected 0\n"), std::string::npos) << m2;
  EXPECT_NE(m2.find("sil_worker_gateway_losses_total 1\n"), std::string::npos) << m2;
}

TEST_F(Cluster, AWorkerNodeIsNotReadyUntilItHasJoined) {
  int port = free_port();
  start_worker("early", port, false);
  auto& w = workers.at("early");
  ASSERT_TRUE(w.wait_for_output("listening on ", 10s));
  int wport = w.port_after("listening on ");
  ASSERT_GT(wport, 0);
  http_client c{wport};
  auto before = c.request("GET", "/health/ready");
  EXPECT_EQ(before.status, 503);
  EXPECT_EQ(json::parse(before.body)["status"], "disconnected");
  EXPECT_EQ(c.request("GET", "/health/live").status, 200);
  start_gateway({"--cluster.port=" + std::to_string(port)});
  EXPECT_TRUE(w.wait_for_output("joined ", 10s));
  EXPECT_EQ(wait_ready_status(wport, 200, 5s).status, 200);
}

TEST(ClusterConfig, AWorkerNeedsAGatewayAddress) {
  auto [rc, err] = run_to_exit(SIL_SERVER_BINARY, {"--role=worker", "--model.preset=seed"});
  EXPECT_EQ(rc, 2);
  EXPECT_NE(err.find("gateway"), std::string::npos) << err;
  auto [rc2, err2] = run_to_exit(SIL_SERVER_BINARY, {"--role=leader"});
  EXPECT_EQ(rc2, 2);
  EXPECT_NE(err2.find("role"), std::string::npos) << err2;
  auto [rc3, err3] = run_to_exit(SIL_SERVER_BINARY, {"--role=gateway", "--cluster.fallback=maybe"});
  EXPECT_EQ(rc3, 2);
  EXPECT_NE(err3.find("cluster.fallback"), std::string::npos) << err3;
}

} // namespace
} // namespace sil::test
