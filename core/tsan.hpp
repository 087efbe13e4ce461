// Happens-before annotations for ThreadSanitizer at message hand-offs.
//
// Debian's CAF is not built with ThreadSanitizer, so TSan cannot see that a
// message's enqueue (on the sending thread) happens before its dequeue (on
// the receiving one). Most reports this causes pass through CAF's message
// frames, and tests/tsan.supp silences them by name. But a payload that our
// code fills on one thread and reads in a handler on another has no CAF
// frame in the reading stack, and the sending stack is lost once the sender
// has made more memory accesses than TSan's history holds (a mailbox
// backlog): no rule could silence that without also silencing a real race
// between a handler and a plain thread.
//
// For those hand-offs our code states the edge the mailbox provides where
// TSan can see it: the sender calls handoff_release(c) right after the send
// (so that the message's construction is covered too), the handler calls
// handoff_acquire(c) before it reads anything of the message, on the same
// sync object c. If the handler runs before the release, the sender's stack
// is still in TSan's history and the message rules match it; if it runs
// later, the release has happened. An embedding is published the same way:
// released once complete, acquired by every handle copy and read. Outside
// TSan builds these are empty inline functions.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define SIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SIL_TSAN 1
#endif
#endif

#ifdef SIL_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace sil::tsan {

/// A sync object for one stream of hand-offs.
struct channel {
  char token = 0;
};

/// The read path's batches (actors/hit_path.cpp): accesses to the cache
/// owner, latencies to the metrics aggregator, hits to the ingress.
inline channel read_path_batches;

/// Encoded batches: a local encoder worker fills the result on its own
/// (detached) thread and returns it; the pool reads it in its handler.
inline channel encoder_batches;

/// Predictions: the routes decode a request on an I/O thread and send it to
/// the ingress, which reads it on the scheduler's thread.
inline channel predict_requests;

/// After sending a message (or completing an object) that another thread
/// will read; `p` names the sync object.
inline void handoff_release([[maybe_unused]] const void* p) noexcept {
#ifdef SIL_TSAN
  __tsan_release(const_cast<void*>(p));
#endif
}

/// In the handler, before reading the message (or the object).
inline void handoff_acquire([[maybe_unused]] const void* p) noexcept {
#ifdef SIL_TSAN
  __tsan_acquire(const_cast<void*>(p));
#endif
}

} // namespace sil::tsan
