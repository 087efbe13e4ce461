#include "config/sil_config.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <caf/atom.hpp>

#include "messages/messages.hpp"

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
    .add(s.host, "host", "address to listen on (default 127.0.0.1)")
    .add(s.port, "port,p", "HTTP port (default 8000; 0 picks a free port)")
    .add(s.workers, "workers", "encoder workers (default 0: one per core)");
  opt_group{custom_options_, "cache"}
    .add(s.cache_max_size, "max-size", "maximum number of cached embeddings (env CACHE_MAX_SIZE)")
    .add(s.cache_admission, "admission",
         "what a full cache gives up: lru (default: the least recently used entry) or tinylfu "
         "(W-TinyLFU: a new entry stays only if asked for more often than the one it displaces)")
    .add(s.cache_ttl_seconds, "ttl-seconds",
         "seconds an entry may be served, fractional allowed (env CACHE_TTL_SECONDS)")
    .add(s.cache_enabled, "enabled", "whether cached embeddings are reused (env CACHE_ENABLED)")
    .add(s.cache_single_flight, "single-flight",
         "concurrent misses on one key share one computation (default true)")
    .add(s.cache_read_path, "read-path",
         "answer hits on the I/O thread from the cache's read view (default true)")
    .add(s.cache_prefix_k, "prefix-k", "number of leading feature values in the key (env PREFIX_K)")
    .add(s.cache_prefix_unit, "prefix-unit",
         "what K counts: values (the first K values, default) or rows (the first K rows)")
    .add(s.cache_sweep_interval_seconds, "sweep-interval",
         "seconds between sweeps of expired entries");
  opt_group{custom_options_, "model"}
    .add(s.model_preset, "preset", "model architecture: base (default) or seed")
    .add(s.model_weights, "weights", "weights file (docs/weights-format.md); default: seeded")
    .add(s.model_seed, "seed", "seed of the deterministic weights (default 42)");
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
         "true (default): reuse only exact or certified inputs; false (or off): any input "
         "sharing the key")
    .add(s.risk_tolerance, "tolerance",
         "largest |cached - fresh| prediction difference that is not wrong (default 0.05)")
    .add(s.risk_max_wrong_rate, "max-wrong-rate",
         "largest share of served cached answers that may be wrong (default 0.01)")
    .add(s.risk_confidence, "confidence", "confidence of the guard's bounds (default 0.95)");
  opt_group{custom_options_, "audit"}
    .add(s.audit_per_second, "per-second", "target audits of served hits per second (0: no pacing)")
    .add(s.audit_max_encoder_share, "max-encoder-share",
         "largest share of encoder time audits may take (default 0.05)")
    .add(s.audit_rate, "rate", "probability that a cache hit is a candidate for an audit")
    .add(s.audit_max_share, "max-share", "audits per request served, at most, over the window")
    .add(s.audit_window_seconds, "window", "seconds of the audit budget's sliding window");
  opt_group{custom_options_, "agent"}
    .add(s.agent_enabled, "enabled",
         "the agent acts on what audits measure (false: measure only, never act)")
    .add(s.agent_interval_seconds, "interval", "seconds between agent observations")
    .add(s.agent_trigger, "trigger",
         "wrong-rate (default: the served wrong-rate's bounds vs risk.max-wrong-rate) or cosine")
    .add(s.agent_disable_wrong_rate, "disable-wrong-rate",
         "served wrong-rate whose lower bound disables reuse (default 0.05)")
    .add(s.agent_label_window, "label-window", "served labels the agent weighs (default 500)")
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
    .add(s.role, "role", "standalone (default), gateway or worker (see README: Cluster)")
    .add(s.gateway, "gateway", "worker: the gateway's registry, HOST:PORT")
    .add(s.node_name, "node-name", "this node's name in /stats and /metrics (default host:pid)");
  opt_group{custom_options_, "cluster"}
    .add(s.cluster_host, "host", "gateway: address the registry listens on for worker nodes")
    .add(s.cluster_port, "port", "gateway: port of the registry (default 7000; 0 picks one)")
    .add(s.cluster_fallback, "fallback",
         "gateway with no worker reachable: local (encode here) or reject (503)");
  opt_group{custom_options_, "admin"}.add(s.admin_token, "token",
                                          "bearer token of the admin API; empty disables it");
  register_message_types(*this);
}

namespace {

bool given_on_cli(int argc, char** argv, const std::string& key) {
  auto flag = "--" + key;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == flag || a.rfind(flag + "=", 0) == 0)
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

bool parse_bool(const char* s, bool& out) {
  std::string v = s;
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

const char* default_getenv(const char* name) {
  return std::getenv(name);
}

} // namespace

std::vector<std::string> sil_config::sil_option_keys() const {
  static const std::vector<std::string> ours{"cache", "model", "encoder", "http", "agent",
                                             "audit", "admin", "cluster", "risk"};
  static const std::vector<std::string> our_globals{"host", "port",    "workers",
                                                    "role", "gateway", "node-name"};
  std::vector<std::string> out;
  for (const auto& opt : custom_options_) {
    std::string cat{opt.category().data(), opt.category().size()};
    std::string name{opt.long_name().data(), opt.long_name().size()};
    bool mine
      = std::find(ours.begin(), ours.end(), cat) != ours.end()
        || (cat == "global"
            && std::find(our_globals.begin(), our_globals.end(), name) != our_globals.end());
    if (mine) {
      cat += '.';
      cat += name;
      out.push_back(std::move(cat));
    }
  }
  return out;
}

status sil_config::parse_all(int argc, char** argv, const char* (*getenv_fn)(const char*)) {
  // CAF 0.17's bool options accept only a bare flag (`--cache.enabled`), not
  // `--cache.enabled=false`. Boolean flags with an explicit value are taken
  // out here and applied after CAF's parse, so they still win over the
  // config file and the environment.
  struct bool_flag {
    const char* key;
    bool* target;
    std::optional<bool> value;
  };
  std::array<bool_flag, 5> bools{
    {{"cache.enabled", &settings.cache_enabled, std::nullopt},
     {"cache.single-flight", &settings.cache_single_flight, std::nullopt},
     {"cache.read-path", &settings.cache_read_path, std::nullopt},
     {"agent.enabled", &settings.agent_enabled, std::nullopt},
     {"risk.guard", &settings.risk_guard, std::nullopt}}};
  // SIL_<KEY> environment variables (e.g. SIL_CLUSTER_PORT, SIL_ROLE) set
  // every option: they become flags placed before the real ones, so the
  // command line still wins, and both win over the config file.
  if (getenv_fn == nullptr)
    getenv_fn = default_getenv;
  std::vector<std::string> env_flags;
  std::vector<std::string> env_vars; // env_vars[i] made env_flags[i]
  for (const auto& key : sil_option_keys()) {
    auto flag_key = key.rfind("global.", 0) == 0 ? key.substr(7) : key;
    std::string var = "SIL_";
    for (char c : flag_key)
      var += c == '.' || c == '-' ? '_'
                                  : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (auto v = getenv_fn(var.c_str()); v != nullptr && !given_on_cli(argc, argv, flag_key)) {
      env_flags.push_back("--" + flag_key + "=" + v);
      env_vars.push_back(var);
    }
  }
  // Errors about a value that came from the environment name the variable.
  auto origin = [&](const std::string& text) {
    for (std::size_t i = 0; i < env_flags.size(); ++i)
      if (text.find(env_flags[i]) != std::string::npos)
        return " (set by the environment variable " + env_vars[i] + ")";
    return std::string{};
  };
  std::vector<char*> all_args;
  if (argc > 0)
    all_args.push_back(argv[0]);
  for (auto& f : env_flags)
    all_args.push_back(f.data());
  for (int i = 1; i < argc; ++i)
    all_args.push_back(argv[i]);
  std::vector<char*> rest;
  for (int i = 0; i < static_cast<int>(all_args.size()); ++i) {
    std::string a = all_args[static_cast<std::size_t>(i)];
    bool taken = false;
    for (auto& b : bools) {
      auto flag = std::string{"--"} + b.key + "=";
      if (i == 0 || a.rfind(flag, 0) != 0)
        continue;
      bool v = false;
      if (!parse_bool(a.c_str() + flag.size(), v))
        return {errc::invalid_config, std::string{b.key} + ": expected true or false, got '"
                                        + a.substr(flag.size()) + "'" + origin(a)};
      b.value = v;
      taken = true;
    }
    if (!taken)
      rest.push_back(all_args[static_cast<std::size_t>(i)]);
  }
  if (auto err = parse(static_cast<int>(rest.size()), rest.data())) {
    auto text = caf::to_string(err);
    return {errc::invalid_config, "invalid configuration: " + text + origin(text)};
  }
  if (cli_helptext_printed)
    return ok();
  if (!remainder.empty())
    return {errc::invalid_config, "unknown argument '" + remainder.front() + "' (see --help)"};
  if (auto st = apply_environment(argc, argv, getenv_fn); !st)
    return st;
  for (const auto& b : bools)
    if (b.value)
      *b.target = *b.value;
  return ok();
}

status sil_config::apply_environment(int argc, char** argv, const char* (*getenv_fn)(const char*)) {
  if (getenv_fn == nullptr)
    getenv_fn = default_getenv;
  auto& s = settings;
  if (auto v = getenv_fn("CACHE_MAX_SIZE"); v && !given_on_cli(argc, argv, "cache.max-size"))
    if (!parse_int(v, s.cache_max_size))
      return env_error("CACHE_MAX_SIZE", v, "an integer");
  if (auto v = getenv_fn("CACHE_TTL_SECONDS"); v && !given_on_cli(argc, argv, "cache.ttl-seconds"))
    if (!parse_double(v, s.cache_ttl_seconds))
      return env_error("CACHE_TTL_SECONDS", v, "a number of seconds");
  if (auto v = getenv_fn("CACHE_ENABLED"); v && !given_on_cli(argc, argv, "cache.enabled"))
    if (!parse_bool(v, s.cache_enabled))
      return env_error("CACHE_ENABLED", v, "true or false");
  if (auto v = getenv_fn("PREFIX_K"); v && !given_on_cli(argc, argv, "cache.prefix-k"))
    if (!parse_int(v, s.cache_prefix_k))
      return env_error("PREFIX_K", v, "an integer");
  return ok();
}

} // namespace sil
