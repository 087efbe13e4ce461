#include "core/prefix_key.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace sil {
namespace {

const model_identity m1{"seed", "s42-00000001"};

/// Key of a one-row input, K counted in values.
prefix_key key(const model_identity& m, std::size_t k, const std::vector<float>& v) {
  auto r = make_prefix_key(m, {prefix_unit::values, k}, v.data(), v.size(), 1);
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
  auto r = make_prefix_key(m1, {prefix_unit::values, 4}, a.data(), a.size(), 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_config);
  EXPECT_NE(r.error().message.find("K=4"), std::string::npos);
  auto zero = make_prefix_key(m1, {prefix_unit::values, 0}, a.data(), a.size(), 1);
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
  EXPECT_EQ(key(m1, 4, a), 0xd1cabe5e23732b92ull);
  // unit rows, K=1, two rows of three values: prefix 1, 1, 1
  std::vector<float> b{1, 1, 1, 0, 0, 0};
  auto r = make_prefix_key(m1, {prefix_unit::rows, 1}, b.data(), b.size(), 2);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 0xec65ccf1fa86df0cull);
}

// An input of another shape never reuses an embedding: [A] and [A, C] share
// their first K values (and their first K rows for K = 1) but not a key.
TEST(PrefixKey, ShapeIsPartOfTheKey) {
  std::vector<float> one{1, 2, 3, 4};
  std::vector<float> two{1, 2, 3, 4, 7, 8, 9, 10};
  for (auto unit : {prefix_unit::values, prefix_unit::rows}) {
    auto a = make_prefix_key(m1, {unit, 1}, one.data(), one.size(), 1);
    auto b = make_prefix_key(m1, {unit, 1}, two.data(), two.size(), 2);
    ASSERT_TRUE(a && b);
    EXPECT_NE(*a, *b) << to_string(unit);
  }
  // Same number of values, other row split: other key.
  auto flat = make_prefix_key(m1, {prefix_unit::values, 2}, two.data(), two.size(), 1);
  auto split = make_prefix_key(m1, {prefix_unit::values, 2}, two.data(), two.size(), 2);
  ASSERT_TRUE(flat && split);
  EXPECT_NE(*flat, *split);
}

TEST(PrefixKey, RowsUnitKeysOnTheFirstKRows) {
  // 3 rows of 2 values; K = 2 rows = the first 4 values.
  std::vector<float> a{1, 2, 3, 4, 5, 6};
  std::vector<float> b{1, 2, 3, 4, -5, 60};
  std::vector<float> c{1, 2, 3, 9, 5, 6};
  auto k = [](const std::vector<float>& v, std::size_t kk) {
    return *make_prefix_key(m1, {prefix_unit::rows, kk}, v.data(), v.size(), 3);
  };
  EXPECT_EQ(k(a, 2), k(b, 2));
  EXPECT_NE(k(a, 2), k(c, 2));
  // The same K in values covers only 2 values: c then shares a's key.
  auto kv = [](const std::vector<float>& v) {
    return *make_prefix_key(m1, {prefix_unit::values, 2}, v.data(), v.size(), 3);
  };
  EXPECT_EQ(kv(a), kv(c));
  // Units never collide with each other.
  EXPECT_NE(kv(a), *make_prefix_key(m1, {prefix_unit::rows, 2}, a.data(), a.size(), 3));
  // K beyond the rows: the whole input is the prefix (features[:K]).
  auto whole = prefix_values({prefix_unit::rows, 8}, a.size(), 3);
  ASSERT_TRUE(whole);
  EXPECT_EQ(*whole, 6u);
  EXPECT_NE(k(a, 8), k(b, 8));
}

TEST(PrefixKey, BadShapesAndUnitsAreErrors) {
  std::vector<float> a{1, 2, 3, 4, 5};
  EXPECT_FALSE(make_prefix_key(m1, {prefix_unit::rows, 1}, a.data(), a.size(), 2));
  EXPECT_FALSE(make_prefix_key(m1, {prefix_unit::rows, 1}, a.data(), a.size(), 0));
  EXPECT_FALSE(make_prefix_key(m1, {prefix_unit::rows, 0}, a.data(), a.size(), 1));
  EXPECT_TRUE(parse_prefix_unit("rows"));
  EXPECT_TRUE(parse_prefix_unit("values"));
  auto bad = parse_prefix_unit("cols");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("cache.prefix-unit"), std::string::npos);
}

} // namespace
} // namespace sil
