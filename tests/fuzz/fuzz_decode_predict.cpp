// libFuzzer target: the HTTP API's decoders (http/codec.hpp) on arbitrary
// bytes.
//
// Invariants checked on every input (a violation aborts, which libFuzzer
// reports as a crash and saves the input):
// - no decoder throws (an exception escaping is a crash too);
// - a failure is an error whose HTTP status (status_for) is 4xx, never 5xx,
//   with a message, and whose JSON error body (encode_error) is valid JSON;
// - a decoded /predict request respects the limits: 1..max_rows rows of
//   exactly input_dim finite floats, max_age_ms -1 (none) or in [0, a
//   year], timeout_ms -1 (none) or in [1, ten minutes], max_wrong_rate 0
//   (none) or in (0, 1];
// - decode_predict agrees with an independent DOM-based reading of the
//   documented contract: it accepts exactly the bodies the contract accepts,
//   with the same values;
// - decode_predict with its "id" echo accepts exactly the same bodies, keeps
//   a string "id" as the DOM reads it, and encode_predict echoes it as valid
//   JSON;
// - decode_infer (the KServe v2 adapter) fails with a 4xx, or gives a
//   request within the same limits whose answer (encode_infer) is valid JSON;
// - decode_ttl returns a finite value in [0, 1 year] or a 4xx error;
// - check_admin accepts exactly "<Bearer in any case> <spaces><token>" and
//   never a disabled API.
#include <algorithm>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "http/codec.hpp"

namespace {

using json = nlohmann::json;
using sil::http_api::decode_limits;

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "fuzz_decode_predict: invariant violated: %s\ninput (%zu bytes): %.*s\n",
               what, input.size(), static_cast<int>(std::min<std::size_t>(input.size(), 512)),
               input.data());
  std::abort();
}

#define CHECK(cond, input)                                                                         \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      fail(#cond, input);                                                                          \
  } while (false)

/// An error must map to a 4xx and make a valid JSON error body.
void check_error(const sil::error& e, std::string_view input) {
  auto status = sil::http_api::status_for(e.code);
  CHECK(status >= 400 && status < 500, input);
  CHECK(!e.message.empty(), input);
  auto body = sil::http_api::encode_error(e);
  CHECK(json::accept(body), input);
}

/// What the README's contract says a /predict body means, read through
/// nlohmann's DOM (a different code path from the codec's SAX handler).
/// nullopt: the contract rejects the body.
std::optional<sil::predict_request> reference_decode(std::string_view body,
                                                     const decode_limits& limits) {
  // RFC 8259 allows no raw NUL byte anywhere (not even inside a string),
  // but nlohmann's lexer reads one as the end of input and would accept
  // `{...}\0garbage`. The contract follows the RFC.
  if (body.find('\0') != std::string_view::npos)
    return std::nullopt;
  int features_keys = 0;
  auto count_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && parsed == "features")
      ++features_keys;
    return true;
  };
  auto j = json::parse(body.begin(), body.end(), count_keys, false);
  if (j.is_discarded() || !j.is_object() || features_keys != 1)
    return std::nullopt;
  sil::predict_request r;
  const auto& f = j["features"];
  if (!f.is_array() || f.empty() || f.size() > limits.max_rows)
    return std::nullopt;
  for (const auto& row : f) {
    if (!row.is_array() || row.size() != limits.input_dim)
      return std::nullopt;
    for (const auto& v : row) {
      if (!v.is_number())
        return std::nullopt;
      auto d = v.get<double>();
      if (!std::isfinite(d) || std::fabs(d) > static_cast<double>(FLT_MAX))
        return std::nullopt;
      r.features.push_back(static_cast<float>(d));
    }
  }
  r.rows = static_cast<std::uint32_t>(f.size());
  if (auto i = j.find("use_cache"); i != j.end()) {
    if (!i->is_boolean())
      return std::nullopt;
    r.use_cache = i->get<bool>();
  }
  if (auto i = j.find("max_age_ms"); i != j.end()) {
    if (!i->is_number_integer())
      return std::nullopt;
    auto d = i->get<double>();
    if (d < 0 || d > static_cast<double>(sil::http_api::max_age_limit_ms))
      return std::nullopt;
    r.max_age_ms = static_cast<std::int64_t>(d);
  }
  if (auto i = j.find("timeout_ms"); i != j.end()) {
    if (!i->is_number_integer())
      return std::nullopt;
    auto d = i->get<double>();
    if (d < 1 || d > static_cast<double>(sil::http_api::timeout_limit_ms))
      return std::nullopt;
    r.timeout_ms = static_cast<std::int64_t>(d);
  }
  if (auto i = j.find("max_wrong_rate"); i != j.end()) {
    if (!i->is_number())
      return std::nullopt;
    auto d = i->get<double>();
    if (!(d > 0.0 && d <= 1.0))
      return std::nullopt;
    r.max_wrong_rate = d;
  }
  for (auto [key, out] : {std::pair{"model", &r.model}, std::pair{"version", &r.version}}) {
    if (auto i = j.find(key); i != j.end()) {
      if (!i->is_string()
          || i->get_ref<const std::string&>().size() > sil::http_api::max_name_bytes)
        return std::nullopt;
      *out = i->get<std::string>();
    }
  }
  return r;
}

bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i])) // both finite: == is exact (and 0.0 == -0.0)
      return false;
  return true;
}

void check_predict(std::string_view body, const decode_limits& limits) {
  auto r = sil::http_api::decode_predict(body, limits);
  auto ref = reference_decode(body, limits);
  if (!r) {
    CHECK(r.error().code == sil::errc::bad_request, body);
    check_error(r.error(), body);
    CHECK(!ref.has_value(), body); // the contract accepts it: the codec must too
    return;
  }
  const auto& req = *r;
  CHECK(req.rows >= 1 && req.rows <= limits.max_rows, body);
  CHECK(req.features.size() == static_cast<std::size_t>(req.rows) * limits.input_dim, body);
  for (float v : req.features)
    CHECK(std::isfinite(v), body);
  CHECK(req.max_age_ms == -1
          || (req.max_age_ms >= 0 && req.max_age_ms <= sil::http_api::max_age_limit_ms),
        body);
  CHECK(req.timeout_ms == -1
          || (req.timeout_ms >= 1 && req.timeout_ms <= sil::http_api::timeout_limit_ms),
        body);
  CHECK(req.max_wrong_rate == 0.0 || (req.max_wrong_rate > 0.0 && req.max_wrong_rate <= 1.0), body);
  CHECK(ref.has_value(), body); // the codec accepted what the contract rejects
  CHECK(ref->rows == req.rows, body);
  CHECK(same_floats(ref->features, req.features), body);
  CHECK(ref->use_cache == req.use_cache, body);
  CHECK(ref->max_age_ms == req.max_age_ms, body);
  CHECK(ref->timeout_ms == req.timeout_ms, body);
  CHECK(ref->max_wrong_rate == req.max_wrong_rate, body);
  CHECK(ref->model == req.model, body);
  CHECK(ref->version == req.version, body);
}

/// The limits every decoded request keeps, whichever API it came through.
void check_limits(const sil::predict_request& req, const decode_limits& limits,
                  std::string_view body) {
  CHECK(req.rows >= 1 && req.rows <= limits.max_rows, body);
  CHECK(req.features.size() == static_cast<std::size_t>(req.rows) * limits.input_dim, body);
  for (float v : req.features)
    CHECK(std::isfinite(v), body);
  CHECK(req.max_age_ms == -1
          || (req.max_age_ms >= 0 && req.max_age_ms <= sil::http_api::max_age_limit_ms),
        body);
  CHECK(req.timeout_ms == -1
          || (req.timeout_ms >= 1 && req.timeout_ms <= sil::http_api::timeout_limit_ms),
        body);
  CHECK(req.max_wrong_rate == 0.0 || (req.max_wrong_rate > 0.0 && req.max_wrong_rate <= 1.0), body);
}

void check_predict_id(std::string_view body, const decode_limits& limits) {
  std::optional<std::string> id;
  auto with = sil::http_api::decode_predict(body, limits, id);
  auto without = sil::http_api::decode_predict(body, limits);
  CHECK(bool(with) == bool(without), body);
  if (!with) {
    return;
  }
  CHECK(with->features.size() == without->features.size(), body);
  auto dom = json::parse(body.begin(), body.end(), nullptr, false);
  if (dom.is_object() && dom.contains("id") && dom["id"].is_string())
    CHECK(id.has_value() && *id == dom["id"].get<std::string>(), body);
  sil::predict_reply reply;
  reply.model_version = "v";
  CHECK(json::accept(sil::http_api::encode_predict(reply, 1.0, id)), body);
}

void check_infer(std::string_view body, const decode_limits& limits) {
  auto r = sil::http_api::decode_infer(body, limits);
  if (!r) {
    CHECK(r.error().code == sil::errc::bad_request, body);
    check_error(r.error(), body);
    return;
  }
  check_limits(r->req, limits, body);
  sil::predict_reply reply;
  reply.model_version = "v";
  CHECK(json::accept(sil::http_api::encode_infer(reply, 1.0, "base", r->id)), body);
}

void check_ttl(std::string_view body) {
  auto r = sil::http_api::decode_ttl(body);
  if (!r) {
    check_error(r.error(), body);
    return;
  }
  CHECK(std::isfinite(*r) && *r >= 0.0 && *r <= 31536000.0, body);
}

/// The contract of check_admin, written independently: the scheme "Bearer"
/// in any case (RFC 7235), one or more spaces, then exactly the token.
bool reference_admin(std::string_view header, std::string_view token) {
  constexpr std::string_view scheme = "bearer";
  if (header.size() <= scheme.size() || header[scheme.size()] != ' ')
    return false;
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i])
      return false;
  auto rest = header.substr(scheme.size());
  rest.remove_prefix(std::min(rest.find_first_not_of(' '), rest.size()));
  return rest == token;
}

void check_admin(std::string_view header) {
  constexpr std::string_view token = "s3cret-token";
  auto disabled = sil::http_api::check_admin(header, "");
  CHECK(!disabled, header);
  CHECK(disabled.error().code == sil::errc::forbidden, header);
  check_error(disabled.error(), header);
  auto st = sil::http_api::check_admin(header, token);
  CHECK(bool(st) == reference_admin(header, token), header);
  if (!st) {
    CHECK(st.error().code == sil::errc::unauthorized, header);
    check_error(st.error(), header);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};
  // The server's defaults (32 values per row, 64 rows), and small limits
  // under which the fuzzer reaches the row and value limits easily.
  check_predict(input, decode_limits{32, 64});
  check_predict(input, decode_limits{2, 3});
  check_predict_id(input, decode_limits{2, 3});
  check_infer(input, decode_limits{32, 64});
  check_infer(input, decode_limits{2, 3});
  check_ttl(input);
  check_admin(input);
  return 0;
}
