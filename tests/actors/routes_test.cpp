// The routes of a serving node (http/routes.*) driven without a socket: a
// parsed request in, a response value out, now or later through a fake
// responder; behind them the real actors on CAF's scheduler (seed model, one
// encoder worker). And the worker node's routes (http/worker_routes.*) over
// a worker board.
#include <gtest/gtest.h>

#include <caf/all.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "actors/service.hpp"
#include "config/sil_config.hpp"
#include "core/build_info.hpp"
#include "http/openapi.hpp"
#include "http/routes.hpp"
#include "http/worker_routes.hpp"

namespace sil::http_api {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

/// Stands for a connection: takes an answer that comes later (on any
/// thread) and can pretend its client has gone.
class fake_responder : public responder {
public:
  std::function<void(deferred_response)> later() override {
    ++laters;
    auto st = state_;
    return [st](deferred_response make) {
      auto r = make();
      std::lock_guard<std::mutex> guard{st->mu};
      st->answer = std::move(r);
      st->cv.notify_all();
    };
  }

  bool client_gone() override {
    return gone;
  }

  /// The answer given later (fails the test after 10 s).
  response wait() {
    std::unique_lock<std::mutex> guard{state_->mu};
    bool got = state_->cv.wait_for(guard, 10s, [&] { return state_->answer.has_value(); });
    EXPECT_TRUE(got) << "no answer within 10 s";
    return got ? *state_->answer : response{};
  }

  bool gone = false;
  int laters = 0;

private:
  struct state {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<response> answer;
  };
  std::shared_ptr<state> state_ = std::make_shared<state>();
};

std::string row_json(float first, float last = 0.0f) {
  json r = json::array();
  for (int i = 0; i < 32; ++i)
    r.push_back(i == 0 ? first : (i == 31 ? last : (i < 4 ? 1.0f : 0.0f)));
  return r.dump();
}

std::string predict_body(float first, const std::string& extra = "") {
  return "{\"features\":[" + row_json(first) + "]" + extra + "}";
}

std::string infer_body(float first, const std::string& extra = "") {
  return R"({"inputs":[{"name":"features","datatype":"FP32","shape":[1,32],"data":)"
         + row_json(first) + "}]" + extra + "}";
}

struct ServiceRoutes : ::testing::Test {
  sil_config cfg;
  std::optional<caf::actor_system> sys;
  service_settings settings;
  service_handles svc;
  model m;
  http_config hc;
  std::unique_ptr<service_routes> routes;
  // The request's strings live here while handle() runs.
  std::string method, target, body, content_type, authorization, origin, preflight;

  ServiceRoutes() {
    settings.model_preset = "seed";
    settings.workers = 1;
    settings.audit_rate = 0.0;
    settings.agent_enabled = false;
  }

  ~ServiceRoutes() override {
    routes.reset();
    if (sys) {
      stop_service(svc);
      sys->await_all_actors_done();
    }
  }

  void start() {
    auto mm = make_model(settings);
    ASSERT_TRUE(mm) << mm.error().message;
    m = *mm;
    register_message_types(cfg); // as main() does before building its system
    sys.emplace(cfg);
    auto h = start_service(*sys, settings, m);
    ASSERT_TRUE(h) << sys->render(h.error());
    svc = *h;
    // As main does: serve once the local worker is up.
    for (int i = 0; i < 500 && svc.board->workers_alive.load() == 0; ++i)
      std::this_thread::sleep_for(10ms);
    hc.input_dim = m.input_dim();
    hc.model_version = m.version();
    hc.model_name = m.name();
    routes = std::make_unique<service_routes>(*sys, hc, svc);
  }

  request_view view() const {
    request_view v;
    v.method = method;
    v.target = target;
    v.body = body;
    v.content_type = content_type;
    v.has_content_type = !content_type.empty();
    v.authorization = authorization;
    v.origin = origin;
    v.preflight_method = preflight;
    v.request_id = "test-1";
    v.remote = "127.0.0.1:4242";
    v.start = clock_type::now();
    return v;
  }

  handled call(std::string meth, std::string tgt, std::string b = "",
               std::string ct = "application/json", fake_responder* r = nullptr) {
    bool default_type = ct == "application/json";
    method = std::move(meth);
    target = std::move(tgt);
    body = std::move(b);
    content_type = body.empty() && default_type ? "" : std::move(ct);
    fake_responder local;
    return routes->handle(view(), r ? *r : local);
  }

  /// A request whose answer must come now.
  response now(std::string meth, std::string tgt, std::string b = "",
               std::string ct = "application/json") {
    auto h = call(std::move(meth), std::move(tgt), std::move(b), std::move(ct));
    EXPECT_TRUE(h.now()) << target << " was not answered at once";
    return h.now() ? *h.now() : response{};
  }

  /// A request whose answer comes later; its in-flight slot, if any, is
  /// given back as the transport would.
  response later(std::string meth, std::string tgt, std::string b = "",
                 std::string ct = "application/json") {
    fake_responder r;
    auto h = call(std::move(meth), std::move(tgt), std::move(b), std::move(ct), &r);
    EXPECT_FALSE(h.now()) << target << " was answered at once: " << (h.now() ? h.now()->body : "");
    if (h.now())
      return *h.now();
    auto answer = r.wait();
    if (h.waiting() && h.waiting()->holds_slot)
      routes->release_slot();
    return answer;
  }

  /// A request that the read path answers at once, once the cache owner
  /// has published the entry (an insert reaches the read view a moment
  /// after the answer that made it).
  response hit(std::string meth, std::string tgt, std::string b) {
    for (int i = 0; i < 200; ++i) {
      fake_responder r;
      auto h = call(meth, tgt, b, "application/json", &r);
      if (h.now() && (h.now()->reported || h.now()->status != 200))
        return *h.now();
      if (!h.now()) {
        r.wait();
        if (h.waiting() && h.waiting()->holds_slot)
          routes->release_slot();
      }
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "the read path never answered " << tgt;
    return {};
  }
};

TEST_F(ServiceRoutes, HealthFollowsReadinessAndTheBodyStaysTheFirstVersions) {
  start();
  auto live = now("GET", "/health/live");
  EXPECT_EQ(live.status, 200u);
  EXPECT_TRUE(json::parse(live.body)["live"].get<bool>());
  auto ready = now("GET", "/health/ready");
  EXPECT_EQ(ready.status, 200u) << ready.body;
  EXPECT_EQ(json::parse(ready.body)["status"], "ok");
  auto health = now("GET", "/health");
  EXPECT_EQ(health.status, 200u);
  auto h = json::parse(health.body);
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["workers"], 1);
  EXPECT_EQ(h["model_version"], m.version());
  EXPECT_EQ(now("HEAD", "/health/ready").status, 200u);
  EXPECT_EQ(now("GET", "/v2/health/ready").body, ready.body);

  routes->set_draining();
  auto drain = now("GET", "/health/ready");
  EXPECT_EQ(drain.status, 503u);
  EXPECT_TRUE(drain.retry_after);
  auto d = json::parse(drain.body);
  EXPECT_FALSE(d["ready"].get<bool>());
  EXPECT_EQ(d["status"], "draining");
  EXPECT_FALSE(d["reason"].get<std::string>().empty());
  EXPECT_EQ(now("GET", "/v2/health/ready").status, 503u);
  auto old = now("GET", "/health");
  EXPECT_EQ(old.status, 503u);
  EXPECT_EQ(json::parse(old.body), h); // the same body, only the status changes
  EXPECT_EQ(now("GET", "/health/live").status, 200u);
  auto model_ready = now("GET", "/v2/models/seed/ready");
  EXPECT_EQ(model_ready.status, 503u);
  EXPECT_FALSE(json::parse(model_ready.body)["ready"].get<bool>());
}

TEST_F(ServiceRoutes, AMissIsAnsweredLaterAndTheSameInputThenAtOnce) {
  start();
  fake_responder r;
  auto h = call("POST", "/predict", predict_body(1.0f, R"(,"id":"abc")"), "application/json", &r);
  ASSERT_FALSE(h.now());
  ASSERT_TRUE(h.waiting());
  EXPECT_TRUE(h.waiting()->holds_slot);
  EXPECT_TRUE(h.waiting()->reported);
  EXPECT_EQ(h.waiting()->route, route_label::predict);
  ASSERT_TRUE(h.waiting()->cancel); // watched, and set if the client leaves
  EXPECT_EQ(routes->inflight(), 1u);
  auto miss = r.wait();
  routes->release_slot();
  EXPECT_EQ(routes->inflight(), 0u);
  EXPECT_EQ(miss.status, 200u) << miss.body;
  EXPECT_EQ(miss.outcome, "miss");
  auto a = json::parse(miss.body);
  EXPECT_FALSE(a["cache_hit"].get<bool>());
  EXPECT_EQ(a["id"], "abc");

  // The read path answers the same input on the calling thread.
  auto hit = this->hit("POST", "/predict", predict_body(1.0f));
  EXPECT_EQ(hit.status, 200u);
  EXPECT_TRUE(hit.reported);
  EXPECT_EQ(hit.outcome, "hit");
  auto b = json::parse(hit.body);
  EXPECT_TRUE(b["cache_hit"].get<bool>());
  EXPECT_EQ(b["prediction"], a["prediction"]);
  EXPECT_FALSE(b.contains("id"));
}

TEST_F(ServiceRoutes, InferTakesTheSamePathAndCacheAsPredict) {
  start();
  auto first = later("POST", "/v2/models/seed/infer", infer_body(2.0f, R"(,"id":"k-1")"), "");
  ASSERT_EQ(first.status, 200u) << first.body;
  auto j = json::parse(first.body);
  EXPECT_EQ(j["model_name"], "seed");
  EXPECT_EQ(j["model_version"], m.version());
  EXPECT_EQ(j["id"], "k-1");
  EXPECT_EQ(j["outputs"][0]["shape"], json::array({1}));
  EXPECT_FALSE(j["parameters"]["cache_hit"].get<bool>());
  // /predict with the same input is a hit on the entry the inference made.
  auto hit = this->hit("POST", "/predict", predict_body(2.0f));
  auto p = json::parse(hit.body);
  EXPECT_TRUE(p["cache_hit"].get<bool>()) << hit.body;
  EXPECT_FLOAT_EQ(p["prediction"].get<float>(), j["outputs"][0]["data"][0].get<float>());
  // And back: an inference with the version in the path hits too.
  auto again
    = this->hit("POST", "/v2/models/seed/versions/" + m.version() + "/infer", infer_body(2.0f));
  EXPECT_TRUE(json::parse(again.body)["parameters"]["cache_hit"].get<bool>()) << again.body;
  // use_cache through the protocol's parameters.
  auto fresh = later("POST", "/v2/models/seed/infer",
                     infer_body(2.0f, R"(,"parameters":{"use_cache":false})"));
  EXPECT_FALSE(json::parse(fresh.body)["parameters"]["cache_hit"].get<bool>()) << fresh.body;
}

TEST_F(ServiceRoutes, InferErrorsAreInTheProtocolsForm) {
  start();
  auto expect_v2 = [](const response& r, unsigned status, const std::string& says) {
    EXPECT_EQ(r.status, status) << r.body;
    auto j = json::parse(r.body);
    ASSERT_TRUE(j["error"].is_string()) << r.body;
    EXPECT_NE(j["error"].get<std::string>().find(says), std::string::npos) << r.body;
  };
  expect_v2(now("POST", "/v2/models/other/infer", infer_body(1.0f)), 404, "no model 'other'");
  expect_v2(now("POST", "/v2/models/seed/versions/v9/infer", infer_body(1.0f)), 404,
            "has no version 'v9'");
  expect_v2(
    now("POST", "/v2/models/seed/infer",
        R"({"inputs":[{"name":"features","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]})"),
    400, "shape");
  expect_v2(now("POST", "/v2/models/seed/infer", infer_body(1.0f), "text/plain"), 415,
            "application/json");
  expect_v2(now("GET", "/v2/models/seed/infer"), 405, "use POST");
  method = "POST";
  target = "/v2/models/seed/infer";
  body = infer_body(1.0f);
  content_type = "application/octet-stream";
  auto v = view();
  v.has_content_type = false;
  v.binary_tensors = true;
  fake_responder r;
  auto h = routes->handle(v, r);
  ASSERT_TRUE(h.now());
  expect_v2(*h.now(), 400, "binary tensor data");
}

TEST_F(ServiceRoutes, TheInFlightCapRefusesUntilTheTransportGivesASlotBack) {
  hc.max_inflight = 1;
  start();
  fake_responder first;
  auto a = call("POST", "/predict", predict_body(3.0f), "application/json", &first);
  ASSERT_FALSE(a.now());
  ASSERT_TRUE(a.waiting() && a.waiting()->holds_slot);
  // The first prediction's slot is held until the transport gives it back,
  // answered or not: the next miss is refused, in each API's own form.
  first.wait();
  auto b = now("POST", "/predict", predict_body(4.0f));
  EXPECT_EQ(b.status, 503u);
  EXPECT_TRUE(b.retry_after);
  EXPECT_EQ(json::parse(b.body)["error"]["code"], "overloaded");
  auto c = now("POST", "/v2/models/seed/infer", infer_body(4.0f));
  EXPECT_EQ(c.status, 503u);
  EXPECT_TRUE(json::parse(c.body)["error"].is_string());
  // A hit is never refused for capacity (the read path answers it before
  // the cap is looked at; until the entry is published, a 503).
  response hot;
  hot.status = 0;
  for (int i = 0; i < 200 && hot.status != 200; ++i) {
    hot = now("POST", "/predict", predict_body(3.0f));
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(hot.status, 200u);
  EXPECT_TRUE(hot.reported);
  routes->release_slot();
  EXPECT_EQ(later("POST", "/predict", predict_body(4.0f)).status, 200u);
}

TEST_F(ServiceRoutes, AClientThatLeftCostsNoActorMessageNorSlot) {
  start();
  fake_responder r;
  r.gone = true;
  auto h = call("POST", "/predict", predict_body(5.0f), "application/json", &r);
  EXPECT_FALSE(h.now());
  EXPECT_TRUE(h.client_gone());
  EXPECT_FALSE(h.waiting()); // no slot taken, nothing to wait for
  EXPECT_EQ(r.laters, 0);
  EXPECT_EQ(routes->inflight(), 0u);
}

TEST_F(ServiceRoutes, MetadataRoutesKnowTheirModel) {
  start();
  auto server = json::parse(now("GET", "/v2").body);
  EXPECT_EQ(server["name"], "sil-server");
  EXPECT_EQ(server["version"], build_version());
  auto meta = now("GET", "/v2/models/seed");
  EXPECT_EQ(meta.status, 200u);
  auto j = json::parse(meta.body);
  EXPECT_EQ(j["versions"], json::array({m.version()}));
  EXPECT_EQ(j["inputs"][0]["shape"], json::array({-1, 32}));
  EXPECT_EQ(now("GET", "/v2/models/seed/versions/" + m.version()).body, meta.body);
  EXPECT_EQ(now("GET", "/v2/models/base").status, 404u);
  EXPECT_EQ(now("GET", "/v2/models/seed/versions/nope").status, 404u);
  EXPECT_EQ(now("GET", "/v2/models/seed/versions/nope/ready").status, 404u);
  auto ready = now("GET", "/v2/models/seed/versions/" + m.version() + "/ready");
  EXPECT_EQ(ready.status, 200u);
  EXPECT_EQ(json::parse(ready.body), json::parse(R"({"name":"seed","ready":true})"));
  auto doc = now("GET", "/openapi.json");
  EXPECT_EQ(doc.body, openapi_document());
  EXPECT_EQ(doc.route, route_label::openapi);
}

TEST_F(ServiceRoutes, UnknownPathsAndWrongMethods) {
  start();
  auto nf = now("GET", "/nope");
  EXPECT_EQ(nf.status, 404u);
  auto msg = json::parse(nf.body)["error"]["message"].get<std::string>();
  for (const auto& r : service_routes::table())
    EXPECT_NE(msg.find(std::string{r.method} + " " + r.path), std::string::npos) << r.path;
  auto wrong = now("GET", "/predict");
  EXPECT_EQ(wrong.status, 405u);
  EXPECT_EQ(wrong.allow, "POST");
  auto stats = now("POST", "/stats", "{}");
  EXPECT_EQ(stats.status, 405u);
  EXPECT_EQ(stats.allow, "GET, HEAD");
  EXPECT_EQ(stats.route, route_label::stats);
  // CORS is off: OPTIONS is a method like any other.
  EXPECT_EQ(now("OPTIONS", "/predict").status, 405u);
}

TEST_F(ServiceRoutes, StatsAndMetricsComeFromTheActors) {
  start();
  later("POST", "/predict", predict_body(6.0f));
  // An actor's answer comes later; the request holds no slot and is not
  // watched (no cancel flag), and its outcome is the transport's to count.
  fake_responder r;
  auto h = call("GET", "/stats", "", "application/json", &r);
  ASSERT_TRUE(h.waiting());
  EXPECT_EQ(h.waiting()->route, route_label::stats);
  EXPECT_FALSE(h.waiting()->holds_slot);
  EXPECT_FALSE(h.waiting()->cancel);
  EXPECT_FALSE(h.waiting()->reported);
  EXPECT_EQ(r.wait().status, 200u);
  auto stats = later("GET", "/stats");
  ASSERT_EQ(stats.status, 200u);
  EXPECT_EQ(json::parse(stats.body)["cache"]["misses"], 1);
  auto metrics = later("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200u);
  EXPECT_STREQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(metrics.body.find("sil_cache_misses_total 1"), std::string::npos);
}

TEST_F(ServiceRoutes, TheAdminApiNeedsItsTokenAndTheTtlItsContentType) {
  start();
  auto closed = now("POST", "/admin/cache/clear");
  EXPECT_EQ(closed.status, 403u);
  EXPECT_EQ(closed.route, route_label::admin);
  routes.reset();
  hc.admin_token = "s3cr3t";
  routes = std::make_unique<service_routes>(*sys, hc, svc);
  auto none = now("POST", "/admin/cache/clear");
  EXPECT_EQ(none.status, 401u);
  EXPECT_TRUE(none.www_authenticate);
  authorization = "Bearer nope";
  // The token is checked before the path: nothing is revealed without it.
  EXPECT_EQ(now("POST", "/admin/nothing").status, 401u);
  EXPECT_EQ(now("GET", "/agent").status, 401u);
  authorization = "Bearer s3cr3t";
  EXPECT_EQ(now("POST", "/admin/nothing").status, 404u);
  EXPECT_EQ(now("PUT", "/admin/cache/ttl", R"({"ttl_seconds":5})", "text/plain").status, 415u);
  EXPECT_EQ(now("PUT", "/admin/cache/ttl", R"({"ttl_seconds":5})", "").status, 415u);
  EXPECT_EQ(now("PUT", "/admin/cache/ttl", R"({"ttl_seconds":-5})").status, 400u);
  auto ttl = later("PUT", "/admin/cache/ttl", R"({"ttl_seconds":5})");
  ASSERT_EQ(ttl.status, 200u) << ttl.body;
  EXPECT_TRUE(json::parse(ttl.body)["manual_override"].get<bool>());
  EXPECT_DOUBLE_EQ(json::parse(later("GET", "/agent").body)["ttl_seconds"].get<double>(), 5.0);
}

TEST_F(ServiceRoutes, CorsPreflightsOnlyWhenConfiguredAndBeforeTheToken) {
  hc.cors_origins = {"https://app.example.com"};
  hc.admin_token = "s3cr3t";
  start();
  origin = "https://app.example.com";
  preflight = "POST";
  // A browser's preflight carries no Authorization: it is answered anyway.
  auto pre = now("OPTIONS", "/admin/cache/disable");
  EXPECT_EQ(pre.status, 204u);
  bool methods = false;
  for (const auto& [n, v] : pre.headers)
    methods = methods || (n == "Access-Control-Allow-Methods" && v == "POST, OPTIONS");
  EXPECT_TRUE(methods); // the transport adds Access-Control-Allow-Origin
  origin = "https://other.example.com";
  EXPECT_EQ(now("OPTIONS", "/predict").status, 403u);
}

TEST_F(ServiceRoutes, TheOpenApiDocumentDescribesExactlyTheseRoutes) {
  auto doc = json::parse(openapi_document());
  EXPECT_EQ(doc["openapi"].get<std::string>().substr(0, 2), "3.");
  std::size_t described = 0;
  for (const auto& r : service_routes::table()) {
    std::string method = r.method;
    for (auto& c : method)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_TRUE(doc["paths"].contains(r.path) && doc["paths"][r.path].contains(method))
      << r.method << " " << r.path << " is not in http/openapi.json";
  }
  for (const auto& [path, item] : doc["paths"].items())
    for (const auto& [method, op] : item.items()) {
      ++described;
      bool served = false;
      for (const auto& r : service_routes::table()) {
        std::string m = r.method;
        for (auto& c : m)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        served = served || (r.path == path && m == method);
      }
      EXPECT_TRUE(served) << method << " " << path << " is described but not served";
    }
  EXPECT_EQ(described, service_routes::table().size());
}

// -- the worker node's routes --------------------------------------------------------

struct WorkerRoutes : ::testing::Test {
  std::shared_ptr<worker_board> board = std::make_shared<worker_board>();
  worker_routes routes{board, {"w1", "127.0.0.1:7000", "s42-abc"}};

  response get(const std::string& target, const std::string& method = "GET") {
    request_view v;
    v.method = method;
    v.target = target;
    v.request_id = "x";
    fake_responder r;
    auto h = routes.handle(v, r);
    EXPECT_TRUE(h.now());
    return h.now() ? *h.now() : response{};
  }
};

TEST_F(WorkerRoutes, ReadyOnlyWhenJoinedWithWorkersAliveAndNotDraining) {
  board->workers_alive = 1;
  auto before = get("/health/ready");
  EXPECT_EQ(before.status, 503u);
  EXPECT_EQ(json::parse(before.body)["status"], "disconnected");
  EXPECT_NE(json::parse(before.body)["reason"].get<std::string>().find("127.0.0.1:7000"),
            std::string::npos);
  board->connected = true;
  EXPECT_EQ(get("/health/ready").status, 200u);
  EXPECT_EQ(get("/v2/health/ready").status, 200u);
  board->workers_alive = 0;
  EXPECT_EQ(json::parse(get("/health/ready").body)["status"], "unavailable");
  board->workers_alive = 1;
  routes.set_draining();
  EXPECT_EQ(json::parse(get("/v2/health/ready").body)["status"], "draining");
  EXPECT_EQ(get("/health/live").status, 200u);
  EXPECT_EQ(get("/v2/health/live").status, 200u);
}

TEST_F(WorkerRoutes, MetricsShowTheBoardAndEverythingElseIs404Json) {
  board->connected = true;
  board->workers_alive = 2;
  board->workers_configured = 2;
  board->encodes = 7;
  board->busy_ns = 1'500'000'000;
  board->joins = 3;
  auto m = get("/metrics");
  EXPECT_EQ(m.status, 200u);
  EXPECT_EQ(std::string{m.content_type}.rfind("text/plain", 0), 0u);
  for (auto line :
       {"sil_worker_gateway_connected 1\n", "sil_worker_ready 1\n",
        "sil_worker_encoder_workers 2\n", "sil_worker_encodes_total 7\n",
        "sil_worker_encode_seconds_total 1.5\n", "sil_worker_gateway_joins_total 3\n",
        "sil_worker_info{node=\"w1\",gateway=\"127.0.0.1:7000\",model_version=\"s42-abc\"} 1\n",
        "# TYPE sil_worker_encodes_total counter\n"})
    EXPECT_NE(m.body.find(line), std::string::npos) << line;
  auto nf = get("/predict", "POST");
  EXPECT_EQ(nf.status, 404u);
  EXPECT_EQ(json::parse(nf.body)["error"]["code"], "not_found");
  EXPECT_EQ(get("/metrics", "POST").status, 405u);
  EXPECT_EQ(get("/health").status, 404u);
}

} // namespace
} // namespace sil::http_api
