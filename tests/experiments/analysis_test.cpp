#include "experiments/analysis.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace sil::lab {
namespace {

TEST(Analysis, AverageRanksShareTies) {
  auto r = average_ranks({10, 20, 20, 5});
  EXPECT_EQ(r, (std::vector<double>{2, 3.5, 3.5, 1}));
}

TEST(Analysis, SpearmanOnKnownData) {
  // Monotone, however non-linear: +1 and -1.
  EXPECT_NEAR(spearman({1, 2, 3, 4, 5}, {1, 4, 9, 16, 100}), 1.0, 1e-12);
  EXPECT_NEAR(spearman({1, 2, 3, 4, 5}, {5, 4, 3, 2, 1}), -1.0, 1e-12);
  // Textbook example: d^2 sum = 4 over n = 5 -> rho = 1 - 6*4/(5*24) = 0.8.
  EXPECT_NEAR(spearman({1, 2, 3, 4, 5}, {2, 1, 4, 3, 5}), 0.8, 1e-12);
  // With ties, the Pearson correlation of average ranks:
  // x ranks 1,2.5,2.5,4; y ranks 1,2,3,4 -> 4.5 / sqrt(4.5 * 5) = 0.9487.
  EXPECT_NEAR(spearman({1, 2, 2, 3}, {1, 2, 3, 4}), 4.5 / std::sqrt(4.5 * 5.0), 1e-12);
  EXPECT_TRUE(std::isnan(spearman({1, 1, 1}, {1, 2, 3})));
  EXPECT_TRUE(std::isnan(spearman({1}, {1})));
  EXPECT_TRUE(std::isnan(spearman({1, 2}, {1, 2, 3})));
}

} // namespace
} // namespace sil::lab
