// The two-stage model: a small Eigen transformer encoder (expensive) and a
// logistic head (cheap). The math is specified in
// docs/model.md and the weights file format in docs/weights-format.md.
//
// Owns: model configuration and presets, deterministic weight
// initialization, the weights file (load/save, as error values), the batched
// forward pass, and the model's identity (name, version, fingerprint).
// Does not own: input validation for HTTP (the codec checks finiteness and
// row lengths), batching policy (encoder workers decide what to batch).
//
// A `model` is an immutable value with shared weights: copying it is cheap
// and its const member functions may run concurrently from many threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/embedding.hpp"
#include "core/error.hpp"

namespace sil {

/// Architecture of the encoder.
struct model_config {
  /// Name of the architecture (the preset name, or the file's name field).
  std::string name = "seed";
  /// Input features per row (D).
  std::size_t input_dim = 32;
  /// Width of the hidden representation and of the embedding.
  std::size_t d_model = 64;
  /// Attention heads per layer; must divide d_model.
  std::size_t heads = 4;
  /// Encoder layers (L).
  std::size_t layers = 2;
  /// Width of the feed-forward block (F).
  std::size_t ff_dim = 128;

  friend bool operator==(const model_config& a, const model_config& b) noexcept {
    return a.input_dim == b.input_dim && a.d_model == b.d_model && a.heads == b.heads
           && a.layers == b.layers && a.ff_dim == b.ff_dim;
  }
};

/// Checks that every dimension is in [1, 65536], heads divides d_model, and
/// the parameter count stays below 2^28 floats (1 GiB).
status validate(const model_config& cfg);

/// Number of floats in a weights set of this shape.
std::size_t parameter_count(const model_config& cfg) noexcept;

/// The names of the built-in presets, default first.
std::vector<std::string> preset_names();

/// The preset used when none is configured ("base").
std::string_view default_preset();

/// Returns a built-in preset: "seed" (the original: 32 -> 64, 2 layers,
/// 4 heads, ff 128) or "base" (the heavier default: 32 -> 256, 4 layers,
/// 8 heads, ff 1024). Fails with invalid_config for an unknown name.
result<model_config> preset(std::string_view name);

/// A request's input: `rows` rows of input_dim floats, row-major.
struct input_view {
  const float* data = nullptr;
  std::size_t rows = 0;
};

/// The encoder plus head with its weights.
class model {
public:
  /// An empty model: only assignment and operator bool are valid on it.
  model() = default;

  /// Whether this model holds weights.
  explicit operator bool() const noexcept {
    return impl_ != nullptr;
  }

  /// Initializes weights deterministically from `seed` (splitmix64; see
  /// docs/weights-format.md). The declared version is "s<seed>".
  static result<model> from_seed(const model_config& cfg, std::uint64_t seed);

  /// Loads a weights file.
  static result<model> load(const std::string& path);

  /// Loads a weights file and checks that its shape equals `expected`.
  static result<model> load(const std::string& path, const model_config& expected);

  /// Writes the weights file. Fails with io_error.
  status save(const std::string& path) const;

  const model_config& config() const noexcept;

  const std::string& name() const noexcept;

  /// The declared version plus the weights' fingerprint, e.g. "s42-1a2b3c4d":
  /// different weights never share a version, hence never share cache keys.
  const std::string& version() const noexcept;

  /// The version as declared by from_seed or the weights file.
  const std::string& declared_version() const noexcept;

  /// FNV-1a 64 over the shape and the bit patterns of every weight.
  std::uint64_t fingerprint() const noexcept;

  std::size_t input_dim() const noexcept {
    return config().input_dim;
  }

  std::size_t embedding_dim() const noexcept {
    return config().d_model;
  }

  /// Encodes one input. Fails with invalid_argument if it has no rows or no
  /// data.
  result<embedding> encode(input_view x) const;

  /// Encodes several inputs in one pass: every row-wise operation runs as
  /// one GEMM over all rows of all inputs; attention stays within each input.
  /// Gives the same results as encode() on each input, to float rounding.
  result<std::vector<embedding>> encode_batch(const std::vector<input_view>& xs) const;

  /// The head: sigmoid(w . e + b), in [0, 1]. `e` must have embedding_dim()
  /// values.
  float head(const embedding& e) const noexcept;

  /// Floating-point operations of one forward pass over `rows` rows
  /// (multiply and add counted separately), for GFLOP/s figures.
  double forward_flops(std::size_t rows) const noexcept;

  struct impl;

private:
  explicit model(std::shared_ptr<const impl> p)
    : impl_(std::move(p)) {
    // nop
  }

  std::shared_ptr<const impl> impl_;
};

} // namespace sil
