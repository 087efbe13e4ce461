#include "core/embedding.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace sil {
namespace {

TEST(Embedding, DefaultIsEmpty) {
  embedding e;
  EXPECT_FALSE(e);
  EXPECT_EQ(e.size(), 0u);
  EXPECT_EQ(e.data(), nullptr);
  EXPECT_EQ(e.use_count(), 0u);
}

TEST(Embedding, CopyOfKeepsValues) {
  std::vector<float> v{1.5f, -2.0f, 0.25f};
  auto e = embedding::copy_of(v);
  ASSERT_TRUE(e);
  EXPECT_EQ(e.size(), 3u);
  EXPECT_EQ(e.to_vector(), v);
  EXPECT_EQ(e[1], -2.0f);
}

TEST(Embedding, CopiesShareTheBlockWithoutCopyingFloats) {
  auto a = embedding::copy_of(std::vector<float>{1, 2, 3});
  auto b = a;
  EXPECT_TRUE(a.same_block(b));
  EXPECT_EQ(a.data(), b.data());
  EXPECT_EQ(a.use_count(), 2u);
  {
    auto c = b;
    EXPECT_EQ(a.use_count(), 3u);
  }
  EXPECT_EQ(a.use_count(), 2u);
  auto moved = std::move(b);
  EXPECT_FALSE(b); // NOLINT(bugprone-use-after-move): checking moved-from state
  EXPECT_EQ(a.use_count(), 2u);
  moved = embedding{};
  EXPECT_EQ(a.use_count(), 1u);
}

TEST(Embedding, SelfAssignmentKeepsTheBlock) {
  auto a = embedding::copy_of(std::vector<float>{4, 5});
  auto& ref = a;
  a = ref;
  EXPECT_EQ(a.use_count(), 1u);
  EXPECT_EQ(a.to_vector(), (std::vector<float>{4, 5}));
}

TEST(Embedding, EqualityComparesValuesNotIdentity) {
  auto a = embedding::copy_of(std::vector<float>{1, 2});
  auto b = embedding::copy_of(std::vector<float>{1, 2});
  auto c = embedding::copy_of(std::vector<float>{1, 3});
  EXPECT_FALSE(a.same_block(b));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, embedding{});
}

TEST(Embedding, ConcurrentCopiesKeepTheCountExact) {
  auto a = embedding::copy_of(std::vector<float>{1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([a] {
      for (int i = 0; i < 10000; ++i) {
        auto copy = a;
        (void)copy;
      }
    });
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(a.use_count(), 1u);
}

} // namespace
} // namespace sil
