// See log.hpp. This first version writes text lines to stderr through
// spdlog; format, files, reopen and the access log come next.
#include "logging/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>

namespace sil::logging {
namespace {

std::atomic<bool> g_access{false};

std::shared_ptr<spdlog::logger> main_logger() {
  static auto lg = [] {
    auto l = std::make_shared<spdlog::logger>("sil",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %-5l %v", spdlog::pattern_time_type::utc);
    return l;
  }();
  return lg;
}

void append_field(std::string& out, const field& f) {
  out += ' ';
  out.append(f.key);
  out += '=';
  switch (f.k) {
    case field::kind::i64: out += std::to_string(f.i); break;
    case field::kind::u64: out += std::to_string(f.u); break;
    case field::kind::f64: out += fmt::format("{}", f.d); break;
    case field::kind::boolean: out += f.i != 0 ? "true" : "false"; break;
    case field::kind::text: out.append(f.s); break;
  }
}

spdlog::level::level_enum to_spd(level l) {
  switch (l) {
    case level::debug: return spdlog::level::debug;
    case level::info: return spdlog::level::info;
    case level::warn: return spdlog::level::warn;
    case level::error: return spdlog::level::err;
    case level::off: break;
  }
  return spdlog::level::off;
}

} // namespace

void write(level lvl, std::string_view component, std::string_view message,
           std::initializer_list<field> fields) {
  auto lg = main_logger();
  if (!lg->should_log(to_spd(lvl)))
    return;
  std::string line;
  line.append(component);
  line += ": ";
  line.append(message);
  for (const auto& f : fields)
    append_field(line, f);
  lg->log(to_spd(lvl), "{}", line);
}

void access(const access_record&) {
  if (!g_access.load(std::memory_order_relaxed))
    return;
}

bool access_enabled() noexcept { return g_access.load(std::memory_order_relaxed); }

} // namespace sil::logging
