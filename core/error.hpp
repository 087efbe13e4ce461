// Errors as values for the pure core.
//
// Owns: the project's error enum (`sil::errc`), an error value carrying a
// human-readable message, and `sil::result<T>`, a small expected-like type.
// Does not own: mapping errors to HTTP statuses (http/) or to caf::error
// (messages/); those translate from `errc` in exactly one place each.
//
// Why not caf::expected here: core/ must not include CAF, so that the model,
// cache, divergence and policy code compile fast and are testable on their own.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sil {

/// Every way a core operation can fail.
enum class errc : unsigned char {
  /// A configuration value is out of range or inconsistent.
  invalid_config = 1,
  /// An argument violates a documented precondition (e.g. size mismatch).
  invalid_argument,
  /// A file could not be opened, read or written.
  io_error,
  /// A weights file is not in the documented format (magic, version, size).
  bad_format,
  /// A weights file's tensor shapes do not match what was expected.
  shape_mismatch,
  /// A value is NaN or infinite where finite numbers are required.
  non_finite,
  /// A request is malformed (bad JSON, wrong types or shapes).
  bad_request,
  /// No such resource (unknown path).
  not_found,
  /// The resource exists but not for this method.
  method_not_allowed,
  /// The request body exceeds the configured limit.
  payload_too_large,
  /// The request body is not of a supported media type.
  unsupported_media_type,
  /// The service is at its in-flight limit; retry later.
  overloaded,
  /// The encoder did not answer in time (after retries).
  encoder_timeout,
  /// No encoder worker is available.
  unavailable,
  /// An operation is refused by configuration (e.g. admin routes without a token).
  forbidden,
  /// Missing or wrong credentials.
  unauthorized,
  /// A bug: an invariant did not hold.
  internal,
  /// The client did not send a complete request in time.
  request_timeout,
  /// The request's header section exceeds the limit.
  header_too_large,
  /// The request target alone exceeds the header limit.
  uri_too_long,
  /// The client went away before its answer was computed; the work was
  /// dropped (nobody receives this error: it is counted).
  cancelled,
  /// The request conflicts with the current state (a version already
  /// loaded, the default unloaded, a memory limit reached).
  conflict,
  /// The request is well formed but what it names cannot be used (a
  /// weights file that is missing, truncated or of the wrong shape).
  unprocessable,
};

/// Returns the stable snake_case name of `code` (used in logs and JSON).
std::string_view to_string(errc code) noexcept;

/// An error code plus a message that says what exactly is wrong.
struct error {
  errc code;
  std::string message;
};

/// Holds either a value or an error. Never throws; accessing the wrong
/// alternative is a programming error caught by assertions in debug builds.
template <class T>
class result {
public:
  result(T value)
    : data_(std::in_place_index<0>, std::move(value)) {
    // nop
  }

  result(sil::error err)
    : data_(std::in_place_index<1>, std::move(err)) {
    // nop
  }

  result(errc code, std::string message)
    : data_(std::in_place_index<1>, sil::error{code, std::move(message)}) {
    // nop
  }

  bool has_value() const noexcept {
    return data_.index() == 0;
  }

  explicit operator bool() const noexcept {
    return has_value();
  }

  T& value() & {
    assert(has_value());
    return *std::get_if<0>(&data_);
  }

  const T& value() const& {
    assert(has_value());
    return *std::get_if<0>(&data_);
  }

  T&& value() && {
    assert(has_value());
    return std::move(*std::get_if<0>(&data_));
  }

  T& operator*() & {
    return value();
  }

  const T& operator*() const& {
    return value();
  }

  T&& operator*() && {
    return std::move(*this).value();
  }

  T* operator->() {
    return &value();
  }

  const T* operator->() const {
    return &value();
  }

  const sil::error& error() const {
    assert(!has_value());
    return *std::get_if<1>(&data_);
  }

private:
  std::variant<T, sil::error> data_;
};

/// Marker for results that carry no value.
struct unit {};

/// A result without a value: success or an error.
using status = result<unit>;

/// Convenience for returning success from a function that returns `status`.
inline status ok() {
  return unit{};
}

} // namespace sil
