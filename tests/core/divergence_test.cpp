#include "core/divergence.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace sil {
namespace {

embedding vec(std::vector<float> v) {
  return embedding::copy_of(v);
}

TEST(Divergence, IdenticalVectorsAreAtDistanceZero) {
  auto d = measure_divergence(vec({1, 2, 3}), vec({1, 2, 3}));
  ASSERT_TRUE(d);
  EXPECT_NEAR(d->cosine, 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(d->l2, 0.0);
}

TEST(Divergence, KnownVectorsGiveKnownDistances) {
  // Orthogonal unit vectors: cos = 0, |a-b| = sqrt(2).
  auto d = measure_divergence(vec({1, 0}), vec({0, 1}));
  ASSERT_TRUE(d);
  EXPECT_NEAR(d->cosine, 1.0, 1e-12);
  EXPECT_NEAR(d->l2, std::sqrt(2.0), 1e-12);
  // Opposite: cos = -1 -> distance 2; |a-b| = |(2,0,0)| = 2.
  d = measure_divergence(vec({1, 0, 0}), vec({-1, 0, 0}));
  EXPECT_NEAR(d->cosine, 2.0, 1e-12);
  EXPECT_NEAR(d->l2, 2.0, 1e-12);
  // (3,4) vs (4,3): cos = 24/25 -> 0.04; |(-1,1)| = sqrt 2.
  d = measure_divergence(vec({3, 4}), vec({4, 3}));
  EXPECT_NEAR(d->cosine, 0.04, 1e-12);
  EXPECT_NEAR(d->l2, std::sqrt(2.0), 1e-12);
  // Parallel with different length: cosine 0, L2 is the length difference.
  d = measure_divergence(vec({1, 1}), vec({3, 3}));
  EXPECT_NEAR(d->cosine, 0.0, 1e-12);
  EXPECT_NEAR(d->l2, std::sqrt(8.0), 1e-12);
}

TEST(Divergence, ZeroVectorsAreWellDefined) {
  auto both = measure_divergence(vec({0, 0, 0}), vec({0, 0, 0}));
  ASSERT_TRUE(both);
  EXPECT_EQ(both->cosine, 0.0);
  EXPECT_EQ(both->l2, 0.0);
  auto one = measure_divergence(vec({0, 0}), vec({3, 4}));
  ASSERT_TRUE(one);
  EXPECT_EQ(one->cosine, 1.0);
  EXPECT_NEAR(one->l2, 5.0, 1e-12);
  EXPECT_FALSE(std::isnan(one->cosine));
}

TEST(Divergence, SizeMismatchIsAnError) {
  auto d = measure_divergence(vec({1, 2}), vec({1, 2, 3}));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, errc::invalid_argument);
  EXPECT_NE(d.error().message.find("2 vs 3"), std::string::npos);
  EXPECT_FALSE(measure_divergence(embedding{}, embedding{}));
}

TEST(Divergence, CosineStaysInRangeUnderRounding) {
  // Nearly identical large vectors: 1 - cos may round below zero.
  std::vector<float> a(256, 1e18f);
  auto d = cosine_distance(a.data(), a.data(), a.size());
  EXPECT_GE(d, 0.0);
  EXPECT_LE(d, 1e-12);
}

} // namespace
} // namespace sil
