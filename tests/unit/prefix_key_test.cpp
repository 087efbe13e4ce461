#include "core/prefix_key.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace sil {
namespace {

const model_identity m1{"seed", "s42-00000001"};

prefix_key key(const model_identity& m, std::size_t k, const std::vector<float>& v) {
  auto r = make_prefix_key(m, k, v.data(), v.size());
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : 0;
}

TEST(PrefixKey, EqualPrefixesCollideWhateverTheSuffix) {
  std::vector<float> a{1, 2, 3, 4, 5, 6};
  std::vector<float> b{1, 2, 3, 4, -9, 100};
  EXPECT_EQ(key(m1, 4, a), key(m1, 4, b));
}

TEST(PrefixKey, DifferentPrefixesDiffer) {
  std::vector<float> a{1, 2, 3, 4, 5};
  std::vector<float> b{1, 2, 3, 4.0001f, 5};
  EXPECT_NE(key(m1, 4, a), key(m1, 4, b));
  // The difference is beyond K=3: same key.
  EXPECT_EQ(key(m1, 3, a), key(m1, 3, b));
}

TEST(PrefixKey, KIsPartOfTheKey) {
  std::vector<float> a{1, 2, 3, 4, 5};
  EXPECT_NE(key(m1, 3, a), key(m1, 4, a));
}

TEST(PrefixKey, NegativeZeroEqualsZero) {
  std::vector<float> a{0.0f, 1, 2};
  std::vector<float> b{-0.0f, 1, 2};
  EXPECT_EQ(key(m1, 3, a), key(m1, 3, b));
}

TEST(PrefixKey, ModelVersionAndNameChangeTheKey) {
  std::vector<float> a{1, 2, 3, 4};
  model_identity other_version{"seed", "s42-00000002"};
  model_identity other_name{"base", "s42-00000001"};
  EXPECT_NE(key(m1, 4, a), key(other_version, 4, a));
  EXPECT_NE(key(m1, 4, a), key(other_name, 4, a));
}

TEST(PrefixKey, NameVersionBoundaryIsUnambiguous) {
  std::vector<float> a{1};
  EXPECT_NE(key({"ab", "c"}, 1, a), key({"a", "bc"}, 1, a));
}

TEST(PrefixKey, KLargerThanInputIsAConfigError) {
  std::vector<float> a{1, 2, 3};
  auto r = make_prefix_key(m1, 4, a.data(), a.size());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_config);
  EXPECT_NE(r.error().message.find("K=4"), std::string::npos);
  auto zero = make_prefix_key(m1, 0, a.data(), a.size());
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, errc::invalid_config);
}

TEST(PrefixKey, SpreadsOverManyPrefixes) {
  std::set<prefix_key> keys;
  std::vector<float> v(4);
  for (int i = 0; i < 10000; ++i) {
    v[0] = static_cast<float>(i);
    v[3] = static_cast<float>(i % 7);
    keys.insert(key(m1, 4, v));
  }
  EXPECT_EQ(keys.size(), 10000u);
}

TEST(PrefixKey, IsStableAcrossBuilds) {
  // Pinned value, computed independently from the byte layout documented in
  // core/prefix_key.hpp (FNV-1a 64 + splitmix64 finalizer, in Python). A
  // change of the layout invalidates every recorded experiment, so it must be
  // deliberate.
  std::vector<float> a{1, 1, 1, 1, 0, 0};
  EXPECT_EQ(key(m1, 4, a), 0xe9aa1ca67c8a2854ull);
}

} // namespace
} // namespace sil
