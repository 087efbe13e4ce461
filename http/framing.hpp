// HTTP/1.1 message framing rules that a request must meet before its body
// is trusted (RFC 9112 sections 6.1 and 6.3).
//
// Owns: the decision whether a request's Transfer-Encoding and
// Content-Length fields frame its body unambiguously. A request that fails
// gets 400 and its connection is closed: were the server to guess the body
// length differently from a proxy in front of it, the rest of the bytes
// could be read as a second, smuggled request.
// Does not own: parsing (Beast's parser already refuses two different
// Content-Length values, an invalid one, and Content-Length together with
// a chunked Transfer-Encoding). No Beast or CAF include: plain strings in,
// a status out, unit-tested and fuzzed directly.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace sil::http_api {

/// What framing depends on, as the request's header section states it.
struct framing_fields {
  /// 10 for HTTP/1.0, 11 for HTTP/1.1.
  unsigned version = 11;
  /// Every Transfer-Encoding field value, in order.
  std::vector<std::string_view> transfer_encodings;
  /// The number of Content-Length fields.
  std::size_t content_lengths = 0;
};

/// Accepts a request without Transfer-Encoding, or with exactly one coding
/// in all, `chunked`, and no Content-Length, in HTTP/1.1. Anything else is
/// errc::bad_request with a message naming the problem: an element that is
/// not a bare token (a coding with parameters, or a malformed list, which
/// Beast's parser would read differently), a final coding
/// other than chunked (the body length is then unknown), a coding the
/// server does not decode (gzip, ...), chunked applied twice, both
/// Transfer-Encoding and Content-Length, or Transfer-Encoding in HTTP/1.0.
status check_framing(const framing_fields& f);

} // namespace sil::http_api
