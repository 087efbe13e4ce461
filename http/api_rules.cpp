#include "http/api_rules.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/hash.hpp"
#include "http/codec.hpp"
#include "logging/log.hpp"

namespace sil::http_api {

namespace {

using json = nlohmann::json;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// The next '/'-separated segment of `path` after position `pos` (which
/// points at a '/'); advances `pos` to the '/' after it or to the end.
std::string_view next_segment(std::string_view path, std::size_t& pos) {
  auto begin = pos + 1;
  auto end = path.find('/', begin);
  if (end == std::string_view::npos)
    end = path.size();
  pos = end;
  return path.substr(begin, end - begin);
}

bool match_template(std::string_view tmpl, std::string_view path,
                    std::vector<std::string_view>& params) {
  if (tmpl.empty() || path.empty() || tmpl[0] != '/' || path[0] != '/')
    return false;
  std::size_t ti = 0;
  std::size_t pi = 0;
  params.clear();
  while (ti < tmpl.size() && pi < path.size()) {
    auto t = next_segment(tmpl, ti);
    auto p = next_segment(path, pi);
    if (t.size() >= 2 && t.front() == '{' && t.back() == '}') {
      if (p.empty())
        return false;
      params.push_back(p);
    } else if (t != p) {
      return false;
    }
  }
  return ti == tmpl.size() && pi == path.size();
}

// -- SHA-256 (FIPS 180-4) ----------------------------------------------------------

constexpr std::array<std::uint32_t, 64> sha_k{
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

constexpr std::uint32_t rotr(std::uint32_t x, int n) noexcept {
  return (x >> n) | (x << (32 - n));
}

void sha_block(std::array<std::uint32_t, 8>& h, const unsigned char* p) {
  std::array<std::uint32_t, 64> w{};
  for (std::size_t i = 0; i < 16; ++i) {
    const std::size_t j = 4 * i;
    w[i] = (std::uint32_t{p[j]} << 24) | (std::uint32_t{p[j + 1]} << 16)
           | (std::uint32_t{p[j + 2]} << 8) | std::uint32_t{p[j + 3]};
  }
  for (std::size_t i = 16; i < 64; ++i) {
    auto s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    auto s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  auto a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (std::size_t i = 0; i < 64; ++i) {
    auto s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    auto ch = (e & f) ^ (~e & g);
    auto t1 = k + s1 + ch + sha_k[i] + w[i];
    auto s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    auto maj = (a & b) ^ (a & c) ^ (b & c);
    auto t2 = s0 + maj;
    k = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += k;
}

} // namespace

// -- routes ------------------------------------------------------------------------

std::vector<route_match> match_routes(const std::vector<route_spec>& table,
                                      std::string_view target) {
  std::vector<route_match> out;
  std::vector<std::string_view> params;
  for (const auto& r : table)
    if (match_template(r.path, target, params))
      out.push_back({&r, params});
  return out;
}

bool method_fits(std::string_view method, std::string_view route_method) {
  return method == route_method || (method == "HEAD" && route_method == "GET");
}

std::string allow_of(const std::vector<route_match>& matches) {
  std::string out;
  for (const auto& m : matches) {
    if (!out.empty())
      out += ", ";
    out += m.spec->method;
    if (std::string_view{m.spec->method} == "GET")
      out += ", HEAD";
  }
  return out;
}

std::string route_list(const std::vector<route_spec>& table) {
  std::string out;
  for (const auto& r : table) {
    if (!out.empty())
      out += ", ";
    out += r.method;
    out += ' ';
    out += r.path;
  }
  return out;
}

bool is_v2_path(std::string_view target) noexcept {
  return target == "/v2" || target.substr(0, 4) == "/v2/";
}

std::optional<response> answer_options(const std::vector<route_spec>& table,
                                       const request_view& req, const cors_policy& cors) {
  if (req.method != "OPTIONS" || !cors.enabled())
    return std::nullopt;
  auto matches = match_routes(table, req.target);
  if (matches.empty()) {
    error e{errc::not_found, "no route " + std::string{req.target}};
    return is_v2_path(req.target) ? v2_error_response(e) : error_response(e);
  }
  auto allow = allow_of(matches) + ", OPTIONS";
  if (!req.origin.empty() && !req.preflight_method.empty())
    return cors.preflight(req.origin, allow);
  response r;
  r.status = 204;
  r.content_type = nullptr;
  r.route = matches.front().spec->label;
  r.allow = std::move(allow);
  return r;
}

std::variant<route_match, response> find_route(const std::vector<route_spec>& table,
                                               const request_view& req) {
  auto matches = match_routes(table, req.target);
  bool v2 = is_v2_path(req.target);
  if (matches.empty()) {
    error e{errc::not_found,
            "no route " + std::string{req.target} + " (routes: " + route_list(table) + ")"};
    return v2 ? v2_error_response(e) : error_response(e);
  }
  for (auto& m : matches)
    if (method_fits(req.method, m.spec->method))
      return std::move(m);
  auto allow = allow_of(matches);
  std::string verbs;
  for (const auto& m : matches)
    verbs += (verbs.empty() ? "" : " or ") + std::string{m.spec->method};
  error e{errc::method_not_allowed,
          "use " + verbs + " for " + std::string{req.target} + ", not " + std::string{req.method}};
  auto r = v2 ? v2_error_response(e, matches.front().spec->label)
              : error_response(e, matches.front().spec->label);
  r.allow = std::move(allow);
  return r;
}

// -- errors ------------------------------------------------------------------------

response error_response(const error& e, route_label route) {
  response r;
  r.status = status_for(e.code);
  r.body = encode_error(e);
  r.route = route;
  r.error = e.code;
  r.retry_after = e.code == errc::overloaded || e.code == errc::unavailable;
  r.www_authenticate = e.code == errc::unauthorized;
  r.outcome = to_string(e.code);
  return r;
}

response v2_error_response(const error& e, route_label route) {
  auto r = error_response(e, route);
  r.body = dump(json{{"error", e.message}});
  return r;
}

// -- request ids -------------------------------------------------------------------

bool valid_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > max_request_id)
    return false;
  for (char c : id)
    if (c < 0x21 || c > 0x7E)
      return false;
  return true;
}

std::string new_request_id() {
  // One generator per thread, seeded apart: ids are unique in practice,
  // not secret.
  thread_local splitmix64 rng{[] {
    static std::atomic<std::uint64_t> counter{0};
    std::random_device rd;
    std::uint64_t seed = (std::uint64_t{rd()} << 32) ^ rd();
    seed ^= static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    seed ^= mix64(counter.fetch_add(1) + 1);
    return seed;
  }()};
  static constexpr char digits[] = "0123456789abcdef";
  auto v = rng.next();
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4)
    out[static_cast<std::size_t>(i)] = digits[v & 0xF];
  return out;
}

std::string request_id_for(std::string_view given) {
  if (valid_request_id(given))
    return std::string{given};
  return new_request_id();
}

// -- CORS --------------------------------------------------------------------------

cors_policy::cors_policy(std::vector<std::string> origins)
  : origins_(std::move(origins)) {
  for (const auto& o : origins_)
    any_ = any_ || o == "*";
}

std::optional<std::string> cors_policy::allow_origin(std::string_view origin) const {
  if (origins_.empty() || origin.empty())
    return std::nullopt;
  if (any_)
    return std::string{"*"};
  for (const auto& o : origins_)
    if (o == origin)
      return o;
  return std::nullopt;
}

void cors_policy::decorate(response& r, std::string_view origin) const {
  if (origins_.empty())
    return;
  if (!any_)
    r.headers.emplace_back("Vary", "Origin");
  if (auto allowed = allow_origin(origin)) {
    r.headers.emplace_back("Access-Control-Allow-Origin", std::move(*allowed));
    r.headers.emplace_back("Access-Control-Expose-Headers", cors_expose_headers);
  }
}

response cors_policy::preflight(std::string_view origin, const std::string& allow) const {
  if (!allow_origin(origin)) {
    auto r = error_response({errc::forbidden, "origin '" + std::string{origin}
                                                + "' may not call this API (http.cors-origins)"},
                            route_label::preflight);
    return r;
  }
  response r;
  r.status = 204;
  r.content_type = nullptr;
  r.route = route_label::preflight;
  r.allow = allow;
  r.headers.emplace_back("Access-Control-Allow-Methods", allow);
  r.headers.emplace_back("Access-Control-Allow-Headers", cors_allow_headers);
  r.headers.emplace_back("Access-Control-Max-Age", "600");
  return r;
}

// -- health ------------------------------------------------------------------------

readiness serving_readiness(const readiness_input& in) {
  if (in.draining)
    return {false, "draining",
            "the server is shutting down: it finishes the requests in flight and takes no new "
            "work"};
  if (in.workers_alive > 0)
    return {true, "ok",
            std::to_string(in.workers_alive)
              + (in.workers_alive == 1 ? " encoder worker alive" : " encoder workers alive")};
  if (in.local_workers && !in.seen_workers)
    return {false, "starting", "the encoder workers are starting"};
  if (in.fallback_local)
    return {true, "degraded",
            "no encoder node is connected: predictions are encoded on a local fallback worker "
            "(cluster.fallback=local)"};
  return {false, "unavailable",
          in.local_workers ? "no encoder worker is alive"
                           : "no encoder node is connected and cluster.fallback=reject"};
}

std::string encode_readiness(const readiness& r) {
  return dump(json{{"ready", r.ready}, {"status", r.status}, {"reason", r.reason}});
}

std::string encode_liveness() {
  return "{\"live\":true,\"status\":\"ok\"}";
}

response readiness_response(const readiness& r, route_label route) {
  response out;
  out.status = r.ready ? 200 : 503;
  out.body = encode_readiness(r);
  out.route = route;
  out.retry_after = !r.ready;
  if (!r.ready)
    out.outcome = r.status;
  return out;
}

// -- admin tokens ------------------------------------------------------------------

std::string sha256_hex(std::string_view data) {
  std::array<std::uint32_t, 8> h{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::array<unsigned char, 64> block{};
  std::size_t full = data.size() / 64;
  for (std::size_t i = 0; i < full; ++i)
    sha_block(h, reinterpret_cast<const unsigned char*>(data.data()) + 64 * i);
  // The last bytes, the 0x80 marker and the length in bits (big-endian),
  // in one or two blocks.
  std::size_t rest = data.size() - 64 * full;
  std::array<unsigned char, 128> tail{};
  for (std::size_t i = 0; i < rest; ++i)
    tail[i] = static_cast<unsigned char>(data[64 * full + i]);
  tail[rest] = 0x80;
  std::size_t blocks = rest + 1 + 8 <= 64 ? 1 : 2;
  auto bits = static_cast<std::uint64_t>(data.size()) * 8;
  for (int i = 0; i < 8; ++i)
    tail[blocks * 64 - 1 - static_cast<std::size_t>(i)]
      = static_cast<unsigned char>(bits >> (8 * i));
  for (std::size_t b = 0; b < blocks; ++b) {
    std::copy(tail.begin() + static_cast<std::ptrdiff_t>(64 * b),
              tail.begin() + static_cast<std::ptrdiff_t>(64 * (b + 1)), block.begin());
    sha_block(h, block.data());
  }
  std::string out;
  out.reserve(64);
  char buf[9];
  for (auto word : h) {
    std::snprintf(buf, sizeof buf, "%08x", word);
    out += buf;
  }
  return out;
}

std::string token_id(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size() || authorization[scheme.size()] != ' ')
    return "none";
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    char c = authorization[i];
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
    if (c != scheme[i])
      return "none";
  }
  auto token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  if (token.empty())
    return "none";
  return sha256_hex(token).substr(0, 8);
}

void log_access(const finished_exchange& e) {
  if (!logging::access_enabled())
    return;
  logging::access_record rec;
  rec.request_id = e.request_id;
  rec.remote = e.remote;
  rec.method = e.method;
  rec.target = e.target;
  rec.status = e.status;
  rec.bytes_in = e.bytes_in;
  rec.bytes_out = e.bytes_out;
  rec.latency_ms = std::chrono::duration<double, std::milli>(e.latency).count();
  rec.outcome = e.outcome;
  logging::access(rec);
}

} // namespace sil::http_api
