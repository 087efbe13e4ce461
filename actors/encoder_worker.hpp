// Encoder worker: encodes one batch per message with the model's batched
// forward pass (one GEMM per layer stage over all rows of the batch).
//
// Owns: nothing but a model reference. Workers run detached (their own
// thread) in production so that encoding, which is long and CPU-bound, never
// occupies the scheduler threads that serve cache hits.
#pragma once

#include "core/model.hpp"
#include "messages/messages.hpp"

namespace sil {

/// The worker's behavior; usable with any spawn option.
encoder_worker_actor::behavior_type encoder_worker(encoder_worker_actor::pointer self,
                                                   const model& m);

/// The behavior of a worker that owns its thread (spawned detached): on its
/// first batch it lowers that thread's CPU priority by `nice` (0: not at
/// all), so that on a busy machine the I/O threads that answer hits and
/// refusals run first and encoding takes the CPU time left over.
encoder_worker_actor::behavior_type detached_encoder_worker(encoder_worker_actor::pointer self,
                                                            const model& m, int nice);

/// Validates a batch against the model and encodes it.
caf::expected<encoded_batch> encode_with(const model& m, const encode_batch& batch);

} // namespace sil
