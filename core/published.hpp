// A value that one writer replaces whole and many threads read.
//
// Owns: one shared_ptr<const T> and the atomic exchange of it.
// Does not own: what T is; readers keep the snapshot they loaded alive for
// as long as they hold it, so a replaced value lives on until its last
// reader lets go (that is how a replaced model version drains).
#pragma once

#include <atomic>
#include <memory>

namespace sil {

template <class T>
class published {
public:
  explicit published(std::shared_ptr<const T> initial = nullptr)
    : value_(std::move(initial)) {
    // nop
  }

  published(const published&) = delete;
  published& operator=(const published&) = delete;

  /// The current value (null before the first store).
  std::shared_ptr<const T> load() const {
    return std::atomic_load_explicit(&value_, std::memory_order_acquire);
  }

  void store(std::shared_ptr<const T> next) {
    std::atomic_store_explicit(&value_, std::move(next), std::memory_order_release);
  }

private:
  std::shared_ptr<const T> value_;
};

} // namespace sil
