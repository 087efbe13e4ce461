// An immutable, reference-counted vector of floats: the encoder's output.
//
// Owns: storage of one embedding in a single heap block (an 8-byte header
// followed by the floats) and cheap sharing of it. Copying an `embedding`
// increments an atomic counter; it never copies the floats. This is what the
// cache hands out on a hit, so a hit costs no allocation and no copy.
//
// Why not std::shared_ptr<const std::vector<float>>: that costs two or three
// allocations and 40+ bytes of control block per entry, and the design
// budgets 64 bytes of overhead per cache entry. Here the handle is 8 bytes and
// the block header 8 bytes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/tsan.hpp"

namespace sil {

/// Immutable shared float vector. A default-constructed embedding is empty
/// (null); every other one has size() >= 1 (or 0 if explicitly made so).
class embedding {
public:
  embedding() noexcept = default;

  /// Allocates an embedding of `n` floats and lets `fill(float*)` write them.
  template <class Fill>
  static embedding make(std::size_t n, Fill&& fill) {
    embedding result{allocate(n)};
    fill(result.mutable_data());
    // Immutable from here on: whichever thread gets a handle (often through
    // a message, which TSan cannot see) reads what was written above.
    tsan::handoff_release(result.block_);
    return result;
  }

  /// Copies `n` floats from `data`.
  static embedding copy_of(const float* data, std::size_t n);

  /// Copies the values of `values`.
  static embedding copy_of(const std::vector<float>& values) {
    return copy_of(values.data(), values.size());
  }

  embedding(const embedding& other) noexcept;
  embedding(embedding&& other) noexcept;
  embedding& operator=(const embedding& other) noexcept;
  embedding& operator=(embedding&& other) noexcept;
  ~embedding();

  /// Whether this handle refers to a block.
  explicit operator bool() const noexcept {
    return block_ != nullptr;
  }

  /// Number of floats; 0 for an empty handle.
  std::size_t size() const noexcept;

  const float* data() const noexcept;

  /// A range over the values, for range-for loops. (The class itself has
  /// no begin()/end(): CAF would take it for a container and serialize it
  /// element by element instead of through its inspect() overload.)
  struct values_view {
    const float* first;
    const float* last;

    const float* begin() const noexcept {
      return first;
    }

    const float* end() const noexcept {
      return last;
    }
  };

  values_view values() const noexcept {
    return {data(), data() + size()};
  }

  float operator[](std::size_t i) const noexcept {
    return data()[i];
  }

  /// Copies the floats into a new vector (for serialization and tests).
  std::vector<float> to_vector() const {
    return {data(), data() + size()};
  }

  /// Number of handles sharing this block (0 for an empty handle).
  std::uint32_t use_count() const noexcept;

  /// Whether both handles share the same block (identity, not equality).
  bool same_block(const embedding& other) const noexcept {
    return block_ == other.block_;
  }

  /// Element-wise equality of the values.
  friend bool operator==(const embedding& a, const embedding& b) noexcept;

  friend bool operator!=(const embedding& a, const embedding& b) noexcept {
    return !(a == b);
  }

private:
  struct header {
    std::atomic<std::uint32_t> refs;
    std::uint32_t size;
  };
  static_assert(sizeof(header) == 8, "embedding header must stay 8 bytes");

  explicit embedding(header* block) noexcept
    : block_(block) {
    // nop
  }

  static header* allocate(std::size_t n);
  float* mutable_data() noexcept;
  void release() noexcept;

  header* block_ = nullptr;
};

} // namespace sil
