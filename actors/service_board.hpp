// A few atomics the actors publish for readers that must never wait on a
// mailbox (GET /health answers within 10 ms even under overload).
//
// Owns: nothing but the values. Writers: the cache owner (cache_enabled) and
// the agent supervisor (workers_alive). Readers: anyone, lock-free.
#pragma once

#include <atomic>
#include <cstdint>

namespace sil {

/// Lock-free status values shared between the actors and the transport.
struct service_board {
  std::atomic<bool> cache_enabled{true};
  std::atomic<std::uint32_t> workers_alive{0};
};

} // namespace sil
