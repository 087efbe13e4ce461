// The HTTP API's shared conventions (http/api_rules.*): route matching,
// request ids, CORS, readiness, error answers, the admin token's fingerprint;
// and the http.cors-origins setting that feeds CORS.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "config/settings.hpp"
#include "http/api_rules.hpp"

namespace sil::http_api {
namespace {

using json = nlohmann::json;

const std::vector<route_spec>& table() {
  static const std::vector<route_spec> t{
    {"POST", "/predict", route_label::predict, 1},
    {"GET", "/health", route_label::health, 2},
    {"GET", "/v2/models/{model_name}", route_label::metadata, 3},
    {"GET", "/v2/models/{model_name}/versions/{model_version}/ready", route_label::metadata, 4},
    {"POST", "/v2/models/{model_name}/infer", route_label::predict, 5},
  };
  return t;
}

request_view get(std::string_view method, std::string_view target) {
  request_view v;
  v.method = method;
  v.target = target;
  return v;
}

TEST(Routes, TemplatesMatchWholeSegmentsAndCaptureTheirValues) {
  auto m = match_routes(table(), "/v2/models/base/versions/s42-1/ready");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].spec->id, 4);
  ASSERT_EQ(m[0].params.size(), 2u);
  EXPECT_EQ(m[0].params[0], "base");
  EXPECT_EQ(m[0].params[1], "s42-1");
  EXPECT_EQ(match_routes(table(), "/v2/models/base")[0].params[0], "base");
  // An empty segment, a missing or an extra one, a prefix: no match.
  for (auto t : {"/v2/models/", "/v2/models//infer", "/v2/models", "/v2/models/base/infer/x",
                 "/predict/", "/predictx", "predict", "", "/"})
    EXPECT_TRUE(match_routes(table(), t).empty()) << t;
}

TEST(Routes, HeadFitsGetAndAllowListsEveryMethodOfThePath) {
  EXPECT_TRUE(method_fits("GET", "GET"));
  EXPECT_TRUE(method_fits("HEAD", "GET"));
  EXPECT_FALSE(method_fits("HEAD", "POST"));
  EXPECT_FALSE(method_fits("get", "GET"));
  EXPECT_EQ(allow_of(match_routes(table(), "/health")), "GET, HEAD");
  EXPECT_EQ(allow_of(match_routes(table(), "/predict")), "POST");
}

TEST(Routes, FindRouteAnswers404NamingEveryRouteAnd405WithAllow) {
  auto found = find_route(table(), get("GET", "/nope"));
  ASSERT_TRUE(std::holds_alternative<response>(found));
  const auto& nf = std::get<response>(found);
  EXPECT_EQ(nf.status, 404u);
  auto j = json::parse(nf.body);
  EXPECT_EQ(j["error"]["code"], "not_found");
  auto msg = j["error"]["message"].get<std::string>();
  for (const auto& r : table())
    EXPECT_NE(msg.find(std::string{r.method} + " " + r.path), std::string::npos) << r.path;

  auto wrong = std::get<response>(find_route(table(), get("GET", "/predict")));
  EXPECT_EQ(wrong.status, 405u);
  EXPECT_EQ(wrong.allow, "POST");
  EXPECT_EQ(wrong.route, route_label::predict);
  EXPECT_EQ(json::parse(wrong.body)["error"]["code"], "method_not_allowed");

  // Under /v2 the errors take the protocol's form.
  auto v2 = std::get<response>(find_route(table(), get("GET", "/v2/models/base/infer")));
  EXPECT_EQ(v2.status, 405u);
  EXPECT_TRUE(json::parse(v2.body)["error"].is_string()) << v2.body;
  auto v2nf = std::get<response>(find_route(table(), get("GET", "/v2/nothing")));
  EXPECT_EQ(v2nf.status, 404u);
  EXPECT_TRUE(json::parse(v2nf.body)["error"].is_string()) << v2nf.body;

  auto ok = find_route(table(), get("HEAD", "/health"));
  ASSERT_TRUE(std::holds_alternative<route_match>(ok));
  EXPECT_EQ(std::get<route_match>(ok).spec->id, 2);
}

TEST(Errors, BothFormsCarryTheStatusAndRetryAfterOn503) {
  auto r = error_response({errc::overloaded, "busy"}, route_label::predict);
  EXPECT_EQ(r.status, 503u);
  EXPECT_TRUE(r.retry_after);
  EXPECT_EQ(r.outcome, "overloaded");
  EXPECT_EQ(json::parse(r.body),
            json::parse(R"({"error":{"code":"overloaded","message":"busy"}})"));
  auto v = v2_error_response({errc::bad_request, "bad \"tensor\""});
  EXPECT_EQ(v.status, 400u);
  EXPECT_FALSE(v.retry_after);
  EXPECT_EQ(json::parse(v.body), json::parse(R"({"error":"bad \"tensor\""})"));
  EXPECT_TRUE(error_response({errc::unauthorized, "no"}).www_authenticate);
}

TEST(RequestIds, AValidIdIsKeptAnythingElseReplaced) {
  EXPECT_TRUE(valid_request_id("abc-123_X.y:z"));
  EXPECT_TRUE(valid_request_id(std::string(128, 'a')));
  EXPECT_FALSE(valid_request_id(std::string(129, 'a')));
  EXPECT_FALSE(valid_request_id(""));
  EXPECT_FALSE(valid_request_id("has space"));
  EXPECT_FALSE(valid_request_id("tab\there"));
  EXPECT_FALSE(valid_request_id("caf\xc3\xa9"));
  EXPECT_FALSE(valid_request_id(std::string{"nul\0x", 5}));
  EXPECT_EQ(request_id_for("client-7"), "client-7");
  auto fresh = request_id_for("bad id");
  EXPECT_EQ(fresh.size(), 16u);
  EXPECT_EQ(fresh.find_first_not_of("0123456789abcdef"), std::string::npos) << fresh;
}

TEST(RequestIds, GeneratedIdsDoNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i)
    seen.insert(new_request_id());
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(Cors, OffByDefaultAndThenNoFieldAtAll) {
  cors_policy off;
  EXPECT_FALSE(off.enabled());
  response r;
  off.decorate(r, "https://app.example.com");
  EXPECT_TRUE(r.headers.empty());
  EXPECT_FALSE(answer_options(table(), get("OPTIONS", "/predict"), off));
}

bool has(const response& r, const std::string& name, const std::string& value) {
  for (const auto& [n, v] : r.headers)
    if (n == name && v == value)
      return true;
  return false;
}

bool has_name(const response& r, const std::string& name) {
  for (const auto& h : r.headers)
    if (h.first == name)
      return true;
  return false;
}

TEST(Cors, OnlyAConfiguredOriginMayReadAnswers) {
  cors_policy p{{"https://app.example.com", "http://localhost:3000"}};
  EXPECT_TRUE(p.enabled());
  response ok;
  p.decorate(ok, "http://localhost:3000");
  EXPECT_TRUE(has(ok, "Access-Control-Allow-Origin", "http://localhost:3000"));
  EXPECT_TRUE(has(ok, "Vary", "Origin"));
  EXPECT_TRUE(has(ok, "Access-Control-Expose-Headers", cors_expose_headers));
  response other;
  p.decorate(other, "https://evil.example.com");
  EXPECT_FALSE(has_name(other, "Access-Control-Allow-Origin"));
  EXPECT_TRUE(has(other, "Vary", "Origin")); // the answer still varies by Origin
  response none;
  p.decorate(none, "");
  EXPECT_FALSE(has_name(none, "Access-Control-Allow-Origin"));

  cors_policy any{{"*"}};
  response star;
  any.decorate(star, "https://whoever.example");
  EXPECT_TRUE(has(star, "Access-Control-Allow-Origin", "*"));
}

TEST(Cors, PreflightsAreAnsweredForKnownPathsOnly) {
  cors_policy p{{"https://app.example.com"}};
  auto pre = get("OPTIONS", "/predict");
  pre.origin = "https://app.example.com";
  pre.preflight_method = "POST";
  auto r = answer_options(table(), pre, p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204u);
  EXPECT_EQ(r->content_type, nullptr);
  EXPECT_TRUE(r->body.empty());
  EXPECT_TRUE(has(*r, "Access-Control-Allow-Methods", "POST, OPTIONS"));
  EXPECT_TRUE(has(*r, "Access-Control-Allow-Headers", cors_allow_headers));
  EXPECT_TRUE(has_name(*r, "Access-Control-Max-Age"));

  pre.origin = "https://evil.example.com";
  auto refused = answer_options(table(), pre, p);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403u);
  EXPECT_EQ(json::parse(refused->body)["error"]["code"], "forbidden");

  auto plain = answer_options(table(), get("OPTIONS", "/health"), p);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 204u);
  EXPECT_EQ(plain->allow, "GET, HEAD, OPTIONS");

  auto unknown = answer_options(table(), get("OPTIONS", "/nope"), p);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404u);
  EXPECT_FALSE(answer_options(table(), get("GET", "/health"), p));
}

TEST(CorsSetting, SplitsTheListAndRefusesWhatIsNotAnOrigin) {
  auto empty = parse_cors_origins("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  auto two = parse_cors_origins(" https://app.example.com ,http://localhost:3000,, ");
  ASSERT_TRUE(two);
  EXPECT_EQ(*two, (std::vector<std::string>{"https://app.example.com", "http://localhost:3000"}));
  ASSERT_TRUE(parse_cors_origins("*"));
  ASSERT_TRUE(parse_cors_origins("http://[::1]:8080"));
  for (auto bad : {"app.example.com", "https://app.example.com/", "https://app.example.com/x",
                   "https://App.Example.com", "https://", "https://a:", "https://a:123456",
                   "https://a b", "://a"}) {
    auto r = parse_cors_origins(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, errc::invalid_config);
    EXPECT_NE(r.error().message.find("http.cors-origins"), std::string::npos);
  }
  service_settings s;
  s.http_cors_origins = "https://ok.example, nope";
  auto st = validate(s, 32);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("'nope'"), std::string::npos) << st.error().message;
}

TEST(Readiness, EveryStateWithItsReason) {
  readiness_input in;
  in.local_workers = true;
  auto starting = serving_readiness(in);
  EXPECT_FALSE(starting.ready);
  EXPECT_STREQ(starting.status, "starting");

  in.workers_alive = 2;
  in.seen_workers = true;
  auto ok = serving_readiness(in);
  EXPECT_TRUE(ok.ready);
  EXPECT_STREQ(ok.status, "ok");
  EXPECT_NE(ok.reason.find("2 encoder workers"), std::string::npos);

  in.workers_alive = 0; // every local worker died after the start
  auto dead = serving_readiness(in);
  EXPECT_FALSE(dead.ready);
  EXPECT_STREQ(dead.status, "unavailable");

  readiness_input gw;
  gw.local_workers = false;
  gw.fallback_local = true;
  auto fallback = serving_readiness(gw);
  EXPECT_TRUE(fallback.ready);
  EXPECT_STREQ(fallback.status, "degraded");
  gw.fallback_local = false;
  auto reject = serving_readiness(gw);
  EXPECT_FALSE(reject.ready);
  EXPECT_STREQ(reject.status, "unavailable");
  EXPECT_NE(reject.reason.find("cluster.fallback=reject"), std::string::npos);

  in.workers_alive = 4;
  in.draining = true;
  auto draining = serving_readiness(in);
  EXPECT_FALSE(draining.ready);
  EXPECT_STREQ(draining.status, "draining");

  auto r = readiness_response(draining);
  EXPECT_EQ(r.status, 503u);
  EXPECT_TRUE(r.retry_after);
  auto body = json::parse(r.body);
  EXPECT_FALSE(body["ready"].get<bool>());
  EXPECT_EQ(body["status"], "draining");
  EXPECT_EQ(body["reason"], draining.reason);
  EXPECT_EQ(readiness_response(ok).status, 200u);
  EXPECT_EQ(json::parse(encode_liveness())["live"], true);
}

TEST(AdminTokens, Sha256MatchesTheStandardsTestVectors) {
  // FIPS 180-4 examples, and a message whose padding needs a second block.
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(AdminTokens, TheFingerprintNamesTheTokenWithoutRevealingIt) {
  auto id = token_id("Bearer s3cr3t");
  EXPECT_EQ(id.size(), 8u);
  EXPECT_EQ(id, sha256_hex("s3cr3t").substr(0, 8));
  EXPECT_EQ(token_id("bearer   s3cr3t"), id); // the scheme is case-insensitive
  EXPECT_NE(token_id("Bearer s3cr3t-"), id);
  EXPECT_EQ(id.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(token_id(""), "none");
  EXPECT_EQ(token_id("Basic czNjcjN0"), "none");
  EXPECT_EQ(token_id("Bearer "), "none");
}

} // namespace
} // namespace sil::http_api
