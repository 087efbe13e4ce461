// Small, portable, deterministic hashing and random-number primitives.
//
// Owns: FNV-1a (64-bit) streaming hash, the splitmix64 mixer/generator.
// These are specified bit for bit (see docs/weights-format.md) so that the
// independent Python reference model reproduces the same weights and keys.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sil {

/// The splitmix64 finalizer: a bijective 64-bit mixer with full avalanche.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// splitmix64 generator (Steele, Lea, Flood 2014): deterministic on every
/// platform, unlike the distributions of <random>.
class splitmix64 {
public:
  explicit constexpr splitmix64(std::uint64_t seed) noexcept
    : state_(seed) {
    // nop
  }

  /// Returns the next 64 random bits.
  constexpr std::uint64_t next() noexcept {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix64(state_);
  }

  /// Returns a double uniformly distributed in [0, 1) with 53 random bits.
  constexpr double uniform() noexcept {
    return static_cast<double>(next() >> 11) * 0x1.0p-53;
  }

private:
  std::uint64_t state_;
};

/// Streaming 64-bit FNV-1a hash.
class fnv1a64 {
public:
  static constexpr std::uint64_t offset_basis = 0xcbf29ce484222325ULL;
  static constexpr std::uint64_t prime = 0x100000001b3ULL;

  constexpr void add_byte(std::uint8_t b) noexcept {
    state_ = (state_ ^ b) * prime;
  }

  /// Adds `x` as 8 little-endian bytes.
  constexpr void add_u64(std::uint64_t x) noexcept {
    for (int i = 0; i < 8; ++i)
      add_byte(static_cast<std::uint8_t>(x >> (8 * i)));
  }

  /// Adds `x` as 4 little-endian bytes.
  constexpr void add_u32(std::uint32_t x) noexcept {
    for (int i = 0; i < 4; ++i)
      add_byte(static_cast<std::uint8_t>(x >> (8 * i)));
  }

  /// Adds the length (as u64) and then the bytes of `s`, so that
  /// ("ab","c") and ("a","bc") hash differently.
  constexpr void add_string(std::string_view s) noexcept {
    add_u64(s.size());
    for (char c : s)
      add_byte(static_cast<std::uint8_t>(c));
  }

  constexpr std::uint64_t value() const noexcept {
    return state_;
  }

private:
  std::uint64_t state_ = offset_basis;
};

} // namespace sil
