// The KServe v2 (Open Inference Protocol) adapter's codec: inference
// requests decoded into the same predict_request /predict makes, answers and
// metadata in the protocol's shapes; and the body "id" echo of /predict.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http/codec.hpp"

namespace sil::http_api {
namespace {

using json = nlohmann::json;

const decode_limits limits{32, 4};

std::vector<double> row(double first) {
  std::vector<double> r(32, 0.5);
  r[0] = first;
  return r;
}

json input(const json& shape, const json& data) {
  return {{"name", "features"}, {"datatype", "FP32"}, {"shape", shape}, {"data", data}};
}

json request(const json& in) {
  return {{"inputs", json::array({in})}};
}

result<infer_request> decode(const json& j) {
  return decode_infer(j.dump(), limits);
}

TEST(InferDecode, FlatAndNestedDataGiveTheSameRequestAsPredict) {
  auto a = row(1.0);
  auto b = row(2.0);
  json flat = a;
  for (double v : b)
    flat.push_back(v);
  auto f = decode(request(input({2, 32}, flat)));
  ASSERT_TRUE(f) << f.error().message;
  auto n = decode(request(input({2, 32}, json::array({a, b}))));
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(f->req.rows, 2u);
  EXPECT_EQ(f->req.features, n->req.features);
  auto p = decode_predict(json{{"features", json::array({a, b})}}.dump(), limits);
  ASSERT_TRUE(p);
  EXPECT_EQ(f->req.features, p->features);
  // The defaults are /predict's.
  EXPECT_TRUE(f->req.use_cache);
  EXPECT_EQ(f->req.max_age_ms, -1);
  EXPECT_EQ(f->req.timeout_ms, -1);
  EXPECT_EQ(f->req.max_wrong_rate, 0.0);
  EXPECT_FALSE(f->id);
}

TEST(InferDecode, IdParametersAndRequestedOutputs) {
  auto j = request(input({1, 32}, row(3.0)));
  j["id"] = "req-\u00e9";
  j["parameters"] = {{"use_cache", false},
                     {"max_age_ms", 250},
                     {"timeout_ms", 1500},
                     {"max_wrong_rate", 0.001},
                     {"unknown", "ignored"}};
  j["outputs"] = json::array({{{"name", "prediction"}, {"parameters", {{"binary_data", false}}}}});
  auto r = decode(j);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->id);
  EXPECT_EQ(*r->id, "req-\u00e9");
  EXPECT_FALSE(r->req.use_cache);
  EXPECT_EQ(r->req.max_age_ms, 250);
  EXPECT_EQ(r->req.timeout_ms, 1500);
  EXPECT_DOUBLE_EQ(r->req.max_wrong_rate, 0.001);
}

struct bad_case {
  const char* name;
  json body;
  const char* says;
};

TEST(InferDecode, EveryBadTensorIsA400ThatSaysWhatIsWrong) {
  auto ok = input({1, 32}, row(1.0));
  auto with = [&](const char* key, json v) {
    auto in = ok;
    in[key] = std::move(v);
    return request(in);
  };
  auto with_param = [&](const char* key, json v) {
    auto j = request(ok);
    j["parameters"] = {{key, std::move(v)}};
    return j;
  };
  json deep = 1;
  for (int i = 0; i < 40; ++i)
    deep = json::array({deep});
  auto too_long = row(1.0);
  too_long.push_back(1.0);
  std::vector<bad_case> cases{
    {"not an object", json::array({1, 2}), "must be a JSON object"},
    {"no inputs", json{{"id", "x"}}, "missing 'inputs'"},
    {"two inputs", json{{"inputs", json::array({ok, ok})}}, "exactly 1 tensor"},
    {"no input", json{{"inputs", json::array()}}, "exactly 1 tensor"},
    {"input not an object", request(json::array({1})), "inputs[0] must be an object"},
    {"other name", with("name", "input-0"), "unknown input 'input-0'"},
    {"no name", request(json{{"datatype", "FP32"}, {"shape", {1, 32}}, {"data", row(1.0)}}),
     "'name'"},
    {"FP64", with("datatype", "FP64"), "datatype FP32"},
    {"BYTES", with("datatype", "BYTES"), "datatype FP32"},
    {"1-d shape", with("shape", {32}), "must have shape [T, 32]"},
    {"short rows", with("shape", {1, 3}), "must have shape [T, 32]"},
    {"zero rows", with("shape", {0, 32}), "must have shape"},
    {"too many rows", with("shape", {5, 32}), "1 <= T <= 4"},
    {"fractional shape", with("shape", {1.5, 32}), "must have shape"},
    {"string shape", with("shape", "1,32"), "'shape' array"},
    {"no data", request(json{{"name", "features"}, {"datatype", "FP32"}, {"shape", {1, 32}}}),
     "'data' array"},
    {"too few values", with("data", json::array({1, 2, 3})), "has 3 values of data"},
    {"too many values", with("data", too_long), "has 33 values of data"},
    {"rows disagree with shape", with("data", json::array({row(1.0), row(2.0)})),
     "has 2 rows of data, its shape says 1"},
    {"short nested row",
     with("data",
          [] {
            json d = json::array();
            d.push_back(json::array({1, 2}));
            return d;
          }()),
     "data row 0"},
    {"a string value",
     with("data",
          [&] {
            json d = row(1.0);
            d[0] = "1";
            return d;
          }()),
     "data[0] must be a number"},
    {"a null value",
     with("data",
          [&] {
            json d = row(1.0);
            d[5] = nullptr;
            return d;
          }()),
     "data[5] must be a number"},
    {"not a float",
     with("data",
          [&] {
            json d = row(1.0);
            d[2] = 1e39;
            return d;
          }()),
     "data[2] is not a finite 32-bit float"},
    {"id not a string",
     [&] {
       auto j = request(ok);
       j["id"] = 42;
       return j;
     }(),
     "'id' must be a string"},
    {"parameters not an object",
     [&] {
       auto j = request(ok);
       j["parameters"] = json::array();
       return j;
     }(),
     "'parameters' must be an object"},
    {"use_cache not a bool", with_param("use_cache", 1), "'use_cache' must be true or false"},
    {"timeout 0", with_param("timeout_ms", 0), "'timeout_ms'"},
    {"timeout too long", with_param("timeout_ms", 600001), "'timeout_ms'"},
    {"timeout fractional", with_param("timeout_ms", 1.5), "'timeout_ms'"},
    {"max_age negative", with_param("max_age_ms", -1), "'max_age_ms'"},
    {"budget 0", with_param("max_wrong_rate", 0), "'max_wrong_rate'"},
    {"budget above 1", with_param("max_wrong_rate", 1.5), "'max_wrong_rate'"},
    {"unknown output",
     [&] {
       auto j = request(ok);
       j["outputs"] = json::array({{{"name", "logits"}}});
       return j;
     }(),
     "unknown output 'logits'"},
    {"output without name",
     [&] {
       auto j = request(ok);
       j["outputs"] = json::array({json::object()});
       return j;
     }(),
     "string 'name'"},
    {"too deep",
     [&] {
       auto j = request(ok);
       j["extra"] = deep;
       return j;
     }(),
     "deeper than 16"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = decode(c.body);
    ASSERT_FALSE(r) << c.body.dump();
    EXPECT_EQ(r.error().code, errc::bad_request);
    EXPECT_EQ(status_for(r.error().code), 400u);
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
  for (auto raw : {"", "{", "{\"inputs\": [}", "nul", "{\"inputs\":[]}garbage"}) {
    auto r = decode_infer(raw, limits);
    ASSERT_FALSE(r) << raw;
    EXPECT_EQ(r.error().code, errc::bad_request);
  }
}

TEST(InferEncode, TheAnswerIsAProtocolResponseWithOneFp32Output) {
  predict_reply r;
  r.prediction = 0.678815186f;
  r.source = embedding_source::cache;
  r.cache_hit = true;
  r.cache_age_ns = 2'500'000;
  r.model_version = "s42-abc";
  r.risk.present = true;
  r.risk.basis = reuse_basis::exact;
  auto j = json::parse(encode_infer(r, 0.125, "base", std::string{"7\"x"}));
  EXPECT_EQ(j["model_name"], "base");
  EXPECT_EQ(j["model_version"], "s42-abc");
  EXPECT_EQ(j["id"], "7\"x");
  ASSERT_EQ(j["outputs"].size(), 1u);
  const auto& out = j["outputs"][0];
  EXPECT_EQ(out["name"], "prediction");
  EXPECT_EQ(out["datatype"], "FP32");
  EXPECT_EQ(out["shape"], json::array({1}));
  EXPECT_FLOAT_EQ(out["data"][0].get<float>(), 0.678815186f);
  EXPECT_TRUE(j["parameters"]["cache_hit"].get<bool>());
  EXPECT_EQ(j["parameters"]["source"], "cache");
  EXPECT_DOUBLE_EQ(j["parameters"]["cache_age_ms"].get<double>(), 2.5);
  EXPECT_EQ(j["parameters"]["risk_basis"], "exact");
  // Parameters hold only scalars, as the protocol allows.
  for (const auto& [k, v] : j["parameters"].items())
    EXPECT_TRUE(v.is_primitive()) << k;

  predict_reply miss;
  miss.model_version = "v";
  auto m = json::parse(encode_infer(miss, 1.0, "seed", std::nullopt));
  EXPECT_FALSE(m.contains("id"));
  EXPECT_FALSE(m["parameters"].contains("cache_age_ms"));
  EXPECT_FALSE(m["parameters"].contains("risk_basis"));
}

TEST(Metadata, ServerModelAndReadinessBodies) {
  auto s = json::parse(encode_server_metadata("sil-server", "1.2.3"));
  EXPECT_EQ(s["name"], "sil-server");
  EXPECT_EQ(s["version"], "1.2.3");
  EXPECT_TRUE(s["extensions"].is_array());
  auto m = json::parse(encode_model_metadata({"base", "s42-abc", 32, {}}));
  EXPECT_EQ(m["name"], "base");
  EXPECT_EQ(m["versions"], json::array({"s42-abc"}));
  EXPECT_EQ(m["platform"], model_platform);
  EXPECT_EQ(m["inputs"][0]["name"], "features");
  EXPECT_EQ(m["inputs"][0]["datatype"], "FP32");
  EXPECT_EQ(m["inputs"][0]["shape"], json::array({-1, 32}));
  EXPECT_EQ(m["outputs"][0]["shape"], json::array({1}));
  auto ready = json::parse(encode_model_ready("base", true, "ignored"));
  EXPECT_TRUE(ready["ready"].get<bool>());
  EXPECT_FALSE(ready.contains("reason"));
  auto not_ready = json::parse(encode_model_ready("base", false, "draining"));
  EXPECT_EQ(not_ready["reason"], "draining");
}

TEST(PredictId, AStringIdIsEchoedAnyOtherIdIgnoredAsBefore) {
  std::string features = "[" + json(row(1.0)).dump() + "]";
  std::optional<std::string> id;
  auto r = decode_predict(R"({"id":"a\u00e9\"b\\","features":)" + features + "}", limits, id);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, "a\u00e9\"b\\");
  predict_reply reply;
  reply.model_version = "v";
  EXPECT_EQ(json::parse(encode_predict(reply, 1.0, id))["id"], "a\u00e9\"b\\");
  EXPECT_FALSE(json::parse(encode_predict(reply, 1.0))["id"].is_string());

  for (auto other : {"42", "null", "{\"x\":[1]}", "true"}) {
    std::optional<std::string> none;
    auto o = decode_predict(std::string{"{\"id\":"} + other + ",\"features\":" + features + "}",
                            limits, none);
    EXPECT_TRUE(o) << other;
    EXPECT_FALSE(none) << other;
  }
  // An id is still checked as strictly as any string.
  std::optional<std::string> bad;
  EXPECT_FALSE(decode_predict("{\"id\":\"\\x\",\"features\":" + features + "}", limits, bad));
}

TEST(MediaType, JsonInAnyCaseWithParameters) {
  EXPECT_TRUE(is_json_media_type("application/json"));
  EXPECT_TRUE(is_json_media_type("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(is_json_media_type("application/json ;x=y"));
  EXPECT_FALSE(is_json_media_type("application/json-patch+json"));
  EXPECT_FALSE(is_json_media_type("text/plain"));
  EXPECT_FALSE(is_json_media_type(""));
}

} // namespace
} // namespace sil::http_api
