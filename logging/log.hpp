// Structured logging for every sil binary.
//
// Owns: the process's log sinks (stderr or a file), the line format (text or
// JSON lines), the level threshold, the access log, and reopening files on
// SIGHUP. Built on spdlog; no CAF, no Beast, so any layer may log.
//
// A log event is a component ("agent", "http", "cluster", ...), a short
// message, and typed key=value fields. Text lines look like
//   2026-11-28T03:30:00.123Z info  agent: decision action=shorten_ttl ttl_s=15
// and JSON lines like
//   {"ts":"2026-11-28T03:30:00.123Z","level":"info","component":"agent",
//    "msg":"decision","action":"shorten_ttl","ttl_s":15}
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sil::logging {

enum class level : std::uint8_t { debug, info, warn, error, off };

/// One key=value of a log event. Holds views: build it in the call.
struct field {
  enum class kind : std::uint8_t { i64, u64, f64, boolean, text };
  std::string_view key;
  kind k;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double d = 0.0;
  std::string_view s;

  field(std::string_view key, int v)
    : key(key)
    , k(kind::i64)
    , i(v) {
  }
  field(std::string_view key, long v)
    : key(key)
    , k(kind::i64)
    , i(v) {
  }
  field(std::string_view key, long long v)
    : key(key)
    , k(kind::i64)
    , i(v) {
  }
  field(std::string_view key, unsigned v)
    : key(key)
    , k(kind::u64)
    , u(v) {
  }
  field(std::string_view key, unsigned long v)
    : key(key)
    , k(kind::u64)
    , u(v) {
  }
  field(std::string_view key, unsigned long long v)
    : key(key)
    , k(kind::u64)
    , u(v) {
  }
  field(std::string_view key, double v)
    : key(key)
    , k(kind::f64)
    , d(v) {
  }
  field(std::string_view key, bool v)
    : key(key)
    , k(kind::boolean)
    , i(v ? 1 : 0) {
  }
  field(std::string_view key, std::string_view v)
    : key(key)
    , k(kind::text)
    , s(v) {
  }
  field(std::string_view key, const char* v)
    : key(key)
    , k(kind::text)
    , s(v) {
  }
  field(std::string_view key, const std::string& v)
    : key(key)
    , k(kind::text)
    , s(v) {
  }
};

/// Writes one event if `lvl` passes the threshold. Thread-safe.
void write(level lvl, std::string_view component, std::string_view message,
           std::initializer_list<field> fields = {});

/// The same with fields built at run time.
void write(level lvl, std::string_view component, std::string_view message,
           const std::vector<field>& fields);

/// True when an event at `lvl` would be written (to skip building costly
/// fields).
bool enabled(level lvl) noexcept;

inline void debug(std::string_view c, std::string_view m, std::initializer_list<field> f = {}) {
  write(level::debug, c, m, f);
}
inline void info(std::string_view c, std::string_view m, std::initializer_list<field> f = {}) {
  write(level::info, c, m, f);
}
inline void warn(std::string_view c, std::string_view m, std::initializer_list<field> f = {}) {
  write(level::warn, c, m, f);
}
inline void error(std::string_view c, std::string_view m, std::initializer_list<field> f = {}) {
  write(level::error, c, m, f);
}

/// One line of the access log: a finished HTTP exchange.
struct access_record {
  std::string_view request_id;
  std::string_view remote;     // "127.0.0.1:53122"
  std::string_view method;     // "POST"
  std::string_view target;     // "/predict"
  unsigned status = 0;         // 200
  std::uint64_t bytes_in = 0;  // request body bytes
  std::uint64_t bytes_out = 0; // response body bytes
  double latency_ms = 0.0;     // from the header's arrival to the response's write
  std::string_view outcome;    // "hit", "miss", "bypass", "error", ... (may be empty)
};

/// Writes `r` to the access log when it is enabled (otherwise a no-op that
/// costs one relaxed atomic load). Thread-safe.
void access(const access_record& r);

/// True when access() writes anything.
bool access_enabled() noexcept;

// -- configuration -------------------------------------------------------------

/// How a line is written: `text` (a timestamp, the level, "component:
/// message" and key=value fields) or `json` (one object per line).
enum class format : std::uint8_t { text, json };

/// Where and how the process logs. The defaults are what a process that
/// never calls configure() gets: info and above, text, on stderr, no
/// access log.
struct options {
  level threshold = level::info;
  format fmt = format::text;
  /// Empty: stderr. Otherwise the file is opened for appending.
  std::string file;
  /// Whether access() writes anything.
  bool access = false;
  /// Empty: access lines go to the main log.
  std::string access_file;
};

/// "debug", "info", "warn" or "error"; nullopt for anything else.
std::optional<level> parse_level(std::string_view name);
/// "text" or "json"; nullopt for anything else.
std::optional<format> parse_format(std::string_view name);
/// "debug", "info", "warn", "error" or "off".
std::string_view level_name(level l) noexcept;

/// Applies `o`, opening its files (appending). On failure nothing changes
/// and the result says which file could not be opened and why; on success
/// it is empty. Thread-safe; events written meanwhile go to either setup.
std::string configure(const options& o);

/// Closes and opens again the log files (not stderr), so that a rotated
/// file is replaced by a new one at the configured path. Returns what
/// failed (the old file is then kept), or an empty string.
std::string reopen();

/// reopen(), then one event that says it happened (info) or what failed
/// (error), with `reason` (e.g. "SIGHUP"). For signal handlers' callers.
void reopen_and_log(std::string_view reason);

/// The options in effect.
options current();

// -- formatting (pure, for tests and for the sinks above) ---------------------

/// "2026-11-28T03:30:00.123Z": UTC, milliseconds.
std::string format_timestamp(std::chrono::system_clock::time_point t);

/// One event as a line without its newline. Text:
///   TS LEVEL component: message key=value ...
/// with the level padded to 5 characters and a value quoted ("...") when
/// it is empty or holds a space, a quote, '=' or a control character.
/// JSON: {"ts":..,"level":..,"component":..,"msg":.., then the fields}
/// with strings escaped (control characters, quotes, backslashes; bytes
/// that are not UTF-8 become U+FFFD) and non-finite numbers as null; a
/// field named ts, level, component or msg is written as _ts, _level, ...
std::string format_event(format f, std::string_view ts, level lvl, std::string_view component,
                         std::string_view message, const field* fields, std::size_t count);

/// One access-log line without its newline. Text, a common-log-like line:
///   TS info  access: REMOTE "METHOD TARGET" STATUS BYTES_OUT id=REQUEST_ID
///   in=BYTES_IN ms=LATENCY outcome=OUTCOME
/// ("-" for an empty remote, id or outcome; the request line is escaped
/// like a quoted value). JSON: the event object with component "access",
/// msg "request" and the record's fields (request_id, remote, method,
/// target, status, bytes_in, bytes_out, latency_ms, outcome).
std::string format_access(format f, std::string_view ts, const access_record& r);

} // namespace sil::logging
