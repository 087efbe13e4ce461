// The pure pieces behind load shedding and cancellation: the demand on a
// computation and the expected-wait estimate.
#include <gtest/gtest.h>

#include <thread>

#include "core/cancellation.hpp"
#include "core/wait_estimator.hpp"

namespace sil {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<cancel_flag> flag() {
  return std::make_shared<cancel_flag>();
}

TEST(Demand, AbandonedOnlyWhenEveryClientHasGone) {
  auto a = flag();
  auto b = flag();
  demand d{a};
  d.join(b);
  EXPECT_EQ(d.clients(), 2u);
  EXPECT_FALSE(d.abandoned());
  a->cancel(); // the leader's client left: the joiner still waits
  EXPECT_FALSE(d.abandoned());
  b->cancel();
  EXPECT_TRUE(d.abandoned());
}

TEST(Demand, AClientThatJoinsAfterTheFirstLeftRevivesIt) {
  auto a = flag();
  demand d{a};
  a->cancel();
  EXPECT_TRUE(d.abandoned());
  d.join(flag());
  EXPECT_FALSE(d.abandoned());
}

TEST(Demand, AnInternalCallerIsNeverAbandoned) {
  auto a = flag();
  demand d{nullptr};
  d.join(a);
  a->cancel();
  EXPECT_FALSE(d.abandoned());
  EXPECT_FALSE(abandoned(demand_ptr{}));
}

TEST(Demand, IsSafeAcrossThreads) {
  auto d = std::make_shared<demand>(flag());
  std::vector<std::shared_ptr<cancel_flag>> flags;
  for (int i = 0; i < 64; ++i)
    flags.push_back(flag());
  std::thread joiner{[&] {
    for (auto& f : flags)
      d->join(f);
  }};
  std::size_t seen = 0;
  for (int i = 0; i < 1000; ++i)
    seen += d->abandoned() ? 1 : 0;
  joiner.join();
  EXPECT_EQ(seen, 0u);
  EXPECT_EQ(d->clients(), 65u);
}

TEST(WaitEstimator, EstimatesNothingBeforeTheFirstBatch) {
  wait_estimator w;
  EXPECT_FALSE(w.calibrated());
  EXPECT_EQ(w.expected(1000, 64, 2), 0ns);
  w.on_batch(0, 5ms); // empty or unmeasured batches teach nothing
  w.on_batch(10, 0ns);
  EXPECT_FALSE(w.calibrated());
}

TEST(WaitEstimator, SharesTheRowsAheadAmongWorkers) {
  wait_estimator w;
  w.on_batch(100, 10ms); // 100 us per row
  ASSERT_TRUE(w.calibrated());
  EXPECT_DOUBLE_EQ(w.ns_per_row(), 100'000.0);
  EXPECT_EQ(w.expected(900, 100, 1), 100ms);
  EXPECT_EQ(w.expected(900, 100, 2), 50ms);
  EXPECT_EQ(w.cost(10), 1ms);
  EXPECT_DOUBLE_EQ(w.rows_per_second(2), 20'000.0);
  EXPECT_EQ(w.expected(900, 100, 0), 0ns);
}

TEST(WaitEstimator, LargeBatchesWeighMoreAndTheEstimateFollowsChange) {
  wait_estimator w{0.5};
  w.on_batch(1, 1ms);      // a lone row: 1 ms per row
  w.on_batch(1000, 100ms); // a full batch: 100 us per row
  EXPECT_LT(w.ns_per_row(), 110'000.0);
  for (int i = 0; i < 30; ++i)
    w.on_batch(100, 20ms); // the machine got slower: 200 us per row
  EXPECT_NEAR(w.ns_per_row(), 200'000.0, 1'000.0);
}

TEST(WaitEstimator, SaturatesInsteadOfOverflowing) {
  wait_estimator w;
  w.on_batch(1, std::chrono::hours{1});
  auto e = w.expected(~std::uint64_t{0} / 2, 1, 1);
  EXPECT_GT(e, 0ns);
  EXPECT_LE(e, std::chrono::hours{1});
}

} // namespace
} // namespace sil
