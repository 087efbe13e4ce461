// The cache key: which requests may share one encoder output.
//
// Owns: the definition of the 64-bit prefix key (DESIGN.md §4). The key is a
// hash of the model's name and version, K, and the IEEE-754 bit patterns of
// the first K values of the row-major input, with -0.0 normalized to +0.0.
// Does not own: validation of the request body (that is the HTTP codec's job,
// which rejects non-finite numbers before a key is ever made).
//
// Byte layout hashed, in order (all integers little-endian):
//   u64 len(name), name bytes, u64 len(version), version bytes, u64 K,
//   K x u32 float bits
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

/// Checks that a prefix length `k` is usable for inputs of `min_values`
/// values (K >= 1 and K <= min_values).
status check_prefix_k(std::size_t k, std::size_t min_values);

/// Computes the key of an input of `n` floats (row-major) with prefix length
/// `k`. Fails with `errc::invalid_config` when k == 0 or k > n.
result<prefix_key> make_prefix_key(const model_identity& model, std::size_t k, const float* values,
                                   std::size_t n);

} // namespace sil
