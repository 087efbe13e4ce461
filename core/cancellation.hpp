// Cancellation of work whose clients have gone.
//
// Owns: the flag a front end sets when a request's client disconnects, and
// the set of clients that wait on one computation (several, when concurrent
// requests for one key share it). A computation is abandoned only when every
// client that waits on it has gone, so a request that joined another's
// computation never loses its result because the first client left.
// Does not own: detecting the disconnect (the HTTP session) or skipping the
// work (the encoder pool checks `abandoned()` before it encodes).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "core/tsan.hpp"

namespace sil {

/// Set once, by the front end, when a request's client has gone.
class cancel_flag {
public:
  void cancel() noexcept {
    cancelled_.store(true, std::memory_order_relaxed);
  }

  bool cancelled() const noexcept {
    return cancelled_.load(std::memory_order_relaxed);
  }

private:
  std::atomic<bool> cancelled_{false};
};

using cancel_flag_ptr = std::shared_ptr<const cancel_flag>;

/// The clients waiting on one computation. Thread-safe: the cache owner adds
/// clients while the encoder pool asks whether anyone still waits.
class demand {
public:
  /// Wanted by `first` only; a null flag means a client that cannot go
  /// away (an internal caller): the demand is then never abandoned.
  explicit demand(cancel_flag_ptr first) {
    join(std::move(first));
    // Built on one actor's thread and used by others (the cache owner, the
    // pool, a detached encoder worker) after message hand-offs that TSan
    // cannot see (core/tsan.hpp): publish the complete object, and acquire
    // it before every use below.
    tsan::handoff_release(this);
  }

  demand(const demand&) = delete;
  demand& operator=(const demand&) = delete;

  /// Another client waits on the same computation.
  void join(cancel_flag_ptr flag) {
    tsan::handoff_acquire(this);
    std::lock_guard<std::mutex> guard{mu_};
    if (flag == nullptr)
      pinned_ = true;
    else
      flags_.push_back(std::move(flag));
  }

  /// True once every waiting client has gone.
  bool abandoned() const {
    tsan::handoff_acquire(this);
    std::lock_guard<std::mutex> guard{mu_};
    if (pinned_ || flags_.empty())
      return false;
    for (const auto& f : flags_)
      if (!f->cancelled())
        return false;
    return true;
  }

  /// Number of clients that joined (the first one included).
  std::size_t clients() const {
    tsan::handoff_acquire(this);
    std::lock_guard<std::mutex> guard{mu_};
    return flags_.size() + (pinned_ ? 1 : 0);
  }

private:
  mutable std::mutex mu_;
  std::vector<cancel_flag_ptr> flags_;
  bool pinned_ = false;
};

using demand_ptr = std::shared_ptr<demand>;

/// True if `d` exists and nobody waits on it any more.
inline bool abandoned(const demand_ptr& d) {
  return d != nullptr && d->abandoned();
}

} // namespace sil
