#include "core/model_directory.hpp"

#include <charconv>

#include "core/text.hpp"

namespace sil {

namespace {

error spec_error(std::string_view text, const std::string& why) {
  return {errc::invalid_config, "model spec '" + std::string{text} + "': " + why};
}

} // namespace

status validate_model_name(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return error{errc::bad_request,
                 "a model name has 1 to 64 characters, got " + std::to_string(name.size())};
  for (char c : name) {
    bool fine = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                || c == '_' || c == '-' || c == '.';
    if (!fine)
      return error{errc::bad_request, "model name '" + std::string{name}
                                        + "' may use only letters, digits, '_', '-' and '.'"};
  }
  return ok();
}

result<model_spec> parse_model_spec(std::string_view text) {
  model_spec spec;
  bool seen_name = false;
  bool seen_preset = false;
  bool seen_seed = false;
  bool seen_weights = false;
  std::string_view rest = text;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    auto part = trim_blanks(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (part.empty())
      return spec_error(text, "an empty item between commas");
    auto eq = part.find('=');
    if (eq == std::string_view::npos)
      return spec_error(text, "'" + std::string{part} + "' is not key=value");
    auto key = trim_blanks(part.substr(0, eq));
    auto value = trim_blanks(part.substr(eq + 1));
    auto once = [&](bool& seen) -> status {
      if (seen)
        return spec_error(text, "'" + std::string{key} + "' is given twice");
      seen = true;
      if (value.empty())
        return spec_error(text, "'" + std::string{key} + "' has no value");
      return ok();
    };
    if (key == "name") {
      if (auto st = once(seen_name); !st)
        return st.error();
      if (auto st = validate_model_name(value); !st)
        return spec_error(text, st.error().message);
      spec.name = std::string{value};
    } else if (key == "preset") {
      if (auto st = once(seen_preset); !st)
        return st.error();
      spec.preset = std::string{value};
    } else if (key == "seed") {
      if (auto st = once(seen_seed); !st)
        return st.error();
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), spec.seed);
      if (ec != std::errc{} || end != value.data() + value.size())
        return spec_error(text, "seed '" + std::string{value}
                                  + "' is not a non-negative integer below 2^64");
    } else if (key == "weights") {
      if (auto st = once(seen_weights); !st)
        return st.error();
      spec.weights = std::string{value};
    } else {
      return spec_error(text, "unknown key '" + std::string{key}
                                + "' (expected name, preset, seed or weights)");
    }
  }
  if (!seen_name)
    return spec_error(text, "'name' is required");
  if (seen_weights && seen_seed)
    return spec_error(text, "'seed' and 'weights' exclude each other: a weights file "
                            "carries its own weights");
  return spec;
}

std::string to_string(const model_spec& spec) {
  std::string out = "name=" + spec.name;
  if (!spec.preset.empty())
    out += ",preset=" + spec.preset;
  if (spec.weights.empty())
    out += ",seed=" + std::to_string(spec.seed);
  else
    out += ",weights=" + spec.weights;
  return out;
}

result<model> build_model(const model_spec& spec, std::size_t input_dim) {
  if (auto st = validate_model_name(spec.name); !st)
    return error{errc::invalid_config, st.error().message};
  auto loaded = [&]() -> result<model> {
    if (!spec.weights.empty()) {
      if (spec.preset.empty())
        return model::load(spec.weights);
      auto cfg = preset(spec.preset);
      if (!cfg)
        return cfg.error();
      return model::load(spec.weights, *cfg);
    }
    auto cfg = preset(spec.preset.empty() ? default_preset() : spec.preset);
    if (!cfg)
      return cfg.error();
    return model::from_seed(*cfg, spec.seed);
  }();
  if (!loaded)
    return error{loaded.error().code, "model '" + spec.name + "': " + loaded.error().message};
  if (loaded->input_dim() != input_dim)
    return error{errc::shape_mismatch,
                 "model '" + spec.name + "' takes rows of " + std::to_string(loaded->input_dim())
                   + " values, but this server's inputs have " + std::to_string(input_dim)};
  return loaded;
}

std::size_t model_bytes(const model& m) noexcept {
  return parameter_count(m.config()) * sizeof(float);
}

} // namespace sil
