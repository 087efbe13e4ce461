#include "core/model.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace sil {
namespace {

model make(std::string_view preset_name, std::uint64_t seed = 42) {
  auto cfg = preset(preset_name);
  EXPECT_TRUE(cfg);
  auto m = model::from_seed(*cfg, seed);
  EXPECT_TRUE(m) << m.error().message;
  return std::move(*m);
}

std::vector<float> random_input(std::size_t rows, std::size_t dim, std::uint32_t seed) {
  std::mt19937 rng{seed};
  std::normal_distribution<float> n{0.0f, 1.0f};
  std::vector<float> x(rows * dim);
  for (auto& v : x)
    v = n(rng);
  return x;
}

std::string tmp_path(const std::string& name) {
  return std::string{SIL_TEST_TMPDIR} + "/" + name;
}

std::string read_bytes(const std::string& path) {
  std::ifstream f{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{f}, std::istreambuf_iterator<char>{}};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f{path, std::ios::binary | std::ios::trunc};
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void put_u32_at(std::string& bytes, std::size_t off, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    bytes[off + static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// -- presets and shapes -----------------------------------------------------------

TEST(Model, PresetsHaveTheDocumentedShapes) {
  auto seed = preset("seed");
  ASSERT_TRUE(seed);
  EXPECT_EQ(seed->input_dim, 32u);
  EXPECT_EQ(seed->d_model, 64u);
  EXPECT_EQ(seed->layers, 2u);
  EXPECT_EQ(seed->heads, 4u);
  EXPECT_EQ(seed->ff_dim, 128u);
  auto base = preset(default_preset());
  ASSERT_TRUE(base);
  EXPECT_EQ(base->name, "base");
  EXPECT_GT(parameter_count(*base), 10 * parameter_count(*seed));
  auto unknown = preset("gigantic");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, errc::invalid_config);
  EXPECT_NE(unknown.error().message.find("gigantic"), std::string::npos);
}

TEST(Model, InvalidConfigsAreRejected) {
  model_config c{"x", 32, 64, 3, 2, 128}; // 3 does not divide 64
  auto m = model::from_seed(c, 1);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::invalid_config);
  EXPECT_FALSE(model::from_seed(model_config{"x", 0, 64, 4, 2, 128}, 1));
  EXPECT_FALSE(model::from_seed(model_config{"x", 32, 64, 4, 100000, 128}, 1));
}

TEST(Model, OutputShapesAndHeadRangeForEveryPreset) {
  for (const auto& name : preset_names()) {
    SCOPED_TRACE(name);
    auto m = make(name);
    EXPECT_EQ(m.name(), name);
    for (std::size_t rows : {1u, 3u, 17u}) {
      auto x = random_input(rows, m.input_dim(), static_cast<std::uint32_t>(rows));
      auto e = m.encode({x.data(), rows});
      ASSERT_TRUE(e);
      EXPECT_EQ(e->size(), m.embedding_dim());
      for (float v : e->values())
        EXPECT_TRUE(std::isfinite(v));
      float p = m.head(*e);
      EXPECT_GE(p, 0.0f);
      EXPECT_LE(p, 1.0f);
    }
    // Extreme but finite inputs stay finite and in range.
    std::vector<float> big(m.input_dim(), 1e6f);
    auto e = m.encode({big.data(), 1});
    ASSERT_TRUE(e);
    float p = m.head(*e);
    EXPECT_TRUE(p >= 0.0f && p <= 1.0f);
  }
}

TEST(Model, HeadSpreadsPredictionsAcrossTheRange) {
  // A model whose head is stuck at 0.5 (or saturated) would make drift
  // invisible; random inputs must give a spread of scores.
  auto m = make("seed");
  float lo = 1.0f;
  float hi = 0.0f;
  for (std::uint32_t s = 0; s < 50; ++s) {
    auto x = random_input(1, 32, s);
    float p = m.head(*m.encode({x.data(), 1}));
    lo = std::min(lo, p);
    hi = std::max(hi, p);
  }
  EXPECT_LT(lo, 0.4f);
  EXPECT_GT(hi, 0.6f);
}

TEST(Model, EncodeRejectsEmptyInput) {
  auto m = make("seed");
  auto e = m.encode({nullptr, 0});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, errc::invalid_argument);
  std::vector<float> x(32, 1.0f);
  auto b = m.encode_batch({{x.data(), 1}, {x.data(), 0}});
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("input 1"), std::string::npos);
  auto none = m.encode_batch({});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

// -- determinism and batching -------------------------------------------------------

TEST(Model, SameSeedSameOutputs) {
  auto a = make("seed", 7);
  auto b = make("seed", 7);
  auto c = make("seed", 8);
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
  EXPECT_EQ(a.version(), b.version());
  EXPECT_NE(a.fingerprint(), c.fingerprint());
  EXPECT_NE(a.version(), c.version());
  EXPECT_EQ(a.declared_version(), "s7");
  EXPECT_EQ(a.version().rfind("s7-", 0), 0u);
  auto x = random_input(4, 32, 99);
  auto ea = a.encode({x.data(), 4});
  auto eb = b.encode({x.data(), 4});
  auto ec = c.encode({x.data(), 4});
  EXPECT_EQ(*ea, *eb); // bit-identical
  EXPECT_NE(*ea, *ec);
}

TEST(Model, OutputsAreBitReproducibleWhateverTheHeapAddress) {
  // Vectorized reductions can depend on memory alignment; a cached and a
  // fresh embedding of the same input must agree exactly.
  for (const auto& name : preset_names()) {
    SCOPED_TRACE(name);
    auto m = make(name);
    auto x = random_input(5, m.input_dim(), 3);
    auto first = *m.encode({x.data(), 5});
    std::vector<embedding> keep; // vary the heap layout between calls
    for (int i = 0; i < 20; ++i) {
      keep.push_back(embedding::copy_of(std::vector<float>(static_cast<std::size_t>(i) + 1)));
      auto again = *m.encode({x.data(), 5});
      ASSERT_EQ(again, first) << "call " << i;
      ASSERT_EQ(m.head(again), m.head(first));
      auto copy = embedding::copy_of(again.to_vector());
      ASSERT_EQ(m.head(copy), m.head(first));
    }
  }
}

TEST(Model, BatchedForwardEqualsSinglePasses) {
  for (const auto& name : preset_names()) {
    SCOPED_TRACE(name);
    auto m = make(name);
    std::vector<std::vector<float>> inputs;
    std::vector<input_view> views;
    for (std::uint32_t i = 0; i < 12; ++i) {
      std::size_t rows = 1 + i % 5;
      inputs.push_back(random_input(rows, m.input_dim(), 1000 + i));
    }
    for (auto& x : inputs)
      views.push_back({x.data(), x.size() / m.input_dim()});
    auto batch = m.encode_batch(views);
    ASSERT_TRUE(batch);
    ASSERT_EQ(batch->size(), views.size());
    double worst = 0.0;
    for (std::size_t i = 0; i < views.size(); ++i) {
      auto single = m.encode(views[i]);
      ASSERT_TRUE(single);
      for (std::size_t j = 0; j < single->size(); ++j)
        worst = std::max(worst, static_cast<double>(std::abs((*single)[j] - (*batch)[i][j])));
      EXPECT_NEAR(m.head(*single), m.head((*batch)[i]), 1e-5);
    }
    EXPECT_LE(worst, 1e-5);
  }
}

TEST(Model, AttentionMixesRowsOnlyWithinOneInput) {
  // Changing input B must not change input A's embedding in the same batch.
  auto m = make("seed");
  auto a = random_input(3, 32, 1);
  auto b1 = random_input(2, 32, 2);
  auto b2 = random_input(2, 32, 3);
  auto r1 = m.encode_batch({{a.data(), 3}, {b1.data(), 2}});
  auto r2 = m.encode_batch({{a.data(), 3}, {b2.data(), 2}});
  ASSERT_TRUE(r1 && r2);
  for (std::size_t j = 0; j < 64; ++j)
    EXPECT_NEAR((*r1)[0][j], (*r2)[0][j], 1e-6);
  EXPECT_NE((*r1)[1], (*r2)[1]);
}

TEST(Model, SuffixChangesTheEmbedding) {
  // The cache reuses embeddings across suffixes; that is only approximate if
  // the encoder actually depends on the suffix.
  auto m = make("seed");
  auto x = random_input(1, 32, 5);
  auto y = x;
  y[31] += 1.0f;
  EXPECT_NE(*m.encode({x.data(), 1}), *m.encode({y.data(), 1}));
}

// -- the reference value --------------------------------------------------------------

TEST(Model, ReferenceValue) {
  // Fixed input: 3 rows of 32, x[t][i] = ((32 t + i) mod 7 - 3) / 4.
  // Expected values computed independently by tools/reference_model.py: a
  // NumPy float64 implementation written from docs/model.md and
  // docs/weights-format.md that shares no code with the C++ model
  // (re-implemented splitmix64 initialization, attention, LayerNorm, head).
  // Run `/usr/bin/python3 tools/reference_model.py` to reproduce them.
  std::vector<float> x(std::size_t{3} * 32);
  for (std::size_t j = 0; j < x.size(); ++j) // j = 32 t + i
    x[j] = static_cast<float>(static_cast<int>(j % 7) - 3) * 0.25f;
  auto m = make("seed", 42);
  auto e = m.encode({x.data(), 3});
  ASSERT_TRUE(e);
  EXPECT_NEAR(m.head(*e), 0.754425559893, 2e-6);
  EXPECT_NEAR((*e)[0], 0.265356377434, 1e-5);
  EXPECT_NEAR((*e)[1], 0.378835540938, 1e-5);
  EXPECT_NEAR((*e)[2], 0.354363942730, 1e-5);
  EXPECT_NEAR((*e)[3], 0.126094984320, 1e-5);
}

TEST(Model, ForwardFlopsGrowWithRows) {
  auto m = make("seed");
  // T=1: 2*32*64 + 2 layers * (2*64*192 + 4*64 + 2*64*64 + 4*64*128) + 2*64
  EXPECT_DOUBLE_EQ(m.forward_flops(1), 4096.0 + 2 * (24576.0 + 256.0 + 8192.0 + 32768.0) + 128.0);
  EXPECT_GT(m.forward_flops(8), 8 * m.forward_flops(1));
}

// -- weights file -------------------------------------------------------------------

TEST(ModelWeights, RoundTripIsExact) {
  auto m = make("seed", 3);
  auto path = tmp_path("roundtrip.silw");
  ASSERT_TRUE(m.save(path));
  auto loaded = model::load(path);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->fingerprint(), m.fingerprint());
  EXPECT_EQ(loaded->version(), m.version());
  EXPECT_EQ(loaded->name(), "seed");
  EXPECT_EQ(loaded->config(), m.config());
  auto x = random_input(5, 32, 11);
  EXPECT_EQ(*loaded->encode({x.data(), 5}), *m.encode({x.data(), 5}));
  // The documented size: header + 4 bytes per parameter.
  auto bytes = read_bytes(path);
  EXPECT_EQ(bytes.size(), 4 + 4 + 20 + 4 + 4 + 4 + 2 + 8 + 4 * parameter_count(m.config()));
  auto checked = model::load(path, *preset("seed"));
  EXPECT_TRUE(checked);
}

TEST(ModelWeights, MissingFileIsAnIoError) {
  auto m = model::load(tmp_path("does-not-exist.silw"));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::io_error);
  EXPECT_NE(m.error().message.find("does-not-exist.silw"), std::string::npos);
}

class CorruptWeights : public ::testing::Test {
protected:
  void SetUp() override {
    // CTest runs tests in parallel processes: one file pair per test.
    auto name = std::string{::testing::UnitTest::GetInstance()->current_test_info()->name()};
    path_ = tmp_path("valid-" + name + ".silw");
    corrupt_path_ = tmp_path("corrupt-" + name + ".silw");
    ASSERT_TRUE(make("seed").save(path_));
    bytes_ = read_bytes(path_);
    ASSERT_GT(bytes_.size(), 100u);
  }

  result<model> load_modified() {
    write_bytes(corrupt_path_, bytes_);
    return model::load(corrupt_path_);
  }

  // Offsets in the documented layout.
  static constexpr std::size_t format_off = 4;
  static constexpr std::size_t heads_off = 16;
  static constexpr std::size_t name_len_off = 28;

  std::size_t first_weight_off() const {
    // name "seed" (4 bytes), version "s42" (3 bytes)
    return 28 + 4 + 4 + 4 + 3 + 8;
  }

  std::string path_;
  std::string corrupt_path_;
  std::string bytes_;
};

TEST_F(CorruptWeights, BadMagic) {
  bytes_[0] = 'X';
  auto m = load_modified();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::bad_format);
  EXPECT_NE(m.error().message.find("magic"), std::string::npos);
}

TEST_F(CorruptWeights, EmptyFile) {
  bytes_.clear();
  auto m = load_modified();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::bad_format);
}

TEST_F(CorruptWeights, UnsupportedFormatVersion) {
  put_u32_at(bytes_, format_off, 2);
  auto m = load_modified();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::bad_format);
  EXPECT_NE(m.error().message.find("version 2"), std::string::npos);
}

TEST_F(CorruptWeights, HeadsNotDividingDModel) {
  put_u32_at(bytes_, heads_off, 5);
  auto m = load_modified();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::shape_mismatch);
}

TEST_F(CorruptWeights, ShapeDisagreesWithTheFloatCount) {
  put_u32_at(bytes_, 20, 3); // layers 2 -> 3
  auto m = load_modified();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::shape_mismatch);
  EXPECT_NE(m.error().message.find("declares"), std::string::npos);
}

TEST_F(CorruptWeights, Truncated) {
  bytes_.resize(bytes_.size() - 3);
  auto m = load_modified();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::bad_format);
  EXPECT_NE(m.error().message.find("truncated"), std::string::npos);
}

TEST_F(CorruptWeights, TruncatedHeader) {
  bytes_.resize(30);
  auto m = load_modified();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::bad_format);
}

TEST_F(CorruptWeights, TrailingBytes) {
  bytes_ += "junk";
  auto m = load_modified();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::bad_format);
}

TEST_F(CorruptWeights, HugeNameLength) {
  put_u32_at(bytes_, name_len_off, 0xffffffffu);
  auto m = load_modified();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::bad_format);
  EXPECT_NE(m.error().message.find("name"), std::string::npos);
}

TEST_F(CorruptWeights, NanValue) {
  put_u32_at(bytes_, first_weight_off() + std::size_t{4} * 10, 0x7fc00000u); // quiet NaN in w_in
  auto m = load_modified();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::non_finite);
  EXPECT_NE(m.error().message.find("w_in"), std::string::npos);
  EXPECT_NE(m.error().message.find("[0,10]"), std::string::npos);
}

TEST_F(CorruptWeights, InfiniteValueInALaterTensor) {
  put_u32_at(bytes_, bytes_.size() - 4, 0x7f800000u); // +inf in b_head
  auto m = load_modified();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::non_finite);
  EXPECT_NE(m.error().message.find("b_head"), std::string::npos);
}

TEST_F(CorruptWeights, WrongShapeForTheConfiguredPreset) {
  auto m = model::load(path_, *preset("base"));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, errc::shape_mismatch);
  EXPECT_NE(m.error().message.find("d_model=64"), std::string::npos);
  EXPECT_NE(m.error().message.find("d_model=256"), std::string::npos);
}

TEST_F(CorruptWeights, UnchangedFileLoads) {
  // Control: the fixture's untouched bytes load, so the failures above come
  // from the corruption and not from the fixture.
  auto m = load_modified();
  ASSERT_TRUE(m) << m.error().message;
}

} // namespace
} // namespace sil
