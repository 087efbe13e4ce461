// A few atomics the actors publish for readers that must never wait on a
// mailbox (GET /health answers within 10 ms even under overload).
//
// Owns: nothing but the values. Writers: the cache owner (cache_enabled),
// the encoder pool (workers_alive and its load) and the HTTP front end (its
// connection counters). Readers: anyone, lock-free.
#pragma once

#include <atomic>
#include <cstdint>

namespace sil {

/// Lock-free status values shared between the actors and the transport.
struct service_board {
  std::atomic<bool> cache_enabled{true};
  std::atomic<std::uint32_t> workers_alive{0};
  /// The encoder pool's load, for admission at the edge: input rows queued
  /// or at workers, the measured compute time per row on one worker (0:
  /// not measured yet), and the workers in the pool.
  std::atomic<std::uint64_t> encoder_rows_ahead{0};
  std::atomic<std::uint64_t> encoder_ns_per_row{0};
  std::atomic<std::uint32_t> encoder_workers{0};
  /// The front end's connections: open now; refused at the connection cap
  /// (or at the process's file-descriptor limit); accept() failures that
  /// made the acceptor back off.
  std::atomic<std::uint64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::uint64_t> accept_backoffs{0};
  /// Requests whose client went away before the answer (work cancelled).
  std::atomic<std::uint64_t> clients_gone{0};
  /// Requests that ended with 408 (incomplete in time) or were malformed
  /// at the HTTP level (400, 413, 414, 431).
  std::atomic<std::uint64_t> read_timeouts{0};
  std::atomic<std::uint64_t> framing_errors{0};
};

} // namespace sil
