#include "core/prefix_key.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/hash.hpp"

namespace sil {

const char* to_string(prefix_unit u) noexcept {
  return u == prefix_unit::rows ? "rows" : "values";
}

result<prefix_unit> parse_prefix_unit(std::string_view text) {
  if (text == "values")
    return prefix_unit::values;
  if (text == "rows")
    return prefix_unit::rows;
  return error{errc::invalid_config,
               "cache.prefix-unit must be values or rows, got '" + std::string{text} + "'"};
}

status check_prefix_k(std::size_t k, std::size_t min_values) {
  if (k == 0)
    return {errc::invalid_config, "prefix length K must be at least 1"};
  if (k > min_values)
    return {errc::invalid_config, "prefix length K=" + std::to_string(k)
                                    + " exceeds the input length " + std::to_string(min_values)};
  return ok();
}

result<std::size_t> prefix_values(const prefix_spec& spec, std::size_t n, std::size_t rows) {
  if (rows == 0 || n % rows != 0)
    return error{errc::invalid_config, "an input of " + std::to_string(n) + " values cannot have "
                                         + std::to_string(rows) + " rows"};
  if (spec.unit == prefix_unit::values) {
    if (auto st = check_prefix_k(spec.k, n); !st)
      return st.error();
    return spec.k;
  }
  if (spec.k == 0)
    return error{errc::invalid_config, "prefix length K must be at least 1"};
  return std::min(spec.k, rows) * (n / rows);
}

result<prefix_key> make_prefix_key(const model_identity& model, const prefix_spec& spec,
                                   const float* values, std::size_t n, std::size_t rows) {
  auto p = prefix_values(spec, n, rows);
  if (!p)
    return p.error();
  fnv1a64 h;
  h.add_string(model.name);
  h.add_string(model.version);
  h.add_byte(static_cast<std::uint8_t>(spec.unit));
  h.add_u64(spec.k);
  h.add_u64(rows);
  h.add_u64(n);
  for (std::size_t i = 0; i < *p; ++i) {
    float v = values[i];
    if (v == 0.0f)
      v = 0.0f; // -0.0 == 0.0, so this normalizes the sign of zero
    std::uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    h.add_u32(bits);
  }
  return mix64(h.value());
}

} // namespace sil
