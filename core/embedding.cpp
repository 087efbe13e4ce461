#include "core/embedding.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <utility>

namespace sil {

embedding::header* embedding::allocate(std::size_t n) {
  if (n > std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("embedding too large");
  void* mem = ::operator new(sizeof(header) + n * sizeof(float));
  auto* h = new (mem) header;
  h->refs.store(1, std::memory_order_relaxed);
  h->size = static_cast<std::uint32_t>(n);
  // Start the lifetime of the float array that follows the header.
  new (static_cast<char*>(mem) + sizeof(header)) float[n];
  return h;
}

embedding embedding::copy_of(const float* data, std::size_t n) {
  return make(n, [&](float* out) { std::copy(data, data + n, out); });
}

embedding::embedding(const embedding& other) noexcept
  : block_(other.block_) {
  if (block_ != nullptr) {
    tsan::handoff_acquire(block_); // see make()
    block_->refs.fetch_add(1, std::memory_order_relaxed);
  }
}

embedding::embedding(embedding&& other) noexcept
  : block_(other.block_) {
  other.block_ = nullptr;
}

embedding& embedding::operator=(const embedding& other) noexcept {
  // Copy and swap: safe for self-assignment and for sharing one block.
  embedding copy{other};
  std::swap(block_, copy.block_);
  return *this;
}

embedding& embedding::operator=(embedding&& other) noexcept {
  if (this != &other) {
    release();
    block_ = other.block_;
    other.block_ = nullptr;
  }
  return *this;
}

embedding::~embedding() {
  release();
}

void embedding::release() noexcept {
  if (block_ == nullptr)
    return;
  // acq_rel: the last owner must see every write made through other handles.
  if (block_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    block_->~header();
    ::operator delete(static_cast<void*>(block_));
  }
  block_ = nullptr;
}

std::size_t embedding::size() const noexcept {
  return block_ == nullptr ? 0 : block_->size;
}

const float* embedding::data() const noexcept {
  if (block_ == nullptr)
    return nullptr;
  tsan::handoff_acquire(block_); // see make()
  return std::launder(
    reinterpret_cast<const float*>(reinterpret_cast<const char*>(block_) + sizeof(header)));
}

float* embedding::mutable_data() noexcept {
  return std::launder(reinterpret_cast<float*>(reinterpret_cast<char*>(block_) + sizeof(header)));
}

std::uint32_t embedding::use_count() const noexcept {
  return block_ == nullptr ? 0 : block_->refs.load(std::memory_order_relaxed);
}

bool operator==(const embedding& a, const embedding& b) noexcept {
  if (a.size() != b.size())
    return false;
  return a.size() == 0 || std::equal(a.data(), a.data() + a.size(), b.data());
}

} // namespace sil
