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

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

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

  field(std::string_view key, int v) : key(key), k(kind::i64), i(v) {}
  field(std::string_view key, long v) : key(key), k(kind::i64), i(v) {}
  field(std::string_view key, long long v) : key(key), k(kind::i64), i(v) {}
  field(std::string_view key, unsigned v) : key(key), k(kind::u64), u(v) {}
  field(std::string_view key, unsigned long v) : key(key), k(kind::u64), u(v) {}
  field(std::string_view key, unsigned long long v) : key(key), k(kind::u64), u(v) {}
  field(std::string_view key, double v) : key(key), k(kind::f64), d(v) {}
  field(std::string_view key, bool v) : key(key), k(kind::boolean), i(v ? 1 : 0) {}
  field(std::string_view key, std::string_view v) : key(key), k(kind::text), s(v) {}
  field(std::string_view key, const char* v) : key(key), k(kind::text), s(v) {}
  field(std::string_view key, const std::string& v) : key(key), k(kind::text), s(v) {}
};

/// Writes one event if `lvl` passes the threshold. Thread-safe.
void write(level lvl, std::string_view component, std::string_view message,
           std::initializer_list<field> fields = {});

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
  std::string_view remote;      // "127.0.0.1:53122"
  std::string_view method;      // "POST"
  std::string_view target;      // "/predict"
  unsigned status = 0;          // 200
  std::uint64_t bytes_in = 0;   // request body bytes
  std::uint64_t bytes_out = 0;  // response body bytes
  double latency_ms = 0.0;      // from the header's arrival to the response's write
  std::string_view outcome;     // "hit", "miss", "bypass", "error", ... (may be empty)
};

/// Writes `r` to the access log when it is enabled (otherwise a no-op that
/// costs one relaxed atomic load). Thread-safe.
void access(const access_record& r);

/// True when access() writes anything.
bool access_enabled() noexcept;

} // namespace sil::logging
