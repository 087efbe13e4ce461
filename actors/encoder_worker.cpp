#include "actors/encoder_worker.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace sil {

caf::expected<encoded_batch> encode_with(const model& m, const encode_batch& batch) {
  std::vector<input_view> views;
  views.reserve(batch.items.size());
  for (std::size_t i = 0; i < batch.items.size(); ++i) {
    const auto& it = batch.items[i];
    if (it.rows == 0 || it.features.size() != std::size_t{it.rows} * m.input_dim())
      return make_caf_error(errc::bad_request, "encode item " + std::to_string(i) + " has "
                                                 + std::to_string(it.features.size())
                                                 + " values for " + std::to_string(it.rows)
                                                 + " rows of " + std::to_string(m.input_dim()));
    views.push_back({it.features.data(), it.rows});
  }
  auto started = std::chrono::steady_clock::now();
  auto out = m.encode_batch(views);
  if (!out)
    return to_caf_error(out.error());
  encoded_batch res;
  res.busy_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - started)
                  .count();
  for (const auto& v : views)
    res.flops += m.forward_flops(v.rows);
  res.embeddings = std::move(*out);
  return res;
}

encoder_worker_actor::behavior_type encoder_worker(encoder_worker_actor::pointer, const model& m) {
  return {
    [m](encode_atom, const encode_batch& batch) -> caf::result<encoded_batch> {
      auto out = encode_with(m, batch);
      if (!out)
        return std::move(out.error());
      return std::move(*out);
    },
  };
}

} // namespace sil
