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
  }
  return "unknown";
}

} // namespace sil
