#include "actors/encoder_worker.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/tsan.hpp"
#include "logging/log.hpp"

namespace sil {

caf::expected<encoded_batch> encode_with(const model& own, const encode_batch& batch) {
  // A local worker gets the version's model with the batch; a remote one
  // holds one version and says so when asked for another.
  if (!batch.with && !batch.version.empty() && batch.version != own.version())
    return make_caf_error(errc::bad_request, "this encoder serves model version " + own.version()
                                               + ", not " + batch.version);
  const model& m = batch.with ? batch.with : own;
  std::vector<input_view> views;
  views.reserve(batch.items.size());
  // Items nobody waits for any more (their clients went away while the
  // batch travelled here) are left out: their slot stays a null embedding.
  std::vector<std::size_t> live;
  live.reserve(batch.items.size());
  for (std::size_t i = 0; i < batch.items.size(); ++i) {
    const auto& it = batch.items[i];
    if (abandoned(it.wanted_by))
      continue;
    live.push_back(i);
    if (it.rows == 0 || it.features.size() != std::size_t{it.rows} * m.input_dim())
      return make_caf_error(errc::bad_request, "encode item " + std::to_string(i) + " has "
                                                 + std::to_string(it.features.size())
                                                 + " values for " + std::to_string(it.rows)
                                                 + " rows of " + std::to_string(m.input_dim()));
    views.push_back({it.features.data(), it.rows});
  }
  encoded_batch res;
  res.embeddings.resize(batch.items.size());
  if (views.empty()) {
    tsan::handoff_release(&tsan::encoder_batches); // see the end
    return res;
  }
  auto started = std::chrono::steady_clock::now();
  auto out = m.encode_batch(views);
  if (!out)
    return to_caf_error(out.error());
  res.busy_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - started)
                  .count();
  for (const auto& v : views)
    res.flops += m.forward_flops(v.rows);
  for (std::size_t k = 0; k < live.size(); ++k)
    res.embeddings[live[k]] = std::move((*out)[k]);
  // The result is complete; the reply carries it to the pool's thread.
  tsan::handoff_release(&tsan::encoder_batches);
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

encoder_worker_actor::behavior_type detached_encoder_worker(encoder_worker_actor::pointer,
                                                            const model& m, int nice) {
  return {
    [m, nice](encode_atom, const encode_batch& batch) -> caf::result<encoded_batch> {
      // The thread is this worker's own (detached), so its priority is.
      thread_local bool lowered = false;
      if (!lowered && nice > 0) {
        lowered = true;
        auto tid = static_cast<id_t>(::syscall(SYS_gettid));
        if (::setpriority(PRIO_PROCESS, tid, nice) != 0)
          logging::warn("encoder", "cannot lower an encoder thread's priority", {{"nice", nice}});
      }
      auto out = encode_with(m, batch);
      if (!out)
        return std::move(out.error());
      return std::move(*out);
    },
  };
}

} // namespace sil
