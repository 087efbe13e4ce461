#include "http/codec.hpp"

#include <algorithm>
#include <cfloat>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sil::http_api {

namespace {

using json = nlohmann::json;

std::string fmt_double(const char* pattern, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, pattern, v);
  return buf;
}

std::string fmt_number(double v) {
  return fmt_double("%.17g", v);
}

/// The fields of a /predict body; `other` is any unknown key.
enum class field {
  features,
  use_cache,
  max_age_ms,
  max_wrong_rate,
  timeout_ms,
  id,
  model,
  version,
  other
};

/// Open containers of a skipped value, innermost last: object or array.
/// The first 64 levels live in one word; deeper ones (rare, and bounded by
/// the body size) in a vector, so that nesting never recurses.
class nesting {
public:
  std::size_t depth() const noexcept {
    return depth_;
  }

  void push(bool is_object) {
    if (depth_ < 64) {
      auto bit = std::uint64_t{1} << depth_;
      low_ = is_object ? (low_ | bit) : (low_ & ~bit);
    } else {
      high_.push_back(is_object);
    }
    ++depth_;
  }

  void pop() noexcept {
    --depth_;
    if (depth_ >= 64)
      high_.pop_back();
  }

  bool top_is_object() const noexcept {
    auto d = depth_ - 1;
    return d < 64 ? ((low_ >> d) & 1u) != 0 : high_.back();
  }

private:
  std::uint64_t low_ = 0;
  std::vector<bool> high_;
  std::size_t depth_ = 0;
};

/// A strict (RFC 8259) single-pass parser for /predict bodies that writes
/// straight into the request's float buffer and stops at the first problem.
///
/// It replaces nlohmann's SAX parser here because the lexer's strtod made
/// decoding a 64-row body cost as much I/O-thread time as a hundred hits.
/// It keeps that decoder's contract exactly: the same documents are
/// accepted with bit-identical values (integers are exact, every other
/// number is correctly rounded by std::from_chars as strtod rounds it; an
/// integer -0 is +0, as nlohmann's integer path made it), and problems are
/// reported in document order with the same messages; only the wording
/// after "malformed JSON: " differs. Like nlohmann it skips a leading UTF-8
/// BOM, rejects numbers that overflow a double (also in unknown fields),
/// and validates UTF-8 and escapes in every string. Unknown values are
/// skipped without recursion, at any depth.
class predict_parser {
public:
  predict_parser(std::string_view body, const decode_limits& limits,
                 std::optional<std::string>* id = nullptr)
    : begin_(body.data())
    , p_(body.data())
    , end_(body.data() + body.size())
    , limits_(limits)
    , id_(id) {
    req_.features.reserve(limits.input_dim);
  }

  result<predict_request> run() {
    if (!parse())
      return error{errc::bad_request, std::move(error_)};
    if (!seen_features_)
      return error{errc::bad_request, "missing field 'features'"};
    if (rows_ == 0)
      return error{errc::bad_request, "'features' must have at least 1 row"};
    req_.rows = static_cast<std::uint32_t>(rows_);
    return std::move(req_);
  }

private:
  /// What a value that is not where it belongs is called in messages.
  enum class kind { object, array, string, boolean, null, number };

  // -- the document ----------------------------------------------------------

  bool parse() {
    if (p_ != end_ && static_cast<unsigned char>(*p_) == 0xEF) {
      // A UTF-8 byte order mark, which nlohmann skipped too.
      if (end_ - p_ < 3 || static_cast<unsigned char>(p_[1]) != 0xBB
          || static_cast<unsigned char>(p_[2]) != 0xBF)
        return syntax(p_, "a byte order mark or a JSON value");
      p_ += 3;
    }
    skip_ws();
    if (p_ == end_)
      return fail("malformed JSON: the body is empty");
    if (*p_ != '{')
      return misplaced("the body must be a JSON object, not ");
    if (!parse_object())
      return false;
    skip_ws();
    if (p_ != end_)
      return syntax(p_, "the end of the body after the object");
    return true;
  }

  bool parse_object() {
    ++p_; // '{'
    skip_ws();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      field f = field::other;
      if (p_ == end_ || *p_ != '"')
        return syntax(p_, "a key string");
      if (!parse_key(f))
        return false;
      if (f == field::features) {
        if (seen_features_)
          return fail("field 'features' appears twice");
        seen_features_ = true;
      }
      skip_ws();
      if (p_ == end_ || *p_ != ':')
        return syntax(p_, "':' after the key");
      ++p_;
      skip_ws();
      bool ok = false;
      switch (f) {
        case field::features:
          ok = parse_features();
          break;
        case field::use_cache:
          ok = parse_use_cache();
          break;
        case field::max_age_ms:
        case field::max_wrong_rate:
        case field::timeout_ms:
          ok = parse_number_field(f);
          break;
        case field::id:
          ok = parse_id();
          break;
        case field::model:
        case field::version:
          ok = parse_name_field(f);
          break;
        case field::other:
          ok = skip_value(); // unknown fields are ignored
          break;
      }
      if (!ok)
        return false;
      if (auto n = separator('}', "',' or '}'"); n != next::more)
        return n == next::closed;
    }
  }

  // -- fields ----------------------------------------------------------------

  bool parse_features() {
    if (p_ == end_ || *p_ != '[')
      return misplaced("'features' must be an array of rows, not ");
    ++p_;
    skip_ws();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return true; // no rows: reported once the whole body is known good
    }
    for (;;) {
      if (p_ == end_ || *p_ != '[')
        return misplaced("row " + std::to_string(rows_) + " must be an array of "
                         + std::to_string(limits_.input_dim) + " numbers, not ");
      if (rows_ == limits_.max_rows)
        return fail("'features' has more than " + std::to_string(limits_.max_rows)
                    + " rows, the limit");
      const char* row_start = p_;
      if (!parse_row())
        return false;
      ++rows_;
      if (rows_ == 1)
        reserve_rows(static_cast<std::size_t>(p_ - row_start));
      if (auto n = separator(']', "',' or ']' after a row"); n != next::more)
        return n == next::closed;
    }
  }

  /// One row, from its '[' to its ']'.
  bool parse_row() {
    ++p_; // '['
    row_len_ = 0;
    skip_ws();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return end_row();
    }
    for (;;) {
      if (p_ == end_ || !starts_number(*p_))
        return misplaced(where() + " must be a number, not ");
      double v;
      bool integral;
      if (!lex_number(v, integral))
        return false;
      if (row_len_ == limits_.input_dim)
        return fail("row " + std::to_string(rows_) + " has more than "
                    + std::to_string(limits_.input_dim) + " values");
      if (!std::isfinite(v) || std::fabs(v) > static_cast<double>(FLT_MAX))
        return fail(where() + " is not a finite 32-bit float");
      req_.features.push_back(static_cast<float>(v));
      ++row_len_;
      if (auto n = separator(']', "',' or ']' in a row"); n != next::more)
        return n == next::closed && end_row();
    }
  }

  bool end_row() {
    if (row_len_ != limits_.input_dim)
      return fail("row " + std::to_string(rows_) + " has " + std::to_string(row_len_)
                  + " values, expected " + std::to_string(limits_.input_dim));
    return true;
  }

  /// Once the first row is read, room for as many rows as the rest of the
  /// body could hold if they are printed alike (at most max_rows): one
  /// allocation instead of a doubling series.
  void reserve_rows(std::size_t row_bytes) {
    auto rest = static_cast<std::size_t>(end_ - p_);
    auto rows = 1 + rest / (row_bytes + 1);
    if (rows > limits_.max_rows)
      rows = limits_.max_rows;
    req_.features.reserve(rows * limits_.input_dim);
  }

  bool parse_use_cache() {
    if (match_literal("true")) {
      req_.use_cache = true;
      return true;
    }
    if (match_literal("false")) {
      req_.use_cache = false;
      return true;
    }
    return misplaced("'use_cache' must be true or false, not ");
  }

  /// "id": a string is kept to be echoed (KServe v2 does so); any other
  /// value is skipped like an unknown field's, as it always was.
  bool parse_id() {
    if (id_ == nullptr || p_ == end_ || *p_ != '"')
      return skip_value();
    std::string text;
    if (!lex_string(nullptr, &text))
      return false;
    *id_ = std::move(text);
    return true;
  }

  /// "model" and "version": strings of at most max_name_bytes bytes; empty
  /// (or absent) means the default.
  bool parse_name_field(field f) {
    const char* what = f == field::model ? "'model'" : "'version'";
    if (p_ == end_ || *p_ != '"')
      return misplaced(std::string{what} + " must be a string, not ");
    std::string text;
    if (!lex_string(nullptr, &text))
      return false;
    if (text.size() > max_name_bytes)
      return fail(std::string{what} + " is longer than " + std::to_string(max_name_bytes)
                  + " bytes");
    (f == field::model ? req_.model : req_.version) = std::move(text);
    return true;
  }

  bool parse_number_field(field f) {
    if (p_ == end_ || !starts_number(*p_)) {
      switch (f) {
        case field::max_age_ms:
          return misplaced("'max_age_ms' must be an integer in [0, "
                           + std::to_string(max_age_limit_ms) + "], not ");
        case field::timeout_ms:
          return misplaced("'timeout_ms' must be an integer in [1, "
                           + std::to_string(timeout_limit_ms) + "], not ");
        default:
          return misplaced("'max_wrong_rate' must be a number in (0, 1], not ");
      }
    }
    double v;
    bool integral;
    if (!lex_number(v, integral))
      return false;
    switch (f) {
      case field::max_age_ms:
        // Bounded here, so that no later conversion to nanoseconds can
        // overflow: a year is longer than any TTL the cache accepts.
        if (!integral || !(v >= 0.0 && v <= static_cast<double>(max_age_limit_ms)))
          return fail("'max_age_ms' must be an integer in [0, " + std::to_string(max_age_limit_ms)
                      + "] (a year), got " + fmt_number(v));
        req_.max_age_ms = static_cast<std::int64_t>(v);
        return true;
      case field::timeout_ms:
        if (!integral || !(v >= 1.0 && v <= static_cast<double>(timeout_limit_ms)))
          return fail("'timeout_ms' must be an integer in [1, " + std::to_string(timeout_limit_ms)
                      + "] (ten minutes), got " + fmt_number(v));
        req_.timeout_ms = static_cast<std::int64_t>(v);
        return true;
      default:
        if (!(v > 0.0 && v <= 1.0))
          return fail("'max_wrong_rate' must be a number in (0, 1], got " + fmt_number(v));
        req_.max_wrong_rate = v;
        return true;
    }
  }

  /// A value where it does not belong: reads as much of it as nlohmann
  /// read before its event (a whole scalar, the bracket of a structure), so
  /// that a malformed scalar is still reported as malformed JSON, then fails
  /// with `prefix` + what it is.
  bool misplaced(std::string prefix) {
    kind k = kind::null;
    if (!lex_head(k))
      return false;
    switch (k) {
      case kind::object:
        return fail(std::move(prefix) + "an object");
      case kind::array:
        return fail(std::move(prefix) + "an array");
      case kind::string:
        return fail(std::move(prefix) + "a string");
      case kind::boolean:
        return fail(std::move(prefix) + "a boolean");
      case kind::null:
        return fail(std::move(prefix) + "null");
      case kind::number:
        return fail(std::move(prefix) + "a number");
    }
    return fail(std::move(prefix) + "a value");
  }

  /// Reads a scalar whole, or the opening bracket of a structure.
  bool lex_head(kind& k) {
    if (p_ == end_)
      return syntax(p_, "a value");
    switch (*p_) {
      case '{':
        ++p_;
        k = kind::object;
        return true;
      case '[':
        ++p_;
        k = kind::array;
        return true;
      case '"':
        k = kind::string;
        return lex_string(nullptr);
      case 't':
        k = kind::boolean;
        return match_literal("true") || syntax(p_, "a value ('true')");
      case 'f':
        k = kind::boolean;
        return match_literal("false") || syntax(p_, "a value ('false')");
      case 'n':
        k = kind::null;
        return match_literal("null") || syntax(p_, "a value ('null')");
      default:
        if (starts_number(*p_)) {
          k = kind::number;
          double v;
          bool integral;
          return lex_number(v, integral);
        }
        return syntax(p_, "a value");
    }
  }

  /// Skips any value (an unknown field's), validating it as strictly as the
  /// rest; iterative, so that no nesting can exhaust the stack.
  bool skip_value() {
    nesting open;
    for (;;) {
      // A value starts here.
      kind k = kind::null;
      if (!lex_head(k))
        return false;
      if (k == kind::object || k == kind::array) {
        skip_ws();
        char close = k == kind::object ? '}' : ']';
        if (p_ != end_ && *p_ == close) {
          ++p_;
        } else {
          open.push(k == kind::object);
          if (k == kind::object && !skip_key())
            return false;
          continue;
        }
      }
      // After a value: close what it ends, then the next value or done.
      for (;;) {
        if (open.depth() == 0)
          return true;
        bool in_object = open.top_is_object();
        auto n = separator(in_object ? '}' : ']', in_object ? "',' or '}'" : "',' or ']'");
        if (n == next::bad)
          return false;
        if (n == next::closed) {
          open.pop();
          continue;
        }
        if (in_object && !skip_key())
          return false;
        break;
      }
    }
  }

  /// In a skipped object: `"key" :` and the whitespace around it.
  bool skip_key() {
    if (p_ == end_ || *p_ != '"')
      return syntax(p_, "a key string");
    if (!lex_string(nullptr))
      return false;
    skip_ws();
    if (p_ == end_ || *p_ != ':')
      return syntax(p_, "':' after the key");
    ++p_;
    skip_ws();
    return true;
  }

  // -- tokens ----------------------------------------------------------------

  static bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
  }

  static bool starts_number(char c) noexcept {
    return c == '-' || is_digit(c);
  }

  /// What follows a member or an element.
  enum class next { more, closed, bad };

  /// After a member or an element: whitespace, then ',' (and the whitespace
  /// after it: more) or `close` (closed). Anything else is a syntax error
  /// that names `expected` (bad).
  next separator(char close, const char* expected) {
    skip_ws();
    if (p_ != end_ && *p_ == ',') {
      ++p_;
      skip_ws();
      return next::more;
    }
    if (p_ != end_ && *p_ == close) {
      ++p_;
      return next::closed;
    }
    syntax(p_, expected);
    return next::bad;
  }

  void skip_ws() noexcept {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t'))
      ++p_;
  }

  bool match_literal(std::string_view word) noexcept {
    if (static_cast<std::size_t>(end_ - p_) < word.size()
        || std::string_view{p_, word.size()} != word)
      return false;
    p_ += word.size();
    return true;
  }

  /// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, the longest match at
  /// p_ (so "01" is the number 0 and then a stray 1, as in nlohmann), as a
  /// double. `integral`: written without fraction or exponent.
  bool lex_number(double& v, bool& integral) {
    const char* first = p_;
    const char* q = p_;
    bool negative = *q == '-';
    if (negative)
      ++q;
    if (q == end_ || !is_digit(*q))
      return syntax(q, "a digit after '-'");
    const char* int_first = q;
    if (*q == '0')
      ++q;
    else
      while (q != end_ && is_digit(*q))
        ++q;
    const char* int_last = q;
    const char* frac_first = q;
    const char* frac_last = q;
    integral = true;
    if (q != end_ && *q == '.') {
      ++q;
      frac_first = q;
      if (q == end_ || !is_digit(*q))
        return syntax(q, "a digit after '.'");
      while (q != end_ && is_digit(*q))
        ++q;
      frac_last = q;
      integral = false;
    }
    const char* exp_first = q;
    if (q != end_ && (*q == 'e' || *q == 'E')) {
      ++q;
      if (q != end_ && (*q == '+' || *q == '-'))
        ++q;
      if (q == end_ || !is_digit(*q))
        return syntax(q, "a digit in the exponent");
      while (q != end_ && is_digit(*q))
        ++q;
      integral = false;
    }
    auto [last, ec] = std::from_chars(first, q, v);
    if (ec == std::errc::result_out_of_range) {
      // Too large or too small for a double (from_chars leaves v alone).
      // strtod, and so nlohmann, gave +-inf for the first, an overflow
      // error, and a zero for the second.
      if (exceeds_one(int_first, int_last, frac_first, frac_last, exp_first, q))
        return fail("malformed JSON: number overflow parsing '" + std::string(first, q) + "'");
      v = negative ? -0.0 : 0.0;
    } else if (ec != std::errc{} || last != q) {
      return syntax(first, "a number"); // not expected: the grammar was checked
    }
    if (integral && v == 0.0)
      v = 0.0; // "-0": nlohmann's integer path made it +0
    p_ = q;
    return true;
  }

  /// Whether a nonzero number with these digits is at least 1 (else below
  /// 1): its first significant digit's decimal place against its exponent.
  static bool exceeds_one(const char* int_first, const char* int_last, const char* frac_first,
                          const char* frac_last, const char* exp_first, const char* last) {
    // Digits before the point, or minus the zeros after it.
    std::int64_t magnitude = 0;
    if (*int_first != '0') {
      magnitude = int_last - int_first;
    } else {
      const char* d = frac_first;
      while (d != frac_last && *d == '0')
        ++d;
      magnitude = -(d - frac_first);
    }
    if (exp_first != last) {
      const char* e = exp_first + 1;
      bool minus = *e == '-';
      if (*e == '-' || *e == '+')
        ++e;
      std::int64_t exponent = 0;
      for (; e != last; ++e)
        if (exponent < 1'000'000'000'000)
          exponent = exponent * 10 + (*e - '0');
      magnitude += minus ? -exponent : exponent;
    }
    return magnitude > 0;
  }

  /// A string from its opening quote: escapes and UTF-8 checked as nlohmann
  /// checked them. With `key`, also decodes it far enough to tell which
  /// field it names.
  bool lex_string(field* key, std::string* text = nullptr) {
    ++p_; // '"'
    // Decoded key, if it is short and ASCII (every field name is).
    char name[16];
    std::size_t len = 0;
    bool fits = key != nullptr;
    auto put = [&](std::uint32_t c) {
      if (!fits)
        return;
      if (c >= 0x80 || len == sizeof name)
        fits = false;
      else
        name[len++] = static_cast<char>(c);
    };
    for (;;) {
      if (p_ == end_)
        return syntax(p_, "'\"' to end the string");
      auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        break;
      }
      if (c < 0x20)
        return syntax(p_, "an escape for the control character in the string");
      if (c == '\\') {
        std::uint32_t cp = 0;
        if (!lex_escape(cp))
          return false;
        put(cp);
        if (text != nullptr)
          append_utf8(*text, cp);
        continue;
      }
      if (c < 0x80) {
        put(c);
        if (text != nullptr)
          text->push_back(static_cast<char>(c));
        ++p_;
        continue;
      }
      const char* seq = p_;
      if (!lex_utf8())
        return false;
      if (text != nullptr)
        text->append(seq, p_);
      fits = false;
    }
    if (key != nullptr) {
      *key = field::other;
      if (fits) {
        std::string_view k{name, len};
        if (k == "features")
          *key = field::features;
        else if (k == "use_cache")
          *key = field::use_cache;
        else if (k == "max_age_ms")
          *key = field::max_age_ms;
        else if (k == "max_wrong_rate")
          *key = field::max_wrong_rate;
        else if (k == "timeout_ms")
          *key = field::timeout_ms;
        else if (k == "id")
          *key = field::id;
        else if (k == "model")
          *key = field::model;
        else if (k == "version")
          *key = field::version;
      }
    }
    return true;
  }

  bool parse_key(field& f) {
    return lex_string(&f);
  }

  /// Appends code point `cp` (a valid scalar value) as UTF-8.
  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  /// A backslash escape at p_; the code point it stands for in `cp`.
  bool lex_escape(std::uint32_t& cp) {
    const char* at = p_;
    ++p_;
    if (p_ == end_)
      return syntax(p_, "an escape after '\\'");
    switch (*p_) {
      case '"':
      case '\\':
      case '/':
        cp = static_cast<unsigned char>(*p_);
        break;
      case 'b':
        cp = '\b';
        break;
      case 'f':
        cp = '\f';
        break;
      case 'n':
        cp = '\n';
        break;
      case 'r':
        cp = '\r';
        break;
      case 't':
        cp = '\t';
        break;
      case 'u': {
        ++p_;
        if (!hex4(cp))
          return syntax(at, "'\\u' and 4 hex digits");
        if (cp >= 0xDC00 && cp <= 0xDFFF)
          return syntax(at, "a high surrogate before a low one");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          std::uint32_t low = 0;
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u')
            return syntax(p_, "a low surrogate after a high one");
          p_ += 2;
          if (!hex4(low))
            return syntax(p_ - 2, "'\\u' and 4 hex digits");
          if (low < 0xDC00 || low > 0xDFFF)
            return syntax(p_ - 6, "a low surrogate after a high one");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        return true;
      }
      default:
        return syntax(at, "a valid escape");
    }
    ++p_;
    return true;
  }

  bool hex4(std::uint32_t& cp) {
    if (end_ - p_ < 4)
      return false;
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      char c = p_[i];
      std::uint32_t d;
      if (c >= '0' && c <= '9')
        d = static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        d = static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        d = static_cast<std::uint32_t>(c - 'A' + 10);
      else
        return false;
      cp = cp * 16 + d;
    }
    p_ += 4;
    return true;
  }

  /// One multi-byte UTF-8 sequence at p_ (RFC 3629: no overlong forms, no
  /// surrogates, nothing above U+10FFFF).
  bool lex_utf8() {
    auto b0 = static_cast<unsigned char>(*p_);
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    int more;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      more = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      more = 2;
      if (b0 == 0xE0)
        lo = 0xA0;
      else if (b0 == 0xED)
        hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      more = 3;
      if (b0 == 0xF0)
        lo = 0x90;
      else if (b0 == 0xF4)
        hi = 0x8F;
    } else {
      return syntax(p_, "valid UTF-8 in the string");
    }
    const char* at = p_;
    ++p_;
    for (int i = 0; i < more; ++i, ++p_) {
      if (p_ == end_)
        return syntax(p_, "valid UTF-8 in the string");
      auto b = static_cast<unsigned char>(*p_);
      if (b < lo || b > hi)
        return syntax(at, "valid UTF-8 in the string");
      lo = 0x80;
      hi = 0xBF;
    }
    return true;
  }

  // -- errors ----------------------------------------------------------------

  std::string where() const {
    return "features[" + std::to_string(rows_) + "][" + std::to_string(row_len_) + "]";
  }

  bool fail(std::string msg) {
    error_ = std::move(msg);
    return false;
  }

  /// Malformed JSON at `at`: what was expected there.
  bool syntax(const char* at, const char* expected) {
    if (at >= end_)
      return fail(std::string{"malformed JSON: the body ends early, expected "} + expected);
    char found[16];
    auto c = static_cast<unsigned char>(*at);
    if (c >= 0x20 && c < 0x7F)
      std::snprintf(found, sizeof found, "'%c'", c);
    else
      std::snprintf(found, sizeof found, "byte 0x%02X", c);
    return fail("malformed JSON: expected " + std::string{expected} + " at offset "
                + std::to_string(at - begin_) + ", found " + found);
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  decode_limits limits_;
  /// Where a string "id" goes (null: not wanted).
  std::optional<std::string>* id_ = nullptr;
  predict_request req_;
  std::size_t rows_ = 0;
  std::size_t row_len_ = 0;
  bool seen_features_ = false;
  std::string error_;
};

json agent_json(const agent_snapshot& a) {
  json decisions = json::array();
  for (const auto& d : a.decisions)
    decisions.push_back({{"unix_ms", d.unix_ms},
                         {"from", to_string(d.from)},
                         {"to", to_string(d.to)},
                         {"action", to_string(d.action)},
                         {"manual", d.manual},
                         {"reason", d.reason},
                         {"observation",
                          {{"samples", d.samples},
                           {"p50", d.p50},
                           {"p95", d.p95},
                           {"max", d.max},
                           {"hits", d.hits},
                           {"misses", d.misses},
                           {"labels", d.labels},
                           {"wrong", d.wrong}}},
                         {"ttl_seconds", d.ttl_seconds}});
  return {{"state", to_string(a.mode)},
          {"enabled", a.acts},
          {"manual_override", a.manual_override},
          {"ttl_seconds", a.ttl_seconds},
          {"clean_windows", a.clean_windows},
          {"reports", a.reports},
          {"trigger", to_string(a.trigger)},
          {"served",
           {{"labels", a.served_labels},
            {"wrong", a.served_wrong},
            {"rate", a.served_labels == 0 ? 0.0
                                          : static_cast<double>(a.served_wrong)
                                              / static_cast<double>(a.served_labels)},
            {"lower", a.served_lower},
            {"upper", a.served_upper},
            {"confidence", a.confidence},
            {"max_wrong_rate", a.max_wrong_rate}}},
          {"thresholds",
           {{"recover", a.recover_threshold},
            {"ttl", a.ttl_threshold},
            {"disable", a.disable_threshold},
            {"entry_evict", a.entry_evict_threshold},
            {"recover_windows", a.recover_windows},
            {"min_samples", a.min_samples},
            {"base_ttl_seconds", a.base_ttl_seconds},
            {"ttl_floor_seconds", a.ttl_floor_seconds},
            {"interval_seconds", a.interval_seconds},
            {"max_wrong_rate", a.max_wrong_rate},
            {"disable_wrong_rate", a.disable_wrong_rate}}},
          {"decisions", decisions}};
}

json nodes_json(const std::vector<node_info>& nodes) {
  json out = json::array();
  for (const auto& n : nodes)
    out.push_back({{"name", n.name},
                   {"state", to_string(n.state)},
                   {"workers", n.workers},
                   {"outstanding", n.outstanding},
                   {"encodes", n.encodes},
                   {"changed_unix_ms", n.changed_unix_ms}});
  return out;
}

json latency_json(const latency_summary& l) {
  return {{"count", l.count}, {"window", l.window}, {"mean", l.mean}, {"p50", l.p50},
          {"p95", l.p95},     {"p99", l.p99},       {"max", l.max}};
}

json risk_json(const service_snapshot& s) {
  const auto& g = s.cache.guard;
  const auto& v = s.served;
  json shapes = json::array();
  for (const auto& sh : g.shapes)
    shapes.push_back(
      {{"rows", sh.rows}, {"labels", sh.labels}, {"wrong", sh.wrong}, {"reach", sh.reach}});
  return {
    {"guard", g.enabled},
    {"tolerance", g.tolerance},
    {"max_wrong_rate", g.max_wrong_rate},
    {"confidence", g.confidence},
    {"prefix_unit", to_string(g.unit)},
    {"exact", g.exact},
    {"certified", g.certified},
    {"refused", g.refused},
    {"unguarded", g.unguarded},
    {"labels", g.labels},
    {"wrong_labels", g.wrong_labels},
    {"shapes", shapes},
    {"served",
     {{"audits", v.total_labels},
      {"wrong", v.total_wrong},
      {"window", v.labels},
      {"window_wrong", v.wrong},
      {"rate", v.labels == 0 ? 0.0 : static_cast<double>(v.wrong) / static_cast<double>(v.labels)},
      {"lower", v.lower},
      {"upper", v.upper}}}};
}

/// Appends `v` as printf would with %.<precision>g (general) or
/// %.<precision>f (fixed), or null if it is not finite. std::to_chars
/// formats exactly as printf does, several times faster: this runs once
/// per answer.
void append_number(std::string& out, double v, std::chars_format format, int precision) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, format, precision);
  if (ec == std::errc{})
    out.append(buf, end);
  else
    out += fmt_double("%.17g", v);
}

} // namespace

result<predict_request> decode_predict(std::string_view body, const decode_limits& limits) {
  return predict_parser{body, limits}.run();
}

result<predict_request> decode_predict(std::string_view body, const decode_limits& limits,
                                       std::optional<std::string>& id) {
  return predict_parser{body, limits, &id}.run();
}

std::string encode_predict(const predict_reply& r, double latency_ms,
                           const std::optional<std::string>& id, std::string_view model_name) {
  std::string out;
  out.reserve(256);
  out += "{\"prediction\":";
  append_number(out, static_cast<double>(r.prediction), std::chars_format::general, 9);
  out += r.cache_hit ? ",\"cache_hit\":true" : ",\"cache_hit\":false";
  out += ",\"latency_ms\":";
  append_number(out, latency_ms, std::chars_format::fixed, 4);
  out += ",\"source\":\"";
  out += to_string(r.source);
  if (!model_name.empty()) {
    out += "\",\"model\":";
    out += json(model_name).dump(-1, ' ', false, json::error_handler_t::replace);
    out += ",\"model_version\":\"";
  } else {
    out += "\",\"model_version\":\"";
  }
  out += r.model_version;
  out += '"';
  if (r.source == embedding_source::cache) {
    out += ",\"cache_age_ms\":";
    append_number(out, static_cast<double>(r.cache_age_ns) / 1e6, std::chars_format::fixed, 3);
  }
  if (r.risk.present) {
    out += ",\"risk\":{\"basis\":\"";
    out += to_string(r.risk.basis);
    out += "\",\"distance\":";
    append_number(out, r.risk.distance, std::chars_format::general, 6);
    out += ",\"p_wrong_upper\":";
    append_number(out, r.risk.p_wrong_upper, std::chars_format::general, 6);
    out += '}';
  }
  if (id) {
    out += ",\"id\":";
    out += json(*id).dump(-1, ' ', false, json::error_handler_t::replace);
  }
  out += '}';
  return out;
}

std::string encode_error(const error& e) {
  json j = {{"error", {{"code", to_string(e.code)}, {"message", e.message}}}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

/// Every served version's own counters, for /stats.
json models_json(const std::vector<model_version_stats>& models) {
  auto out = json::array();
  for (const auto& v : models) {
    auto lookups = v.hits + v.misses;
    out.push_back(
      {{"model", v.model},
       {"version", v.version},
       {"default", v.is_default},
       {"policy", v.policy},
       {"role", v.canary ? "canary" : "serving"},
       {"requests", v.requests},
       {"encodes", v.encodes},
       {"encodes_per_request",
        v.requests == 0 ? 0.0 : static_cast<double>(v.encodes) / static_cast<double>(v.requests)},
       {"latency", latency_json(v.latency)},
       {"hits", v.hits},
       {"misses", v.misses},
       {"hit_rate",
        lookups == 0 ? 0.0 : static_cast<double>(v.hits) / static_cast<double>(lookups)},
       {"entries", v.entries},
       {"audits", v.audits},
       {"labels", v.labels},
       {"wrong_labels", v.wrong_labels},
       {"agent", to_string(v.mode)},
       {"served",
        {{"window", v.served_labels},
         {"window_wrong", v.served_wrong},
         {"lower", v.served_lower},
         {"upper", v.served_upper}}}});
  }
  return out;
}

} // namespace

std::string encode_stats(const service_snapshot& s) {
  const auto& c = s.cache;
  const auto& cs = c.stats;
  json j = {
    {"cache",
     {{"policy", cs.admission == admission_policy::tinylfu ? "W-TinyLFU+TTL" : "LRU+TTL"},
      {"admission", to_string(cs.admission)},
      {"enabled", cs.enabled},
      {"single_flight", c.single_flight},
      {"size", cs.size},
      {"max_size", cs.max_size},
      {"ttl_seconds", std::chrono::duration<double>(cs.ttl).count()},
      {"prefix_k", c.prefix_k},
      {"hits", cs.hits},
      {"misses", cs.misses},
      {"expired", cs.expirations},
      {"evictions", cs.evictions},
      {"admission_rejections", cs.rejections},
      {"inserts", cs.inserts},
      {"erasures", cs.erasures},
      {"bypasses", cs.bypasses},
      {"single_flight_joins", c.single_flight_joins},
      {"in_flight", c.in_flight},
      {"read_path_hits", c.read_path_hits},
      {"access_batches", c.access_batches},
      {"accesses_applied", c.accesses_applied},
      {"accesses_dropped", c.accesses_dropped},
      {"hit_rate", cs.hit_rate()}}},
    {"latency", latency_json(s.latency)},
    {"latency_hit", latency_json(s.hit_latency)},
    {"latency_miss", latency_json(s.miss_latency)},
    {"requests",
     {{"predict", s.requests}, {"errors", s.errors}, {"rejected_overload", s.rejected_overload}}},
    {"encoder",
     {{"workers", s.pool.workers},
      {"batches", s.pool.batches},
      {"items", s.pool.items},
      {"largest_batch", s.pool.max_batch_seen},
      {"retries", s.pool.retries},
      {"failures", s.pool.failures},
      {"restarts", s.pool.restarts},
      {"queued", s.pool.queued},
      {"outstanding", s.pool.outstanding},
      {"fallback_items", s.pool.fallback_items},
      {"busy_seconds", s.pool.busy_seconds},
      {"gflop", s.pool.flops / 1e9},
      {"cancelled", s.pool.cancelled},
      {"shed", s.pool.shed},
      {"expired", s.pool.expired},
      {"queued_rows", s.pool.queued_rows},
      {"rows_per_second", s.pool.rows_per_second},
      {"nodes", nodes_json(s.pool.nodes)}}},
    {"http",
     {{"connections", s.http.connections_open},
      {"connections_refused", s.http.connections_refused},
      {"accept_backoffs", s.http.accept_backoffs},
      {"clients_gone", s.http.clients_gone},
      {"read_timeouts", s.http.read_timeouts},
      {"framing_errors", s.http.framing_errors}}},
    {"agent",
     {{"state", to_string(s.agent.mode)},
      {"enabled", s.agent.acts},
      {"manual_override", s.agent.manual_override},
      {"ttl_seconds", s.agent.ttl_seconds},
      {"reports", s.agent.reports},
      {"decisions", s.agent.decisions.size()},
      {"last_decision", s.agent.decisions.empty()
                          ? json(nullptr)
                          : json(to_string(s.agent.decisions.back().action))}}},
    {"divergence",
     {{"cosine", latency_json(s.cosine)},
      {"l2", latency_json(s.l2)},
      {"prediction_delta", latency_json(s.prediction_delta)},
      {"audits", s.audit.audits},
      {"audits_skipped", s.audit.skipped},
      {"audits_failed", s.audit.failed},
      {"shadow_comparisons", s.audit.shadow_comparisons},
      {"audit_rate", s.audit.rate},
      {"audit_max_share", s.audit.max_share},
      {"invalidations", s.cache.invalidations}}},
    {"risk", risk_json(s)},
    {"model", {{"name", s.model_name}, {"version", s.model_version}}},
    {"models", models_json(s.models)},
    {"uptime_seconds", s.uptime_s},
  };
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_agent(const agent_snapshot& a) {
  return agent_json(a).dump(-1, ' ', false, json::error_handler_t::replace);
}

result<double> decode_ttl(std::string_view body) {
  auto j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return error{errc::bad_request, "body must be a JSON object {\"ttl_seconds\": number}"};
  auto i = j.find("ttl_seconds");
  if (i == j.end())
    return error{errc::bad_request, "missing field 'ttl_seconds'"};
  if (!i->is_number())
    return error{errc::bad_request, "'ttl_seconds' must be a number"};
  auto v = i->get<double>();
  if (!std::isfinite(v) || v < 0.0 || v > 31536000.0)
    return error{errc::bad_request, "'ttl_seconds' must be in [0, 31536000]"};
  return v;
}

namespace {

const char* json_kind(const json& j);

/// A JSON object body of the admin API: unknown keys are refused (a typo
/// must not load the wrong thing).
result<json> admin_object(std::string_view body, std::initializer_list<const char*> keys,
                          const char* shape) {
  auto j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return error{errc::bad_request, std::string{"body must be a JSON object "} + shape};
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* k : keys)
      known = known || it.key() == k;
    if (!known) {
      std::string list;
      for (const char* k : keys)
        list += (list.empty() ? "'" : ", '") + std::string{k} + "'";
      return error{errc::bad_request, "unknown field '" + it.key() + "' (expected " + list + ")"};
    }
  }
  return j;
}

status string_field(const json& j, const char* key, std::string& out, bool required) {
  auto i = j.find(key);
  if (i == j.end())
    return required ? status{errc::bad_request, std::string{"missing field '"} + key + "'"} : ok();
  if (!i->is_string())
    return {errc::bad_request, std::string{"'"} + key + "' must be a string, not " + json_kind(*i)};
  out = i->get<std::string>();
  if (out.size() > max_name_bytes && std::string_view{key} != "weights")
    return {errc::bad_request, std::string{"'"} + key + "' is longer than "
                                 + std::to_string(max_name_bytes) + " bytes"};
  return ok();
}

status count_field(const json& j, const char* key, std::int64_t& out) {
  auto i = j.find(key);
  if (i == j.end())
    return ok();
  if (!i->is_number_integer() || i->get<double>() < 0 || i->get<double>() > 100000)
    return {errc::bad_request, std::string{"'"} + key + "' must be an integer in [0, 100000]"};
  out = i->get<std::int64_t>();
  return ok();
}

} // namespace

result<model_command> decode_model_load(std::string_view body) {
  auto j = admin_object(body, {"name", "preset", "seed", "weights", "warm", "default"},
                        "{\"name\": string, \"preset\": string, \"seed\": integer | "
                        "\"weights\": path, \"warm\": integer, \"default\": bool}");
  if (!j)
    return j.error();
  model_command cmd;
  cmd.op = model_op::load;
  for (auto st :
       {string_field(*j, "name", cmd.name, true), string_field(*j, "preset", cmd.preset, false),
        string_field(*j, "weights", cmd.weights, false), count_field(*j, "warm", cmd.warm)})
    if (!st)
      return st.error();
  if (auto i = j->find("seed"); i != j->end()) {
    if (!i->is_number_unsigned())
      return error{errc::bad_request, "'seed' must be a non-negative integer"};
    if (!cmd.weights.empty())
      return error{errc::bad_request,
                   "'seed' and 'weights' exclude each other: a weights file carries its weights"};
    cmd.seed = i->get<std::uint64_t>();
  }
  if (auto i = j->find("default"); i != j->end()) {
    if (!i->is_boolean())
      return error{errc::bad_request, "'default' must be true or false"};
    cmd.make_default = i->get<bool>();
  }
  return cmd;
}

result<std::string> decode_default_version(std::string_view body) {
  auto j = admin_object(body, {"version"}, "{\"version\": string}");
  if (!j)
    return j.error();
  std::string version;
  if (auto st = string_field(*j, "version", version, true); !st)
    return st.error();
  if (version.empty())
    return error{errc::bad_request, "'version' must not be empty"};
  return version;
}

result<std::int64_t> decode_warm(std::string_view body) {
  std::int64_t n = -1;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return n; // no body: the configured number
  auto j = admin_object(body, {"encodes"}, "{\"encodes\": integer}");
  if (!j)
    return j.error();
  if (auto st = count_field(*j, "encodes", n); !st)
    return st.error();
  return n;
}

result<model_command> decode_canary_start(std::string_view body, const cache_policy& base) {
  auto j = admin_object(body, {"policy", "share"},
                        "{\"policy\": {\"name\": string, ...}, \"share\": number}");
  if (!j)
    return j.error();
  model_command cmd;
  cmd.op = model_op::canary_start;
  cmd.policy = base;
  auto share = j->find("share");
  if (share != j->end()) {
    if (!share->is_number() || !(share->get<double>() > 0.0 && share->get<double>() < 1.0))
      return error{errc::bad_request, "'share' must be a number in (0, 1)"};
    cmd.share = share->get<double>();
  }
  auto pj = j->find("policy");
  if (pj == j->end())
    return error{errc::bad_request, "missing field 'policy'"};
  auto policy = admin_object(pj->dump(),
                             {"name", "prefix_k", "prefix_unit", "ttl_seconds", "capacity_share",
                              "tolerance", "max_wrong_rate", "admission"},
                             "{\"name\": string, ...}");
  if (!policy)
    return error{errc::bad_request, "'policy': " + policy.error().message};
  auto& p = *policy;
  auto& out = cmd.policy;
  if (auto st = string_field(p, "name", out.name, true); !st)
    return error{errc::bad_request, "'policy': " + st.error().message};
  auto number = [&](const char* key, double& field) -> status {
    auto i = p.find(key);
    if (i == p.end())
      return ok();
    if (!i->is_number())
      return {errc::bad_request, std::string{"'policy': '"} + key + "' must be a number"};
    field = i->get<double>();
    return ok();
  };
  for (auto st :
       {number("ttl_seconds", out.ttl_seconds), number("capacity_share", out.capacity_share),
        number("tolerance", out.tolerance), number("max_wrong_rate", out.max_wrong_rate)})
    if (!st)
      return st.error();
  if (auto i = p.find("prefix_k"); i != p.end()) {
    if (!i->is_number_unsigned() || i->get<std::uint64_t>() > 4096)
      return error{errc::bad_request, "'policy': 'prefix_k' must be a positive integer"};
    out.prefix_k = static_cast<std::uint32_t>(i->get<std::uint64_t>());
  }
  if (auto i = p.find("prefix_unit"); i != p.end()) {
    auto unit = i->is_string() ? parse_prefix_unit(i->get<std::string>())
                               : result<prefix_unit>{errc::bad_request, ""};
    if (!unit)
      return error{errc::bad_request, "'policy': 'prefix_unit' must be \"values\" or \"rows\""};
    out.unit = *unit;
  }
  if (auto i = p.find("admission"); i != p.end()) {
    auto a = i->is_string() ? parse_admission_policy(i->get<std::string>()) : std::nullopt;
    if (!a)
      return error{errc::bad_request, "'policy': 'admission' must be \"lru\" or \"tinylfu\""};
    out.admission = *a;
  }
  return cmd;
}

namespace {

json policy_json(const cache_policy& p) {
  return {{"name", p.name},
          {"prefix_k", p.prefix_k},
          {"prefix_unit", to_string(p.unit)},
          {"ttl_seconds", p.ttl_seconds},
          {"capacity_share", p.capacity_share},
          {"tolerance", p.tolerance},
          {"max_wrong_rate", p.max_wrong_rate},
          {"admission", to_string(p.admission)}};
}

json arm_json(const arm_view& a) {
  return {
    {"policy", a.policy},
    {"requests", a.requests},
    {"encodes", a.encodes},
    {"encodes_per_request",
     a.requests == 0 ? 0.0 : static_cast<double>(a.encodes) / static_cast<double>(a.requests)},
    {"hits", a.hits},
    {"lookups", a.lookups},
    {"hit_rate",
     a.lookups == 0 ? 0.0 : static_cast<double>(a.hits) / static_cast<double>(a.lookups)},
    {"served",
     {{"labels", a.labels},
      {"wrong", a.wrong},
      {"rate", a.labels == 0 ? 0.0 : static_cast<double>(a.wrong) / static_cast<double>(a.labels)},
      {"lower", a.wrong_lower},
      {"upper", a.wrong_upper}}}};
}

json canaries_json(const model_listing& l) {
  auto running = json::array();
  for (const auto& c : l.canaries)
    running.push_back(
      {{"model", c.model},
       {"version", c.version},
       {"share", c.share},
       {"elapsed_seconds", c.elapsed_seconds},
       {"candidate", policy_json(c.candidate)},
       {"a", arm_json(c.a)},
       {"b", arm_json(c.b)},
       {"verdict", to_string(c.verdict)},
       {"reason", c.reason},
       {"wrong_rate_difference", {{"lower", c.diff_lower}, {"upper", c.diff_upper}}}});
  auto decisions = json::array();
  for (const auto& d : l.decisions)
    decisions.push_back({{"unix_ms", d.unix_ms},
                         {"model", d.model},
                         {"version", d.version},
                         {"incumbent", d.policy_a},
                         {"candidate", d.policy_b},
                         {"action", d.action},
                         {"manual", d.manual},
                         {"reason", d.reason},
                         {"figures",
                          {{"labels_a", d.labels_a},
                           {"wrong_a", d.wrong_a},
                           {"labels_b", d.labels_b},
                           {"wrong_b", d.wrong_b},
                           {"difference_lower", d.diff_lower},
                           {"difference_upper", d.diff_upper},
                           {"b_lower", d.b_lower},
                           {"encodes_per_request_a", d.cost_a},
                           {"encodes_per_request_b", d.cost_b}}}});
  return {{"running", running}, {"decisions", decisions}};
}

} // namespace

std::string encode_agent_with_canaries(const agent_snapshot& a, const model_listing& l) {
  auto j = agent_json(a);
  j["canaries"] = canaries_json(l);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_model_listing(const model_listing& l) {
  auto versions = json::array();
  for (const auto& v : l.versions)
    versions.push_back({{"model", v.model},
                        {"version", v.version},
                        {"declared", v.declared},
                        {"architecture", v.architecture},
                        {"state", to_string(v.state)},
                        {"default", v.is_default},
                        {"bytes", v.bytes},
                        {"input_dim", v.input_dim},
                        {"embedding_dim", v.embedding_dim},
                        {"warm_encodes", v.warm_encodes}});
  json j = {{"default_model", l.default_model},
            {"bytes", l.bytes},
            {"max_bytes", l.max_bytes},
            {"versions", versions},
            {"canaries", canaries_json(l)}};
  if (!l.version.empty())
    j["version"] = l.version;
  if (!l.previous_default.empty())
    j["previous_default"] = l.previous_default;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

status check_admin(std::string_view authorization, std::string_view token) {
  if (token.empty())
    return {errc::forbidden, "the admin API is disabled: set admin.token to enable it"};
  // RFC 7235: the scheme is case-insensitive, and one or more spaces
  // separate it from the credentials.
  constexpr std::string_view scheme = "bearer";
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  bool is_bearer = authorization.size() > scheme.size() && authorization[scheme.size()] == ' ';
  for (std::size_t i = 0; is_bearer && i < scheme.size(); ++i)
    is_bearer = lower(authorization[i]) == scheme[i];
  if (!is_bearer)
    return {errc::unauthorized, "missing 'Authorization: Bearer <token>' header"};
  auto given = authorization.substr(scheme.size());
  while (!given.empty() && given.front() == ' ')
    given.remove_prefix(1);
  // Constant time in the token's length: no early exit on the first mismatch.
  unsigned diff = given.size() == token.size() ? 0u : 1u;
  for (std::size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned>(static_cast<unsigned char>(token[i])
                                  ^ static_cast<unsigned char>(i < given.size() ? given[i] : 0));
  if (diff != 0)
    return {errc::unauthorized, "wrong admin token"};
  return ok();
}

std::string encode_health(bool cache_enabled, std::uint32_t workers, std::size_t in_flight,
                          std::string_view version) {
  std::string out = "{\"status\":\"";
  out += workers > 0 ? "ok" : "degraded";
  out += "\",\"cache_enabled\":";
  out += cache_enabled ? "true" : "false";
  out += ",\"workers\":" + std::to_string(workers);
  out += ",\"in_flight\":" + std::to_string(in_flight) + ",\"model_version\":\"";
  out.append(version.data(), version.size());
  out += "\"}";
  return out;
}

// -- KServe v2 ---------------------------------------------------------------------

namespace {

/// The deepest nesting of arrays and objects in `body` outside strings
/// (checked before a DOM is built, so that no document can be nested
/// deeper than the protocol needs).
std::size_t nesting_depth(std::string_view body) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

const char* json_kind(const json& j) {
  switch (j.type()) {
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::null:
      return "null";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    default:
      return "a value";
  }
}

error bad(std::string message) {
  return {errc::bad_request, std::move(message)};
}

/// A whole number held by `j` (an integer, or a float without fraction).
bool whole_number(const json& j, double& v) {
  if (!j.is_number())
    return false;
  v = j.get<double>();
  return std::isfinite(v) && std::floor(v) == v;
}

/// The request-level "parameters" of an inference request: the same
/// options as a /predict body, with the same ranges.
std::optional<error> read_parameters(const json& params, predict_request& req) {
  if (!params.is_object())
    return bad(std::string{"'parameters' must be an object, not "} + json_kind(params));
  if (auto i = params.find("use_cache"); i != params.end()) {
    if (!i->is_boolean())
      return bad(std::string{"parameter 'use_cache' must be true or false, not "} + json_kind(*i));
    req.use_cache = i->get<bool>();
  }
  if (auto i = params.find("max_age_ms"); i != params.end()) {
    double v = 0.0;
    if (!whole_number(*i, v) || v < 0.0 || v > static_cast<double>(max_age_limit_ms))
      return bad("parameter 'max_age_ms' must be an integer in [0, "
                 + std::to_string(max_age_limit_ms) + "] (a year)");
    req.max_age_ms = static_cast<std::int64_t>(v);
  }
  if (auto i = params.find("timeout_ms"); i != params.end()) {
    double v = 0.0;
    if (!whole_number(*i, v) || v < 1.0 || v > static_cast<double>(timeout_limit_ms))
      return bad("parameter 'timeout_ms' must be an integer in [1, "
                 + std::to_string(timeout_limit_ms) + "] (ten minutes)");
    req.timeout_ms = static_cast<std::int64_t>(v);
  }
  if (auto i = params.find("max_wrong_rate"); i != params.end()) {
    double v = i->is_number() ? i->get<double>() : 0.0;
    if (!i->is_number() || !(v > 0.0 && v <= 1.0))
      return bad("parameter 'max_wrong_rate' must be a number in (0, 1]");
    req.max_wrong_rate = v;
  }
  return std::nullopt;
}

/// Appends one tensor element, which must be a finite 32-bit float.
std::optional<error> push_value(const json& v, std::size_t index, std::vector<float>& out) {
  if (!v.is_number())
    return bad("input 'features': data[" + std::to_string(index) + "] must be a number, not "
               + json_kind(v));
  auto d = v.get<double>();
  if (!std::isfinite(d) || std::fabs(d) > static_cast<double>(FLT_MAX))
    return bad("input 'features': data[" + std::to_string(index)
               + "] is not a finite 32-bit float");
  out.push_back(static_cast<float>(d));
  return std::nullopt;
}

/// The input tensor: name, datatype, shape [T, D] and T x D values, flat
/// or nested by rows.
std::optional<error> read_input(const json& in, const decode_limits& limits, predict_request& req) {
  if (!in.is_object())
    return bad(std::string{"inputs[0] must be an object, not "} + json_kind(in));
  auto name = in.find("name");
  if (name == in.end() || !name->is_string())
    return bad("inputs[0] needs a string 'name' ('features')");
  if (name->get_ref<const std::string&>() != "features")
    return bad("unknown input '" + name->get<std::string>()
               + "': this model has one input, 'features'");
  auto type = in.find("datatype");
  if (type == in.end() || !type->is_string())
    return bad("input 'features' needs a string 'datatype' (FP32)");
  if (type->get_ref<const std::string&>() != "FP32")
    return bad("input 'features' must have datatype FP32, got '" + type->get<std::string>() + "'");
  auto dims = "[T, " + std::to_string(limits.input_dim)
              + "] with 1 <= T <= " + std::to_string(limits.max_rows);
  auto shape = in.find("shape");
  if (shape == in.end() || !shape->is_array())
    return bad("input 'features' needs a 'shape' array " + dims);
  double rows = 0.0;
  double cols = 0.0;
  if (shape->size() != 2 || !whole_number((*shape)[0], rows) || !whole_number((*shape)[1], cols))
    return bad("input 'features' must have shape " + dims + ", got " + shape->dump());
  if (cols != static_cast<double>(limits.input_dim) || rows < 1.0
      || rows > static_cast<double>(limits.max_rows))
    return bad("input 'features' must have shape " + dims + ", got " + shape->dump());
  auto t = static_cast<std::size_t>(rows);
  auto expected = t * limits.input_dim;
  auto data = in.find("data");
  if (data == in.end() || !data->is_array())
    return bad("input 'features' needs a 'data' array of " + std::to_string(expected)
               + " numbers (flat, or " + std::to_string(t) + " rows of "
               + std::to_string(limits.input_dim) + ")");
  req.features.reserve(expected);
  if (!data->empty() && (*data)[0].is_array()) {
    // Nested by rows.
    if (data->size() != t)
      return bad("input 'features' has " + std::to_string(data->size())
                 + " rows of data, its shape says " + std::to_string(t));
    for (std::size_t r = 0; r < t; ++r) {
      const auto& row = (*data)[r];
      if (!row.is_array() || row.size() != limits.input_dim)
        return bad("input 'features': data row " + std::to_string(r) + " must be an array of "
                   + std::to_string(limits.input_dim) + " numbers");
      for (const auto& v : row)
        if (auto e = push_value(v, req.features.size(), req.features))
          return e;
    }
  } else {
    if (data->size() != expected)
      return bad("input 'features' has " + std::to_string(data->size())
                 + " values of data, its shape " + shape->dump() + " needs "
                 + std::to_string(expected));
    for (const auto& v : *data)
      if (auto e = push_value(v, req.features.size(), req.features))
        return e;
  }
  req.rows = static_cast<std::uint32_t>(t);
  return std::nullopt;
}

} // namespace

result<infer_request> decode_infer(std::string_view body, const decode_limits& limits) {
  if (nesting_depth(body) > max_infer_nesting)
    return bad("the body nests arrays and objects deeper than " + std::to_string(max_infer_nesting)
               + " levels");
  auto j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded())
    return bad("malformed JSON: the body is not a JSON document");
  if (!j.is_object())
    return bad(std::string{"the body must be a JSON object, not "} + json_kind(j));
  infer_request out;
  if (auto id = j.find("id"); id != j.end()) {
    if (!id->is_string())
      return bad(std::string{"'id' must be a string, not "} + json_kind(*id));
    out.id = id->get<std::string>();
  }
  if (auto p = j.find("parameters"); p != j.end())
    if (auto e = read_parameters(*p, out.req))
      return *e;
  auto inputs = j.find("inputs");
  if (inputs == j.end() || !inputs->is_array())
    return bad("missing 'inputs': an array with one tensor, 'features'");
  if (inputs->size() != 1)
    return bad("'inputs' must hold exactly 1 tensor ('features'), got "
               + std::to_string(inputs->size()));
  if (auto e = read_input((*inputs)[0], limits, out.req))
    return *e;
  if (auto outputs = j.find("outputs"); outputs != j.end()) {
    if (!outputs->is_array())
      return bad(std::string{"'outputs' must be an array, not "} + json_kind(*outputs));
    for (const auto& o : *outputs) {
      auto name = o.is_object() ? o.find("name") : o.end();
      if (!o.is_object() || name == o.end() || !name->is_string())
        return bad("each requested output must be an object with a string 'name'");
      if (name->get_ref<const std::string&>() != "prediction")
        return bad("unknown output '" + name->get<std::string>()
                   + "': this model has one output, 'prediction'");
    }
  }
  return out;
}

std::string encode_infer(const predict_reply& r, double latency_ms, std::string_view model_name,
                         const std::optional<std::string>& id) {
  std::string out;
  out.reserve(320);
  out += "{\"model_name\":";
  out += json(std::string{model_name}).dump(-1, ' ', false, json::error_handler_t::replace);
  out += ",\"model_version\":";
  out += json(r.model_version).dump(-1, ' ', false, json::error_handler_t::replace);
  if (id) {
    out += ",\"id\":";
    out += json(*id).dump(-1, ' ', false, json::error_handler_t::replace);
  }
  out += ",\"parameters\":{\"cache_hit\":";
  out += r.cache_hit ? "true" : "false";
  out += ",\"source\":\"";
  out += to_string(r.source);
  out += "\",\"latency_ms\":";
  append_number(out, latency_ms, std::chars_format::fixed, 4);
  if (r.source == embedding_source::cache) {
    out += ",\"cache_age_ms\":";
    append_number(out, static_cast<double>(r.cache_age_ns) / 1e6, std::chars_format::fixed, 3);
  }
  if (r.risk.present) {
    out += ",\"risk_basis\":\"";
    out += to_string(r.risk.basis);
    out += "\",\"risk_distance\":";
    append_number(out, r.risk.distance, std::chars_format::general, 6);
    out += ",\"p_wrong_upper\":";
    append_number(out, r.risk.p_wrong_upper, std::chars_format::general, 6);
  }
  out += "},\"outputs\":[{\"name\":\"prediction\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[";
  append_number(out, static_cast<double>(r.prediction), std::chars_format::general, 9);
  out += "]}]}";
  return out;
}

std::string encode_server_metadata(std::string_view name, std::string_view version) {
  json j = {
    {"name", std::string{name}}, {"version", std::string{version}}, {"extensions", json::array()}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_model_metadata(const model_description& m) {
  auto versions = json::array();
  for (const auto& v : m.versions)
    versions.push_back(v);
  if (versions.empty())
    versions.push_back(m.version);
  json j = {
    {"name", m.name},
    {"versions", versions},
    {"platform", model_platform},
    {"inputs",
     json::array({{{"name", "features"},
                   {"datatype", "FP32"},
                   {"shape", json::array({-1, static_cast<std::int64_t>(m.input_dim)})}}})},
    {"outputs",
     json::array({{{"name", "prediction"}, {"datatype", "FP32"}, {"shape", json::array({1})}}})},
  };
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_model_ready(std::string_view name, bool ready, std::string_view reason) {
  json j = {{"name", std::string{name}}, {"ready", ready}};
  if (!ready)
    j["reason"] = std::string{reason};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

unsigned status_for(errc code) noexcept {
  switch (code) {
    case errc::invalid_argument:
    case errc::bad_request:
    case errc::non_finite:
    case errc::shape_mismatch:
      return 400;
    case errc::unauthorized:
      return 401;
    case errc::forbidden:
      return 403;
    case errc::not_found:
      return 404;
    case errc::method_not_allowed:
      return 405;
    case errc::request_timeout:
      return 408;
    case errc::payload_too_large:
      return 413;
    case errc::conflict:
      return 409;
    case errc::uri_too_long:
      return 414;
    case errc::unsupported_media_type:
      return 415;
    case errc::unprocessable:
      return 422;
    case errc::header_too_large:
      return 431;
    case errc::cancelled:
      return 499; // nginx's "client closed request": never written, counted
    case errc::overloaded:
    case errc::unavailable:
      return 503;
    case errc::encoder_timeout:
      return 504;
    case errc::invalid_config:
    case errc::io_error:
    case errc::bad_format:
    case errc::internal:
      return 500;
  }
  return 500;
}

} // namespace sil::http_api
