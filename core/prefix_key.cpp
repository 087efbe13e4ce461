#include "core/prefix_key.hpp"

#include <cstring>
#include <string>

#include "core/hash.hpp"

namespace sil {

status check_prefix_k(std::size_t k, std::size_t min_values) {
  if (k == 0)
    return {errc::invalid_config, "prefix length K must be at least 1"};
  if (k > min_values)
    return {errc::invalid_config, "prefix length K=" + std::to_string(k)
                                    + " exceeds the input length " + std::to_string(min_values)};
  return ok();
}

result<prefix_key> make_prefix_key(const model_identity& model, std::size_t k, const float* values,
                                   std::size_t n) {
  if (auto st = check_prefix_k(k, n); !st)
    return st.error();
  fnv1a64 h;
  h.add_string(model.name);
  h.add_string(model.version);
  h.add_u64(k);
  for (std::size_t i = 0; i < k; ++i) {
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
