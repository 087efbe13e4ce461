#include "http/codec.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "tests/http/decode_predict_reference.hpp"

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

// -- the strict grammar of the hand-written /predict decoder ---------------------

/// A one-row body whose first value is written as `first`.
std::string first_value(const std::string& first) {
  return "{\"features\":[[" + first + "," + row(31).substr(1) + "]}";
}

/// The bits of a float, so that -0 and +0 differ.
std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

std::uint64_t bits(double d) {
  std::uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

class CodecAcceptsNumber : public ::testing::TestWithParam<std::string> {};

TEST_P(CodecAcceptsNumber, AsStrtodRoundsIt) {
  const auto& text = GetParam();
  auto r = decode_predict(first_value(text), limits);
  ASSERT_TRUE(r) << text << ": " << r.error().message;
  auto expected = static_cast<float>(std::strtod(text.c_str(), nullptr));
  EXPECT_EQ(bits(r->features[0]), bits(expected)) << text;
}

INSTANTIATE_TEST_SUITE_P(
  Forms, CodecAcceptsNumber,
  ::testing::Values("0", "1", "-1", "0.5", "-0.5", "-0.0", "10", "1e3", "1E3", "1e+3", "1e-3",
                    "1.5e10", "-1.5E-10", "0e0", "0.0e-0", "123456789", "9007199254740993",
                    "18446744073709551615", "18446744073709551616", "-9223372036854775808",
                    "-9223372036854775809", "3.4028234663852886e38", "-3.4028234e38", "1e-400",
                    "-1e-400", "4.9e-324", "2.2250738585072011e-308", "1e-40", "1.4e-45",
                    "0." + std::string(399, '0') + "1", "1." + std::string(399, '7'),
                    "0.1000000000000000055511151231257827021181583404541015625",
                    "0.1000000000000000055511151231257827021181583404541015626",
                    std::string(38, '9')),
  [](const auto& info) { return "form_" + std::to_string(info.index); });

TEST(Codec, IntegerMinusZeroIsPlusZeroAsBefore) {
  // nlohmann made "-0" the integer 0, "-0.0" a negative zero.
  auto i = decode_predict(first_value("-0"), limits);
  ASSERT_TRUE(i) << i.error().message;
  EXPECT_EQ(bits(i->features[0]), bits(0.0f));
  auto f = decode_predict(first_value("-0.0"), limits);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(bits(f->features[0]), bits(-0.0f));
  auto e = decode_predict(first_value("-0e0"), limits);
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(bits(e->features[0]), bits(-0.0f));
}

TEST(Codec, DenormalsAndUnderflowBecomeTinyOrZeroFloats) {
  auto d = decode_predict(first_value("1e-310"), limits); // a denormal double
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(bits(d->features[0]), bits(0.0f));
  auto f = decode_predict(first_value("1.401298464324817e-45"), limits); // the least float
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(bits(f->features[0]), 1u);
}

INSTANTIATE_TEST_SUITE_P(
  Grammar, CodecRejects,
  ::testing::Values(
    bad_case{"leading_zero", first_value("01"), "malformed JSON"},
    bad_case{"negative_leading_zero", first_value("-01"), "malformed JSON"},
    bad_case{"plus_sign", first_value("+1"), "malformed JSON"},
    bad_case{"bare_fraction", first_value(".5"), "malformed JSON"},
    bad_case{"minus_bare_fraction", first_value("-.5"), "malformed JSON"},
    bad_case{"trailing_point", first_value("1."), "malformed JSON"},
    bad_case{"point_before_exponent", first_value("1.e3"), "malformed JSON"},
    bad_case{"empty_exponent", first_value("1e"), "malformed JSON"},
    bad_case{"signed_empty_exponent", first_value("1e+"), "malformed JSON"},
    bad_case{"double_exponent", first_value("1e2e3"), "malformed JSON"},
    bad_case{"two_points", first_value("1.2.3"), "malformed JSON"},
    bad_case{"lone_minus", first_value("-"), "malformed JSON"},
    bad_case{"double_minus", first_value("--1"), "malformed JSON"},
    bad_case{"hex", first_value("0x10"), "malformed JSON"},
    bad_case{"infinity", first_value("Infinity"), "malformed JSON"},
    bad_case{"minus_infinity", first_value("-Infinity"), "malformed JSON"},
    bad_case{"nan", first_value("nan"), "malformed JSON"},
    bad_case{"overflow_exponent", first_value("1e400"), "number overflow parsing '1e400'"},
    bad_case{"negative_overflow", first_value("-1e400"), "number overflow"},
    bad_case{"huge_exponent", first_value("1e99999999999999999999999"), "number overflow"},
    bad_case{"overflow_400_digits", first_value("1" + std::string(399, '0')), "number overflow"},
    bad_case{"overflow_in_unknown_field", body(1).insert(1, "\"x\":[1e309],"), "number overflow"},
    bad_case{"beyond_float", first_value("3.5e38"), "features[0][0] is not a finite 32-bit float"},
    bad_case{"beyond_float_negative", first_value("-1e300"), "not a finite 32-bit float"},
    bad_case{"space_in_number", first_value("1 2"), "malformed JSON"},
    bad_case{"literal_case", body(1).insert(1, "\"use_cache\":True,"), "malformed JSON"},
    bad_case{"short_literal", body(1).insert(1, "\"use_cache\":tru,"), "malformed JSON"},
    bad_case{"long_literal", body(1).insert(1, "\"use_cache\":truex,"), "malformed JSON"},
    bad_case{"null_use_cache", body(1).insert(1, "\"use_cache\":null,"),
             "'use_cache' must be true or false, not null"},
    bad_case{"max_age_integral_float", body(1).insert(1, "\"max_age_ms\":5.0,"),
             "'max_age_ms' must be an integer in [0, 31536000000] (a year), got 5"},
    bad_case{"max_age_exponent", body(1).insert(1, "\"max_age_ms\":5e0,"), "'max_age_ms'"},
    bad_case{"max_age_huge_integer", body(1).insert(1, "\"max_age_ms\":100000000000000000000,"),
             "got 1e+20"},
    bad_case{"timeout_float", body(1).insert(1, "\"timeout_ms\":1.0,"), "'timeout_ms'"},
    bad_case{"timeout_zero", body(1).insert(1, "\"timeout_ms\":0,"), "got 0"},
    bad_case{"timeout_string", body(1).insert(1, "\"timeout_ms\":\"5\","),
             "'timeout_ms' must be an integer in [1, 600000], not a string"},
    bad_case{"wrong_rate_zero", body(1).insert(1, "\"max_wrong_rate\":0,"),
             "'max_wrong_rate' must be a number in (0, 1], got 0"},
    bad_case{"wrong_rate_array", body(1).insert(1, "\"max_wrong_rate\":[],"), "not an array"},
    bad_case{"features_null", "{\"features\":null}",
             "'features' must be an array of rows, not null"},
    bad_case{"row_object", "{\"features\":[{}]}",
             "row 0 must be an array of 32 numbers, not an object"},
    bad_case{"value_object", "{\"features\":[[{}]]}",
             "features[0][0] must be a number, not an object"},
    bad_case{"top_string", "\"features\"", "the body must be a JSON object, not a string"},
    bad_case{"top_null", "null", "the body must be a JSON object, not null"},
    bad_case{"top_number_then_garbage", "42x", "the body must be a JSON object, not a number"},
    bad_case{"top_malformed_number", "-x", "malformed JSON"},
    bad_case{"features_escaped_twice", "{\"features\":[" + row(32) + "],\"f\\u0065atures\":[]}",
             "appears twice"},
    bad_case{"only_whitespace", " \n\t\r ", "malformed JSON"},
    bad_case{"trailing_object", body(1) + "{}", "malformed JSON"},
    bad_case{"trailing_comma", body(1) + ",", "malformed JSON"},
    bad_case{"trailing_nul", body(1) + std::string(1, '\0'), "malformed JSON"},
    bad_case{"form_feed_is_not_whitespace", "{\f\"features\":[" + row(32) + "]}", "malformed JSON"},
    bad_case{"vertical_tab_is_not_whitespace", body(1) + "\v", "malformed JSON"},
    bad_case{"nbsp_is_not_whitespace", "\xC2\xA0" + body(1), "malformed JSON"},
    bad_case{"trailing_comma_in_row", "{\"features\":[[" + row(32).substr(1, 63) + ",]]}",
             "malformed JSON"},
    bad_case{"trailing_comma_in_object", body(1).insert(body(1).size() - 1, ","), "malformed JSON"},
    bad_case{"missing_colon", "{\"features\" [" + row(32) + "]}", "malformed JSON"},
    bad_case{"unquoted_key", "{features:[" + row(32) + "]}", "malformed JSON"},
    bad_case{"single_quotes", "{'features':[" + row(32) + "]}", "malformed JSON"},
    bad_case{"partial_bom", "\xEF\xBB" + body(1), "malformed JSON"},
    bad_case{"bom_only", "\xEF\xBB\xBF", "malformed JSON"}),
  [](const auto& info) { return std::string{info.param.name}; });

/// An unknown field with `value` before a good body: accepted or not.
bool accepts_unknown(const std::string& value) {
  return static_cast<bool>(decode_predict(body(1).insert(1, "\"x\":" + value + ","), limits));
}

TEST(Codec, ValidatesStringsInSkippedValues) {
  EXPECT_TRUE(accepts_unknown("\"plain\""));
  EXPECT_TRUE(accepts_unknown("\"\""));
  EXPECT_TRUE(accepts_unknown(R"("\" \\ \/ \b \f \n \r \t")"));
  EXPECT_TRUE(accepts_unknown(R"("\u00e9\u65E5\ud83d\ude00\u0000")"));
  EXPECT_TRUE(accepts_unknown("\"h\xC3\xA9llo \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80\""));
  EXPECT_TRUE(accepts_unknown("\"\xEF\xBF\xBF \xF4\x8F\xBF\xBF \xED\x9F\xBF\""));
  EXPECT_TRUE(accepts_unknown("\"\x7F\""));
  EXPECT_FALSE(accepts_unknown("\"\x01\""));
  EXPECT_FALSE(accepts_unknown("\"a\tb\""));
  EXPECT_FALSE(accepts_unknown("\"a\nb\""));
  EXPECT_FALSE(accepts_unknown(R"("\x")"));
  EXPECT_FALSE(accepts_unknown(R"("\U0041")"));
  EXPECT_FALSE(accepts_unknown(R"("\u12")"));
  EXPECT_FALSE(accepts_unknown(R"("\u12G4")"));
  EXPECT_FALSE(accepts_unknown(R"("\ud83d")"));
  EXPECT_FALSE(accepts_unknown(R"("\ud83dx")"));
  EXPECT_FALSE(accepts_unknown(R"("\ud83d\u0041")"));
  EXPECT_FALSE(accepts_unknown(R"("\ude00")"));
  EXPECT_FALSE(accepts_unknown("\"\x80\""));         // a lone continuation byte
  EXPECT_FALSE(accepts_unknown("\"\xC0\x80\""));     // overlong NUL
  EXPECT_FALSE(accepts_unknown("\"\xC1\xBF\""));     // overlong
  EXPECT_FALSE(accepts_unknown("\"\xE0\x9F\xBF\"")); // overlong
  EXPECT_FALSE(accepts_unknown("\"\xED\xA0\x80\"")); // a UTF-8 encoded surrogate
  EXPECT_FALSE(accepts_unknown("\"\xF0\x8F\xBF\xBF\""));
  EXPECT_FALSE(accepts_unknown("\"\xF4\x90\x80\x80\"")); // above U+10FFFF
  EXPECT_FALSE(accepts_unknown("\"\xF5\x80\x80\x80\""));
  EXPECT_FALSE(accepts_unknown("\"\xE6\x97\"")); // cut short
  EXPECT_FALSE(accepts_unknown("\"\xFF\""));
  EXPECT_FALSE(accepts_unknown("\"unterminated"));
}

TEST(Codec, RecognisesEscapedKeysAsNlohmannDid) {
  for (const char* key : {R"(feat\u0075res)", R"(\u0066\u0065\u0061\u0074\u0075\u0072\u0065\u0073)",
                          R"(FEATURES)", R"(features\u0000)", R"(features )", R"(feature)"}) {
    auto text = std::string{"{\""} + key + "\":[" + row(32) + "]}";
    auto r = decode_predict(text, limits);
    auto ref = reference::decode_predict_reference(text, limits);
    ASSERT_EQ(static_cast<bool>(r), static_cast<bool>(ref)) << key;
    if (!r) {
      EXPECT_EQ(r.error().message, ref.error().message) << key;
    }
  }
  auto r = decode_predict(
    body(1).insert(1, R"("use\u005fcache":false,"max_age\u005Fms":7,"\ud83d\ude00":1,)"), limits);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->use_cache);
  EXPECT_EQ(r->max_age_ms, 7);
}

TEST(Codec, SkipsDeeplyNestedUnknownValuesWithoutRecursion) {
  constexpr std::size_t depth = 200000;
  EXPECT_TRUE(accepts_unknown(std::string(depth, '[') + std::string(depth, ']')));
  std::string objects;
  for (std::size_t i = 0; i < depth; ++i)
    objects += "{\"a\":";
  objects += "1" + std::string(depth, '}');
  EXPECT_TRUE(accepts_unknown(objects));
  std::string mixed;
  for (std::size_t i = 0; i < 1000; ++i)
    mixed += i % 2 ? "[1,{\"k\":" : "{\"k\":[2,";
  mixed += "null";
  for (std::size_t i = 1000; i-- > 0;)
    mixed += i % 2 ? "}]" : "]}";
  EXPECT_TRUE(accepts_unknown(mixed));
  // Unbalanced, mismatched or cut short: malformed, never a crash.
  EXPECT_FALSE(accepts_unknown(std::string(depth, '[') + std::string(depth - 1, ']')));
  EXPECT_FALSE(accepts_unknown(std::string(depth, '[') + "}" + std::string(depth - 1, ']')));
  auto open = decode_predict("{\"x\":" + std::string(depth, '['), limits);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().code, errc::bad_request);
  EXPECT_NE(open.error().message.find("malformed JSON"), std::string::npos);
}

TEST(Codec, AcceptsEveryWhitespaceAndAByteOrderMark) {
  auto spaced
    = " \t\r\n{ \"features\" \n:\t[ \r[ " + row(32) + " ] ] ,\n\"use_cache\"\t:\rfalse\n} \r\n\t";
  spaced.erase(spaced.find("[ " + row(32)) + 2, 1); // the row's own '['
  spaced.erase(spaced.find(" ] ]") + 1, 2);
  auto r = decode_predict(spaced, limits);
  ASSERT_TRUE(r) << r.error().message << "\n" << spaced;
  EXPECT_EQ(r->rows, 1u);
  EXPECT_FALSE(r->use_cache);
  auto bom = decode_predict("\xEF\xBB\xBF" + body(1), limits);
  ASSERT_TRUE(bom) << bom.error().message;
  auto reference_bom = reference::decode_predict_reference("\xEF\xBB\xBF" + body(1), limits);
  EXPECT_TRUE(reference_bom);
}

TEST(Codec, EmptyBodyIsMalformed) {
  auto r = decode_predict("", limits);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.rfind("malformed JSON", 0), 0u) << r.error().message;
}

TEST(Codec, ReservesTheFeaturesOnce) {
  decode_limits wide{32, 64};
  std::string text = "{\"features\":[";
  for (int r = 0; r < 64; ++r)
    text += (r ? "," : "") + row(32, "0.123456");
  text += "]}";
  auto r = decode_predict(text, wide);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->features.size(), 64u * 32u);
  EXPECT_EQ(r->features.capacity(), 64u * 32u);
}

// -- differential: the new decoder against the nlohmann SAX one it replaced -------

/// Random /predict bodies, mostly well-formed and valid, with the corner
/// cases of numbers, strings, keys and whitespace mixed in.
class body_generator {
public:
  explicit body_generator(std::uint64_t seed, const decode_limits& limits)
    : rng_(seed)
    , limits_(limits) {
  }

  std::string next() {
    std::string s = ws() + "{" + ws();
    bool first = true;
    auto field = [&](const std::string& key, const std::string& value) {
      s += (first ? "" : "," + ws()) + key + ws() + ":" + ws() + value + ws();
      first = false;
    };
    std::vector<int> fields;
    if (chance(0.97))
      fields.push_back(0);
    for (int f = 1; f <= 5; ++f)
      if (chance(0.3))
        fields.push_back(f);
    if (chance(0.02))
      fields.push_back(0); // twice
    std::shuffle(fields.begin(), fields.end(), rng_);
    for (int f : fields) {
      switch (f) {
        case 0:
          field(key("features"), features());
          break;
        case 1:
          field(key("use_cache"), chance(0.9) ? (chance(0.5) ? "true" : "false") : value(1));
          break;
        case 2:
          field(key("max_age_ms"),
                chance(0.85) ? std::to_string(pick(0, 100000)) : number_or_value());
          break;
        case 3:
          field(key("max_wrong_rate"),
                chance(0.85) ? "0.0" + std::to_string(pick(1, 99)) : number_or_value());
          break;
        case 4:
          field(key("timeout_ms"),
                chance(0.85) ? std::to_string(pick(1, 600000)) : number_or_value());
          break;
        default:
          field(string(true), value(4));
          break;
      }
    }
    return s + "}" + ws();
  }

  /// Byte flips, insertions, deletions, duplications and truncations.
  std::string mutate(std::string s) {
    static const std::string alphabet = "{}[],:\" \\/-+.eE0123456789tfnulrsaxu\t\n\r\f\x01\x7F";
    auto edits = pick(1, 3);
    for (int i = 0; i < edits && !s.empty(); ++i) {
      auto at = static_cast<std::size_t>(pick(0, static_cast<int>(s.size()) - 1));
      auto byte = [&] {
        return chance(0.8) ? alphabet[static_cast<std::size_t>(
                 pick(0, static_cast<int>(alphabet.size()) - 1))]
                           : static_cast<char>(pick(0, 255));
      };
      switch (pick(0, 5)) {
        case 0:
          s[at] = byte();
          break;
        case 1:
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), byte());
          break;
        case 2:
          s.erase(at, static_cast<std::size_t>(pick(1, 3)));
          break;
        case 3:
          s.resize(at);
          break;
        case 4:
          s.insert(at, s.substr(at, static_cast<std::size_t>(pick(1, 12))));
          break;
        default:
          s[at] = static_cast<char>(s[at] ^ (1 << pick(0, 7)));
          break;
      }
    }
    return s;
  }

private:
  bool chance(double p) {
    return std::uniform_real_distribution<double>{0.0, 1.0}(rng_) < p;
  }

  int pick(int lo, int hi) {
    return std::uniform_int_distribution<int>{lo, hi}(rng_);
  }

  std::string ws() {
    static const char* const forms[] = {" ", "\n", "\t", "\r\n", "  \t"};
    return chance(0.85) ? "" : forms[pick(0, 4)];
  }

  /// A known key, sometimes with an escaped letter.
  std::string key(const std::string& name) {
    if (chance(0.9))
      return "\"" + name + "\"";
    auto at = static_cast<std::size_t>(pick(0, static_cast<int>(name.size()) - 1));
    char esc[8];
    std::snprintf(esc, sizeof esc, chance(0.5) ? "\\u%04x" : "\\u%04X",
                  static_cast<unsigned>(name[at]));
    return "\"" + name.substr(0, at) + esc + name.substr(at + 1) + "\"";
  }

  std::string features() {
    if (chance(0.03))
      return value(2);
    int rows = chance(0.97) ? pick(1, static_cast<int>(limits_.max_rows))
                            : pick(0, static_cast<int>(limits_.max_rows) + 1);
    std::string s = "[" + ws();
    for (int r = 0; r < rows; ++r) {
      int dim = static_cast<int>(limits_.input_dim);
      int n = chance(0.98) ? dim : pick(0, dim + 1);
      s += (r ? "," + ws() : "") + "[" + ws();
      for (int i = 0; i < n; ++i)
        s += (i ? "," + ws() : "")
             + (chance(0.95)  ? plain_number()
                : chance(0.9) ? number()
                              : value(1))
             + ws();
      s += "]" + ws();
    }
    return s + "]";
  }

  std::string number_or_value() {
    return chance(0.8) ? number() : value(2);
  }

  /// How clients print features.
  std::string plain_number() {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", std::normal_distribution<double>{0.0, 2.0}(rng_));
    return buf;
  }

  /// Any number, corner cases (overflow, underflow, long, beyond a float)
  /// often.
  std::string number() {
    char buf[64];
    switch (pick(0, 11)) {
      case 0:
        return std::to_string(pick(-1000, 1000));
      case 1: {
        static const char* const edges[] = {"0",
                                            "-0",
                                            "-0.0",
                                            "0e0",
                                            "-0E-0",
                                            "1e-400",
                                            "-1e-400",
                                            "4.9e-324",
                                            "2.4703282292062328e-324",
                                            "2.4703282292062327e-324",
                                            "1e-310",
                                            "1.7976931348623157e308",
                                            "1.7976931348623159e308",
                                            "1e309",
                                            "3.4028234663852886e38",
                                            "3.4028235677973366e38",
                                            "3.4028236e38",
                                            "1.4e-45",
                                            "7e-46",
                                            "18446744073709551615",
                                            "18446744073709551616",
                                            "-9223372036854775808",
                                            "-9223372036854775809",
                                            "9007199254740993",
                                            "31536000000",
                                            "31536000001",
                                            "600000",
                                            "600001",
                                            "1",
                                            "1.0",
                                            "1e0",
                                            "0.5e1"};
        return edges[pick(0, static_cast<int>(sizeof edges / sizeof edges[0]) - 1)];
      }
      case 2:
      case 3:
        std::snprintf(buf, sizeof buf, "%.6g", std::normal_distribution<double>{0.0, 2.0}(rng_));
        return buf;
      case 4:
        std::snprintf(buf, sizeof buf, "%.17g",
                      std::uniform_real_distribution<double>{-1.0, 1.0}(rng_));
        return buf;
      case 5:
        std::snprintf(
          buf, sizeof buf, "%.9e",
          std::normal_distribution<double>{0.0, 1.0}(rng_)*std::pow(10.0, pick(-50, 50)));
        return buf;
      case 6: {
        std::string digits = chance(0.5) ? "-" : "";
        digits += std::to_string(pick(1, 9));
        int n = pick(15, 420);
        for (int i = 0; i < n; ++i)
          digits += static_cast<char>('0' + pick(0, 9));
        if (chance(0.7))
          digits.insert(static_cast<std::size_t>(
                          pick(1 + (digits[0] == '-'), static_cast<int>(digits.size()) - 1)),
                        ".");
        if (chance(0.5))
          digits += "e" + std::to_string(pick(-700, 300));
        return digits;
      }
      case 7:
        return "0." + std::string(static_cast<std::size_t>(pick(0, 400)), '0')
               + std::to_string(pick(1, 99999))
               + (chance(0.5) ? "e" + std::to_string(pick(-10, 400)) : "");
      case 8:
        return std::to_string(pick(1, 9)) + "e" + (chance(0.5) ? "+" : "")
               + std::to_string(pick(280, 330));
      case 9:
        return std::to_string(pick(1, 9)) + "E-" + std::to_string(pick(300, 330));
      case 10:
        std::snprintf(
          buf, sizeof buf, "%.8g",
          static_cast<double>(std::uniform_real_distribution<float>{-3.4e38f, 3.4e38f}(rng_)));
        return buf;
      default:
        std::snprintf(buf, sizeof buf, "%d.%de%d", pick(0, 99), pick(0, 999), pick(-30, 40));
        return buf;
    }
  }

  /// A JSON string: ASCII, escapes, \u forms (surrogate pairs too), UTF-8.
  std::string string(bool as_key = false) {
    static const char* const pieces[] = {"a",
                                         "Z",
                                         "features",
                                         "use_cache",
                                         " ",
                                         "\\\"",
                                         "\\\\",
                                         "\\/",
                                         "\\b",
                                         "\\f",
                                         "\\n",
                                         "\\r",
                                         "\\t",
                                         "\\u0041",
                                         "\\u00e9",
                                         "\\u65E5",
                                         "\\ud83d\\ude00",
                                         "\\u0000",
                                         "\xC3\xA9",
                                         "\xE6\x97\xA5",
                                         "\xF0\x9F\x98\x80",
                                         "\x7F",
                                         "\xEF\xBF\xBD",
                                         "\xF4\x8F\xBF\xBF"};
    std::string s = "\"";
    int n = pick(0, as_key ? 3 : 6);
    for (int i = 0; i < n; ++i)
      s += pieces[pick(0, static_cast<int>(sizeof pieces / sizeof pieces[0]) - 1)];
    return s + "\"";
  }

  std::string value(int depth) {
    int kind = pick(0, depth > 0 ? 7 : 5);
    switch (kind) {
      case 0:
        return "true";
      case 1:
        return "false";
      case 2:
        return "null";
      case 3:
      case 4:
        return number();
      case 5:
        return string();
      case 6: {
        std::string s = "[" + ws();
        int n = pick(0, 4);
        for (int i = 0; i < n; ++i)
          s += (i ? "," + ws() : "") + value(depth - 1) + ws();
        return s + "]";
      }
      default: {
        std::string s = "{" + ws();
        int n = pick(0, 3);
        for (int i = 0; i < n; ++i)
          s += (i ? "," + ws() : "") + string(true) + ws() + ":" + ws() + value(depth - 1) + ws();
        return s + "}";
      }
    }
  }

  std::mt19937_64 rng_;
  decode_limits limits_;
};

/// The body with bytes outside printable ASCII escaped, for messages.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out.size() > 600 ? out.substr(0, 600) + "..." : out;
}

/// Whether both decoders agree on `text`: the same verdict, bit-identical
/// values, and the same message for every error that is not malformed JSON
/// (whose wording after the prefix is the decoder's own).
::testing::AssertionResult agree(const std::string& text, const decode_limits& lim) {
  auto got = decode_predict(text, lim);
  auto want = reference::decode_predict_reference(text, lim);
  auto fail = [&](const std::string& why) {
    return ::testing::AssertionFailure()
           << why << "\n  body: " << printable(text)
           << "\n  new:  " << (got ? std::string{"accepted"} : got.error().message)
           << "\n  old:  " << (want ? std::string{"accepted"} : want.error().message);
  };
  if (text.find('\0') != std::string::npos) {
    // nlohmann took a NUL byte outside a string for the end of the input
    // (and so accepted "{...}\0anything"); JSON allows no NUL there, and
    // nothing but whitespace after the object. Rejected, then, and for the
    // same reason as before unless that reason was malformed JSON.
    if (got)
      return fail("a body with a NUL byte was accepted");
    if (got.error().message.rfind("malformed JSON", 0) != 0
        && (want || got.error().message != want.error().message))
      return fail("the errors differ");
    return ::testing::AssertionSuccess();
  }
  if (static_cast<bool>(got) != static_cast<bool>(want))
    return fail("the verdicts differ");
  if (!got) {
    if (got.error().code != errc::bad_request)
      return fail("not a bad request");
    const std::string prefix = "malformed JSON";
    bool want_malformed = want.error().message.rfind(prefix, 0) == 0;
    bool got_malformed = got.error().message.rfind(prefix, 0) == 0;
    if (want_malformed != got_malformed
        || (!want_malformed && got.error().message != want.error().message))
      return fail("the errors differ");
    return ::testing::AssertionSuccess();
  }
  if (got->rows != want->rows || got->features.size() != want->features.size())
    return fail("the shapes differ");
  for (std::size_t i = 0; i < got->features.size(); ++i)
    if (bits(got->features[i]) != bits(want->features[i]))
      return fail("features differ at " + std::to_string(i));
  if (got->use_cache != want->use_cache || got->max_age_ms != want->max_age_ms
      || got->timeout_ms != want->timeout_ms
      || bits(got->max_wrong_rate) != bits(want->max_wrong_rate))
    return fail("the options differ");
  return ::testing::AssertionSuccess();
}

TEST(CodecDifferential, AgreesWithTheNlohmannDecoderOnRandomAndMutatedBodies) {
  int accepted = 0;
  int rejected = 0;
  int failures = 0;
  for (const decode_limits lim : {decode_limits{3, 4}, decode_limits{32, 2}}) {
    body_generator gen{lim.input_dim * 7919 + 17, lim};
    const int bodies = lim.input_dim == 3 ? 4000 : 800;
    for (int i = 0; i < bodies && failures < 10; ++i) {
      auto valid = gen.next();
      std::vector<std::string> cases{valid};
      for (int m = 0; m < 4; ++m)
        cases.push_back(gen.mutate(valid));
      for (const auto& text : cases) {
        auto verdict = agree(text, lim);
        if (!verdict) {
          ADD_FAILURE() << verdict.message();
          ++failures;
        }
        (decode_predict(text, lim) ? accepted : rejected)++;
      }
    }
  }
  // Both verdicts well represented, or the test proves little.
  EXPECT_GT(accepted, 2500);
  EXPECT_GT(rejected, 8000);
  std::printf("differential: %d bodies accepted, %d rejected, by both decoders alike\n", accepted,
              rejected);
}

TEST(CodecDifferential, AgreesOnEveryPrefixOfABody) {
  auto text = "\xEF\xBB\xBF{\"x\":[{\"a\\u00e9\":\"\xF0\x9F\x98\x80\",\"b\":[-0.5e-3,true,null]}],"
              "\"use_cache\":false,\"max_age_ms\":12,\"max_wrong_rate\":0.25,\"timeout_ms\":900,"
              "\"features\":["
              + row(32, "-1.25E+2") + "," + row(32, "0") + "]} ";
  for (std::size_t n = 0; n <= text.size(); ++n)
    EXPECT_TRUE(agree(text.substr(0, n), limits)) << n;
}

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
  s.cache.stats.hits = 3;
  s.cache.stats.misses = 1;
  s.cache.stats.max_size = 256;
  s.cache.stats.ttl = std::chrono::milliseconds{1500};
  auto j = nlohmann::json::parse(encode_stats(s));
  for (const char* k : {"policy", "enabled", "size", "max_size", "ttl_seconds", "hits", "misses",
                        "expired", "evictions", "hit_rate"})
    EXPECT_TRUE(j["cache"].contains(k)) << k;
  EXPECT_EQ(j["cache"]["policy"], "LRU+TTL");
  EXPECT_EQ(j["cache"]["admission"], "lru");
  EXPECT_DOUBLE_EQ(j["cache"]["hit_rate"].get<double>(), 0.75);
  s.cache.stats.admission = admission_policy::tinylfu;
  s.cache.stats.rejections = 9;
  auto t = nlohmann::json::parse(encode_stats(s));
  EXPECT_EQ(t["cache"]["policy"], "W-TinyLFU+TTL");
  EXPECT_EQ(t["cache"]["admission"], "tinylfu");
  EXPECT_EQ(t["cache"]["admission_rejections"], 9);
  EXPECT_DOUBLE_EQ(j["cache"]["ttl_seconds"].get<double>(), 1.5);
  for (const char* k : {"count", "p50", "p95", "p99"})
    EXPECT_TRUE(j["latency"].contains(k)) << k;
}

// The agent's mode, trigger and decisions, the nodes' states and the guard's
// prefix unit travel as enums; the JSON edge spells them with their one
// to_string.
TEST(Codec, EnumsBecomeTheirWordsOnlyAtTheJsonEdge) {
  agent_snapshot a;
  a.mode = agent_mode::short_ttl;
  a.trigger = agent_trigger::wrong_rate;
  decision_record d;
  d.from = agent_mode::normal;
  d.to = agent_mode::short_ttl;
  d.action = decision_of(agent_action::shorten_ttl);
  a.decisions.push_back(d);
  d.from = agent_mode::short_ttl;
  d.to = agent_mode::disabled;
  d.action = decision_of(admin_command::disable_cache);
  d.manual = true;
  a.decisions.push_back(d);
  d.from = d.to;
  d.action = decision_of(admin_command::resume_agent);
  a.decisions.push_back(d);
  auto j = nlohmann::json::parse(encode_agent(a));
  EXPECT_EQ(j["state"], "short_ttl");
  EXPECT_EQ(j["trigger"], "wrong-rate");
  ASSERT_EQ(j["decisions"].size(), 3u);
  EXPECT_EQ(j["decisions"][0]["from"], "normal");
  EXPECT_EQ(j["decisions"][0]["to"], "short_ttl");
  EXPECT_EQ(j["decisions"][0]["action"], "shorten_ttl");
  EXPECT_EQ(j["decisions"][1]["to"], "disabled");
  EXPECT_EQ(j["decisions"][1]["action"], "disable");
  EXPECT_EQ(j["decisions"][1]["manual"], true);
  EXPECT_EQ(j["decisions"][2]["action"], "resume");

  service_snapshot s;
  s.agent = a;
  s.cache.guard.unit = prefix_unit::rows;
  for (auto st : {node_state::local, node_state::up, node_state::down}) {
    node_info n;
    n.name = to_string(st);
    n.state = st;
    s.pool.nodes.push_back(n);
  }
  auto t = nlohmann::json::parse(encode_stats(s));
  EXPECT_EQ(t["agent"]["state"], "short_ttl");
  EXPECT_EQ(t["agent"]["last_decision"], "resume");
  EXPECT_EQ(t["risk"]["prefix_unit"], "rows");
  ASSERT_EQ(t["encoder"]["nodes"].size(), 3u);
  for (const auto& n : t["encoder"]["nodes"])
    EXPECT_EQ(n["state"], n["name"]);
  EXPECT_EQ(t["encoder"]["nodes"][1]["state"], "up");
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
