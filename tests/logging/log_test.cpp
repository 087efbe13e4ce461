// The log's formats (text and JSON lines, access lines), the level
// threshold, files and reopening, through logging/log.hpp.
#include "logging/log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

namespace sil::logging {
namespace {

using json = nlohmann::json;

constexpr const char* ts = "2026-11-26T23:25:22.444Z";

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto nl = text.find('\n', at);
    if (nl == std::string::npos)
      nl = text.size();
    out.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

std::string temp_path(const std::string& name) {
  auto path = std::string{SIL_TEST_TMPDIR} + "/" + name;
  std::remove(path.c_str());
  return path;
}

/// Tests that configure the process's log put the defaults back.
class LogTest : public ::testing::Test {
protected:
  void TearDown() override {
    EXPECT_EQ(configure(options{}), "");
  }
};

TEST(LogFormat, TimestampIsUtcWithMilliseconds) {
  using namespace std::chrono;
  EXPECT_EQ(format_timestamp(system_clock::time_point{milliseconds{1795735522444}}), ts);
  EXPECT_EQ(format_timestamp(system_clock::time_point{milliseconds{0}}),
            "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_timestamp(system_clock::time_point{milliseconds{86399999}}),
            "1970-01-01T23:59:59.999Z");
}

TEST(LogFormat, TextLineHasTimestampLevelComponentMessageAndFields) {
  const field fs[] = {{"action", "shorten_ttl"},
                      {"ttl_s", 15.5},
                      {"labels", 500},
                      {"wrong", 9ull},
                      {"manual", false}};
  EXPECT_EQ(format_event(format::text, ts, level::info, "agent", "decision", fs, 5),
            "2026-11-26T23:25:22.444Z info  agent: decision action=shorten_ttl ttl_s=15.5 "
            "labels=500 wrong=9 manual=false");
  EXPECT_EQ(format_event(format::text, ts, level::warn, "server", "stopped", nullptr, 0),
            "2026-11-26T23:25:22.444Z warn  server: stopped");
  EXPECT_EQ(format_event(format::text, ts, level::error, "x", "y", nullptr, 0).substr(25, 6),
            "error ");
  EXPECT_EQ(format_event(format::text, ts, level::debug, "x", "y", nullptr, 0).substr(25, 6),
            "debug ");
}

TEST(LogFormat, TextQuotesValuesThatNeedItAndStaysOneLine) {
  const std::string ctl{"a\x01"};
  const field fs[] = {{"empty", ""},      {"space", "a b"}, {"quote", "say \"hi\""},  {"eq", "k=v"},
                      {"nl", "one\ntwo"}, {"ctl", ctl},     {"plain", "127.0.0.1:80"}};
  auto line = format_event(format::text, ts, level::info, "c", "two\nlines", fs, 7);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_EQ(line, "2026-11-26T23:25:22.444Z info  c: two\\nlines empty=\"\" space=\"a b\" "
                  "quote=\"say \\\"hi\\\"\" eq=\"k=v\" nl=\"one\\ntwo\" ctl=\"a\\x01\" "
                  "plain=127.0.0.1:80");
}

TEST(LogFormat, JsonLineIsOneObjectWithEveryFieldEscaped) {
  std::string nasty = "q\"uote \\ back\nnew\ttab \x01 caf\xc3\xa9";
  const field fs[] = {{"text", nasty},
                      {"n", -3},
                      {"u", 18446744073709551615ull},
                      {"d", 0.25},
                      {"b", true},
                      {"nan", std::numeric_limits<double>::quiet_NaN()},
                      {"inf", std::numeric_limits<double>::infinity()}};
  auto line = format_event(format::json, ts, level::warn, "http", "m\"sg", fs, 7);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  auto j = json::parse(line); // throws (and fails the test) if not JSON
  EXPECT_EQ(j["ts"], ts);
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["component"], "http");
  EXPECT_EQ(j["msg"], "m\"sg");
  EXPECT_EQ(j["text"], nasty);
  EXPECT_EQ(j["n"], -3);
  EXPECT_EQ(j["u"].get<std::uint64_t>(), 18446744073709551615ull);
  EXPECT_DOUBLE_EQ(j["d"].get<double>(), 0.25);
  EXPECT_EQ(j["b"], true);
  EXPECT_TRUE(j["nan"].is_null());
  EXPECT_TRUE(j["inf"].is_null());
  // Keys keep their order: ts, level, component, msg, then the fields.
  EXPECT_EQ(line.rfind("{\"ts\":\"2026-11-26T23:25:22.444Z\",\"level\":\"warn\",\"component\":"
                       "\"http\",\"msg\":",
                       0),
            0u)
    << line;
  // Text in the text format gets the same non-finite numbers as words.
  auto text = format_event(format::text, ts, level::info, "c", "m", fs + 5, 2);
  EXPECT_NE(text.find("nan=nan inf=inf"), std::string::npos) << text;
}

TEST(LogFormat, JsonFieldsNeverHideTheEventsOwnMembers) {
  const field fs[] = {{"level", "debug"}, {"msg", "x"}, {"ts", 1}, {"component", "y"}};
  auto j = json::parse(format_event(format::json, ts, level::info, "config", "m", fs, 4));
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["msg"], "m");
  EXPECT_EQ(j["ts"], ts);
  EXPECT_EQ(j["component"], "config");
  EXPECT_EQ(j["_level"], "debug");
  EXPECT_EQ(j["_msg"], "x");
  EXPECT_EQ(j["_ts"], 1);
  EXPECT_EQ(j["_component"], "y");
}

TEST(LogFormat, JsonReplacesBytesThatAreNotUtf8) {
  const std::string bad{"a\xff"
                        "b\xc3"};
  const field fs[] = {{"bad", bad}, {"ok", "\xe2\x82\xac"}};
  auto line = format_event(format::json, ts, level::info, "c", "m", fs, 2);
  auto j = json::parse(line);
  EXPECT_EQ(j["bad"], "a\xef\xbf\xbd"
                      "b\xef\xbf\xbd");
  EXPECT_EQ(j["ok"], "\xe2\x82\xac");
}

TEST(LogFormat, AccessTextLineIsCommonLogLike) {
  access_record r;
  r.request_id = "7f3a0c";
  r.remote = "127.0.0.1:53122";
  r.method = "POST";
  r.target = "/predict";
  r.status = 200;
  r.bytes_in = 118;
  r.bytes_out = 87;
  r.latency_ms = 0.4125;
  r.outcome = "hit";
  EXPECT_EQ(format_access(format::text, ts, r),
            "2026-11-26T23:25:22.444Z info  access: 127.0.0.1:53122 \"POST /predict\" 200 87 "
            "id=7f3a0c in=118 ms=0.412 outcome=hit");
  access_record empty;
  empty.method = "GET";
  empty.target = "/x\"y\nz";
  empty.status = 404;
  EXPECT_EQ(format_access(format::text, ts, empty),
            "2026-11-26T23:25:22.444Z info  access: - \"GET /x\\\"y\\nz\" 404 0 id=- in=0 "
            "ms=0.000 outcome=-");
}

TEST(LogFormat, AccessJsonLineHasEveryField) {
  access_record r;
  r.request_id = "abc";
  r.remote = "10.0.0.1:9";
  r.method = "GET";
  r.target = "/stats?\"x\"";
  r.status = 503;
  r.bytes_in = 0;
  r.bytes_out = 64;
  r.latency_ms = 12.5;
  auto j = json::parse(format_access(format::json, ts, r));
  EXPECT_EQ(j["ts"], ts);
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["component"], "access");
  EXPECT_EQ(j["msg"], "request");
  EXPECT_EQ(j["request_id"], "abc");
  EXPECT_EQ(j["remote"], "10.0.0.1:9");
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["target"], "/stats?\"x\"");
  EXPECT_EQ(j["status"], 503);
  EXPECT_EQ(j["bytes_in"], 0);
  EXPECT_EQ(j["bytes_out"], 64);
  EXPECT_DOUBLE_EQ(j["latency_ms"].get<double>(), 12.5);
  EXPECT_EQ(j["outcome"], "");
}

TEST(LogFormat, LevelAndFormatNames) {
  EXPECT_EQ(parse_level("debug"), level::debug);
  EXPECT_EQ(parse_level("info"), level::info);
  EXPECT_EQ(parse_level("warn"), level::warn);
  EXPECT_EQ(parse_level("error"), level::error);
  EXPECT_FALSE(parse_level("warning"));
  EXPECT_FALSE(parse_level("INFO"));
  EXPECT_EQ(parse_format("text"), format::text);
  EXPECT_EQ(parse_format("json"), format::json);
  EXPECT_FALSE(parse_format("xml"));
  EXPECT_EQ(level_name(level::warn), "warn");
}

TEST_F(LogTest, TheThresholdDropsLowerLevels) {
  auto path = temp_path("threshold.log");
  options o;
  o.threshold = level::warn;
  o.file = path;
  ASSERT_EQ(configure(o), "");
  EXPECT_FALSE(enabled(level::debug));
  EXPECT_FALSE(enabled(level::info));
  EXPECT_TRUE(enabled(level::warn));
  EXPECT_TRUE(enabled(level::error));
  debug("t", "d-line");
  info("t", "i-line");
  warn("t", "w-line", {{"k", 1}});
  error("t", "e-line");
  auto lines = lines_of(read_file(path));
  ASSERT_EQ(lines.size(), 2u) << read_file(path);
  EXPECT_NE(lines[0].find(" warn  t: w-line k=1"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(" error t: e-line"), std::string::npos) << lines[1];
  o.threshold = level::debug;
  o.fmt = format::json;
  ASSERT_EQ(configure(o), "");
  debug("t", "d-line");
  lines = lines_of(read_file(path));
  ASSERT_EQ(lines.size(), 3u);
  auto j = json::parse(lines[2]);
  EXPECT_EQ(j["level"], "debug");
  EXPECT_EQ(j["msg"], "d-line");
}

TEST_F(LogTest, AccessLinesOnlyWhenEnabledAndWhereConfigured) {
  auto main_log = temp_path("main.log");
  auto access_log = temp_path("access.log");
  access_record r;
  r.method = "GET";
  r.target = "/health";
  r.status = 200;
  options o;
  o.file = main_log;
  ASSERT_EQ(configure(o), "");
  EXPECT_FALSE(access_enabled());
  access(r);
  EXPECT_EQ(read_file(main_log), "");
  o.access = true; // into the main log
  ASSERT_EQ(configure(o), "");
  EXPECT_TRUE(access_enabled());
  access(r);
  EXPECT_NE(read_file(main_log).find("access: - \"GET /health\" 200"), std::string::npos);
  o.access_file = access_log; // a file of its own
  o.threshold = level::error; // the access log ignores the level
  ASSERT_EQ(configure(o), "");
  access(r);
  info("t", "not written");
  EXPECT_EQ(lines_of(read_file(main_log)).size(), 1u);
  auto lines = lines_of(read_file(access_log));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("access: - \"GET /health\" 200"), std::string::npos);
}

TEST_F(LogTest, ReopenStartsANewFileAfterARename) {
  auto path = temp_path("rotate.log");
  auto rotated = temp_path("rotate.log.1");
  options o;
  o.file = path;
  ASSERT_EQ(configure(o), "");
  info("t", "before");
  ASSERT_EQ(std::rename(path.c_str(), rotated.c_str()), 0);
  info("t", "still the old file");
  reopen_and_log("test");
  info("t", "after");
  auto old_text = read_file(rotated);
  EXPECT_NE(old_text.find("t: before"), std::string::npos);
  EXPECT_NE(old_text.find("t: still the old file"), std::string::npos);
  EXPECT_EQ(old_text.find("t: after"), std::string::npos);
  auto new_text = read_file(path);
  EXPECT_NE(new_text.find("log: reopened the log files reason=test"), std::string::npos)
    << new_text;
  EXPECT_NE(new_text.find("t: after"), std::string::npos);
  EXPECT_EQ(new_text.find("t: before"), std::string::npos);
}

TEST_F(LogTest, AFileThatCannotBeOpenedChangesNothing) {
  auto path = temp_path("kept.log");
  options o;
  o.file = path;
  ASSERT_EQ(configure(o), "");
  options bad;
  bad.file = path + "/x.log"; // a regular file cannot be a directory
  auto err = configure(bad);
  EXPECT_NE(err.find("kept.log/x.log"), std::string::npos) << err;
  EXPECT_EQ(current().file, path);
  info("t", "still here");
  EXPECT_NE(read_file(path).find("t: still here"), std::string::npos);
}

} // namespace
} // namespace sil::logging
