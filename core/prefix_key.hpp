// The cache key: which requests may share one encoder output.
//
// Owns: the definition of the 64-bit prefix key. The key is a hash of the
// model's name and version, the prefix unit and K, the input's shape (rows
// and values), and the IEEE-754 bit patterns of the prefix values, with -0.0
// normalized to +0.0. Inputs of different shapes never share a key, so an
// embedding is never reused for an input of another shape.
//  - unit `values`: the prefix is the first K values of the row-major input
//    (K <= the input's length, else a configuration error);
//  - unit `rows`: the prefix is the first K rows (all rows if the input has
//    fewer than K, as slicing features[:K] does).
// Does not own: validation of the request body (that is the HTTP codec's job,
// which rejects non-finite numbers before a key is ever made).
//
// Byte layout hashed, in order (all integers little-endian):
//   u64 len(name), name bytes, u64 len(version), version bytes,
//   u8 unit (0 values, 1 rows), u64 K, u64 rows, u64 total values,
//   P x u32 float bits (P = number of prefix values)
// hashed with FNV-1a 64 and then passed through the splitmix64 finalizer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.hpp"

namespace sil {

/// 64-bit cache key.
using prefix_key = std::uint64_t;

/// Identifies the model an embedding came from; part of every key.
struct model_identity {
  std::string_view name;
  std::string_view version;
};

/// What K counts.
enum class prefix_unit : std::uint8_t {
  /// The first K values of the row-major input.
  values = 0,
  /// The first K rows.
  rows = 1,
};

const char* to_string(prefix_unit u) noexcept;

/// Parses "values" or "rows".
result<prefix_unit> parse_prefix_unit(std::string_view text);

/// Which part of an input forms the key.
struct prefix_spec {
  prefix_unit unit = prefix_unit::values;
  std::size_t k = 4;
};

/// Checks that a prefix length `k` is usable for inputs of `min_values`
/// values (K >= 1 and K <= min_values).
status check_prefix_k(std::size_t k, std::size_t min_values);

/// Number of leading values that form the prefix of an input of `n` values
/// in `rows` rows. Fails with invalid_config when K == 0, when rows == 0 or
/// does not divide n, or (unit values) when K > n.
result<std::size_t> prefix_values(const prefix_spec& spec, std::size_t n, std::size_t rows);

/// Computes the key of an input of `n` floats (row-major) in `rows` rows.
/// Fails like prefix_values.
result<prefix_key> make_prefix_key(const model_identity& model, const prefix_spec& spec,
                                   const float* values, std::size_t n, std::size_t rows);

} // namespace sil
