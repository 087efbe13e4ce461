// /proc parsing for the process_* metrics: fixed samples of the kernel's
// formats, malformed input, and one sample of this test process itself.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ctime>
#include <limits>
#include <string>
#include <vector>

#include "core/process_stats.hpp"

namespace sil::proc {
namespace {

// A real line from Linux 6.1 (the command "cat"), fields 1-52.
const std::string cat_stat
  = "14767 (cat) R 14765 14765 10403 0 -1 4194304 102 0 0 0 7 3 0 0 20 0 1 0 3998111 3133440 394 "
    "18446744073709551615 94042434105344 94042434125225 140726121979664 0 0 0 0 0 0 0 0 0 17 0 0 "
    "0 0 0 0 94042434141232 94042434142848 94043430846464 140726121982604 140726121982624 "
    "140726121982624 140726121983979 0\n";

TEST(ProcStat, ReadsCpuStartVsizeAndRss) {
  auto st = parse_stat(cat_stat);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->utime_ticks, 7u);
  EXPECT_EQ(st->stime_ticks, 3u);
  EXPECT_EQ(st->start_ticks, 3998111u);
  EXPECT_EQ(st->vsize_bytes, 3133440u);
  EXPECT_EQ(st->rss_pages, 394u);
}

TEST(ProcStat, ACommandNameWithSpacesAndParenthesesDoesNotShiftTheFields) {
  // A thread may rename itself to anything, ") R 1 2" included.
  auto tricky = "42 (sil ) R 1 2 (x) S 1 1 1 0 -1 0 0 0 0 0 11 22 0 0 20 0 9 0 500 1000 7 0\n";
  auto st = parse_stat(tricky);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->utime_ticks, 11u);
  EXPECT_EQ(st->stime_ticks, 22u);
  EXPECT_EQ(st->start_ticks, 500u);
  EXPECT_EQ(st->vsize_bytes, 1000u);
  EXPECT_EQ(st->rss_pages, 7u);
}

TEST(ProcStat, MalformedLinesAreErrorsThatSayWhy) {
  auto no_paren = parse_stat("42 sil R 1 2 3");
  ASSERT_FALSE(no_paren);
  EXPECT_EQ(no_paren.error().code, errc::bad_format);
  auto short_line = parse_stat("42 (sil) R 1 2 3 4 5");
  ASSERT_FALSE(short_line);
  EXPECT_NE(short_line.error().message.find("fields"), std::string::npos)
    << short_line.error().message;
  auto bad = parse_stat("42 (sil) R 1 1 1 0 -1 0 0 0 0 0 x 22 0 0 20 0 9 0 500 1000 7 0");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("field 14"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(parse_stat(""));
}

TEST(ProcStat, BootTimeComesFromTheBtimeLine) {
  auto text = "cpu  1 2 3 4\ncpu0 1 2 3 4\nintr 5 6\nctxt 77\nbtime 1795796616\nprocesses 9\n";
  auto b = parse_boot_time(text);
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(*b, 1795796616u);
  EXPECT_FALSE(parse_boot_time("cpu 1 2 3\nctxt 7\n"));
  EXPECT_FALSE(parse_boot_time("btime soon\n"));
}

TEST(ProcLimits, MaxOpenFilesIsTheSoftLimit) {
  auto limits = "Limit                     Soft Limit           Hard Limit           Units     \n"
                "Max cpu time              unlimited            unlimited            seconds   \n"
                "Max open files            1024                 524288               files     \n"
                "Max locked memory         8388608              8388608              bytes     \n";
  auto m = parse_max_open_files(limits);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(*m, 1024u);
  auto unlimited
    = parse_max_open_files("Max open files            unlimited   unlimited   files\n");
  ASSERT_TRUE(unlimited);
  EXPECT_EQ(*unlimited, std::numeric_limits<std::uint64_t>::max());
  EXPECT_FALSE(parse_max_open_files("Max processes 100 100 processes\n"));
  EXPECT_FALSE(parse_max_open_files("Max open files            many   1024   files\n"));
}

TEST(ProcSample, ConvertsTicksPagesAndBootTimeToPrometheusUnits) {
  stat_fields st;
  st.utime_ticks = 250;
  st.stime_ticks = 50;
  st.start_ticks = 1234;
  st.vsize_bytes = 1u << 30;
  st.rss_pages = 2560;
  auto s = make_sample(st, 1700000000, 4096, 17, 100, 4096);
  EXPECT_DOUBLE_EQ(s.cpu_seconds, 3.0);
  EXPECT_DOUBLE_EQ(s.resident_bytes, 2560.0 * 4096.0);
  EXPECT_DOUBLE_EQ(s.virtual_bytes, 1073741824.0);
  EXPECT_DOUBLE_EQ(s.start_time_seconds, 1700000012.34);
  EXPECT_DOUBLE_EQ(s.open_fds, 17.0);
  EXPECT_DOUBLE_EQ(s.max_fds, 4096.0);
}

// This process, read through /proc: the figures agree with what the
// process knows about itself by other means.
TEST(ProcSample, ReadsThisProcess) {
  auto before = read_self();
  ASSERT_TRUE(before) << before.error().message;
  rlimit rl{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur != RLIM_INFINITY) {
    EXPECT_DOUBLE_EQ(before->max_fds, static_cast<double>(rl.rlim_cur));
  }
  EXPECT_GT(before->resident_bytes, 1e5);
  EXPECT_GE(before->virtual_bytes, before->resident_bytes);
  // Started in the last day, and not in the future.
  auto now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(before->start_time_seconds, now + 2.0);
  EXPECT_GT(before->start_time_seconds, now - 86400.0);
  // Opening five descriptors shows up as five more.
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i)
    fds.push_back(::open("/dev/null", O_RDONLY));
  auto after = read_self();
  for (int fd : fds)
    ::close(fd);
  ASSERT_TRUE(after);
  EXPECT_DOUBLE_EQ(after->open_fds, before->open_fds + 5.0);
  EXPECT_GE(after->cpu_seconds, before->cpu_seconds);
}

} // namespace
} // namespace sil::proc
