#include "core/error.hpp"

namespace sil {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::invalid_config:
      return "invalid_config";
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::io_error:
      return "io_error";
    case errc::bad_format:
      return "bad_format";
    case errc::shape_mismatch:
      return "shape_mismatch";
    case errc::non_finite:
      return "non_finite";
    case errc::bad_request:
      return "bad_request";
    case errc::not_found:
      return "not_found";
    case errc::method_not_allowed:
      return "method_not_allowed";
    case errc::payload_too_large:
      return "payload_too_large";
    case errc::unsupported_media_type:
      return "unsupported_media_type";
    case errc::overloaded:
      return "overloaded";
    case errc::encoder_timeout:
      return "encoder_timeout";
    case errc::unavailable:
      return "unavailable";
    case errc::forbidden:
      return "forbidden";
    case errc::unauthorized:
      return "unauthorized";
    case errc::internal:
      return "internal";
    case errc::request_timeout:
      return "request_timeout";
    case errc::header_too_large:
      return "header_too_large";
    case errc::uri_too_long:
      return "uri_too_long";
    case errc::cancelled:
      return "cancelled";
    case errc::conflict:
      return "conflict";
    case errc::unprocessable:
      return "unprocessable";
  }
  return "unknown";
}

} // namespace sil
