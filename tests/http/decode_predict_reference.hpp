// The /predict decoder as it was before the hand-written parser in
// http/codec.cpp: nlohmann's SAX parser driving a state machine. Kept only
// as the reference of the differential test in codec_test.cpp, which checks
// that the new decoder accepts exactly the bodies this one accepted, with
// bit-identical values and the same messages for every non-syntax error.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "http/codec.hpp"

namespace sil::http_api::reference {

using json = nlohmann::json;

inline std::string fmt_double(const char* pattern, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, pattern, v);
  return buf;
}

inline std::string fmt_number(double v) {
  return fmt_double("%.17g", v);
}

/// SAX handler that parses straight into the request's float buffer: no DOM,
/// one pass, and it stops at the first problem.
class predict_sax {
public:
  explicit predict_sax(const decode_limits& limits)
    : limits_(limits) {
    req_.features.reserve(limits.input_dim);
  }

  // -- scalar values ---------------------------------------------------------

  bool null() {
    return scalar("null");
  }

  bool boolean(bool v) {
    if (state_ == state::use_cache_value) {
      req_.use_cache = v;
      state_ = state::top;
      return true;
    }
    return scalar("a boolean");
  }

  bool number_integer(json::number_integer_t v) {
    return number(static_cast<double>(v), true);
  }

  bool number_unsigned(json::number_unsigned_t v) {
    return number(static_cast<double>(v), true);
  }

  bool number_float(json::number_float_t v, const json::string_t&) {
    return number(v, false);
  }

  bool string(json::string_t& v) {
    if (state_ == state::model_value || state_ == state::version_value) {
      bool model = state_ == state::model_value;
      if (v.size() > max_name_bytes)
        return fail(std::string{model ? "'model'" : "'version'"} + " is longer than "
                    + std::to_string(max_name_bytes) + " bytes");
      (model ? req_.model : req_.version) = v;
      state_ = state::top;
      return true;
    }
    return scalar("a string");
  }

  bool binary(json::binary_t&) {
    return scalar("binary data");
  }

  // -- structure -------------------------------------------------------------

  bool start_object(std::size_t) {
    if (skip_depth_ > 0) {
      ++skip_depth_;
      return true;
    }
    switch (state_) {
      case state::start:
        state_ = state::top;
        return true;
      case state::skip_value:
        skip_depth_ = 1;
        return true;
      default:
        return scalar("an object");
    }
  }

  bool end_object() {
    if (skip_depth_ > 0)
      return end_skipped();
    state_ = state::done;
    return true;
  }

  bool key(json::string_t& k) {
    if (skip_depth_ > 0)
      return true;
    if (k == "features") {
      if (seen_features_)
        return fail("field 'features' appears twice");
      seen_features_ = true;
      state_ = state::features_value;
    } else if (k == "use_cache") {
      state_ = state::use_cache_value;
    } else if (k == "max_age_ms") {
      state_ = state::max_age_value;
    } else if (k == "max_wrong_rate") {
      state_ = state::max_wrong_rate_value;
    } else if (k == "timeout_ms") {
      state_ = state::timeout_value;
    } else if (k == "model") {
      state_ = state::model_value;
    } else if (k == "version") {
      state_ = state::version_value;
    } else {
      state_ = state::skip_value; // unknown fields are ignored
    }
    return true;
  }

  bool start_array(std::size_t) {
    if (skip_depth_ > 0) {
      ++skip_depth_;
      return true;
    }
    switch (state_) {
      case state::features_value:
        state_ = state::in_features;
        return true;
      case state::in_features:
        if (rows_ == limits_.max_rows)
          return fail("'features' has more than " + std::to_string(limits_.max_rows)
                      + " rows, the limit");
        state_ = state::in_row;
        row_len_ = 0;
        return true;
      case state::skip_value:
        skip_depth_ = 1;
        return true;
      case state::start:
        return fail("the body must be a JSON object, not an array");
      default:
        return scalar("an array");
    }
  }

  bool end_array() {
    if (skip_depth_ > 0)
      return end_skipped();
    if (state_ == state::in_row) {
      if (row_len_ != limits_.input_dim)
        return fail("row " + std::to_string(rows_) + " has " + std::to_string(row_len_)
                    + " values, expected " + std::to_string(limits_.input_dim));
      ++rows_;
      state_ = state::in_features;
      return true;
    }
    // End of 'features'.
    state_ = state::top;
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    if (error_.empty()) {
      // nlohmann's text starts with "[json.exception.parse_error.101] ".
      std::string what = ex.what();
      if (auto p = what.find("] "); p != std::string::npos)
        what.erase(0, p + 2);
      error_ = "malformed JSON: " + what;
    }
    return false;
  }

  // -- results ---------------------------------------------------------------

  result<predict_request> finish() {
    if (!error_.empty())
      return error{errc::bad_request, error_};
    if (state_ != state::done)
      return error{errc::bad_request, "malformed JSON: the body ends early"};
    if (!seen_features_)
      return error{errc::bad_request, "missing field 'features'"};
    if (rows_ == 0)
      return error{errc::bad_request, "'features' must have at least 1 row"};
    req_.rows = static_cast<std::uint32_t>(rows_);
    return std::move(req_);
  }

private:
  enum class state {
    start,
    top,
    features_value,
    in_features,
    in_row,
    use_cache_value,
    max_age_value,
    max_wrong_rate_value,
    timeout_value,
    model_value,
    version_value,
    skip_value,
    done,
  };

  bool fail(std::string msg) {
    if (error_.empty())
      error_ = std::move(msg);
    return false;
  }

  bool end_skipped() {
    if (--skip_depth_ == 0)
      state_ = state::top;
    return true;
  }

  std::string where() const {
    return "features[" + std::to_string(rows_) + "][" + std::to_string(row_len_) + "]";
  }

  /// A scalar (or a structure) where it does not belong.
  bool scalar(const char* what) {
    if (skip_depth_ > 0)
      return true;
    switch (state_) {
      case state::skip_value:
        state_ = state::top;
        return true;
      case state::start:
        return fail(std::string{"the body must be a JSON object, not "} + what);
      case state::features_value:
        return fail(std::string{"'features' must be an array of rows, not "} + what);
      case state::in_features:
        return fail("row " + std::to_string(rows_) + " must be an array of "
                    + std::to_string(limits_.input_dim) + " numbers, not " + what);
      case state::in_row:
        return fail(where() + " must be a number, not " + what);
      case state::use_cache_value:
        return fail(std::string{"'use_cache' must be true or false, not "} + what);
      case state::max_age_value:
        return fail(std::string{"'max_age_ms' must be an integer in [0, "}
                    + std::to_string(max_age_limit_ms) + "], not " + what);
      case state::max_wrong_rate_value:
        return fail(std::string{"'max_wrong_rate' must be a number in (0, 1], not "} + what);
      case state::timeout_value:
        return fail(std::string{"'timeout_ms' must be an integer in [1, "}
                    + std::to_string(timeout_limit_ms) + "], not " + what);
      case state::model_value:
        return fail(std::string{"'model' must be a string, not "} + what);
      case state::version_value:
        return fail(std::string{"'version' must be a string, not "} + what);
      default:
        return fail(std::string{"unexpected "} + what);
    }
  }

  bool number(double v, bool integral) {
    if (skip_depth_ > 0)
      return true;
    switch (state_) {
      case state::in_row:
        if (row_len_ == limits_.input_dim)
          return fail("row " + std::to_string(rows_) + " has more than "
                      + std::to_string(limits_.input_dim) + " values");
        if (!std::isfinite(v) || std::fabs(v) > static_cast<double>(FLT_MAX))
          return fail(where() + " is not a finite 32-bit float");
        req_.features.push_back(static_cast<float>(v));
        ++row_len_;
        return true;
      case state::max_age_value:
        // Bounded here, so that no later conversion to nanoseconds can
        // overflow: a year is longer than any TTL the cache accepts.
        if (!integral || !(v >= 0.0 && v <= static_cast<double>(max_age_limit_ms)))
          return fail("'max_age_ms' must be an integer in [0, " + std::to_string(max_age_limit_ms)
                      + "] (a year), got " + fmt_number(v));
        req_.max_age_ms = static_cast<std::int64_t>(v);
        state_ = state::top;
        return true;
      case state::timeout_value:
        if (!integral || !(v >= 1.0 && v <= static_cast<double>(timeout_limit_ms)))
          return fail("'timeout_ms' must be an integer in [1, " + std::to_string(timeout_limit_ms)
                      + "] (ten minutes), got " + fmt_number(v));
        req_.timeout_ms = static_cast<std::int64_t>(v);
        state_ = state::top;
        return true;
      case state::max_wrong_rate_value:
        if (!(v > 0.0 && v <= 1.0))
          return fail("'max_wrong_rate' must be a number in (0, 1], got " + fmt_number(v));
        req_.max_wrong_rate = v;
        state_ = state::top;
        return true;
      default:
        return scalar("a number");
    }
  }

  decode_limits limits_;
  predict_request req_;
  state state_ = state::start;
  std::size_t skip_depth_ = 0;
  std::size_t rows_ = 0;
  std::size_t row_len_ = 0;
  bool seen_features_ = false;
  std::string error_;
};

inline result<predict_request> decode_predict_reference(std::string_view body,
                                                        const decode_limits& limits) {
  predict_sax sax{limits};
  try {
    json::sax_parse(body.begin(), body.end(), &sax, json::input_format_t::json, true);
  } catch (const std::exception& e) {
    // sax_parse reports through parse_error(); this is the last line of
    // defence at the decoding edge.
    return error{errc::bad_request, std::string{"malformed JSON: "} + e.what()};
  }
  return sax.finish();
}

} // namespace sil::http_api::reference
