#include "core/model_directory.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/published.hpp"

namespace sil {
namespace {

using directory = model_directory<std::string>;

directory::version_entry entry(std::string version, std::string declared = "",
                               std::size_t bytes = 100,
                               version_state state = version_state::ready) {
  directory::version_entry v;
  v.version = std::move(version);
  v.declared = std::move(declared);
  v.bytes = bytes;
  v.state = state;
  v.lane = std::make_shared<const std::string>("lane of " + v.version);
  return v;
}

TEST(ModelSpec, ParsesEveryKeyAndWritesItBack) {
  auto s = parse_model_spec("name=fraud, preset=seed ,seed=7");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->name, "fraud");
  EXPECT_EQ(s->preset, "seed");
  EXPECT_EQ(s->seed, 7u);
  EXPECT_TRUE(s->weights.empty());
  EXPECT_EQ(to_string(*s), "name=fraud,preset=seed,seed=7");
  auto back = parse_model_spec(to_string(*s));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->seed, 7u);
  auto w = parse_model_spec("name=churn,weights=/tmp/m.bin");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->weights, "/tmp/m.bin");
  EXPECT_EQ(to_string(*w), "name=churn,weights=/tmp/m.bin");
}

TEST(ModelSpec, RefusesWhatItCannotReadAndSaysWhy) {
  struct bad_case {
    const char* text;
    const char* says;
  };
  for (auto [text, says] :
       {bad_case{"preset=seed", "'name' is required"}, bad_case{"name=a,name=b", "given twice"},
        bad_case{"name=a,colour=red", "unknown key 'colour'"},
        bad_case{"name=a,seed=-1", "non-negative integer"},
        bad_case{"name=a,seed=12x", "non-negative integer"},
        bad_case{"name=a,,seed=1", "empty item"}, bad_case{"name=a,seed", "not key=value"},
        bad_case{"name=a b", "only letters"}, bad_case{"name=", "no value"},
        bad_case{"name=a,seed=1,weights=/m", "exclude each other"}}) {
    auto s = parse_model_spec(text);
    ASSERT_FALSE(s) << text;
    EXPECT_EQ(s.error().code, errc::invalid_config) << text;
    EXPECT_NE(s.error().message.find(says), std::string::npos) << text << ": " << s.error().message;
  }
}

TEST(ModelSpec, BuildsPresetsAndRefusesBadWeightsFiles) {
  auto m = build_model({"tiny", "seed", "", 9}, 32);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->declared_version(), "s9");
  EXPECT_EQ(model_bytes(*m), parameter_count(m->config()) * sizeof(float));
  auto unknown = build_model({"tiny", "huge", "", 9}, 32);
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("model 'tiny'"), std::string::npos);
  auto wrong_dim = build_model({"tiny", "seed", "", 9}, 16);
  ASSERT_FALSE(wrong_dim);
  EXPECT_EQ(wrong_dim.error().code, errc::shape_mismatch);

  std::filesystem::path dir = SIL_TEST_TMPDIR;
  auto file = (dir / "model_directory_weights.bin").string();
  ASSERT_TRUE(m->save(file));
  auto reloaded = build_model({"tiny", "", file, 0}, 32);
  ASSERT_TRUE(reloaded) << reloaded.error().message;
  EXPECT_EQ(reloaded->version(), m->version());
  // The file is the seed preset's shape, not base's.
  auto shape = build_model({"tiny", "base", file, 0}, 32);
  ASSERT_FALSE(shape);
  EXPECT_EQ(shape.error().code, errc::shape_mismatch);
  // A truncated file.
  auto size = std::filesystem::file_size(file);
  std::filesystem::resize_file(file, size / 2);
  auto cut = build_model({"tiny", "", file, 0}, 32);
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code, errc::bad_format) << cut.error().message;
  auto missing = build_model({"tiny", "", file + ".absent", 0}, 32);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, errc::io_error);
}

TEST(ModelDirectory, TheFirstModelAndVersionAreTheDefaults) {
  directory d;
  ASSERT_TRUE(d.add("fraud", entry("s1-aaaa", "s1")));
  ASSERT_TRUE(d.add("fraud", entry("s2-bbbb", "s2")));
  ASSERT_TRUE(d.add("churn", entry("s3-cccc", "s3")));
  EXPECT_EQ(d.default_model(), "fraud");
  auto r = d.resolve("", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->model->name, "fraud");
  EXPECT_EQ(r->version->version, "s1-aaaa");
  EXPECT_EQ(*r->version->lane, "lane of s1-aaaa");
  auto churn = d.resolve("churn", "");
  ASSERT_TRUE(churn);
  EXPECT_EQ(churn->version->version, "s3-cccc");
  EXPECT_EQ(d.bytes(), 300u);
}

TEST(ModelDirectory, ResolvesFullAndDeclaredVersionsAndRefusesUnknownOnes) {
  directory d;
  ASSERT_TRUE(d.add("fraud", entry("s1-aaaa", "s1")));
  ASSERT_TRUE(d.add("fraud", entry("s1-bbbb", "s1"))); // same seed, other weights
  ASSERT_TRUE(d.add("fraud", entry("s2-cccc", "s2")));
  auto full = d.resolve("fraud", "s1-bbbb");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->version->version, "s1-bbbb");
  auto declared = d.resolve("fraud", "s2");
  ASSERT_TRUE(declared);
  EXPECT_EQ(declared->version->version, "s2-cccc");
  auto ambiguous = d.resolve("fraud", "s1");
  ASSERT_FALSE(ambiguous);
  EXPECT_EQ(ambiguous.error().code, errc::bad_request);
  EXPECT_NE(ambiguous.error().message.find("s1-aaaa"), std::string::npos);
  auto version = d.resolve("fraud", "s9");
  ASSERT_FALSE(version);
  EXPECT_EQ(version.error().code, errc::not_found);
  EXPECT_NE(version.error().message.find("'s2-cccc'"), std::string::npos);
  auto model = d.resolve("nope", "");
  ASSERT_FALSE(model);
  EXPECT_EQ(model.error().code, errc::not_found);
  EXPECT_NE(model.error().message.find("'fraud'"), std::string::npos);
}

TEST(ModelDirectory, RefusesDuplicatesBadNamesAndLoadsPastTheLimit) {
  directory d{250};
  ASSERT_TRUE(d.add("fraud", entry("s1-aaaa", "s1", 100)));
  auto twice = d.add("fraud", entry("s1-aaaa", "s1", 100));
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, errc::conflict);
  auto name = d.add("fr aud", entry("s2-bbbb", "s2", 100));
  ASSERT_FALSE(name);
  EXPECT_EQ(name.error().code, errc::bad_request);
  ASSERT_TRUE(d.add("fraud", entry("s2-bbbb", "s2", 100)));
  auto full = d.add("churn", entry("s3-cccc", "s3", 100));
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, errc::conflict);
  EXPECT_NE(full.error().message.find("models.max-bytes=250"), std::string::npos);
  EXPECT_NE(full.error().message.find("200"), std::string::npos) << full.error().message;
  EXPECT_EQ(d.bytes(), 200u);
  // Unloading makes room.
  ASSERT_TRUE(d.remove("fraud", "s2-bbbb"));
  EXPECT_TRUE(d.add("churn", entry("s3-cccc", "s3", 100)));
}

TEST(ModelDirectory, OnlyAWarmVersionBecomesTheDefault) {
  directory d;
  ASSERT_TRUE(d.add("fraud", entry("s1-aaaa", "s1")));
  ASSERT_TRUE(d.add("fraud", entry("s2-bbbb", "s2", 100, version_state::warming)));
  auto cold = d.set_default("fraud", "s2");
  ASSERT_FALSE(cold);
  EXPECT_EQ(cold.error().code, errc::conflict);
  ASSERT_TRUE(d.mark_ready("fraud", "s2-bbbb"));
  auto before = d.set_default("fraud", "s2");
  ASSERT_TRUE(before) << before.error().message;
  EXPECT_EQ(*before, "s1-aaaa");
  EXPECT_EQ(d.resolve("fraud", "")->version->version, "s2-bbbb");
  EXPECT_FALSE(d.mark_ready("fraud", "s9-zzzz"));
  EXPECT_FALSE(d.set_default("fraud", "s9"));
}

TEST(ModelDirectory, TheDefaultIsUnloadedLastAndTheServiceDefaultNever) {
  directory d;
  ASSERT_TRUE(d.add("fraud", entry("s1-aaaa", "s1")));
  ASSERT_TRUE(d.add("fraud", entry("s2-bbbb", "s2")));
  ASSERT_TRUE(d.add("churn", entry("s3-cccc", "s3")));
  auto busy = d.remove("fraud", "s1");
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, errc::conflict);
  EXPECT_NE(busy.error().message.find("make another version the default"), std::string::npos);
  auto gone = d.remove("fraud", "s2");
  ASSERT_TRUE(gone);
  EXPECT_EQ(**gone, "lane of s2-bbbb");
  auto last = d.remove("fraud", "s1");
  ASSERT_FALSE(last);
  EXPECT_NE(last.error().message.find("service's default model"), std::string::npos);
  // Another model's last version takes its model with it.
  ASSERT_TRUE(d.remove("churn", "s3-cccc"));
  EXPECT_EQ(d.models().size(), 1u);
  EXPECT_FALSE(d.resolve("churn", ""));
  EXPECT_FALSE(d.remove("churn", "s3-cccc"));
}

TEST(ModelDirectory, ACanaryStartsOncePromotesOrEnds) {
  directory d;
  ASSERT_TRUE(d.add("fraud", entry("s1-aaaa", "s1")));
  EXPECT_EQ(d.end_canary("fraud", "s1-aaaa").error().code, errc::not_found);
  EXPECT_EQ(d.promote_canary("fraud", "s1-aaaa").error().code, errc::not_found);
  auto b = std::make_shared<const std::string>("canary lane");
  ASSERT_TRUE(d.start_canary("fraud", "s1-aaaa", b, 0.25, 4));
  auto r = d.resolve("fraud", "s1");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->version->canary, "canary lane");
  EXPECT_DOUBLE_EQ(r->version->canary_share, 0.25);
  EXPECT_EQ(r->version->split_values, 4u);
  auto again = d.start_canary("fraud", "s1-aaaa", b, 0.5, 4);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, errc::conflict);
  // Promotion: the canary serves, the old lane is handed back to drain.
  auto old = d.promote_canary("fraud", "s1-aaaa");
  ASSERT_TRUE(old);
  EXPECT_EQ(**old, "lane of s1-aaaa");
  r = d.resolve("fraud", "");
  EXPECT_EQ(*r->version->lane, "canary lane");
  EXPECT_FALSE(r->version->canary);
  EXPECT_DOUBLE_EQ(r->version->canary_share, 0.0);
  // A rollback hands the canary back and keeps the lane.
  ASSERT_TRUE(
    d.start_canary("fraud", "s1-aaaa", std::make_shared<const std::string>("c2"), 0.1, 4));
  auto gone = d.end_canary("fraud", "s1-aaaa");
  ASSERT_TRUE(gone);
  EXPECT_EQ(**gone, "c2");
  EXPECT_EQ(*d.resolve("fraud", "")->version->lane, "canary lane");
  EXPECT_FALSE(d.start_canary("nope", "s1", b, 0.1, 4));
}

TEST(Published, ReadersKeepTheSnapshotTheyLoaded) {
  published<directory> cell;
  EXPECT_EQ(cell.load(), nullptr);
  auto first = std::make_shared<directory>();
  ASSERT_TRUE(first->add("fraud", entry("s1-aaaa", "s1")));
  cell.store(first);
  auto held = cell.load();
  auto next = std::make_shared<directory>(*held);
  ASSERT_TRUE(next->add("fraud", entry("s2-bbbb", "s2")));
  ASSERT_TRUE(next->set_default("fraud", "s2"));
  cell.store(std::move(next));
  EXPECT_EQ(held->resolve("", "")->version->version, "s1-aaaa");
  EXPECT_EQ(cell.load()->resolve("", "")->version->version, "s2-bbbb");
}

} // namespace
} // namespace sil
