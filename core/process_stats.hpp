// The process's own resource figures, as Prometheus's process_* metrics
// define them, read from Linux's /proc.
//
// Owns: parsing /proc/self/stat, /proc/stat and /proc/self/limits (pure
// functions over the files' text, unit-tested on fixed samples) and one
// reader that samples the running process. No CAF, no Beast.
// Does not own: exporting them (actors/metrics_aggregator.cpp).
#pragma once

#include <cstdint>
#include <string_view>

#include "core/error.hpp"

namespace sil::proc {

/// The fields of /proc/[pid]/stat that the metrics need, in the file's units.
struct stat_fields {
  /// User and system CPU time, clock ticks (fields 14 and 15).
  std::uint64_t utime_ticks = 0;
  std::uint64_t stime_ticks = 0;
  /// When the process started, clock ticks after boot (field 22).
  std::uint64_t start_ticks = 0;
  /// Virtual memory size, bytes (field 23).
  std::uint64_t vsize_bytes = 0;
  /// Resident set size, pages (field 24).
  std::uint64_t rss_pages = 0;
};

/// Parses the one line of /proc/[pid]/stat. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last ')'.
result<stat_fields> parse_stat(std::string_view text);

/// The boot time (the `btime` line of /proc/stat), seconds since the epoch.
result<std::uint64_t> parse_boot_time(std::string_view proc_stat);

/// The soft limit of "Max open files" in /proc/[pid]/limits; "unlimited"
/// gives UINT64_MAX.
result<std::uint64_t> parse_max_open_files(std::string_view limits);

/// One sample of the process, in Prometheus's units.
struct process_sample {
  double cpu_seconds = 0.0;        // process_cpu_seconds_total
  double resident_bytes = 0.0;     // process_resident_memory_bytes
  double virtual_bytes = 0.0;      // process_virtual_memory_bytes
  double start_time_seconds = 0.0; // process_start_time_seconds (since the epoch)
  double open_fds = 0.0;           // process_open_fds
  double max_fds = 0.0;            // process_max_fds
};

/// Converts the parsed files to a sample; `ticks_per_second` and
/// `page_size` come from sysconf in read_self().
process_sample make_sample(const stat_fields& st, std::uint64_t boot_time_s,
                           std::uint64_t max_open_files, std::uint64_t open_fds,
                           long ticks_per_second, long page_size);

/// Samples this process from /proc/self (and /proc/stat). Fails with
/// io_error where /proc is missing (not Linux) or unreadable.
result<process_sample> read_self();

} // namespace sil::proc
