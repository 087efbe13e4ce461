// See log.hpp. Lines are formatted here (format_event, format_access) and
// handed to spdlog loggers whose pattern is the bare message: spdlog owns
// the sinks (stderr, files), their locking and flushing; we own the format.
//
// The loggers in use live in one immutable `setup`, swapped atomically by
// configure() and reopen(): a writer takes a reference to the current setup
// and writes through it, so a reopen never races a write, and the old files
// close when the last writer lets go of them.
#include "logging/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>

namespace sil::logging {
namespace {

// -- escaping ------------------------------------------------------------------

/// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (b < 0x80)
    return 1;
  if (b >= 0xC2 && b <= 0xDF) {
    n = 2;
    cp = b & 0x1Fu;
  } else if (b >= 0xE0 && b <= 0xEF) {
    n = 3;
    cp = b & 0x0Fu;
  } else if (b >= 0xF0 && b <= 0xF4) {
    n = 4;
    cp = b & 0x07u;
  } else {
    return 0;
  }
  if (i + n > s.size())
    return 0;
  for (std::size_t k = 1; k < n; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0u) != 0x80u)
      return 0;
    cp = (cp << 6) | (c & 0x3Fu);
  }
  // Overlong forms, surrogates and values above U+10FFFF are not UTF-8.
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))
      || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

void append_hex_escape(std::string& out, const char* prefix, unsigned v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%s%0*X", prefix, digits, v);
  out += buf;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      case '\b':
        out += "\\b";
        ++i;
        continue;
      case '\f':
        out += "\\f";
        ++i;
        continue;
      default:
        break;
    }
    if (c < 0x20) {
      append_hex_escape(out, "\\u", c, 4);
      ++i;
      continue;
    }
    auto n = utf8_length(s, i);
    if (n == 0) {
      out += "\\uFFFD";
      ++i;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  out += '"';
}

/// Text lines stay one line: control characters become escapes.
void append_text_escaped(std::string& out, std::string_view s, bool in_quotes) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7F)
      append_hex_escape(out, "\\x", c, 2);
    else if (in_quotes && (c == '"' || c == '\\')) {
      out += '\\';
      out += ch;
    } else
      out += ch;
  }
}

bool needs_quotes(std::string_view s) {
  if (s.empty())
    return true;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == '"' || c == '=' || c == '\\' || c == 0x7F)
      return true;
  }
  return false;
}

void append_text_value(std::string& out, std::string_view s) {
  if (!needs_quotes(s)) {
    out.append(s);
    return;
  }
  out += '"';
  append_text_escaped(out, s, true);
  out += '"';
}

void append_number(std::string& out, double d, bool json) {
  if (!std::isfinite(d)) {
    out += json ? "null" : (std::isnan(d) ? "nan" : (d > 0 ? "inf" : "-inf"));
    return;
  }
  out += fmt::format("{}", d);
}

void append_field_value(std::string& out, const field& f, bool json) {
  switch (f.k) {
    case field::kind::i64:
      out += std::to_string(f.i);
      break;
    case field::kind::u64:
      out += std::to_string(f.u);
      break;
    case field::kind::f64:
      append_number(out, f.d, json);
      break;
    case field::kind::boolean:
      out += f.i != 0 ? "true" : "false";
      break;
    case field::kind::text:
      if (json)
        append_json_string(out, f.s);
      else
        append_text_value(out, f.s);
      break;
  }
}

std::string_view padded_level(level l) {
  switch (l) {
    case level::debug:
      return "debug";
    case level::info:
      return "info ";
    case level::warn:
      return "warn ";
    case level::error:
      return "error";
    case level::off:
      break;
  }
  return "off  ";
}

std::string json_head(std::string_view ts, level lvl, std::string_view component,
                      std::string_view message) {
  std::string out = "{\"ts\":";
  append_json_string(out, ts);
  out += ",\"level\":";
  append_json_string(out, level_name(lvl));
  out += ",\"component\":";
  append_json_string(out, component);
  out += ",\"msg\":";
  append_json_string(out, message);
  return out;
}

// -- the loggers in use --------------------------------------------------------

struct setup {
  options opts;
  std::shared_ptr<spdlog::logger> main;
  std::shared_ptr<spdlog::logger> access; // the main logger when no access file
};

std::shared_ptr<spdlog::logger> make_logger(const char* name, spdlog::sink_ptr sink) {
  auto lg = std::make_shared<spdlog::logger>(name, std::move(sink));
  lg->set_pattern("%v");
  lg->set_level(spdlog::level::trace); // the threshold is ours (g_threshold)
  lg->flush_on(spdlog::level::trace);  // every line reaches the file at once
  return lg;
}

/// Builds the loggers for `o`; on failure `err` says which file and why.
std::shared_ptr<const setup> build(const options& o, std::string& err) {
  auto s = std::make_shared<setup>();
  s->opts = o;
  auto open = [&](const char* name, const std::string& path) -> std::shared_ptr<spdlog::logger> {
    if (path.empty())
      return make_logger(name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
    try {
      return make_logger(name, std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false));
    } catch (const spdlog::spdlog_ex& e) {
      err = "cannot open \"" + path + "\": " + e.what();
      return nullptr;
    }
  };
  s->main = open("sil", o.file);
  if (!s->main)
    return nullptr;
  if (o.access_file.empty() || o.access_file == o.file) {
    s->access = s->main;
  } else {
    s->access = open("sil-access", o.access_file);
    if (!s->access)
      return nullptr;
  }
  return s;
}

std::atomic<int> g_threshold{static_cast<int>(level::info)};
std::atomic<bool> g_access{false};
std::mutex g_config_mu; // serializes configure() and reopen()
std::shared_ptr<const setup> g_setup;

std::shared_ptr<const setup> current_setup() {
  auto s = std::atomic_load(&g_setup);
  if (s)
    return s;
  // First use without configure(): the defaults (stderr never fails).
  std::lock_guard<std::mutex> guard{g_config_mu};
  s = std::atomic_load(&g_setup);
  if (!s) {
    std::string ignored;
    s = build(options{}, ignored);
    std::atomic_store(&g_setup, s);
  }
  return s;
}

spdlog::level::level_enum to_spd(level l) {
  switch (l) {
    case level::debug:
      return spdlog::level::debug;
    case level::info:
      return spdlog::level::info;
    case level::warn:
      return spdlog::level::warn;
    case level::error:
      return spdlog::level::err;
    case level::off:
      break;
  }
  return spdlog::level::off;
}

void emit(level lvl, std::string_view component, std::string_view message, const field* fields,
          std::size_t count) {
  if (!enabled(lvl))
    return;
  auto s = current_setup();
  auto line = format_event(s->opts.fmt, format_timestamp(std::chrono::system_clock::now()), lvl,
                           component, message, fields, count);
  s->main->log(to_spd(lvl), "{}", line);
}

} // namespace

// -- names ---------------------------------------------------------------------

std::optional<level> parse_level(std::string_view name) {
  if (name == "debug")
    return level::debug;
  if (name == "info")
    return level::info;
  if (name == "warn")
    return level::warn;
  if (name == "error")
    return level::error;
  return std::nullopt;
}

std::optional<format> parse_format(std::string_view name) {
  if (name == "text")
    return format::text;
  if (name == "json")
    return format::json;
  return std::nullopt;
}

std::string_view level_name(level l) noexcept {
  switch (l) {
    case level::debug:
      return "debug";
    case level::info:
      return "info";
    case level::warn:
      return "warn";
    case level::error:
      return "error";
    case level::off:
      break;
  }
  return "off";
}

// -- formatting ----------------------------------------------------------------

std::string format_timestamp(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(ms / 1000);
  auto frac = static_cast<int>(ms % 1000);
  if (frac < 0) { // before 1970: keep the fraction positive
    frac += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

std::string format_event(format f, std::string_view ts, level lvl, std::string_view component,
                         std::string_view message, const field* fields, std::size_t count) {
  std::string out;
  if (f == format::json) {
    out = json_head(ts, lvl, component, message);
    for (std::size_t i = 0; i < count; ++i) {
      out += ',';
      // A field never hides the event's own members: "level" becomes "_level".
      const auto& key = fields[i].key;
      if (key == "ts" || key == "level" || key == "component" || key == "msg")
        append_json_string(out, "_" + std::string{key});
      else
        append_json_string(out, key);
      out += ':';
      append_field_value(out, fields[i], true);
    }
    out += '}';
    return out;
  }
  out.append(ts);
  out += ' ';
  out.append(padded_level(lvl));
  out += ' ';
  append_text_escaped(out, component, false);
  out += ": ";
  append_text_escaped(out, message, false);
  for (std::size_t i = 0; i < count; ++i) {
    out += ' ';
    append_text_escaped(out, fields[i].key, false);
    out += '=';
    append_field_value(out, fields[i], false);
  }
  return out;
}

std::string format_access(format f, std::string_view ts, const access_record& r) {
  if (f == format::json) {
    const field fields[] = {
      {"request_id", r.request_id},
      {"remote", r.remote},
      {"method", r.method},
      {"target", r.target},
      {"status", r.status},
      {"bytes_in", static_cast<unsigned long long>(r.bytes_in)},
      {"bytes_out", static_cast<unsigned long long>(r.bytes_out)},
      {"latency_ms", r.latency_ms},
      {"outcome", r.outcome},
    };
    return format_event(format::json, ts, level::info, "access", "request", fields,
                        sizeof fields / sizeof fields[0]);
  }
  auto dash = [](std::string_view s) { return s.empty() ? std::string_view{"-"} : s; };
  std::string out;
  out.append(ts);
  out += ' ';
  out.append(padded_level(level::info));
  out += " access: ";
  append_text_value(out, dash(r.remote));
  out += " \"";
  append_text_escaped(out, r.method, true);
  out += ' ';
  append_text_escaped(out, r.target, true);
  out += "\" ";
  out += std::to_string(r.status);
  out += ' ';
  out += std::to_string(r.bytes_out);
  out += " id=";
  append_text_value(out, dash(r.request_id));
  out += " in=";
  out += std::to_string(r.bytes_in);
  out += " ms=";
  out += fmt::format("{:.3f}", std::isfinite(r.latency_ms) ? r.latency_ms : 0.0);
  out += " outcome=";
  append_text_value(out, dash(r.outcome));
  return out;
}

// -- writing -------------------------------------------------------------------

bool enabled(level lvl) noexcept {
  return lvl != level::off && static_cast<int>(lvl) >= g_threshold.load(std::memory_order_relaxed);
}

void write(level lvl, std::string_view component, std::string_view message,
           std::initializer_list<field> fields) {
  emit(lvl, component, message, fields.begin(), fields.size());
}

void write(level lvl, std::string_view component, std::string_view message,
           const std::vector<field>& fields) {
  emit(lvl, component, message, fields.data(), fields.size());
}

void access(const access_record& r) {
  if (!g_access.load(std::memory_order_relaxed))
    return;
  auto s = current_setup();
  auto line = format_access(s->opts.fmt, format_timestamp(std::chrono::system_clock::now()), r);
  s->access->log(spdlog::level::info, "{}", line);
}

bool access_enabled() noexcept {
  return g_access.load(std::memory_order_relaxed);
}

// -- configuration -------------------------------------------------------------

std::string configure(const options& o) {
  std::lock_guard<std::mutex> guard{g_config_mu};
  std::string err;
  auto s = build(o, err);
  if (!s)
    return err;
  std::atomic_store(&g_setup, s);
  g_threshold.store(static_cast<int>(o.threshold), std::memory_order_relaxed);
  g_access.store(o.access, std::memory_order_relaxed);
  return {};
}

std::string reopen() {
  std::lock_guard<std::mutex> guard{g_config_mu};
  auto old = std::atomic_load(&g_setup);
  if (!old)
    return {}; // never configured: stderr only, nothing to reopen
  std::string err;
  auto s = build(old->opts, err);
  if (!s)
    return err;
  std::atomic_store(&g_setup, s);
  return {};
}

void reopen_and_log(std::string_view reason) {
  auto err = reopen();
  if (err.empty())
    info("log", "reopened the log files", {{"reason", reason}});
  else
    error("log", "cannot reopen the log files; still writing to the old ones",
          {{"reason", reason}, {"error", err}});
}

options current() {
  return current_setup()->opts;
}

} // namespace sil::logging
