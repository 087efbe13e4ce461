// Divergence between a cached and a fresh embedding: the correctness-risk
// proxy.
//
// Owns: cosine distance and L2 distance, computed in double precision.
// Both are defined for zero vectors (see each function).
#pragma once

#include <cstddef>

#include "core/embedding.hpp"
#include "core/error.hpp"

namespace sil {

/// Cosine and L2 distance of one pair.
struct divergence {
  /// 1 - cos(a, b), in [0, 2].
  double cosine = 0.0;
  /// ||a - b||_2, >= 0.
  double l2 = 0.0;
};

/// Cosine distance 1 - a.b / (|a| |b|), clamped to [0, 2]. If both vectors
/// are zero the distance is 0 (identical); if exactly one is zero it is 1
/// (no shared direction, as for orthogonal vectors).
double cosine_distance(const float* a, const float* b, std::size_t n) noexcept;

/// Euclidean distance ||a - b||.
double l2_distance(const float* a, const float* b, std::size_t n) noexcept;

/// Both distances of two embeddings. Fails with invalid_argument if their
/// sizes differ or either is empty.
result<divergence> measure_divergence(const embedding& cached, const embedding& fresh);

} // namespace sil
