#include "config/sil_config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <caf/atom.hpp>
#include <caf/config_option.hpp>
#include <caf/config_value.hpp>
#include <caf/pec.hpp>
#include <caf/settings.hpp>

namespace sil {

sil_config::sil_config() {
  // Scheduler defaults chosen by measurement (reports/performance.md): the
  // actors on the hit path are light, encoders run on their own threads, and
  // on small machines one 'sharing' thread beats work stealing, whose idle
  // workers spin. Both remain overridable (--scheduler.policy=stealing).
  set("scheduler.policy", caf::atom("sharing"));
  set("scheduler.max-threads", 1);
  auto& s = settings;
  opt_group{custom_options_, "global"}
    .add(s.host, "host", "address to listen on (0.0.0.0: every interface)")
    .add(s.port, "port,p", "HTTP port; 0 picks a free port")
    .add(s.workers, "workers", "encoder workers; 0: one per core");
  opt_group{custom_options_, "cache"}
    .add(s.cache_max_size, "max-size", "maximum number of cached embeddings (env CACHE_MAX_SIZE)")
    .add(s.cache_admission, "admission",
         "what a full cache gives up: lru (the least recently used entry) or tinylfu "
         "(W-TinyLFU: a new entry stays only if asked for more often than the one it displaces)")
    .add(s.cache_ttl_seconds, "ttl-seconds",
         "seconds an entry may be served, fractional allowed (env CACHE_TTL_SECONDS)")
    .add(s.cache_enabled, "enabled", "whether cached embeddings are reused (env CACHE_ENABLED)")
    .add(s.cache_single_flight, "single-flight",
         "concurrent misses on one key share one computation")
    .add(s.cache_read_path, "read-path", "answer hits on the I/O thread from the cache's read view")
    .add(s.cache_prefix_k, "prefix-k", "number of leading feature values in the key (env PREFIX_K)")
    .add(s.cache_prefix_unit, "prefix-unit",
         "what K counts: values (the first K values) or rows (the first K rows)")
    .add(s.cache_sweep_interval_seconds, "sweep-interval",
         "seconds between sweeps of expired entries");
  opt_group{custom_options_, "model"}
    .add(s.model_preset, "preset", "model architecture: base or seed")
    .add(s.model_weights, "weights", "weights file (docs/weights-format.md); empty: from the seed")
    .add(s.model_seed, "seed", "seed of the deterministic weights")
    .add(s.model_name, "name", "the model's served name (empty: the architecture's name)");
  opt_group{custom_options_, "models"}
    .add(s.models_load, "load",
         "more model versions to serve from the start, ';' between them, each "
         "name=N,preset=P,seed=S or name=N,weights=FILE")
    .add(s.models_max_bytes, "max-bytes",
         "bytes all loaded weights may take; a load past it is refused (0: no limit)")
    .add(s.models_warm_encodes, "warm-encodes",
         "warm-up encodes of a version loaded at runtime before it may become the default");
  opt_group{custom_options_, "canary"}
    .add(s.canary_margin, "margin",
         "how much higher a canary's served wrong-rate may be and still count as not worse")
    .add(s.canary_min_saving, "min-saving",
         "a canary is cheaper when it saves at least this many encodes per request")
    .add(s.canary_max_cost_increase, "max-cost-increase",
         "a canary wrong less often may cost at most this many more encodes per request")
    .add(s.canary_min_labels, "min-labels", "served labels each arm needs before a promotion")
    .add(s.canary_min_requests, "min-requests", "requests each arm needs before a promotion")
    .add(s.canary_max_seconds, "max-seconds",
         "a canary undecided this long is rolled back as inconclusive (0: never)")
    .add(s.canary_interval_seconds, "interval", "seconds between the canary judge's observations");
  opt_group{custom_options_, "encoder"}
    .add(s.encoder_max_batch, "max-batch", "most requests a worker encodes in one pass")
    .add(s.encoder_timeout_seconds, "timeout", "seconds before a worker's batch is retried")
    .add(s.encoder_max_attempts, "max-attempts", "attempts per request before 504")
    .add(s.encoder_nice, "nice",
         "CPU priority local encoder threads give up (0-19), so that I/O threads answer first");
  opt_group{custom_options_, "http"}
    .add(s.http_threads, "threads", "I/O threads")
    .add(s.http_body_limit, "body-limit", "largest accepted request body in bytes (else 413)")
    .add(s.http_read_timeout_seconds, "read-timeout", "seconds to receive one request")
    .add(s.http_max_inflight, "max-inflight", "predictions in flight before 503")
    .add(s.http_max_rows, "max-rows", "most rows per request")
    .add(s.http_drain_timeout_seconds, "drain-timeout",
         "seconds to finish in-flight requests on SIGINT/SIGTERM (then 503)")
    .add(s.http_max_connections, "max-connections",
         "open connections at most, more get 503 (0: from the file-descriptor limit)")
    .add(s.http_max_queue_delay_seconds, "max-queue-delay",
         "seconds a prediction may expect to wait for an encoder, else 503 (0: no limit)")
    .add(s.http_linger_seconds, "linger",
         "seconds a closing connection discards what the client still sends")
    .add(s.http_cors_origins, "cors-origins",
         "browser origins that may call the API (CORS), comma-separated, or *; empty: none");
  opt_group{custom_options_, "risk"}
    .add(s.risk_guard, "guard",
         "true: reuse only exact or certified inputs; false (or off): any input sharing the key")
    .add(s.risk_tolerance, "tolerance",
         "largest |cached - fresh| prediction difference that is not wrong")
    .add(s.risk_max_wrong_rate, "max-wrong-rate",
         "largest share of served cached answers that may be wrong")
    .add(s.risk_confidence, "confidence", "confidence of the guard's bounds");
  opt_group{custom_options_, "audit"}
    .add(s.audit_per_second, "per-second", "target audits of served hits per second (0: no pacing)")
    .add(s.audit_max_encoder_share, "max-encoder-share",
         "largest share of encoder time audits may take")
    .add(s.audit_rate, "rate", "probability that a cache hit is a candidate for an audit")
    .add(s.audit_max_share, "max-share", "audits per request served, at most, over the window")
    .add(s.audit_window_seconds, "window", "seconds of the audit budget's sliding window");
  opt_group{custom_options_, "agent"}
    .add(s.agent_enabled, "enabled",
         "the agent acts on what audits measure (false: measure only, never act)")
    .add(s.agent_interval_seconds, "interval", "seconds between agent observations")
    .add(s.agent_trigger, "trigger",
         "wrong-rate (the served wrong-rate's bounds vs risk.max-wrong-rate) or cosine")
    .add(s.agent_disable_wrong_rate, "disable-wrong-rate",
         "served wrong-rate whose lower bound disables reuse")
    .add(s.agent_label_window, "label-window", "served labels the agent weighs")
    .add(s.agent_recover_threshold, "recover-threshold",
         "p95 cosine divergence below which a window is clean")
    .add(s.agent_ttl_threshold, "ttl-threshold", "p95 cosine divergence that shortens the TTL")
    .add(s.agent_disable_threshold, "disable-threshold",
         "p95 cosine divergence that disables reuse")
    .add(s.agent_recover_windows, "recover-windows",
         "consecutive clean windows before stepping back")
    .add(s.agent_min_samples, "min-samples", "reports a window needs to count as evidence")
    .add(s.agent_ttl_floor_seconds, "ttl-floor", "shortest TTL the agent sets, seconds")
    .add(s.agent_entry_evict_threshold, "entry-evict-threshold",
         "cosine divergence at which an audited entry is evicted at once");
  opt_group{custom_options_, "global"}
    .add(s.role, "role", "standalone, gateway or worker (see README: Cluster)")
    .add(s.gateway, "gateway", "worker: the gateway's registry, HOST:PORT")
    .add(s.node_name, "node-name",
         "this node's name in /stats and /metrics (default ROLE@HOSTNAME:PORT)");
  opt_group{custom_options_, "cluster"}
    .add(s.cluster_host, "host", "gateway: address the registry listens on for worker nodes")
    .add(s.cluster_port, "port", "gateway: port of the registry (0 picks one)")
    .add(s.cluster_fallback, "fallback",
         "gateway with no worker reachable: local (encode here) or reject (503)");
  opt_group{custom_options_, "admin"}.add(s.admin_token, "token",
                                          "bearer token of the admin API; empty disables it");
  opt_group{custom_options_, "log"}
    .add(s.log_level, "level", "lowest level written: debug, info, warn or error")
    .add(s.log_format, "format", "text (one readable line per event) or json (one object per line)")
    .add(s.log_file, "file", "file the log is appended to; empty: stderr (SIGHUP reopens it)")
    .add(s.log_access, "access", "write one access-log line per HTTP request")
    .add(s.log_access_file, "access-file", "file for the access log; empty: the main log");
}

namespace {

/// Joins text pieces into one string with one allocation's worth of
/// appends (error messages built inside loops).
template <class... Ts>
std::string join_text(const Ts&... parts) {
  std::string out;
  (out.append(parts), ...);
  return out;
}

/// sil's own sections; "global" holds sil's and CAF's top-level options.
const std::vector<std::string>& sil_categories() {
  static const std::vector<std::string> xs{"cache", "model", "models", "encoder", "http",  "risk",
                                           "audit", "agent", "canary", "cluster", "admin", "log"};
  return xs;
}

/// CAF's options of the global section: command-line only.
bool is_caf_global(const std::string& name) {
  return name == "help" || name == "long-help" || name == "dump-config" || name == "config-file";
}

std::string to_std(caf::string_view s) {
  return {s.data(), s.size()};
}

std::string full_key(const caf::config_option& opt) {
  auto cat = to_std(opt.category());
  auto name = to_std(opt.long_name());
  return cat == "global" ? name : cat + "." + name;
}

// -- values in the config-file syntax -------------------------------------------

/// Shortest text that reads back as the same double, always with a '.' or
/// an exponent so that it reads back as a real, not an integer.
std::string format_real(double d) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d);
  std::string out{buf, res.ptr};
  if (out.find_first_of(".eEn") == std::string::npos) // n: inf/nan, never valid here
    out += ".0";
  return out;
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += c;
    }
  }
  out += '"';
  return out;
}

std::string format_timespan(caf::timespan t) {
  auto ns = t.count();
  struct unit {
    std::int64_t ns;
    const char* suffix;
  };
  for (auto u : {unit{3600000000000, "h"}, unit{60000000000, "min"}, unit{1000000000, "s"},
                 unit{1000000, "ms"}, unit{1000, "us"}})
    if (ns != 0 && ns % u.ns == 0)
      return std::to_string(ns / u.ns) + u.suffix;
  return std::to_string(ns) + "ns";
}

/// `v` written as the config file would write it.
std::string ini_value(const caf::config_value& v) {
  if (auto x = caf::get_if<caf::config_value::integer>(&v))
    return std::to_string(*x);
  if (auto x = caf::get_if<bool>(&v))
    return *x ? "true" : "false";
  if (auto x = caf::get_if<double>(&v))
    return format_real(*x);
  if (auto x = caf::get_if<std::string>(&v))
    return quoted(*x);
  if (auto x = caf::get_if<caf::atom_value>(&v))
    return "'" + caf::to_string(*x) + "'";
  if (auto x = caf::get_if<caf::timespan>(&v))
    return format_timespan(*x);
  if (auto x = caf::get_if<caf::config_value::list>(&v)) {
    std::string out = "[";
    for (std::size_t i = 0; i < x->size(); ++i)
      out += (i > 0 ? ", " : "") + ini_value((*x)[i]);
    return out + "]";
  }
  if (auto x = caf::get_if<caf::config_value::dictionary>(&v)) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, val] : *x) {
      out += (first ? "" : ", ") + k + "=" + ini_value(val);
      first = false;
    }
    return out + "}";
  }
  return caf::to_string(v);
}

/// "an integer", "a number", ... for an option's type.
std::string expected_kind(const caf::config_option& opt) {
  auto t = to_std(opt.type_name());
  if (t.rfind("int", 0) == 0 || t.rfind("uint", 0) == 0)
    return "an integer";
  if (t.rfind("real", 0) == 0)
    return "a number";
  if (t == "boolean")
    return "true or false";
  if (t == "string")
    return "a string";
  if (t == "atom")
    return "an atom in single quotes (e.g. 'sharing')";
  if (t == "timespan")
    return "a duration (e.g. 500ms, 2s)";
  return "a value of type " + t;
}

/// The placeholder in --help: --cache.max-size=INT.
std::string placeholder(const caf::config_option& opt) {
  auto t = to_std(opt.type_name());
  if (t.rfind("int", 0) == 0 || t.rfind("uint", 0) == 0)
    return "INT";
  if (t.rfind("real", 0) == 0)
    return "NUM";
  if (t == "boolean")
    return "BOOL";
  if (t == "string")
    return "TEXT";
  if (t == "atom")
    return "ATOM";
  if (t == "timespan")
    return "DURATION";
  if (t.rfind("list", 0) == 0)
    return "LIST";
  return "VALUE";
}

bool parse_bool(const std::string& text, bool& out) {
  std::string v = text;
  for (auto& c : v)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (v == "1" || v == "true" || v == "yes" || v == "on") {
    out = true;
    return true;
  }
  if (v == "0" || v == "false" || v == "no" || v == "off") {
    out = false;
    return true;
  }
  return false;
}

/// Brings a config-file value to the option's type, or says what is wrong.
/// sil's options: an integer is a valid real; a bool also reads from the
/// words a flag accepts (on, off, yes, no); a string from an atom. CAF's
/// options take CAF's own check, and a string where an atom is expected.
std::optional<std::string> coerce(const caf::config_option& opt, caf::config_value& v) {
  auto t = to_std(opt.type_name());
  auto problem = [&] { return "expected " + expected_kind(opt) + ", got " + ini_value(v); };
  if (t == "real64" || t == "real32") {
    if (auto i = caf::get_if<caf::config_value::integer>(&v))
      v = static_cast<double>(*i);
  } else if (t == "boolean") {
    bool b = false;
    auto s = caf::get_if<std::string>(&v);
    auto a = caf::get_if<caf::atom_value>(&v);
    if ((s != nullptr && parse_bool(*s, b)) || (a != nullptr && parse_bool(caf::to_string(*a), b)))
      v = b;
  } else if (t == "string") {
    if (auto a = caf::get_if<caf::atom_value>(&v))
      v = caf::to_string(*a);
  } else if (t == "atom") {
    if (auto s = caf::get_if<std::string>(&v); s && s->size() <= 10)
      v = caf::atom_from_string(*s);
  }
  if (opt.check(v))
    return problem();
  return std::nullopt;
}

/// Edit distance, for "did you mean".
std::size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      auto up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

/// " (did you mean X?)" for the closest candidate, if it is close.
std::string suggestion(const std::string& typed, const std::vector<std::string>& candidates,
                       const char* open = "", const char* close = "") {
  const std::string* best = nullptr;
  std::size_t best_d = 3;
  for (const auto& c : candidates) {
    auto d = distance(typed, c);
    if (c.rfind(typed, 0) == 0 && typed.size() >= 3)
      d = std::min<std::size_t>(d, 1); // a truncated key
    if (d < best_d) {
      best_d = d;
      best = &c;
    }
  }
  if (best == nullptr)
    return {};
  return std::string{" (did you mean "} + open + *best + close + "?)";
}

/// The first key set twice in a config file: CAF's reader keeps one of the
/// two values without a word. Scans lines outside strings, comments, lists
/// and maps for "[section]" and "key =". Empty if none.
std::string repeated_key(const std::string& text) {
  std::map<std::string, int> seen;
  std::string section;
  int depth = 0;
  int line_no = 0;
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    auto start = line.find_first_not_of(" \t\r");
    if (depth == 0 && start != std::string::npos) {
      if (line[start] == '[') {
        auto end = line.find(']', start);
        if (end != std::string::npos) {
          section = line.substr(start + 1, end - start - 1);
          if (section.rfind("caf.", 0) == 0)
            section.erase(0, 4);
          if (section == "global")
            section.clear();
        }
      } else {
        auto end = start;
        while (end < line.size()
               && (std::isalnum(static_cast<unsigned char>(line[end])) || line[end] == '-'
                   || line[end] == '_' || line[end] == '.'))
          ++end;
        auto eq = line.find_first_not_of(" \t", end);
        if (end > start && eq != std::string::npos && line[eq] == '=') {
          auto key = (section.empty() ? "" : section + ".") + line.substr(start, end - start);
          auto [it, fresh] = seen.emplace(key, line_no);
          if (!fresh)
            return key + ": set twice (lines " + std::to_string(it->second) + " and "
                   + std::to_string(line_no) + "); keep one";
        }
      }
    }
    // Track nesting for the next line (strings and comments do not count).
    char quote = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (quote != 0) {
        if (c == '\\')
          ++i;
        else if (c == quote)
          quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == ';' || c == '#') {
        break;
      } else if (c == '[' || c == '{') {
        if (!(depth == 0 && start == i && c == '[')) // a section header
          ++depth;
      } else if ((c == ']' || c == '}') && depth > 0) {
        --depth;
      }
    }
  }
  return {};
}

/// "line 3, column 7: unexpected character" from CAF's parser error.
std::string describe_syntax_error(const caf::error& err) {
  std::string what = "syntax error";
  if (err.category() == caf::atom("parser")) {
    auto code = static_cast<caf::pec>(err.code());
    auto name = caf::to_string(code);
    std::replace(name.begin(), name.end(), '_', ' ');
    what += " (" + name + ")";
    if (code == caf::pec::unexpected_character)
      what += "; text values need double quotes";
  }
  std::string where;
  const auto& ctx = err.context();
  if (ctx.match_elements<caf::config_value::dictionary>()) {
    const auto& d = ctx.get_as<caf::config_value::dictionary>(0);
    auto line = d.find("line");
    auto col = d.find("column");
    if (line != d.end() && col != d.end())
      where = "line " + ini_value(line->second) + ", column " + ini_value(col->second) + ": ";
  }
  return where + what;
}

bool given_on_cli(int argc, char** argv, const std::string& key) {
  auto flag = "--" + key;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == flag || a.rfind(flag + "=", 0) == 0)
      return true;
    if (key == "port" && a.rfind("-p", 0) == 0) // the one short name
      return true;
  }
  return false;
}

status env_error(const char* var, const char* value, const char* expected) {
  return {errc::invalid_config,
          std::string{var} + ": expected " + expected + ", got '" + value + "'"};
}

bool parse_int(const char* s, std::int64_t& out) {
  errno = 0;
  char* end = nullptr;
  auto v = std::strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0')
    return false;
  out = v;
  return true;
}

bool parse_double(const char* s, double& out) {
  errno = 0;
  char* end = nullptr;
  auto v = std::strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !std::isfinite(v))
    return false;
  out = v;
  return true;
}

const char* default_getenv(const char* name) {
  return std::getenv(name);
}

/// The variable that sets `key` (SIL_CACHE_MAX_SIZE for cache.max-size).
std::string env_var_of(const std::string& key) {
  std::string var = "SIL_";
  for (char c : key)
    var += c == '.' || c == '-' ? '_'
                                : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return var;
}

/// Appends `text` wrapped at `width` columns, continuation lines indented
/// by `indent`, the first line starting at column `col`.
void append_wrapped(std::string& out, const std::string& text, std::size_t col, std::size_t indent,
                    std::size_t width = 100) {
  std::istringstream words{text};
  std::string w;
  bool first = true;
  while (words >> w) {
    if (!first && col + 1 + w.size() > width) {
      out += '\n';
      out.append(indent, ' ');
      col = indent;
      first = true;
    }
    if (!first) {
      out += ' ';
      ++col;
    }
    std::replace(w.begin(), w.end(), '\x01', ' ');
    out += w;
    col += w.size();
    first = false;
  }
  out += '\n';
}

} // namespace

bool sil_config::is_sil_category(const std::string& category) const {
  const auto& xs = sil_categories();
  return std::find(xs.begin(), xs.end(), category) != xs.end();
}

bool sil_config::is_caf_category(const std::string& category) const {
  if (category == "global" || is_sil_category(category))
    return false;
  for (const auto& opt : custom_options_)
    if (to_std(opt.category()) == category)
      return true;
  return false;
}

std::vector<std::string> sil_config::sil_option_keys() const {
  static const std::vector<std::string> our_globals{"host", "port",    "workers",
                                                    "role", "gateway", "node-name"};
  std::vector<std::string> out;
  for (const auto& opt : custom_options_) {
    auto cat = to_std(opt.category());
    auto name = to_std(opt.long_name());
    bool mine
      = is_sil_category(cat)
        || (cat == "global"
            && std::find(our_globals.begin(), our_globals.end(), name) != our_globals.end());
    if (mine)
      out.push_back(join_text(cat, ".", name));
  }
  return out;
}

// -- the config file ---------------------------------------------------------

status sil_config::load_config_file(const std::string& path, bool named_on_command_line) {
  auto fail = [&](const std::string& what) {
    return status{errc::invalid_config, path + ": " + what};
  };
  std::ifstream in{path};
  if (!in) {
    if (!named_on_command_line)
      return ok(); // the default file is optional
    return fail(std::string{"cannot open the config file ("} + std::strerror(errno) + ")");
  }
  std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  std::istringstream source{text};
  auto parsed = caf::actor_system_config::parse_config(source);
  if (!parsed)
    return fail(describe_syntax_error(parsed.error()));
  if (auto dup = repeated_key(text); !dup.empty())
    return fail(dup);
  // Everything is checked before anything is applied.
  struct accepted {
    const caf::config_option* opt;
    caf::config_value value;
  };
  std::vector<accepted> values;
  std::vector<std::string> sections;
  for (const auto& opt : custom_options_) {
    auto cat = to_std(opt.category());
    if (cat != "global" && std::find(sections.begin(), sections.end(), cat) == sections.end())
      sections.push_back(cat);
  }
  auto check_entry
    = [&](const std::string& cat, const std::string& key, const caf::config_value& raw) -> status {
    auto shown = cat == "global" ? key : cat + "." + key;
    auto opt = custom_options_.qualified_name_lookup(cat, key);
    if (opt == nullptr || (cat == "global" && is_caf_global(key))) {
      std::vector<std::string> names;
      for (const auto& o : custom_options_)
        if (to_std(o.category()) == cat
            && !(cat == "global" && is_caf_global(to_std(o.long_name()))))
          names.push_back(to_std(o.long_name()));
      auto hint = suggestion(key, names);
      if (!hint.empty() && cat != "global")
        hint = suggestion(key, names, (cat + ".").c_str());
      return fail(shown + ": unknown key" + hint);
    }
    auto v = raw;
    if (auto problem = coerce(*opt, v))
      return fail(shown + ": " + *problem);
    values.push_back({opt, std::move(v)});
    return ok();
  };
  auto check_section = [&](const std::string& cat, const std::string& shown,
                           const caf::settings& entries) -> status {
    if (!is_sil_category(cat) && !is_caf_category(cat)) {
      auto first = entries.empty() ? std::string{} : "." + entries.begin()->first;
      return fail(shown + first + ": unknown section [" + shown + "]"
                  + suggestion(cat, sections, "[", "]"));
    }
    for (const auto& [key, value] : entries)
      if (auto st = check_entry(cat, key, value); !st)
        return st;
    return ok();
  };
  for (const auto& [name, value] : *parsed) {
    auto dict = caf::get_if<caf::settings>(&value);
    if (dict == nullptr) {
      if (auto st = check_entry("global", name, value); !st)
        return st;
      continue;
    }
    if (name == "caf") { // later CAF versions' names: [caf.scheduler] is [scheduler]
      for (const auto& [sub, inner] : *dict) {
        auto sub_dict = caf::get_if<caf::settings>(&inner);
        if (sub_dict == nullptr || !is_caf_category(sub))
          return fail(join_text("caf.", sub, ": unknown section [caf.", sub, "]"));
        if (auto st = check_section(sub, "caf." + sub, *sub_dict); !st)
          return st;
      }
      continue;
    }
    if (auto st = check_section(name, name, *dict); !st)
      return st;
  }
  for (auto& a : values) {
    a.opt->store(a.value);
    caf::put(content, full_key(*a.opt), std::move(a.value));
  }
  return ok();
}

// -- the command line ----------------------------------------------------------

status sil_config::check_arguments(const std::vector<std::string>& args,
                                   const std::vector<std::string>& origins) const {
  auto fail = [&](std::size_t i, const std::string& what) {
    if (!origins[i].empty())
      return status{errc::invalid_config,
                    what + " (set by the environment variable " + origins[i] + ")"};
    return status{errc::invalid_config, what + "; see --help"};
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a.size() < 2 || a[0] != '-' || a == "--")
      return fail(i, "unexpected argument \"" + a + "\"");
    if (a.compare(0, 2, "--") == 0) {
      auto eq = a.find('=');
      auto name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      auto opt = custom_options_.cli_long_name_lookup(name);
      if (opt == nullptr)
        return fail(i, "unknown option --" + name);
      auto shown = origins[i].empty() ? "--" + name : name;
      if (opt->is_flag()) {
        if (eq != std::string::npos)
          return fail(i, shown + " takes no value");
        continue;
      }
      if (eq == std::string::npos)
        return fail(i, join_text(shown, " needs a value (--", name, "=VALUE)"));
      auto value = a.substr(eq + 1);
      if (!opt->parse(value))
        return fail(i,
                    join_text(shown, ": expected ", expected_kind(*opt), ", got \"", value, "\""));
      continue;
    }
    auto opt = custom_options_.cli_short_name_lookup(a[1]);
    if (opt == nullptr)
      return fail(i, "unknown option " + a.substr(0, 2));
    if (opt->is_flag()) {
      if (a.size() > 2)
        return fail(i, a.substr(0, 2) + " takes no value");
      continue;
    }
    std::string value;
    if (a.size() > 2) {
      value = a.substr(2);
    } else {
      if (i + 1 >= args.size())
        return fail(i, a + " needs a value");
      value = args[++i];
    }
    if (!opt->parse(value))
      return fail(i,
                  a.substr(0, 2) + ": expected " + expected_kind(*opt) + ", got \"" + value + "\"");
  }
  return ok();
}

status sil_config::parse_all(int argc, char** argv, const char* (*getenv_fn)(const char*)) {
  if (getenv_fn == nullptr)
    getenv_fn = default_getenv;
  std::vector<std::string> cli;
  for (int i = 1; i < argc; ++i)
    cli.emplace_back(argv[i]);
  // Help first: it works whatever else is wrong.
  for (const auto& a : cli)
    if (a == "--help" || a == "-h" || a == "-?" || a == "--long-help") {
      auto text = help_text(a == "--long-help");
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      cli_helptext_printed = true;
      return ok();
    }
  auto dump = std::find(cli.begin(), cli.end(), "--dump-config");
  if (dump != cli.end()) {
    dump_requested = true;
    cli.erase(std::remove(cli.begin(), cli.end(), "--dump-config"), cli.end());
  }
  // SIL_<KEY> variables become flags placed before the real ones, so the
  // command line still wins; both win over the config file, read first.
  std::vector<std::string> args;
  std::vector<std::string> origins; // the variable that made args[i], if any
  for (const auto& key : sil_option_keys()) {
    auto flag_key = key.rfind("global.", 0) == 0 ? key.substr(7) : key;
    auto var = env_var_of(flag_key);
    if (auto v = getenv_fn(var.c_str()); v != nullptr && !given_on_cli(argc, argv, flag_key)) {
      args.push_back("--" + flag_key + "=" + v);
      origins.push_back(var);
    }
  }
  for (const auto& a : cli) {
    args.push_back(a);
    origins.emplace_back();
  }
  // CAF 0.17's boolean options accept only a bare flag (`--cache.enabled`),
  // not `--cache.enabled=false`. Such flags are taken out here and applied
  // last, so they still win over the config file and the environment.
  std::vector<std::pair<const caf::config_option*, bool>> bools;
  std::vector<std::string> rest_args;
  std::vector<std::string> rest_origins;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto eq = a.find('=');
    const caf::config_option* opt = nullptr;
    if (a.rfind("--", 0) == 0 && eq != std::string::npos)
      opt = custom_options_.cli_long_name_lookup(a.substr(2, eq - 2));
    if (opt != nullptr && to_std(opt->type_name()) == "boolean") {
      bool v = false;
      auto value = a.substr(eq + 1);
      if (!parse_bool(value, v)) {
        auto key = a.substr(2, eq - 2);
        auto where = origins[i].empty()
                       ? std::string{"; see --help"}
                       : join_text(" (set by the environment variable ", origins[i], ")");
        return {errc::invalid_config,
                join_text(origins[i].empty() ? "--" : "", key, ": expected true or false, got \"",
                          value, "\"", where)};
      }
      bools.emplace_back(opt, v);
      continue;
    }
    rest_args.push_back(a);
    rest_origins.push_back(origins[i]);
  }
  if (auto st = check_arguments(rest_args, rest_origins); !st)
    return st;
  // The config file: named on the command line, else the default if present.
  std::string file = config_file_path;
  bool named = false;
  for (const auto& a : cli)
    if (a.rfind("--config-file=", 0) == 0) {
      file = a.substr(14);
      named = true;
    }
  if (auto st = load_config_file(file, named); !st)
    return st;
  // CAF's parser for the command line (the file is already applied: an
  // empty stream keeps CAF from reading it again without our checks).
  std::istringstream no_file;
  if (auto err = parse(std::move(rest_args), no_file)) {
    auto text = caf::to_string(err);
    return {errc::invalid_config, "invalid configuration: " + text};
  }
  if (!remainder.empty())
    return {errc::invalid_config, "unexpected argument \"" + remainder.front() + "\"; see --help"};
  if (auto st = apply_environment(argc, argv, getenv_fn); !st)
    return st;
  for (const auto& [opt, v] : bools) {
    caf::config_value cv{v};
    opt->store(cv);
    caf::put(content, full_key(*opt), cv);
  }
  return ok();
}

status sil_config::apply_environment(int argc, char** argv, const char* (*getenv_fn)(const char*)) {
  if (getenv_fn == nullptr)
    getenv_fn = default_getenv;
  auto& s = settings;
  // A legacy variable counts only if neither the flag nor SIL_<KEY> is set.
  auto legacy = [&](const char* var, const char* key) -> const char* {
    auto v = getenv_fn(var);
    if (v == nullptr || given_on_cli(argc, argv, key) || getenv_fn(env_var_of(key).c_str()))
      return nullptr;
    return v;
  };
  if (auto v = legacy("CACHE_MAX_SIZE", "cache.max-size"))
    if (!parse_int(v, s.cache_max_size))
      return env_error("CACHE_MAX_SIZE", v, "an integer");
  if (auto v = legacy("CACHE_TTL_SECONDS", "cache.ttl-seconds"))
    if (!parse_double(v, s.cache_ttl_seconds))
      return env_error("CACHE_TTL_SECONDS", v, "a number of seconds");
  if (auto v = legacy("CACHE_ENABLED", "cache.enabled")) {
    bool b = false;
    if (!parse_bool(v, b))
      return env_error("CACHE_ENABLED", v, "true or false");
    s.cache_enabled = b;
  }
  if (auto v = legacy("PREFIX_K", "cache.prefix-k"))
    if (!parse_int(v, s.cache_prefix_k))
      return env_error("PREFIX_K", v, "an integer");
  return ok();
}

// -- help and dump -------------------------------------------------------------

std::string sil_config::help_text(bool long_help) const {
  std::string out = "Usage: sil-server [--config-file=PATH] [--SECTION.KEY=VALUE ...]\n"
                    "       sil-server --help | --long-help | --version | --dump-config\n"
                    "\n";
  append_wrapped(out,
                 "Every option is also a config-file key ([cache] max-size=512) and an "
                 "environment variable (SIL_CACHE_MAX_SIZE=512). Precedence, highest first: "
                 "flag, SIL_* variable, the original CACHE_MAX_SIZE / CACHE_TTL_SECONDS / "
                 "CACHE_ENABLED / PREFIX_K, config file, default. Boolean flags take a value "
                 "(--cache.enabled=false). Unknown keys and values of the wrong type stop "
                 "startup (exit 2).",
                 0, 0);
  out += "\n";
  constexpr std::size_t col = 34;
  auto line = [&](const std::string& flag, const std::string& text) {
    std::string row = "  " + flag;
    if (row.size() + 1 > col)
      row += "\n" + std::string(col, ' ');
    else
      row.append(col - row.size(), ' ');
    out += row;
    append_wrapped(out, text, col, col);
  };
  line("-h, --help", "print this help and exit");
  line("--long-help", "also list CAF's framework options (scheduler, middleman, logger, ...)");
  line("--version", "print the version and commit and exit");
  line("--dump-config",
       "print the effective configuration (defaults included) as a config file and exit");
  line("--config-file=PATH",
       "read options from PATH (CAF's INI syntax); default ./caf-application.ini if present");
  auto caf_defaults = dump_content();
  auto option_line = [&](const caf::config_option& opt) {
    auto key = full_key(opt);
    std::string flag = "--" + key + "=" + placeholder(opt);
    auto shorts = to_std(opt.short_names());
    if (!shorts.empty())
      flag = "-" + shorts.substr(0, 1) + ", " + flag;
    auto text = to_std(opt.description());
    caf::optional<caf::config_value> def = opt.get();
    if (!def)
      if (auto v = caf::get_if(&caf_defaults, key))
        def = *v;
    if (def)
      text += " [default:\x01" + ini_value(*def) + "]"; // \x01: a space that never breaks
    line(flag, text);
  };
  auto section = [&](const std::string& cat, bool caf_side) {
    bool header = false;
    for (const auto& opt : custom_options_) {
      if (to_std(opt.category()) != cat)
        continue;
      if (cat == "global") {
        bool caf_global = is_caf_global(to_std(opt.long_name()));
        if (caf_global)
          continue; // listed above
      }
      if (!header) {
        out += "\n" + cat + (caf_side ? " (CAF)" : "") + ":\n";
        header = true;
      }
      option_line(opt);
    }
  };
  section("global", false);
  for (const auto& cat : sil_categories())
    section(cat, false);
  if (!long_help) {
    out += "\nCAF's framework options (scheduler, middleman, logger, ...): --long-help\n";
    return out;
  }
  std::vector<std::string> caf_cats;
  for (const auto& opt : custom_options_) {
    auto cat = to_std(opt.category());
    if (is_caf_category(cat) && std::find(caf_cats.begin(), caf_cats.end(), cat) == caf_cats.end())
      caf_cats.push_back(cat);
  }
  for (const auto& cat : caf_cats)
    section(cat, true);
  return out;
}

std::vector<sil_config::entry> sil_config::effective(bool redact) const {
  std::vector<entry> out;
  auto add = [&](const caf::config_option& opt) {
    auto v = opt.get();
    if (!v)
      return;
    entry e;
    e.section = to_std(opt.category());
    e.name = to_std(opt.long_name());
    if (auto x = caf::get_if<caf::config_value::integer>(&*v)) {
      e.k = entry::kind::integer;
      e.i = *x;
    } else if (auto x = caf::get_if<double>(&*v)) {
      e.k = entry::kind::real;
      e.d = *x;
    } else if (auto x = caf::get_if<bool>(&*v)) {
      e.k = entry::kind::boolean;
      e.b = *x;
    } else if (auto x = caf::get_if<std::string>(&*v)) {
      e.s = *x;
      if (redact && e.section == "admin" && e.name == "token" && !e.s.empty())
        e.s = "(set)";
    } else {
      e.s = ini_value(*v);
    }
    out.push_back(std::move(e));
  };
  auto keys = sil_option_keys();
  std::vector<std::string> cats{"global"};
  cats.insert(cats.end(), sil_categories().begin(), sil_categories().end());
  for (const auto& cat : cats)
    for (const auto& opt : custom_options_)
      if (to_std(opt.category()) == cat
          && std::find(keys.begin(), keys.end(), cat + "." + to_std(opt.long_name())) != keys.end())
        add(opt);
  return out;
}

std::string sil_config::dump_config() const {
  std::string out = "; sil-server: the effective configuration, defaults included.\n"
                    "; Read it back with --config-file=FILE.\n";
  std::string section;
  for (const auto& e : effective(false)) {
    if (e.section != section) {
      section = e.section;
      out += "\n[" + section + "]\n";
    }
    out += e.name + "=";
    switch (e.k) {
      case entry::kind::integer:
        out += std::to_string(e.i);
        break;
      case entry::kind::real:
        out += format_real(e.d);
        break;
      case entry::kind::boolean:
        out += e.b ? "true" : "false";
        break;
      case entry::kind::text:
        out += quoted(e.s);
        break;
    }
    out += '\n';
  }
  // CAF's settings that are set (sil sets the scheduler's; a file or a flag
  // may set others), in CAF's own sections.
  for (const auto& [name, value] : content) {
    auto dict = caf::get_if<caf::settings>(&value);
    if (dict == nullptr || dict->empty() || !is_caf_category(name))
      continue;
    out += "\n[" + name + "]\n";
    for (const auto& [key, v] : *dict)
      out += key + "=" + ini_value(v) + "\n";
  }
  return out;
}

} // namespace sil
