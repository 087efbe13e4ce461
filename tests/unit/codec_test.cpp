#include "http/codec.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace sil::http_api {
namespace {

std::string row(int n, const std::string& value = "0.5") {
  std::string s = "[";
  for (int i = 0; i < n; ++i)
    s += (i ? "," : "") + value;
  return s + "]";
}

std::string body(int rows, int cols = 32) {
  std::string s = "{\"features\":[";
  for (int r = 0; r < rows; ++r)
    s += (r ? "," : "") + row(cols);
  return s + "]}";
}

const decode_limits limits{32, 4};

TEST(Codec, DecodesTheOriginalContract) {
  auto r = decode_predict(body(1), limits);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->rows, 1u);
  EXPECT_EQ(r->features.size(), 32u);
  EXPECT_FLOAT_EQ(r->features[5], 0.5f);
  EXPECT_TRUE(r->use_cache);
  EXPECT_EQ(r->max_age_ms, -1);
}

TEST(Codec, DecodesOptionalFieldsAndIgnoresUnknownOnes) {
  auto text = R"({"meta":{"a":[1,{"b":null}],"c":"x"},"use_cache":false,"max_age_ms":250,)"
              R"("features":[)"
              + row(32, "-1e3") + "," + row(32, "7") + R"(],"trailer":[[1],[2]]})";
  auto r = decode_predict(text, limits);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->use_cache);
  EXPECT_EQ(r->max_age_ms, 250);
  EXPECT_EQ(r->rows, 2u);
  EXPECT_FLOAT_EQ(r->features[0], -1000.0f);
  EXPECT_FLOAT_EQ(r->features[32], 7.0f);
}

TEST(Codec, NegativeZeroAndIntegersAreNumbers) {
  auto r = decode_predict("{\"features\":[[-0.0," + row(31).substr(1) + "]}", limits);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->features[0], 0.0f);
  auto i = decode_predict("{\"features\":[" + row(32, "12") + "]}", limits);
  ASSERT_TRUE(i);
  EXPECT_FLOAT_EQ(i->features[31], 12.0f);
}

struct bad_case {
  const char* name;
  std::string body;
  const char* message_part;
};

class CodecRejects : public ::testing::TestWithParam<bad_case> {};

TEST_P(CodecRejects, WithABadRequestThatSaysWhy) {
  const auto& c = GetParam();
  auto r = decode_predict(c.body, limits);
  ASSERT_FALSE(r) << c.name;
  EXPECT_EQ(r.error().code, errc::bad_request);
  EXPECT_NE(r.error().message.find(c.message_part), std::string::npos)
    << "message: " << r.error().message;
  EXPECT_EQ(status_for(r.error().code), 400u);
}

INSTANTIATE_TEST_SUITE_P(
  Cases, CodecRejects,
  ::testing::Values(
    bad_case{"empty", "", "malformed JSON"},
    bad_case{"truncated", "{\"features\":[[1,2", "malformed"},
    bad_case{"garbage", "{bad", "malformed JSON"},
    bad_case{"trailing", body(1) + "x", "malformed JSON"},
    bad_case{"nan_literal", "{\"features\":[[NaN]]}", "malformed JSON"},
    bad_case{"not_object", "[1,2]", "must be a JSON object"},
    bad_case{"scalar", "42", "must be a JSON object"},
    bad_case{"missing", "{\"use_cache\":true}", "missing field 'features'"},
    bad_case{"features_string", "{\"features\":\"x\"}", "'features' must be an array"},
    bad_case{"features_object", "{\"features\":{}}", "'features' must be an array"},
    bad_case{"row_not_array", "{\"features\":[1,2]}", "row 0 must be an array of 32 numbers"},
    bad_case{"value_string", "{\"features\":[[\"a\"]]}", "features[0][0] must be a number"},
    bad_case{"value_null", "{\"features\":[[null]]}", "features[0][0] must be a number"},
    bad_case{"value_bool", "{\"features\":[[true]]}", "must be a number, not a boolean"},
    bad_case{"value_array", "{\"features\":[[[1]]]}", "must be a number, not an array"},
    bad_case{"short_row", "{\"features\":[" + row(31) + "]}", "row 0 has 31 values, expected 32"},
    bad_case{"long_row", "{\"features\":[" + row(33) + "]}", "row 0 has more than 32 values"},
    bad_case{"second_row_short", "{\"features\":[" + row(32) + "," + row(3) + "]}",
             "row 1 has 3 values"},
    bad_case{"zero_rows", "{\"features\":[]}", "at least 1 row"},
    bad_case{"too_many_rows", body(5), "more than 4 rows"},
    bad_case{"overflow", "{\"features\":[[1e999]]}", "malformed JSON"},
    bad_case{"float_range", "{\"features\":[[1e39]]}", "not a finite 32-bit float"},
    bad_case{"use_cache_string", body(1).insert(1, "\"use_cache\":\"yes\","),
             "'use_cache' must be true or false"},
    bad_case{"max_age_negative", body(1).insert(1, "\"max_age_ms\":-1,"), "'max_age_ms'"},
    bad_case{"max_age_float", body(1).insert(1, "\"max_age_ms\":1.5,"), "'max_age_ms'"},
    bad_case{"features_twice", "{\"features\":[" + row(32) + "],\"features\":[" + row(32) + "]}",
             "appears twice"}),
  [](const auto& info) { return std::string{info.param.name}; });

TEST(Codec, EncodesPredictReplies) {
  predict_reply r;
  r.prediction = 0.25f;
  r.cache_hit = true;
  r.source = embedding_source::cache;
  r.cache_age_ns = 1500000;
  r.model_version = "s42-00000001";
  auto j = nlohmann::json::parse(encode_predict(r, 1.25));
  EXPECT_DOUBLE_EQ(j["prediction"].get<double>(), 0.25);
  EXPECT_TRUE(j["cache_hit"].get<bool>());
  EXPECT_DOUBLE_EQ(j["latency_ms"].get<double>(), 1.25);
  EXPECT_EQ(j["source"], "cache");
  EXPECT_EQ(j["model_version"], "s42-00000001");
  EXPECT_DOUBLE_EQ(j["cache_age_ms"].get<double>(), 1.5);
  r.source = embedding_source::encoder;
  r.cache_hit = false;
  auto miss = nlohmann::json::parse(encode_predict(r, 3.0));
  EXPECT_FALSE(miss["cache_hit"].get<bool>());
  EXPECT_FALSE(miss.contains("cache_age_ms"));
}

TEST(Codec, EncodesErrorsAsJson) {
  auto j = nlohmann::json::parse(encode_error({errc::bad_request, "row 2 has \"31\" values"}));
  EXPECT_EQ(j["error"]["code"], "bad_request");
  EXPECT_EQ(j["error"]["message"], "row 2 has \"31\" values");
}

TEST(Codec, StatsCarryTheOriginalFields) {
  service_snapshot s;
  s.cache.hits = 3;
  s.cache.misses = 1;
  s.cache.max_size = 256;
  s.cache.ttl_ns = 1500000000;
  auto j = nlohmann::json::parse(encode_stats(s));
  for (const char* k : {"policy", "enabled", "size", "max_size", "ttl_seconds", "hits", "misses",
                        "expired", "evictions", "hit_rate"})
    EXPECT_TRUE(j["cache"].contains(k)) << k;
  EXPECT_EQ(j["cache"]["policy"], "LRU+TTL");
  EXPECT_EQ(j["cache"]["admission"], "lru");
  EXPECT_DOUBLE_EQ(j["cache"]["hit_rate"].get<double>(), 0.75);
  s.cache.admission = "tinylfu";
  s.cache.admission_rejections = 9;
  auto t = nlohmann::json::parse(encode_stats(s));
  EXPECT_EQ(t["cache"]["policy"], "W-TinyLFU+TTL");
  EXPECT_EQ(t["cache"]["admission"], "tinylfu");
  EXPECT_EQ(t["cache"]["admission_rejections"], 9);
  EXPECT_DOUBLE_EQ(j["cache"]["ttl_seconds"].get<double>(), 1.5);
  for (const char* k : {"count", "p50", "p95", "p99"})
    EXPECT_TRUE(j["latency"].contains(k)) << k;
}

TEST(Codec, HealthSaysDegradedWithoutWorkers) {
  auto ok = nlohmann::json::parse(encode_health(true, 2, 3, "v"));
  EXPECT_EQ(ok["status"], "ok");
  EXPECT_EQ(ok["in_flight"], 3);
  EXPECT_TRUE(ok["cache_enabled"].get<bool>());
  auto degraded = nlohmann::json::parse(encode_health(false, 0, 0, "v"));
  EXPECT_EQ(degraded["status"], "degraded");
}

TEST(Codec, StatusMapping) {
  EXPECT_EQ(status_for(errc::bad_request), 400u);
  EXPECT_EQ(status_for(errc::not_found), 404u);
  EXPECT_EQ(status_for(errc::method_not_allowed), 405u);
  EXPECT_EQ(status_for(errc::payload_too_large), 413u);
  EXPECT_EQ(status_for(errc::unsupported_media_type), 415u);
  EXPECT_EQ(status_for(errc::overloaded), 503u);
  EXPECT_EQ(status_for(errc::encoder_timeout), 504u);
  EXPECT_EQ(status_for(errc::internal), 500u);
}

} // namespace
} // namespace sil::http_api
