// sil-lab's progress lines (terminal vs log) and where it finds plot.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "experiments/locate.hpp"
#include "experiments/progress.hpp"

namespace sil::lab {
namespace {

namespace fs = std::filesystem;

TEST(Progress, EtaIsTheRemainingShareAtTheSamePace) {
  EXPECT_FALSE(eta_seconds(3.0, 0, 100).has_value()); // no pace yet
  ASSERT_TRUE(eta_seconds(2.0, 25, 100).has_value());
  EXPECT_DOUBLE_EQ(*eta_seconds(2.0, 25, 100), 6.0);
  EXPECT_DOUBLE_EQ(*eta_seconds(5.0, 100, 100), 0.0);
  EXPECT_DOUBLE_EQ(*eta_seconds(5.0, 120, 100), 0.0); // more than planned: done
}

TEST(Progress, EtaFormats) {
  EXPECT_EQ(format_eta(std::nullopt), "?");
  EXPECT_EQ(format_eta(0.4), "0 s");
  EXPECT_EQ(format_eta(7.6), "8 s");
  EXPECT_EQ(format_eta(125.0), "2m05s");
  EXPECT_EQ(format_eta(3720.0), "1h02m");
  EXPECT_EQ(format_eta(-3.0), "0 s");
}

struct captured {
  std::vector<std::string> writes;
  progress_meter::sink sink() {
    return [this](const std::string& s) { writes.push_back(s); };
  }
  std::string all() const {
    std::string s;
    for (const auto& w : writes)
      s += w;
    return s;
  }
};

TEST(Progress, ATerminalGetsOneLineRewrittenInPlace) {
  captured out;
  progress_meter m{"[load] steady cache_on", "requests", true, out.sink(), 10.0, 0.0};
  m.update(11.0, 100, 400); // 1 s for 100: 3 s left
  m.update(11.5, 200, 400);
  m.finish(12.0, 400, 400);
  ASSERT_EQ(out.writes.size(), 3u); // every update is written on a terminal
  for (const auto& w : out.writes)
    EXPECT_EQ(w.front(), '\r') << w;
  EXPECT_NE(out.writes[0].find("[load] steady cache_on"), std::string::npos);
  EXPECT_NE(out.writes[0].find("100 / 400 requests  ETA 3 s"), std::string::npos) << out.writes[0];
  EXPECT_NE(out.writes[0].find("  11.0 s"), std::string::npos); // time since the run began
  EXPECT_EQ(out.writes[1].find('\n'), std::string::npos);       // rewritten, not scrolled
  EXPECT_NE(out.writes[2].find("400 / 400 requests  took 2.0 s"), std::string::npos)
    << out.writes[2];
  EXPECT_EQ(out.writes[2].back(), '\n'); // the last line stays
}

TEST(Progress, AShorterLineBlanksTheRestOfTheLongerOne) {
  captured out;
  progress_meter m{"[x]", "items", true, out.sink(), 0.0};
  m.update(1.0, 1, 1000000); // ETA in hours: a long line
  m.update(2.0, 999999, 1000000);
  ASSERT_EQ(out.writes.size(), 2u);
  EXPECT_GE(out.writes[1].size(), out.writes[0].size());
}

TEST(Progress, ALogGetsPlainLinesAtMostEveryIntervalAndTheLast) {
  captured out;
  progress_meter m{"[drift] encode", "trials", false, out.sink(), 0.0, 0.0, 5.0};
  m.update(0.5, 50, 1000); // the first one is written
  m.update(1.0, 100, 1000);
  m.update(4.9, 500, 1000);
  m.update(5.6, 550, 1000); // 5.1 s after the first
  m.update(6.0, 600, 1000);
  m.finish(9.0, 1000, 1000);
  ASSERT_EQ(out.writes.size(), 3u) << out.all();
  EXPECT_EQ(out.all().find('\r'), std::string::npos);
  for (const auto& w : out.writes)
    EXPECT_EQ(w.back(), '\n');
  EXPECT_NE(out.writes[0].find("50 / 1000 trials  ETA 10 s"), std::string::npos) << out.writes[0];
  EXPECT_NE(out.writes[1].find("550 / 1000 trials  ETA"), std::string::npos) << out.writes[1];
  EXPECT_NE(out.writes[2].find("1000 / 1000 trials  took 9.0 s"), std::string::npos);
}

/// A scratch directory for one test, removed first.
fs::path scratch(const std::string& name) {
  auto dir = fs::path{SIL_TEST_TMPDIR} / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream{p} << "# plot\n";
}

TEST(Locate, InstalledLayoutComesBeforeTheBuildTree) {
  auto root = scratch("locate-order");
  auto bin = root / "bin";
  fs::create_directories(bin);
  auto installed = root / "share" / "sil" / "plot.py";
  auto build_tree = root / "experiments" / "plot.py";

  auto none = find_plot_script(nullptr, bin);
  ASSERT_FALSE(none);
  // The message names every place it looked.
  EXPECT_NE(none.error().message.find((root / "share/sil/plot.py").string()), std::string::npos)
    << none.error().message;
  EXPECT_NE(none.error().message.find((root / "experiments/plot.py").string()), std::string::npos);

  touch(build_tree);
  auto found = find_plot_script(nullptr, bin);
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, build_tree.lexically_normal());

  touch(installed);
  found = find_plot_script("", bin); // empty: as if unset
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, installed.lexically_normal());
}

TEST(Locate, TheEnvironmentWinsAndDoesNotFallBack) {
  auto root = scratch("locate-env");
  auto bin = root / "bin";
  fs::create_directories(bin);
  touch(root / "share" / "sil" / "plot.py");
  auto mine = root / "elsewhere" / "my_plot.py";
  touch(mine);
  auto found = find_plot_script(mine.c_str(), bin);
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, mine.lexically_normal());
  // A wrong explicit choice is an error, not a silent fallback.
  auto missing = (root / "nope.py").string();
  auto wrong = find_plot_script(missing.c_str(), bin);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("SIL_PLOT_SCRIPT=" + missing), std::string::npos)
    << wrong.error().message;
}

TEST(Locate, ExecutableDirIsThisTestsDirectory) {
  auto dir = executable_dir(nullptr);
  EXPECT_TRUE(fs::exists(dir / "sil_core_tests")) << dir;
}

} // namespace
} // namespace sil::lab
