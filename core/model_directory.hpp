// Which models and versions a service serves, and which one answers a
// request that names none.
//
// Owns: the model spec (how one version is built: a preset and a seed, or a
// weights file), the rules of the directory (names, duplicates, the memory
// limit, which version may be unloaded or made the default) and the
// resolution of a request's (model, version) to what serves it.
// Does not own: what serves a version (the `Lane` parameter: actors in the
// service, a plain value in tests), nor how a directory is shared between
// threads (core/published.hpp).
//
// A directory is a value. A change copies it, edits the copy and publishes
// it whole, so a request that resolved against one directory keeps a
// consistent view while the next one sees the new default: that is what
// makes a default switch atomic for every request.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/model.hpp"

namespace sil {

/// How to build one model version.
struct model_spec {
  /// The model's served name ([A-Za-z0-9_.-], 1 to 64 characters).
  std::string name;
  /// The architecture preset (ignored by a weights file, which carries its
  /// own shape).
  std::string preset;
  /// A weights file as sil-model writes it; empty: weights from `seed`.
  std::string weights;
  std::uint64_t seed = 42;
};

/// Parses "name=fraud,preset=seed,seed=7" or "name=fraud,weights=/m.bin".
/// Keys: name (required), preset, seed, weights; an unknown or repeated key,
/// a bad number or a bad name is an invalid_config error that says which.
result<model_spec> parse_model_spec(std::string_view text);

/// The spec written back in the form parse_model_spec reads.
std::string to_string(const model_spec& spec);

/// Checks a served model name.
status validate_model_name(std::string_view name);

/// Builds the version a spec describes and checks that it takes inputs of
/// `input_dim` values per row. Errors say what is wrong with the file or the
/// spec (io_error, bad_format, shape_mismatch, invalid_config).
result<model> build_model(const model_spec& spec, std::size_t input_dim);

/// Bytes a model's weights take in memory.
std::size_t model_bytes(const model& m) noexcept;

/// Whether a loaded version may answer requests yet.
enum class version_state : std::uint8_t {
  /// Loaded, warm-up encodes still running: only requests that name it.
  warming,
  /// Warm: it may become its model's default.
  ready,
  /// Unloaded: out of the directory, finishing the requests that hold it.
  draining,
};

/// The state's name (inline: the HTTP codec and its fuzz targets use it
/// without the model code).
inline std::string_view to_string(version_state s) noexcept {
  switch (s) {
    case version_state::warming:
      return "warming";
    case version_state::ready:
      return "ready";
    case version_state::draining:
      return "draining";
  }
  return "unknown";
}

/// The models a service serves, each with one or more versions.
template <class Lane>
class model_directory {
public:
  struct version_entry {
    /// The full version (declared + fingerprint), as answers report it.
    std::string version;
    /// The declared part ("s42", or the weights file's); requests may name
    /// a version by it when it is unambiguous.
    std::string declared;
    std::size_t bytes = 0;
    version_state state = version_state::warming;
    std::shared_ptr<const Lane> lane;
    /// A canary: the same version under another cache policy, taking
    /// `canary_share` of the prefixes (core/canary.hpp: the split hash of
    /// the first `split_values` values).
    std::shared_ptr<const Lane> canary;
    double canary_share = 0.0;
    std::size_t split_values = 0;
  };

  struct model_entry {
    std::string name;
    std::string default_version;
    std::vector<version_entry> versions;
  };

  /// What a request resolves to: pointers into this directory, valid while
  /// it lives (hold the published snapshot, not just the result).
  struct resolved {
    const model_entry* model = nullptr;
    const version_entry* version = nullptr;
  };

  explicit model_directory(std::size_t max_bytes = 0)
    : max_bytes_(max_bytes) {
    // nop
  }

  /// The limit on the bytes of all loaded weights (0: none).
  std::size_t max_bytes() const noexcept {
    return max_bytes_;
  }

  std::size_t bytes() const noexcept {
    std::size_t n = 0;
    for (const auto& m : models_)
      for (const auto& v : m.versions)
        n += v.bytes;
    return n;
  }

  const std::vector<model_entry>& models() const noexcept {
    return models_;
  }

  /// The model that answers requests naming none (the first one added).
  const std::string& default_model() const noexcept {
    return default_model_;
  }

  /// Whether adding a version of `bytes` bytes to `name` is allowed: the
  /// name is valid, the version is new, and the limit holds.
  status can_add(std::string_view name, std::string_view version, std::size_t size) const {
    if (auto ok = validate_model_name(name); !ok)
      return ok;
    if (find(name, version) != nullptr)
      return error{errc::conflict, "model '" + std::string{name} + "' version '"
                                     + std::string{version} + "' is already loaded"};
    if (max_bytes_ > 0 && bytes() + size > max_bytes_)
      return error{errc::conflict, "loading model '" + std::string{name} + "' version '"
                                     + std::string{version} + "' needs " + std::to_string(size)
                                     + " bytes, but " + std::to_string(this->bytes())
                                     + " of models.max-bytes=" + std::to_string(max_bytes_)
                                     + " are in use; unload a version first"};
    return ok();
  }

  /// Adds a version. The first version of a model becomes its default; the
  /// first model becomes the service's default.
  status add(std::string_view name, version_entry v) {
    if (auto ok = can_add(name, v.version, v.bytes); !ok)
      return ok;
    auto* m = find_model(name);
    if (m == nullptr) {
      models_.push_back(model_entry{std::string{name}, v.version, {}});
      m = &models_.back();
      if (default_model_.empty())
        default_model_ = m->name;
    }
    m->versions.push_back(std::move(v));
    return ok();
  }

  /// Marks a version warm.
  status mark_ready(std::string_view name, std::string_view version) {
    auto* v = find_mutable(name, version);
    if (v == nullptr)
      return not_loaded(name, version);
    v->state = version_state::ready;
    return ok();
  }

  /// Makes a loaded, warm version its model's default. Returns the version
  /// that was the default before.
  result<std::string> set_default(std::string_view name, std::string_view version) {
    auto r = resolve(name, version);
    if (!r)
      return r.error();
    if (r->version->state != version_state::ready)
      return error{errc::conflict, "model '" + std::string{name} + "' version '"
                                     + r->version->version
                                     + "' is still warming up; make it the default when it is "
                                       "ready"};
    auto* m = find_model(name);
    auto before = m->default_version;
    m->default_version = r->version->version;
    return before;
  }

  /// Removes a version and returns what served it (the caller drains it).
  /// A model's default version goes only with the model's last version,
  /// and never if that model is the service's default.
  result<std::shared_ptr<const Lane>> remove(std::string_view name, std::string_view version) {
    auto r = resolve(name, version);
    if (!r)
      return r.error();
    auto* m = find_model(name);
    auto full = r->version->version;
    if (full == m->default_version) {
      if (m->versions.size() > 1)
        return error{errc::conflict, "version '" + full + "' is the default of model '" + m->name
                                       + "'; make another version the default first"};
      if (m->name == default_model_)
        return error{errc::conflict, "model '" + m->name + "' is the service's default model and '"
                                       + full
                                       + "' its only version; load and promote another "
                                         "version first"};
    }
    auto i = std::find_if(m->versions.begin(), m->versions.end(),
                          [&](const version_entry& v) { return v.version == full; });
    auto lane = std::move(i->lane);
    m->versions.erase(i);
    if (m->versions.empty())
      models_.erase(std::find_if(models_.begin(), models_.end(),
                                 [&](const model_entry& e) { return e.name == name; }));
    return lane;
  }

  /// Starts a canary lane on a version (conflict if one runs).
  status start_canary(std::string_view name, std::string_view version,
                      std::shared_ptr<const Lane> canary, double share, std::size_t split) {
    auto* v = find_mutable(name, version);
    if (v == nullptr)
      return not_loaded(name, version);
    if (v->canary)
      return error{errc::conflict, "model '" + std::string{name} + "' version '" + v->version
                                     + "' already runs a canary; promote or abort it first"};
    v->canary = std::move(canary);
    v->canary_share = share;
    v->split_values = split;
    return ok();
  }

  /// Ends a version's canary and returns its lane (the caller drains it).
  result<std::shared_ptr<const Lane>> end_canary(std::string_view name, std::string_view version) {
    auto* v = find_mutable(name, version);
    if (v == nullptr)
      return not_loaded(name, version);
    if (!v->canary)
      return error{errc::not_found,
                   "model '" + std::string{name} + "' version '" + v->version + "' runs no canary"};
    auto out = std::move(v->canary);
    v->canary.reset();
    v->canary_share = 0.0;
    v->split_values = 0;
    return out;
  }

  /// Makes a version's canary its lane and returns the lane it replaces.
  result<std::shared_ptr<const Lane>> promote_canary(std::string_view name,
                                                     std::string_view version) {
    auto* v = find_mutable(name, version);
    if (v == nullptr)
      return not_loaded(name, version);
    auto canary = end_canary(name, version);
    if (!canary)
      return canary.error();
    auto old = std::move(v->lane);
    v->lane = std::move(*canary);
    return old;
  }

  /// What answers a request naming `name` (empty: the default model) and
  /// `version` (empty: that model's default; else the full version or, when
  /// only one version declares it, the declared one).
  result<resolved> resolve(std::string_view name, std::string_view version) const {
    if (name.empty())
      name = default_model_;
    const model_entry* m = nullptr;
    for (const auto& e : models_)
      if (e.name == name)
        m = &e;
    if (m == nullptr)
      return error{errc::not_found,
                   "no model '" + std::string{name} + "'; this server serves " + model_names()};
    if (version.empty())
      version = m->default_version;
    const version_entry* hit = nullptr;
    std::size_t declared = 0;
    for (const auto& v : m->versions) {
      if (v.version == version)
        return resolved{m, &v};
      if (v.declared == version) {
        hit = &v;
        ++declared;
      }
    }
    if (declared == 1)
      return resolved{m, hit};
    if (declared > 1)
      return error{errc::bad_request, "version '" + std::string{version} + "' of model '" + m->name
                                        + "' is ambiguous: name the full version ("
                                        + version_names(*m) + ")"};
    return error{errc::not_found, "model '" + m->name + "' has no version '" + std::string{version}
                                    + "'; it has " + version_names(*m)};
  }

private:
  error not_loaded(std::string_view name, std::string_view version) const {
    return {errc::not_found,
            "model '" + std::string{name} + "' has no version '" + std::string{version} + "'"};
  }

  const version_entry* find(std::string_view name, std::string_view version) const {
    for (const auto& m : models_)
      if (m.name == name)
        for (const auto& v : m.versions)
          if (v.version == version)
            return &v;
    return nullptr;
  }

  version_entry* find_mutable(std::string_view name, std::string_view version) {
    return const_cast<version_entry*>(find(name, version));
  }

  model_entry* find_model(std::string_view name) {
    for (auto& m : models_)
      if (m.name == name)
        return &m;
    return nullptr;
  }

  std::string model_names() const {
    std::string out;
    for (const auto& m : models_)
      out += (out.empty() ? "'" : ", '") + m.name + "'";
    return out.empty() ? "no model" : out;
  }

  static std::string version_names(const model_entry& m) {
    std::string out;
    for (const auto& v : m.versions)
      out += (out.empty() ? "'" : ", '") + v.version + "'";
    return out;
  }

  std::size_t max_bytes_ = 0;
  std::string default_model_;
  std::vector<model_entry> models_;
};

} // namespace sil
