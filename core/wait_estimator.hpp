// How long new encode work would wait, from the encoders' measured speed.
//
// Owns: the encoders' cost per input row, learned from the batches they
// finish (decayed sums, so that the estimate follows a change of load or
// machine within a few dozen batches, and large batches, the ones that
// matter under load, weigh the most), and the expected time until new work
// is done: the rows ahead of it plus its own, times that cost, shared by the
// workers.
// Does not own: the queue (the encoder pool counts the rows it holds) or the
// decision (the pool compares the estimate with the request's deadline).
#pragma once

#include <chrono>
#include <cstdint>

namespace sil {

class wait_estimator {
public:
  /// `decay` in (0, 1): the weight the past keeps at each new batch.
  explicit wait_estimator(double decay = 0.9) noexcept
    : decay_(decay) {
    // nop
  }

  /// One worker finished `rows` rows in `busy` of compute time.
  void on_batch(std::uint64_t rows, std::chrono::nanoseconds busy) noexcept {
    if (rows == 0 || busy.count() <= 0)
      return;
    busy_ns_ = decay_ * busy_ns_ + static_cast<double>(busy.count());
    rows_ = decay_ * rows_ + static_cast<double>(rows);
    ++batches_;
  }

  /// Whether any batch was measured: before that, nothing is estimated.
  bool calibrated() const noexcept {
    return batches_ > 0;
  }

  /// Compute time per row on one worker (0 before calibration).
  double ns_per_row() const noexcept {
    return rows_ > 0.0 ? busy_ns_ / rows_ : 0.0;
  }

  /// Rows per second that `workers` workers finish together.
  double rows_per_second(std::size_t workers) const noexcept {
    auto c = ns_per_row();
    return c > 0.0 ? 1e9 * static_cast<double>(workers) / c : 0.0;
  }

  /// Time until `rows` new rows are done behind `ahead` rows already queued
  /// or being encoded, on `workers` workers. Zero before calibration or
  /// without workers (nothing is known, so nothing is refused).
  std::chrono::nanoseconds expected(std::uint64_t ahead, std::uint64_t rows,
                                    std::size_t workers) const noexcept {
    if (!calibrated() || workers == 0)
      return std::chrono::nanoseconds{0};
    auto ns = static_cast<double>(ahead + rows) * ns_per_row() / static_cast<double>(workers);
    constexpr double cap = 3.6e12; // an hour: no overflow, still "too long"
    return std::chrono::nanoseconds{static_cast<std::int64_t>(ns < cap ? ns : cap)};
  }

  /// Compute time of `rows` rows on one worker.
  std::chrono::nanoseconds cost(std::uint64_t rows) const noexcept {
    return expected(0, rows, 1);
  }

  std::uint64_t batches() const noexcept {
    return batches_;
  }

private:
  double decay_;
  double busy_ns_ = 0.0;
  double rows_ = 0.0;
  std::uint64_t batches_ = 0;
};

} // namespace sil
