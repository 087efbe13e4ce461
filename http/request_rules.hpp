// What the server reads from a request's header section, shared by the
// server and its fuzz target so that both apply exactly the same rules.
//
// Owns: gathering the fields that framing depends on (for
// http_api::check_framing), the JSON media-type test, and the
// Expect: 100-continue test. Header-only and Beast-aware; it is included
// only by http/server.cpp and the HTTP fuzz target.
#pragma once

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/message.hpp>

#include "http/codec.hpp"
#include "http/framing.hpp"

namespace sil::http_rules {

/// The Transfer-Encoding values and Content-Length count of a request.
template <class Fields>
http_api::framing_fields framing_of(const boost::beast::http::header<true, Fields>& h) {
  namespace bhttp = boost::beast::http;
  http_api::framing_fields ff;
  ff.version = h.version();
  for (const auto& f : h)
    if (f.name() == bhttp::field::transfer_encoding)
      ff.transfer_encodings.emplace_back(f.value().data(), f.value().size());
    else if (f.name() == bhttp::field::content_length)
      ++ff.content_lengths;
  return ff;
}

/// "application/json", optionally with parameters such as "; charset=utf-8"
/// (the rule is http_api::is_json_media_type's).
inline bool is_json(boost::beast::string_view ct) {
  return http_api::is_json_media_type({ct.data(), ct.size()});
}

/// An HTTP/1.1 request that asks for "100 Continue" before its body.
template <class Fields>
bool expects_continue(const boost::beast::http::header<true, Fields>& h) {
  return h.version() >= 11
         && boost::beast::iequals(h[boost::beast::http::field::expect], "100-continue");
}

} // namespace sil::http_rules
