#include "core/process_stats.hpp"

#include <dirent.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string>

namespace sil::proc {

namespace {

/// The next whitespace-separated token of `s` from `pos`; empty at the end.
std::string_view next_token(std::string_view s, std::size_t& pos) {
  while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n'))
    ++pos;
  auto begin = pos;
  while (pos < s.size() && s[pos] != ' ' && s[pos] != '\t' && s[pos] != '\n')
    ++pos;
  return s.substr(begin, pos - begin);
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty())
    return std::nullopt;
  return v;
}

/// Field 24 (rss) is a signed long in the kernel; a negative value never
/// occurs for a live process, but parse it as 0 rather than fail.
std::optional<std::uint64_t> to_u64_or_zero_if_negative(std::string_view s) {
  if (!s.empty() && s.front() == '-') {
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size())
      return std::nullopt;
    return 0;
  }
  return to_u64(s);
}

result<std::string> slurp(const char* path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return error{errc::io_error, std::string{"cannot open "} + path};
  std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  return text;
}

result<std::uint64_t> count_open_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr)
    return error{errc::io_error, "cannot open /proc/self/fd"};
  std::uint64_t n = 0;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.')
      ++n;
  ::closedir(d);
  // The directory stream itself holds a descriptor while it is read.
  return n > 0 ? n - 1 : 0;
}

} // namespace

result<stat_fields> parse_stat(std::string_view text) {
  auto close = text.rfind(')');
  if (close == std::string_view::npos)
    return error{errc::bad_format, "/proc stat: no ')' after the command name"};
  // Field 3 (state) follows the command name; number the fields from there.
  std::size_t pos = close + 1;
  stat_fields out;
  int field = 3;
  for (;; ++field) {
    auto tok = next_token(text, pos);
    if (tok.empty())
      break;
    std::optional<std::uint64_t> v;
    switch (field) {
      case 14:
        v = to_u64(tok);
        if (v)
          out.utime_ticks = *v;
        break;
      case 15:
        v = to_u64(tok);
        if (v)
          out.stime_ticks = *v;
        break;
      case 22:
        v = to_u64(tok);
        if (v)
          out.start_ticks = *v;
        break;
      case 23:
        v = to_u64(tok);
        if (v)
          out.vsize_bytes = *v;
        break;
      case 24:
        v = to_u64_or_zero_if_negative(tok);
        if (v)
          out.rss_pages = *v;
        break;
      default:
        continue;
    }
    if (!v)
      return error{errc::bad_format, "/proc stat: field " + std::to_string(field) + " is '"
                                       + std::string{tok} + "', not a number"};
    if (field == 24)
      return out;
  }
  return error{errc::bad_format,
               "/proc stat: " + std::to_string(field - 1) + " fields, expected at least 24"};
}

result<std::uint64_t> parse_boot_time(std::string_view proc_stat) {
  std::size_t line = 0;
  while (line < proc_stat.size()) {
    auto end = proc_stat.find('\n', line);
    if (end == std::string_view::npos)
      end = proc_stat.size();
    auto l = proc_stat.substr(line, end - line);
    std::size_t pos = 0;
    if (next_token(l, pos) == "btime") {
      auto v = to_u64(next_token(l, pos));
      if (!v)
        return error{errc::bad_format, "/proc/stat: btime is not a number"};
      return *v;
    }
    line = end + 1;
  }
  return error{errc::bad_format, "/proc/stat: no btime line"};
}

result<std::uint64_t> parse_max_open_files(std::string_view limits) {
  constexpr std::string_view key = "Max open files";
  auto at = limits.find(key);
  if (at == std::string_view::npos)
    return error{errc::bad_format, "/proc limits: no 'Max open files' line"};
  auto end = limits.find('\n', at);
  auto l
    = limits.substr(at + key.size(), end == std::string_view::npos ? end : end - at - key.size());
  std::size_t pos = 0;
  auto soft = next_token(l, pos);
  if (soft == "unlimited")
    return std::numeric_limits<std::uint64_t>::max();
  auto v = to_u64(soft);
  if (!v)
    return error{errc::bad_format,
                 "/proc limits: 'Max open files' soft limit is '" + std::string{soft} + "'"};
  return *v;
}

process_sample make_sample(const stat_fields& st, std::uint64_t boot_time_s,
                           std::uint64_t max_open_files, std::uint64_t open_fds,
                           long ticks_per_second, long page_size) {
  process_sample s;
  double hz = ticks_per_second > 0 ? static_cast<double>(ticks_per_second) : 100.0;
  s.cpu_seconds = static_cast<double>(st.utime_ticks + st.stime_ticks) / hz;
  s.resident_bytes = static_cast<double>(st.rss_pages) * static_cast<double>(page_size);
  s.virtual_bytes = static_cast<double>(st.vsize_bytes);
  s.start_time_seconds
    = static_cast<double>(boot_time_s) + static_cast<double>(st.start_ticks) / hz;
  s.open_fds = static_cast<double>(open_fds);
  s.max_fds = static_cast<double>(max_open_files);
  return s;
}

result<process_sample> read_self() {
  auto stat_text = slurp("/proc/self/stat");
  if (!stat_text)
    return stat_text.error();
  auto st = parse_stat(*stat_text);
  if (!st)
    return st.error();
  auto sys_text = slurp("/proc/stat");
  if (!sys_text)
    return sys_text.error();
  auto boot = parse_boot_time(*sys_text);
  if (!boot)
    return boot.error();
  auto limits_text = slurp("/proc/self/limits");
  if (!limits_text)
    return limits_text.error();
  auto max_fds = parse_max_open_files(*limits_text);
  if (!max_fds)
    return max_fds.error();
  auto fds = count_open_fds();
  if (!fds)
    return fds.error();
  return make_sample(*st, *boot, *max_fds, *fds, ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE));
}

} // namespace sil::proc
