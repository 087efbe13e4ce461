// libFuzzer target: HTTP/1.1 framing and routing of the server's requests.
//
// The bytes are read as a connection's stream: one Beast request parser per
// request, configured as http/server.cpp's session configures it (header
// limit 16 KiB, body limit 1 MiB, the server's default http.body-limit),
// parsing pipelined requests one after the other from the same buffer until
// the bytes end or the parser reports an error (after which the server
// answers once and closes). As the session does, the header section is
// parsed first and goes through the framing check (http/framing.hpp), then
// the body; each request then goes through what the server does before any
// actor is involved: the route, and the codec's decoders for /predict
// bodies, the TTL admin body and the bearer token.
//
// Invariants (a violation aborts, which libFuzzer reports as a crash):
// - nothing throws or crashes;
// - a parser error is one the server answers with a 4xx (the http error
//   category), or a plain end of stream;
// - a framing refusal is a 400; an accepted framing is unambiguous (chunked
//   as the one final coding, in HTTP/1.1, without Content-Length);
// - a parsed request's body is within the body limit, and a Content-Length,
//   if the parser used it, equals the body's size;
// - every decoding error maps to a 4xx status, never a 5xx.
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/codec.hpp"
#include "http/framing.hpp"
#include "http/request_rules.hpp"

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

constexpr std::size_t header_limit = 16 * 1024;            // http/server.cpp, do_read()
constexpr std::size_t body_limit = 1 << 20;                // http.body-limit's default
const sil::http_api::decode_limits predict_limits{32, 64}; // input_dim, http.max-rows

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_http_request: invariant violated: %s\n", what);
  std::abort();
}

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      fail(#cond);                                                                                 \
  } while (false)

void check_error(const sil::error& e) {
  auto status = sil::http_api::status_for(e.code);
  CHECK(status >= 400 && status < 500);
}

std::string_view sv(beast::string_view s) {
  return {s.data(), s.size()};
}

// ---------------------------------------------------------------------------
// HTTP FRAMING CHECK (Transfer-Encoding / Content-Length rules).
// http/framing.hpp's check_framing, called as http/server.cpp's on_header()
// calls it: on the header section, before any body byte is trusted. A
// refusal must be a 4xx (the server answers it and closes). An accepted
// request must then be framed as the check promises: chunked only as the
// one final coding in HTTP/1.1, never next to a Content-Length.
// ---------------------------------------------------------------------------
bool framing_check(const bhttp::request_parser<bhttp::string_body>& parser) {
  auto ff = sil::http_rules::framing_of(parser.get());
  auto st = sil::http_api::check_framing(ff);
  if (!st) {
    CHECK(st.error().code == sil::errc::bad_request);
    check_error(st.error());
    return false;
  }
  if (!ff.transfer_encodings.empty()) {
    CHECK(ff.version >= 11 && ff.content_lengths == 0);
    CHECK(parser.chunked());
  }
  return true;
}

using sil::http_rules::is_json;

/// What the server does with a parsed request before it reaches an actor.
void route(const bhttp::request<bhttp::string_body>& req) {
  auto target = sv(req.target());
  if (auto q = target.find('?'); q != std::string_view::npos)
    target = target.substr(0, q);
  if (target == "/predict") {
    if (req.method() != bhttp::verb::post || !is_json(req[bhttp::field::content_type]))
      return;
    auto decoded = sil::http_api::decode_predict(sv(req.body()), predict_limits);
    if (!decoded) {
      check_error(decoded.error());
      return;
    }
    CHECK(decoded->rows >= 1 && decoded->rows <= predict_limits.max_rows);
    CHECK(decoded->features.size() == decoded->rows * predict_limits.input_dim);
  } else if (target.rfind("/v2/models/", 0) == 0 && target.size() > 6
             && target.substr(target.size() - 6) == "/infer") {
    if (req.method() != bhttp::verb::post)
      return;
    auto decoded = sil::http_api::decode_infer(sv(req.body()), predict_limits);
    if (!decoded) {
      check_error(decoded.error());
      return;
    }
    CHECK(decoded->req.rows >= 1 && decoded->req.rows <= predict_limits.max_rows);
    CHECK(decoded->req.features.size() == decoded->req.rows * predict_limits.input_dim);
  } else if (target == "/agent" || target.rfind("/admin/", 0) == 0) {
    auto auth = sil::http_api::check_admin(sv(req[bhttp::field::authorization]), "fuzz-token");
    if (!auth) {
      check_error(auth.error());
      return;
    }
    if (target == "/admin/cache/ttl" && req.method() == bhttp::verb::put) {
      auto ttl = sil::http_api::decode_ttl(sv(req.body()));
      if (!ttl)
        check_error(ttl.error());
      else
        CHECK(*ttl >= 0.0 && *ttl <= 31536000.0);
    }
  }
}

/// Feeds `in` to the parser until `done()` or the bytes run out (then as
/// the connection's end). Returns false on an error that ends the
/// connection (after checking it is one the server answers with 4xx).
template <class Done>
bool feed(bhttp::request_parser<bhttp::string_body>& parser, std::string_view& in, Done done) {
  beast::error_code ec;
  while (!done()) {
    if (in.empty()) {
      // The peer closed the connection: the stream's end of file.
      parser.put_eof(ec);
      return !ec && done();
    }
    auto used = parser.put(boost::asio::buffer(in.data(), in.size()), ec);
    CHECK(used <= in.size());
    in.remove_prefix(used);
    if (ec == bhttp::error::need_more) {
      // Beast needs a whole header (or chunk header) in one buffer; all
      // the bytes there are were offered, so more can only mean the end.
      if (used == 0)
        in = {};
      ec = {};
      continue;
    }
    if (ec) {
      // The server answers 400 to the http category (413 to the body
      // limit, 431 to the header limit) and closes the connection.
      CHECK(ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category());
      return false;
    }
  }
  return true;
}

/// Parses one request from `in` (consuming what the parser used) as the
/// server's session does: the header first, the framing check, then the
/// body. Returns false when the connection would end: an error, a refused
/// framing, no complete request, or no keep-alive.
bool parse_one(std::string_view& in) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(header_limit);
  parser.body_limit(body_limit);
  if (!feed(parser, in, [&] { return parser.is_header_done(); }))
    return false;
  if (!framing_check(parser))
    return false;
  parser.eager(true);
  if (!feed(parser, in, [&] { return parser.is_done(); }))
    return false;
  bool chunked = parser.chunked();
  auto length = parser.content_length();
  auto req = parser.release();
  CHECK(req.body().size() <= body_limit);
  if (!chunked && length)
    CHECK(*length == req.body().size());
  route(req);
  return req.keep_alive();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  // Pipelined requests: parse until the bytes end or the connection would
  // close (bounded: each complete request consumes at least one byte).
  while (!in.empty() && parse_one(in)) {
  }
  return 0;
}
