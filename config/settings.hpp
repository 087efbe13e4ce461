// The service's settings as plain values, and their validation.
//
// Owns: every tunable with its default, and the rules that make a value
// invalid. No CAF include: config/sil_config.hpp binds these fields to CAF's
// options (CLI, config file) and applies the environment overrides.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/model_directory.hpp"

namespace sil {

/// Every setting of sil-server, with its default.
struct service_settings {
  // -- network
  std::string host = "127.0.0.1";
  std::int64_t port = 8000;
  // -- cache
  std::int64_t cache_max_size = 256;
  /// What a full cache gives up: "lru" (the least recently used entry) or
  /// "tinylfu" (W-TinyLFU: a new entry displaces main's victim only if it
  /// was asked for more often; core/admission.hpp).
  std::string cache_admission = "tinylfu";
  double cache_ttl_seconds = 30.0;
  bool cache_enabled = true;
  /// Concurrent misses on one key wait for one computation.
  bool cache_single_flight = true;
  /// Hits are answered on the I/O thread from the cache's read view; false:
  /// every lookup asks the cache owner (for experiments that compare).
  bool cache_read_path = true;
  std::int64_t cache_prefix_k = 4;
  /// What K counts: "values" (the first K values) or "rows" (the first K rows).
  std::string cache_prefix_unit = "values";
  double cache_sweep_interval_seconds = 1.0;
  // -- model
  std::string model_preset = "base";
  std::string model_weights;
  std::int64_t model_seed = 42;
  /// The served name of that model (empty: its architecture's name).
  std::string model_name;
  // -- models: more models and versions, and their limits
  /// More versions to serve from the start: model specs
  /// (core/model_directory.hpp) separated by ';'.
  std::string models_load;
  /// Bytes all loaded weights may take (0: no limit).
  std::int64_t models_max_bytes = 0;
  /// Warm-up encodes of a version loaded at runtime, before it may become
  /// the default (a request may override it).
  std::int64_t models_warm_encodes = 8;
  // -- canary: how a candidate cache policy is judged against the one in place
  /// How much higher the candidate's served wrong-rate may be and still
  /// count as not worse.
  double canary_margin = 0.005;
  /// "Cheaper": at least this many fewer encodes per request.
  double canary_min_saving = 0.01;
  /// "Wrong less often at a small cost": at most this many more encodes
  /// per request (about as many points of hit rate).
  double canary_max_cost_increase = 0.1;
  /// Served labels and requests each arm needs before a promotion.
  std::int64_t canary_min_labels = 100;
  std::int64_t canary_min_requests = 200;
  /// No decision after this long: rolled back as inconclusive (0: never).
  double canary_max_seconds = 600.0;
  /// Seconds between the canary judge's observations.
  double canary_interval_seconds = 1.0;
  // -- encoder workers
  std::int64_t workers = 0; // 0: one per core
  std::int64_t encoder_max_batch = 32;
  double encoder_timeout_seconds = 2.0;
  std::int64_t encoder_max_attempts = 3;
  /// CPU priority the local encoder threads give up (nice), so that the
  /// I/O threads answer first on a busy machine; 0: same priority.
  std::int64_t encoder_nice = 10;
  // -- HTTP
  std::int64_t http_threads = 2;
  std::int64_t http_body_limit = 1 << 20;
  double http_read_timeout_seconds = 30.0;
  std::int64_t http_max_inflight = 1024;
  std::int64_t http_max_rows = 64;
  double http_drain_timeout_seconds = 10.0;
  /// Open connections at most (0: derived from the file-descriptor limit).
  std::int64_t http_max_connections = 0;
  /// Longest expected wait for an encoder before a prediction is refused
  /// with 503 (0: no limit); a request's "timeout_ms" replaces it.
  double http_max_queue_delay_seconds = 1.0;
  /// How long a closing connection keeps discarding what the client sends.
  double http_linger_seconds = 2.0;
  /// Browser origins that may read answers (CORS), comma-separated
  /// ("https://app.example.com, http://localhost:3000", or "*"); empty: no
  /// CORS field in any answer.
  std::string http_cors_origins;
  // -- reuse under an error budget
  /// true: reuse only what the guard certifies; false: pure prefix reuse.
  /// Like every bool flag, `--risk.guard=off` / `SIL_RISK_GUARD=off` work.
  bool risk_guard = true;
  double risk_tolerance = 0.05;
  double risk_max_wrong_rate = 0.01;
  double risk_confidence = 0.95;
  // -- audit sampling: sized by what the estimates need, capped by encoder time
  double audit_rate = 1.0;
  double audit_max_share = 1.0;
  double audit_window_seconds = 10.0;
  double audit_per_second = 20.0;
  double audit_max_encoder_share = 0.05;
  // -- agent
  /// false: audits still measure, but the agent never acts (no TTL changes,
  /// no disabling, no per-entry eviction). For experiments and incidents.
  bool agent_enabled = true;
  /// "wrong-rate" (the served wrong-rate's bounds) or "cosine" (p95 cosine).
  std::string agent_trigger = "wrong-rate";
  double agent_disable_wrong_rate = 0.05;
  std::int64_t agent_label_window = 500;
  double agent_interval_seconds = 1.0;
  double agent_recover_threshold = 0.01;
  double agent_ttl_threshold = 0.05;
  double agent_disable_threshold = 0.2;
  std::int64_t agent_recover_windows = 3;
  std::int64_t agent_min_samples = 3;
  double agent_ttl_floor_seconds = 1.0;
  double agent_entry_evict_threshold = 0.3;
  // -- cluster
  /// standalone (everything in one process), gateway (HTTP, cache, agent,
  /// and a registry that remote encoder nodes join) or worker (encoders).
  std::string role = "standalone";
  /// worker: the gateway's registry, HOST:PORT.
  std::string gateway;
  /// gateway: where the registry listens for worker nodes.
  std::string cluster_host = "127.0.0.1";
  std::int64_t cluster_port = 7000;
  /// gateway: with no worker reachable, encode locally ("local") or answer
  /// 503 with Retry-After ("reject").
  std::string cluster_fallback = "local";
  /// This node's name in /stats and /metrics; empty: host:pid.
  std::string node_name;
  // -- admin API
  std::string admin_token; // empty: admin routes answer 403
  // -- logs (logging/log.hpp)
  /// Lowest level written: debug, info, warn or error.
  std::string log_level = "info";
  /// "text" (readable lines) or "json" (one object per line).
  std::string log_format = "text";
  /// Empty: stderr. Reopened on SIGHUP (log rotation).
  std::string log_file;
  /// One line per HTTP request in the access log.
  bool log_access = false;
  /// Empty: access lines go to the main log.
  std::string log_access_file;
};

/// "HOST:PORT" split; nullopt unless the port is a number in [1, 65535].
std::optional<std::pair<std::string, std::uint16_t>> split_host_port(const std::string& s);

/// Splits http.cors-origins into origins ("*" or scheme://host[:port], as
/// a browser's Origin field spells them); an element that is neither is an
/// error that names it.
result<std::vector<std::string>> parse_cors_origins(std::string_view list);

/// Splits models.load into model specs (';' between them); errors name the
/// key and the spec.
result<std::vector<model_spec>> parse_model_specs(std::string_view list);

/// Checks every value; the error message names the offending key and the
/// value. `input_dim` is the model's D, which bounds the prefix length.
status validate(const service_settings& s, std::size_t input_dim);

} // namespace sil
