#include "core/window_stats.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace sil {
namespace {

TEST(WindowStats, AllReportPercentilesOnKnownData) {
  std::vector<double> v;
  for (int i = 1000; i >= 1; --i)
    v.push_back(i);
  auto r = summarize(v);
  EXPECT_EQ(r.count, 1000u);
  EXPECT_DOUBLE_EQ(r.mean, 500.5);
  EXPECT_EQ(r.p50, 500.0);
  EXPECT_EQ(r.p90, 900.0);
  EXPECT_EQ(r.p95, 950.0);
  EXPECT_EQ(r.p99, 990.0);
  EXPECT_EQ(r.p999, 999.0);
  EXPECT_EQ(r.max, 1000.0);
  EXPECT_EQ(summarize({}).count, 0u);
}

TEST(WindowStats, EmptyWindowIsAllZero) {
  auto s = summarize({});
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.p95, 0.0);
  EXPECT_EQ(s.max, 0.0);
}

TEST(WindowStats, NearestRankOnOneToHundred) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) // unsorted on purpose
    v.push_back(i);
  auto s = summarize(v);
  EXPECT_EQ(s.count, 100u);
  EXPECT_EQ(s.p50, 50.0);
  EXPECT_EQ(s.p95, 95.0);
  EXPECT_EQ(s.p99, 99.0);
  EXPECT_EQ(s.max, 100.0);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
}

TEST(WindowStats, SmallWindowsUseObservedValues) {
  auto s = summarize({0.3, 0.1, 0.2});
  EXPECT_EQ(s.p50, 0.2); // rank ceil(1.5) = 2
  EXPECT_EQ(s.p95, 0.3); // rank ceil(2.85) = 3
  auto one = summarize({7.0});
  EXPECT_EQ(one.p50, 7.0);
  EXPECT_EQ(one.p95, 7.0);
}

TEST(WindowStats, NanSamplesAreIgnored) {
  auto s = summarize({1.0, std::nan(""), 3.0});
  EXPECT_EQ(s.count, 2u);
  EXPECT_EQ(s.max, 3.0);
}

} // namespace
} // namespace sil
