// The plain values the actors exchange: enums and structs without any CAF
// include, so that the HTTP codec, the routes and the tests can use them
// without compiling the actor framework.
//
// Owns: every struct that travels between actors (requests, answers,
// snapshots, reports), and the enums that name states, actions, sources and
// routes, each with exactly one to_string (the only place its words are
// spelled; JSON, metrics and logs call it). No logic lives here.
// Does not own: atoms, inspect() overloads, typed handles, the translation
// of errors to caf::error (messages/messages.hpp).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/admission.hpp"
#include "core/agent_policy.hpp"
#include "core/canary.hpp"
#include "core/cancellation.hpp"
#include "core/embedding.hpp"
#include "core/lru_ttl_cache.hpp"
#include "core/model.hpp"
#include "core/model_directory.hpp"
#include "core/prefix_key.hpp"
#include "core/reuse_guard.hpp"

namespace sil {

// -- predictions ----------------------------------------------------------------------

/// Where a prediction's embedding came from.
enum class embedding_source : std::uint8_t {
  /// Computed for this request.
  encoder = 0,
  /// Served from the cache.
  cache = 1,
  /// Computed for a concurrent request with the same prefix (single-flight).
  single_flight = 2,
};

/// "encoder", "cache", "single_flight".
const char* to_string(embedding_source s) noexcept;

/// Every source, in order (one metric series each).
inline constexpr std::array<embedding_source, 3> all_embedding_sources{
  embedding_source::encoder, embedding_source::cache, embedding_source::single_flight};

// -- cache ----------------------------------------------------------------------------

/// What a cache lookup tells the ingress to do.
enum class lookup_kind : std::uint8_t {
  /// Use `value` (a cache hit).
  hit = 0,
  /// Nobody computes this key: compute it, then insert (or abandon).
  lead = 1,
  /// Another request computed it while this one waited (single-flight).
  joined = 2,
  /// Reuse is disabled: compute fresh (and insert to keep the cache current).
  bypass = 3,
  /// An entry exists but the reuse guard refused it for this input: compute
  /// fresh, answer with that, label the comparison, and insert.
  refresh = 4,
};

// -- correctness risk -----------------------------------------------------------------

/// What made a comparison of a cached and a fresh embedding.
enum class comparison_kind : std::uint8_t {
  /// A sampled re-check of a served hit.
  audit = 0,
  /// A free comparison while reuse was disabled.
  shadow = 1,
  /// A free comparison after the guard refused reuse.
  refusal = 2,
};

/// "audit", "shadow", "refusal".
const char* to_string(comparison_kind k) noexcept;

/// Every kind, in order (one metric series each).
inline constexpr std::array<comparison_kind, 3> all_comparison_kinds{
  comparison_kind::audit, comparison_kind::shadow, comparison_kind::refusal};

// -- the agent ------------------------------------------------------------------------

/// An operator's command (admin API).
enum class admin_command : std::uint8_t {
  disable_cache = 0,
  enable_cache = 1,
  clear_cache = 2,
  set_ttl = 3,
  resume_agent = 4,
};

/// "disable_cache", "enable_cache", "clear_cache", "set_ttl",
/// "resume_agent" (the admin log's action names).
const char* to_string(admin_command c) noexcept;

/// What one entry of the agent's decision log did: the agent's own actions
/// (agent_action) and an operator's commands, in one vocabulary.
enum class decision_action : std::uint8_t {
  keep = 0,
  shorten_ttl = 1,
  restore_ttl = 2,
  disable = 3,
  enable = 4,
  clear = 5,
  set_ttl = 6,
  resume = 7,
};

/// "keep", "shorten_ttl", "restore_ttl", "disable", "enable", "clear",
/// "set_ttl", "resume".
const char* to_string(decision_action a) noexcept;

/// The log's word for what the agent decided.
decision_action decision_of(agent_action a) noexcept;

/// The log's word for an operator's command.
decision_action decision_of(admin_command c) noexcept;

/// Decisions since start: the agent's own by action (`keep` is never
/// counted: it changes nothing), and operators' commands.
struct decision_counts {
  std::array<std::uint64_t, all_agent_actions.size()> by_action{};
  std::uint64_t manual = 0;

  std::uint64_t& of(agent_action a) noexcept {
    return by_action[static_cast<std::size_t>(a)];
  }

  std::uint64_t of(agent_action a) const noexcept {
    return by_action[static_cast<std::size_t>(a)];
  }
};

// -- encoder nodes --------------------------------------------------------------------

/// One encoder node's state as the gateway sees it.
enum class node_state : std::uint8_t {
  /// The gateway's own node.
  local = 0,
  /// Has live workers.
  up = 1,
  /// Had workers, has none now.
  down = 2,
  /// Its first worker is joining (before the pool counts it).
  joining = 3,
};

/// "local", "up", "down", "new".
const char* to_string(node_state s) noexcept;

/// The states a node settles in (one sil_node_state series each).
inline constexpr std::array<node_state, 3> settled_node_states{node_state::local, node_state::up,
                                                               node_state::down};

// -- HTTP exchanges -------------------------------------------------------------------

/// The route group an exchange is counted under (the `route` label of
/// sil_http_requests_total, and the route of a request outcome).
enum class route_label : std::uint8_t {
  predict = 0,
  health = 1,
  stats = 2,
  metrics = 3,
  agent = 4,
  admin = 5,
  openapi = 6,
  metadata = 7,
  /// A CORS preflight.
  preflight = 8,
  other = 9,
};

/// "predict", "health", "stats", "metrics", "agent", "admin", "openapi",
/// "metadata", "preflight", "other".
const char* to_string(route_label r) noexcept;

// -- requests and answers -------------------------------------------------------------

/// A decoded, validated prediction request.
struct predict_request {
  /// rows x input_dim values, row-major.
  std::vector<float> features;
  std::uint32_t rows = 0;
  /// false forces a fresh encode that neither reads nor writes the cache.
  bool use_cache = true;
  /// Refuse cached entries older than this (milliseconds); -1: no limit.
  std::int64_t max_age_ms = -1;
  /// This request's own error budget, in (0, 1]; 0: the configured one.
  /// It can only tighten the configured budget.
  double max_wrong_rate = 0.0;
  /// The client's own deadline (milliseconds); -1: the server's default.
  std::int64_t timeout_ms = -1;
  /// The model and version the client asked for (empty: the defaults).
  std::string model;
  std::string version;
  // The two fields below live in this process only (not serialized): the
  // front end sets them, the encoder pool reads them.
  /// When an answer is no longer useful: encode work that cannot finish by
  /// then is refused at once (overloaded). Epoch: no deadline.
  std::chrono::steady_clock::time_point deadline{};
  /// Set when the client has gone: work nobody else waits for is dropped.
  cancel_flag_ptr cancel;
};

/// Why an answer did or did not reuse a cached entry (present only when
/// an entry for the key existed).
struct reuse_info {
  bool present = false;
  reuse_basis basis = reuse_basis::unguarded;
  /// RMS distance between the request's and the entry source's values
  /// outside the key (0 when the guard is off and did not measure it).
  double distance = 0.0;
  /// Upper confidence bound on P(|cached - fresh| > tolerance).
  double p_wrong_upper = 0.0;
};

/// The answer to a prediction request.
struct predict_reply {
  float prediction = 0.0f;
  /// True when the embedding was reused (cache or single-flight).
  bool cache_hit = false;
  embedding_source source = embedding_source::encoder;
  /// Age of the reused embedding (cache hits), nanoseconds.
  std::int64_t cache_age_ns = 0;
  std::string model_version;
  /// The reuse decision's basis (cache hits, and fresh answers the guard
  /// chose over a stored entry).
  reuse_info risk;
};

/// Saturating milliseconds -> nanoseconds of a request's max_age_ms
/// (negative stays -1: no limit).
std::int64_t max_age_ns_of(std::int64_t ms) noexcept;

/// A hit served on the read path that may be audited: the ingress decides
/// within its budget and, if so, encodes the input fresh and compares.
struct audit_candidate {
  prefix_key key = 0;
  predict_request req;
  /// Index of the first value outside the key.
  std::uint32_t suffix_begin = 0;
  embedding value;
  std::int64_t age_ns = 0;
  reuse_info risk;
};

/// What the read path tells the ingress, in one message per batch: how many
/// requests it answered (for the audit budget's request share) and the hits
/// it offers for audit.
struct hit_batch {
  std::uint64_t requests = 0;
  std::vector<audit_candidate> candidates;
};

/// Latencies of hits answered on the read path (each one a /predict 200
/// served from the cache), in one message per batch.
struct hit_outcomes {
  std::vector<std::int64_t> latency_ns;
  /// The lane that answered them.
  std::uint32_t lane = 0;
};

// -- encoding -------------------------------------------------------------------------

/// One input to encode.
struct encode_item {
  std::vector<float> features;
  std::uint32_t rows = 0;
  // Local to the gateway's process (not serialized to remote workers):
  /// The clients that wait on this encode (null: an internal caller).
  demand_ptr wanted_by;
  /// Refuse instead of encoding past this point (epoch: no deadline).
  std::chrono::steady_clock::time_point deadline{};
  /// The model version to encode with (empty: the pool's own model).
  model with;
};

/// Several inputs a worker encodes in one pass, all with one model version.
struct encode_batch {
  std::vector<encode_item> items;
  /// The version every item is for (empty: the worker's own). A remote
  /// worker refuses a batch for a version it does not hold.
  std::string version;
  /// That version's model, in this process only (not serialized): a local
  /// worker encodes with it; a remote one uses its own copy.
  model with;
};

/// A worker's answer: one embedding per item, in order.
struct encoded_batch {
  std::vector<embedding> embeddings;
  /// The worker's compute time for the batch, and its floating-point
  /// operations (model::forward_flops), for GFLOP/s under load.
  std::int64_t busy_ns = 0;
  double flops = 0.0;
};

// -- cache lookups and counters -------------------------------------------------------

/// What a lookup asks besides the key.
struct lookup_query {
  /// Refuse entries older than this (ns); -1: no limit.
  std::int64_t max_age_ns = -1;
  /// The request's own error budget (0: the configured one).
  double max_wrong_rate = 0.0;
  /// The input's number of rows (the guard learns per shape).
  std::uint32_t rows = 0;
  /// The input's values outside the key.
  std::vector<float> suffix;
  /// The client's cancel flag (local only): a request that joins another's
  /// computation adds it to that computation's demand.
  cancel_flag_ptr cancel;
};

/// The cache owner's answer to a lookup.
struct cache_lookup {
  lookup_kind kind = lookup_kind::lead;
  /// hit/joined: the embedding to use. bypass/refresh: the entry still
  /// stored (if any, and not expired), for a free comparison with the fresh
  /// result.
  embedding value;
  std::int64_t age_ns = 0;
  /// hit, refresh, and bypass with a stored entry: the guard's verdict (for
  /// bypass: what it would have decided).
  reuse_info risk;
  /// lead: the clients waiting on this computation (local only).
  demand_ptr wanted_by;
};

/// A labelled observation: a cached prediction compared with the fresh one
/// for the same request.
struct reuse_label {
  std::uint32_t rows = 0;
  double distance = 0.0;
  /// |cached - fresh| > tolerance.
  bool wrong = false;
  /// The cached answer was served (an audit of a hit).
  bool served = false;
};

/// How far reuse is certified for one input shape.
struct guard_shape {
  std::uint32_t rows = 0;
  std::uint64_t labels = 0;
  std::uint64_t wrong = 0;
  /// Requests closer than this to an entry's source are reused.
  double reach = 0.0;
};

/// The reuse guard's settings and counters.
struct guard_snapshot {
  bool enabled = true;
  double tolerance = 0.0;
  double max_wrong_rate = 0.0;
  double confidence = 0.0;
  /// What the key's K counts (cache.prefix-unit).
  prefix_unit unit = prefix_unit::values;
  /// Lookups that found a live entry, by verdict.
  std::uint64_t exact = 0;
  std::uint64_t certified = 0;
  std::uint64_t refused = 0;
  std::uint64_t unguarded = 0;
  std::uint64_t labels = 0;
  std::uint64_t wrong_labels = 0;
  std::vector<guard_shape> shapes;
};

/// The cache's counters and settings at one moment: the structure's own,
/// and what its owner adds (single-flight, the guard, the read path).
struct cache_snapshot {
  /// The LRU+TTL structure's counters and settings; `stats.hits` includes
  /// the hits served on the read path.
  cache_stats stats;
  /// Lookups that waited for a concurrent computation of their key.
  std::uint64_t single_flight_joins = 0;
  /// Entries removed because an audit found them too far from fresh.
  std::uint64_t invalidations = 0;
  /// Computations in flight (open single-flight entries).
  std::uint64_t in_flight = 0;
  /// Whether concurrent misses on one key share one computation.
  bool single_flight = true;
  std::uint32_t prefix_k = 0;
  guard_snapshot guard;
  /// Of `hits`: served on the read path (the I/O thread, no actor hop).
  std::uint64_t read_path_hits = 0;
  /// Access events of read-path hits: batches and events the owner replayed
  /// against the LRU order, and events dropped on the way (lossy buffers).
  std::uint64_t access_batches = 0;
  std::uint64_t accesses_applied = 0;
  std::uint64_t accesses_dropped = 0;
};

// -- comparisons, audits and the agent ------------------------------------------------

/// One comparison of a cached embedding with a fresh one.
struct divergence_report {
  prefix_key key = 0;
  /// Age of the cached entry when compared, nanoseconds.
  std::int64_t entry_age_ns = 0;
  double cosine = 0.0;
  double l2 = 0.0;
  /// |head(cached) - head(fresh)|.
  double prediction_delta = 0.0;
  comparison_kind kind = comparison_kind::audit;
  /// prediction_delta > risk.tolerance.
  bool wrong = false;
  /// The cached answer was served (audit), or would have been (a shadow
  /// comparison the guard would have certified): such reports measure the
  /// served wrong-rate.
  bool served = false;
  /// The request's distance from the entry's source (guard on), else 0.
  double distance = 0.0;
};

/// Audit sampling counters (from the ingress).
struct audit_snapshot {
  std::uint64_t audits = 0;
  std::uint64_t skipped = 0;
  std::uint64_t shadow_comparisons = 0;
  std::uint64_t failed = 0;
  std::uint64_t requests_in_window = 0;
  std::uint64_t audits_in_window = 0;
  double rate = 0.0;
  double max_share = 0.0;
  /// Since start: requests (the read path's included), encodes asked of the
  /// pool to answer them (misses, refreshes, bypasses; audits are counted
  /// in `audits`), and labels of served answers with the wrong ones among
  /// them by the service's tolerance (what a canary is judged on).
  std::uint64_t requests = 0;
  std::uint64_t encodes = 0;
  std::uint64_t served_labels = 0;
  std::uint64_t served_wrong = 0;
};

/// One entry of the agent's decision log.
struct decision_record {
  /// Wall-clock time, milliseconds since the Unix epoch.
  std::int64_t unix_ms = 0;
  agent_mode from = agent_mode::normal;
  agent_mode to = agent_mode::normal;
  decision_action action = decision_action::keep;
  /// True for an operator's command through the admin API.
  bool manual = false;
  std::string reason;
  std::uint64_t samples = 0;
  double p50 = 0.0;
  double p95 = 0.0;
  double max = 0.0;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  double ttl_seconds = 0.0;
  /// wrong_rate trigger: served labels weighed, and the wrong ones.
  std::uint64_t labels = 0;
  std::uint64_t wrong = 0;
};

/// What GET /agent shows.
struct agent_snapshot {
  agent_mode mode = agent_mode::normal;
  /// false: agent.enabled=false, the agent observes but never acts.
  bool acts = true;
  /// An operator's command holds until POST /admin/agent/resume.
  bool manual_override = false;
  double ttl_seconds = 0.0;
  std::uint64_t clean_windows = 0;
  std::uint64_t reports = 0;
  double recover_threshold = 0.0;
  double ttl_threshold = 0.0;
  double disable_threshold = 0.0;
  double entry_evict_threshold = 0.0;
  std::uint64_t recover_windows = 0;
  std::uint64_t min_samples = 0;
  double base_ttl_seconds = 0.0;
  double ttl_floor_seconds = 0.0;
  double interval_seconds = 0.0;
  /// Oldest first, at most 100.
  std::vector<decision_record> decisions;
  /// Decisions taken since start: the agent's by action, and operators'.
  decision_counts counts;
  agent_trigger trigger = agent_trigger::wrong_rate;
  double max_wrong_rate = 0.0;
  double disable_wrong_rate = 0.0;
  double confidence = 0.0;
  /// The served wrong-rate the agent weighs: labels, wrong ones, bounds.
  std::uint64_t served_labels = 0;
  std::uint64_t served_wrong = 0;
  double served_lower = 0.0;
  double served_upper = 1.0;
};

// -- encoder nodes and the pool -------------------------------------------------------

/// One encoder node as the gateway sees it.
struct node_info {
  std::string name;
  node_state state = node_state::joining;
  std::uint32_t workers = 0;
  std::uint64_t outstanding = 0;
  std::uint64_t encodes = 0;
  /// Wall-clock time of the last state change, ms since the epoch.
  std::int64_t changed_unix_ms = 0;
};

/// The encoder pool's counters and load at one moment.
struct pool_snapshot {
  std::uint32_t workers = 0;
  std::uint64_t batches = 0;
  std::uint64_t items = 0;
  std::uint64_t retries = 0;
  std::uint64_t failures = 0;
  std::uint64_t restarts = 0;
  std::uint64_t queued = 0;
  std::uint64_t outstanding = 0;
  std::uint64_t max_batch_seen = 0;
  /// Encoder nodes: this one ("local") and every remote node that joined.
  std::vector<node_info> nodes;
  /// Requests encoded by the gateway's fallback worker (no node reachable).
  std::uint64_t fallback_items = 0;
  /// Workers' compute time and floating-point operations, summed over
  /// batches: flops / busy is the encoder's GFLOP/s while it computes.
  double busy_seconds = 0.0;
  double flops = 0.0;
  /// Encodes dropped before they ran because every client waiting on them
  /// had gone.
  std::uint64_t cancelled = 0;
  /// Encodes refused at once because the expected wait exceeded their
  /// deadline (answered 503), and ones whose deadline passed in the queue.
  std::uint64_t shed = 0;
  std::uint64_t expired = 0;
  /// Input rows waiting or being encoded, and the measured throughput
  /// (rows per second, all workers; 0 until the first batch).
  std::uint64_t queued_rows = 0;
  double rows_per_second = 0.0;
};

// -- request outcomes and /stats ------------------------------------------------------

/// One finished HTTP request, as the metrics aggregator records it.
struct request_outcome {
  /// HTTP-independent outcome: 0 for success, else the errc value.
  std::uint8_t error_code = 0;
  /// The status the client saw (recorded as a label, not interpreted).
  std::uint16_t status = 200;
  route_label route = route_label::other;
  embedding_source source = embedding_source::encoder;
  bool cache_hit = false;
  std::int64_t latency_ns = 0;
  /// The lane that answered a prediction (0: none).
  std::uint32_t lane = 0;
};

/// Latency percentiles over the most recent requests, milliseconds.
struct latency_summary {
  std::uint64_t count = 0;
  std::uint64_t window = 0;
  double mean = 0.0;
  double p50 = 0.0;
  double p95 = 0.0;
  double p99 = 0.0;
  double max = 0.0;
};

/// The served wrong-rate as audits measure it.
struct served_estimate {
  /// Labels of served (or would-be-served) answers since start, and wrong.
  std::uint64_t total_labels = 0;
  std::uint64_t total_wrong = 0;
  /// The same over the most recent labels, with confidence bounds.
  std::uint64_t labels = 0;
  std::uint64_t wrong = 0;
  double lower = 0.0;
  double upper = 1.0;
};

/// The HTTP front end's connection counters (from the service board).
struct http_counters {
  std::uint64_t connections_open = 0;
  std::uint64_t connections_refused = 0;
  std::uint64_t accept_backoffs = 0;
  std::uint64_t clients_gone = 0;
  std::uint64_t read_timeouts = 0;
  std::uint64_t framing_errors = 0;
};

// -- models and versions --------------------------------------------------------------

/// What an operator asks of the model manager.
enum class model_op : std::uint8_t {
  /// Build a version from a spec, spawn what serves it, warm it.
  load,
  /// Run more warm-up encodes on a loaded version.
  warm,
  /// Make a warm version its model's default.
  set_default,
  /// Take a version out; it drains and goes once nothing holds it.
  unload,
  /// Start a canary: another cache policy for a share of a version's traffic.
  canary_start,
  /// Make the canary's policy the version's (an operator's promotion).
  canary_promote,
  /// Stop the canary; the version's policy stays (an operator's rollback).
  canary_abort,
};

const char* to_string(model_op op) noexcept;

/// One command for the model manager.
struct model_command {
  model_op op = model_op::load;
  std::string name;
  /// The version (warm, set_default, unload).
  std::string version;
  /// load: how to build it (model_spec's fields).
  std::string preset;
  std::string weights;
  std::uint64_t seed = 42;
  /// load, warm: warm-up encodes (-1: the configured models.warm-encodes).
  std::int64_t warm = -1;
  /// load: make it the default once warm.
  bool make_default = false;
  /// canary_start: the candidate policy and its share of the prefixes.
  cache_policy policy;
  double share = 0.1;
};

/// One policy's side of a running canary, since it began.
struct arm_view {
  std::string policy;
  std::uint64_t requests = 0;
  std::uint64_t encodes = 0;
  std::uint64_t hits = 0;
  std::uint64_t lookups = 0;
  /// Served answers audited, and the wrong ones, with Clopper-Pearson
  /// bounds on the served wrong-rate.
  std::uint64_t labels = 0;
  std::uint64_t wrong = 0;
  double wrong_lower = 0.0;
  double wrong_upper = 1.0;
};

/// A running canary: both arms side by side and the judge's last word.
struct canary_view {
  std::string model;
  std::string version;
  double share = 0.0;
  double elapsed_seconds = 0.0;
  /// A: the policy in place; B: the candidate.
  arm_view a;
  arm_view b;
  cache_policy candidate;
  canary_verdict verdict = canary_verdict::keep;
  std::string reason;
  /// Bounds on B's wrong-rate minus A's.
  double diff_lower = 0.0;
  double diff_upper = 0.0;
};

/// One canary decision (the judge's or an operator's), with its figures.
struct canary_decision {
  std::int64_t unix_ms = 0;
  std::string model;
  std::string version;
  std::string policy_a;
  std::string policy_b;
  /// start, promote or rollback (start is logged too).
  std::string action;
  bool manual = false;
  std::string reason;
  std::uint64_t labels_a = 0;
  std::uint64_t wrong_a = 0;
  std::uint64_t labels_b = 0;
  std::uint64_t wrong_b = 0;
  double diff_lower = 0.0;
  double diff_upper = 0.0;
  double b_lower = 0.0;
  double cost_a = 0.0;
  double cost_b = 0.0;
};

/// One loaded (or draining) version.
struct model_version_info {
  std::string model;
  std::string version;
  std::string declared;
  /// The architecture (preset name or the weights file's).
  std::string architecture;
  version_state state = version_state::warming;
  /// The default version of its model.
  bool is_default = false;
  std::uint64_t bytes = 0;
  std::uint32_t input_dim = 0;
  std::uint32_t embedding_dim = 0;
  /// Warm-up encodes done.
  std::uint64_t warm_encodes = 0;
};

/// The model manager's view: every version, the defaults, the memory.
struct model_listing {
  std::string default_model;
  std::uint64_t bytes = 0;
  std::uint64_t max_bytes = 0;
  std::vector<model_version_info> versions;
  /// The version a command touched, and the default it replaced (set_default).
  std::string version;
  std::string previous_default;
  /// Running canaries, and the last decisions (oldest first, at most 100).
  std::vector<canary_view> canaries;
  std::vector<canary_decision> decisions;
};

/// One version's serving counters, as /stats and /metrics show them.
struct model_version_stats {
  std::string model;
  std::string version;
  bool is_default = false;
  /// The lane's cache policy, and whether it is a canary.
  std::string policy;
  bool canary = false;
  /// Requests and encodes since the lane started; recent latencies.
  std::uint64_t requests = 0;
  std::uint64_t encodes = 0;
  latency_summary latency;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t entries = 0;
  /// Audits of its served hits.
  std::uint64_t audits = 0;
  /// The reuse guard's labels (every comparison), and the wrong ones.
  std::uint64_t labels = 0;
  std::uint64_t wrong_labels = 0;
  /// Its own agent: the mode, and the served wrong-rate it weighs, with
  /// the confidence bounds.
  agent_mode mode = agent_mode::normal;
  std::uint64_t served_labels = 0;
  std::uint64_t served_wrong = 0;
  double served_lower = 0.0;
  double served_upper = 1.0;
};

/// Everything /stats shows.
struct service_snapshot {
  cache_snapshot cache;
  pool_snapshot pool;
  audit_snapshot audit;
  agent_snapshot agent;
  /// Cosine and L2 divergence over the recent reports.
  latency_summary cosine;
  latency_summary l2;
  latency_summary prediction_delta;
  latency_summary latency;
  latency_summary hit_latency;
  latency_summary miss_latency;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::uint64_t rejected_overload = 0;
  std::string model_name;
  std::string model_version;
  double uptime_s = 0.0;
  served_estimate served;
  http_counters http;
  /// Every version the service serves, with its own counters.
  std::vector<model_version_stats> models;
};

} // namespace sil
