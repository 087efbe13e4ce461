// Message types and typed actor handles of the service.
//
// Owns: every struct that travels between actors, its inspect() overload,
// the atoms, and the typed handle of each actor. No logic lives here.
// Everything an encoder worker sends or receives is serializable, so workers
// can move to other nodes (cluster roles); `register_message_types` announces the
// types and must run on every node.
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/admission.hpp"
#include "core/cancellation.hpp"
#include "core/embedding.hpp"
#include "core/error.hpp"
#include "core/prefix_key.hpp"
#include "core/reuse_guard.hpp"
#include "messages/payloads.hpp"

namespace sil {

// -- atoms (at most 10 characters) -------------------------------------------------

using predict_atom = caf::atom_constant<caf::atom("predict")>;
using encode_atom = caf::atom_constant<caf::atom("encode")>;
using lookup_atom = caf::atom_constant<caf::atom("lookup")>;
using insert_atom = caf::atom_constant<caf::atom("insert")>;
using abandon_atom = caf::atom_constant<caf::atom("abandon")>;
using enable_atom = caf::atom_constant<caf::atom("enable")>;
using disable_atom = caf::atom_constant<caf::atom("disable")>;
using set_ttl_atom = caf::atom_constant<caf::atom("set_ttl")>;
using erase_atom = caf::atom_constant<caf::atom("erase")>;
using clear_atom = caf::atom_constant<caf::atom("clear")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
using metrics_atom = caf::atom_constant<caf::atom("metrics")>;
using outcome_atom = caf::atom_constant<caf::atom("outcome")>;
using observe_atom = caf::atom_constant<caf::atom("observe")>;
using report_atom = caf::atom_constant<caf::atom("report")>;
using agent_atom = caf::atom_constant<caf::atom("agent")>;
using admin_atom = caf::atom_constant<caf::atom("admin")>;
using invalidate_atom = caf::atom_constant<caf::atom("invalidate")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using label_atom = caf::atom_constant<caf::atom("label")>;
using access_atom = caf::atom_constant<caf::atom("access")>;
using hits_atom = caf::atom_constant<caf::atom("hits")>;

// -- embeddings on the wire --------------------------------------------------------

/// Serializes an embedding as its float vector; locally it is never copied.
template <class Inspector>
typename std::enable_if<Inspector::reads_state, typename Inspector::result_type>::type
inspect(Inspector& f, const embedding& x) {
  auto values = x.to_vector();
  return f(caf::meta::type_name("embedding"), values);
}

template <class Inspector>
typename std::enable_if<Inspector::writes_state, typename Inspector::result_type>::type
inspect(Inspector& f, embedding& x) {
  std::vector<float> values;
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x = embedding::copy_of(values);
    return caf::none;
  });
  return f(caf::meta::type_name("embedding"), values, load);
}

// -- requests ---------------------------------------------------------------------------

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
  // The two fields below live in this process only (not serialized): the
  // front end sets them, the encoder pool reads them.
  /// When an answer is no longer useful: encode work that cannot finish by
  /// then is refused at once (overloaded). Epoch: no deadline.
  std::chrono::steady_clock::time_point deadline{};
  /// Set when the client has gone: work nobody else waits for is dropped.
  cancel_flag_ptr cancel;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, predict_request& x) {
  return f(caf::meta::type_name("predict_request"), x.features, x.rows, x.use_cache, x.max_age_ms,
           x.max_wrong_rate, x.timeout_ms);
}

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reuse_info& x) {
  return f(caf::meta::type_name("reuse_info"), x.present, x.basis, x.distance, x.p_wrong_upper);
}

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, predict_reply& x) {
  return f(caf::meta::type_name("predict_reply"), x.prediction, x.cache_hit, x.source,
           x.cache_age_ns, x.model_version, x.risk);
}

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_candidate& x) {
  return f(caf::meta::type_name("audit_candidate"), x.key, x.req, x.suffix_begin, x.value, x.age_ns,
           x.risk);
}

/// What the read path tells the ingress, in one message per batch: how many
/// requests it answered (for the audit budget's request share) and the hits
/// it offers for audit.
struct hit_batch {
  std::uint64_t requests = 0;
  std::vector<audit_candidate> candidates;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hit_batch& x) {
  return f(caf::meta::type_name("hit_batch"), x.requests, x.candidates);
}

/// Latencies of hits answered on the read path (each one a /predict 200
/// served from the cache), in one message per batch.
struct hit_outcomes {
  std::vector<std::int64_t> latency_ns;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hit_outcomes& x) {
  return f(caf::meta::type_name("hit_outcomes"), x.latency_ns);
}

/// Completion callback for requests from outside the actor system (the HTTP
/// layer). Local only: it never crosses a node.
using predict_callback = std::function<void(caf::expected<predict_reply>)>;

// -- encoder ------------------------------------------------------------------------

/// One input to encode.
struct encode_item {
  std::vector<float> features;
  std::uint32_t rows = 0;
  // Local to the gateway's process (not serialized to remote workers):
  /// The clients that wait on this encode (null: an internal caller).
  demand_ptr wanted_by;
  /// Refuse instead of encoding past this point (epoch: no deadline).
  std::chrono::steady_clock::time_point deadline{};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, encode_item& x) {
  return f(caf::meta::type_name("encode_item"), x.features, x.rows);
}

/// Several inputs a worker encodes in one pass.
struct encode_batch {
  std::vector<encode_item> items;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, encode_batch& x) {
  return f(caf::meta::type_name("encode_batch"), x.items);
}

/// A worker's answer: one embedding per item, in order.
struct encoded_batch {
  std::vector<embedding> embeddings;
  /// The worker's compute time for the batch, and its floating-point
  /// operations (model::forward_flops), for GFLOP/s under load.
  std::int64_t busy_ns = 0;
  double flops = 0.0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, encoded_batch& x) {
  return f(caf::meta::type_name("encoded_batch"), x.embeddings, x.busy_ns, x.flops);
}

// -- cache --------------------------------------------------------------------------

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lookup_query& x) {
  return f(caf::meta::type_name("lookup_query"), x.max_age_ns, x.max_wrong_rate, x.rows, x.suffix);
}

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_lookup& x) {
  return f(caf::meta::type_name("cache_lookup"), x.kind, x.value, x.age_ns, x.risk);
}

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reuse_label& x) {
  return f(caf::meta::type_name("reuse_label"), x.rows, x.distance, x.wrong, x.served);
}

/// How far reuse is certified for one input shape.
struct guard_shape {
  std::uint32_t rows = 0;
  std::uint64_t labels = 0;
  std::uint64_t wrong = 0;
  /// Requests closer than this to an entry's source are reused.
  double reach = 0.0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, guard_shape& x) {
  return f(caf::meta::type_name("guard_shape"), x.rows, x.labels, x.wrong, x.reach);
}

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, guard_snapshot& x) {
  return f(caf::meta::type_name("guard_snapshot"), x.enabled, x.tolerance, x.max_wrong_rate,
           x.confidence, x.unit, x.exact, x.certified, x.refused, x.unguarded, x.labels,
           x.wrong_labels, x.shapes);
}

/// The cache's counters and settings at one moment.
struct cache_snapshot {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t expirations = 0;
  std::uint64_t evictions = 0;
  std::uint64_t inserts = 0;
  std::uint64_t erasures = 0;
  std::uint64_t bypasses = 0;
  std::uint64_t single_flight_joins = 0;
  /// Entries removed because an audit found them too far from fresh.
  std::uint64_t invalidations = 0;
  std::uint64_t in_flight = 0;
  std::uint64_t size = 0;
  std::uint64_t max_size = 0;
  bool enabled = true;
  /// Whether concurrent misses on one key share one computation.
  bool single_flight = true;
  std::int64_t ttl_ns = 0;
  std::uint32_t prefix_k = 0;
  guard_snapshot guard;
  /// Of `hits`: served on the read path (the I/O thread, no actor hop).
  std::uint64_t read_path_hits = 0;
  /// Access events of read-path hits: batches and events the owner replayed
  /// against the LRU order, and events dropped on the way (lossy buffers).
  std::uint64_t access_batches = 0;
  std::uint64_t accesses_applied = 0;
  std::uint64_t accesses_dropped = 0;
  /// The admission policy, and the window candidates it turned away (part
  /// of evictions; 0 under lru).
  admission_policy admission = admission_policy::lru;
  std::uint64_t admission_rejections = 0;

  double hit_rate() const noexcept {
    auto n = hits + misses;
    return n == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(n);
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_snapshot& x) {
  return f(caf::meta::type_name("cache_snapshot"), x.hits, x.misses, x.expirations, x.evictions,
           x.inserts, x.erasures, x.bypasses, x.single_flight_joins, x.invalidations, x.in_flight,
           x.size, x.max_size, x.enabled, x.single_flight, x.ttl_ns, x.prefix_k, x.guard,
           x.read_path_hits, x.access_batches, x.accesses_applied, x.accesses_dropped, x.admission,
           x.admission_rejections);
}

// -- correctness risk -------------------------------------------------------------------

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, divergence_report& x) {
  return f(caf::meta::type_name("divergence_report"), x.key, x.entry_age_ns, x.cosine, x.l2,
           x.prediction_delta, x.kind, x.wrong, x.served, x.distance);
}

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
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_snapshot& x) {
  return f(caf::meta::type_name("audit_snapshot"), x.audits, x.skipped, x.shadow_comparisons,
           x.failed, x.requests_in_window, x.audits_in_window, x.rate, x.max_share);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, decision_counts& x) {
  return f(caf::meta::type_name("decision_counts"), x.by_action, x.manual);
}

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, decision_record& x) {
  return f(caf::meta::type_name("decision_record"), x.unix_ms, x.from, x.to, x.action, x.manual,
           x.reason, x.samples, x.p50, x.p95, x.max, x.hits, x.misses, x.ttl_seconds, x.labels,
           x.wrong);
}

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, agent_snapshot& x) {
  return f(caf::meta::type_name("agent_snapshot"), x.mode, x.acts, x.manual_override, x.ttl_seconds,
           x.clean_windows, x.reports, x.recover_threshold, x.ttl_threshold, x.disable_threshold,
           x.entry_evict_threshold, x.recover_windows, x.min_samples, x.base_ttl_seconds,
           x.ttl_floor_seconds, x.interval_seconds, x.decisions, x.counts, x.trigger,
           x.max_wrong_rate, x.disable_wrong_rate, x.confidence, x.served_labels, x.served_wrong,
           x.served_lower, x.served_upper);
}

// -- encoder pool -------------------------------------------------------------------

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_info& x) {
  return f(caf::meta::type_name("node_info"), x.name, x.state, x.workers, x.outstanding, x.encodes,
           x.changed_unix_ms);
}

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pool_snapshot& x) {
  return f(caf::meta::type_name("pool_snapshot"), x.workers, x.batches, x.items, x.retries,
           x.failures, x.restarts, x.queued, x.outstanding, x.max_batch_seen, x.nodes,
           x.fallback_items, x.busy_seconds, x.flops, x.cancelled, x.shed, x.expired, x.queued_rows,
           x.rows_per_second);
}

// -- metrics -------------------------------------------------------------------------

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
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_outcome& x) {
  return f(caf::meta::type_name("request_outcome"), x.error_code, x.status, x.route, x.source,
           x.cache_hit, x.latency_ns);
}

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, latency_summary& x) {
  return f(caf::meta::type_name("latency_summary"), x.count, x.window, x.mean, x.p50, x.p95, x.p99,
           x.max);
}

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, served_estimate& x) {
  return f(caf::meta::type_name("served_estimate"), x.total_labels, x.total_wrong, x.labels,
           x.wrong, x.lower, x.upper);
}

/// Everything /stats shows.
/// The HTTP front end's connection counters (from the service board).
struct http_counters {
  std::uint64_t connections_open = 0;
  std::uint64_t connections_refused = 0;
  std::uint64_t accept_backoffs = 0;
  std::uint64_t clients_gone = 0;
  std::uint64_t read_timeouts = 0;
  std::uint64_t framing_errors = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_counters& x) {
  return f(caf::meta::type_name("http_counters"), x.connections_open, x.connections_refused,
           x.accept_backoffs, x.clients_gone, x.read_timeouts, x.framing_errors);
}

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
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, service_snapshot& x) {
  return f(caf::meta::type_name("service_snapshot"), x.cache, x.pool, x.audit, x.agent, x.cosine,
           x.l2, x.prediction_delta, x.latency, x.hit_latency, x.miss_latency, x.requests, x.errors,
           x.rejected_overload, x.model_name, x.model_version, x.uptime_s, x.served, x.http);
}

// -- typed actor handles ---------------------------------------------------------------

/// Encodes batches. Runs locally (detached) or on a worker node.
using encoder_worker_actor
  = caf::typed_actor<caf::replies_to<encode_atom, encode_batch>::with<encoded_batch>>;

/// Owns the LRU+TTL cache and single-flight.
using cache_actor = caf::typed_actor<
  caf::replies_to<lookup_atom, prefix_key, lookup_query>::with<cache_lookup>,
  caf::reacts_to<insert_atom, prefix_key, embedding, embedding>,
  caf::reacts_to<label_atom, prefix_key, reuse_label>, caf::reacts_to<abandon_atom, prefix_key>,
  caf::reacts_to<access_atom, std::vector<prefix_key>>,
  caf::replies_to<invalidate_atom, prefix_key>::with<bool>,
  caf::replies_to<enable_atom>::with<bool>, caf::replies_to<disable_atom>::with<bool>,
  caf::replies_to<set_ttl_atom, std::int64_t>::with<std::int64_t>,
  caf::replies_to<erase_atom, prefix_key>::with<bool>,
  caf::replies_to<clear_atom>::with<std::uint64_t>,
  caf::replies_to<stats_atom>::with<cache_snapshot>, caf::reacts_to<sweep_atom>>;

/// The encoder pool: owns the encoder workers (routing, batching, retry,
/// restart, admission by deadline) and the table of encoder nodes.
using encoder_pool_actor = caf::typed_actor<
  caf::replies_to<encode_atom, encode_item>::with<embedding>,
  caf::replies_to<stats_atom>::with<pool_snapshot>,
  caf::replies_to<join_atom, std::string, std::string, encoder_worker_actor>::with<std::uint64_t>>;

/// What a gateway publishes on cluster.port (the encoder pool, seen through
/// this narrow interface): a worker node joins with its name, its model
/// version (which must match the gateway's) and one encoder worker per
/// message; the answer is the worker's slot id.
using registry_actor = caf::typed_actor<
  caf::replies_to<join_atom, std::string, std::string, encoder_worker_actor>::with<std::uint64_t>>;

/// The agent: the observe -> decide -> act loop over the cache owner, fed
/// by divergence reports, and the operator's commands.
using agent_actor
  = caf::typed_actor<caf::reacts_to<report_atom, divergence_report>, caf::reacts_to<observe_atom>,
                     caf::replies_to<agent_atom>::with<agent_snapshot>,
                     caf::replies_to<admin_atom, admin_command, double>::with<agent_snapshot>>;

/// Orchestrates predictions.
using ingress_actor
  = caf::typed_actor<caf::replies_to<predict_atom, predict_request>::with<predict_reply>,
                     caf::reacts_to<predict_atom, predict_request, predict_callback>,
                     caf::reacts_to<hits_atom, hit_batch>,
                     caf::replies_to<stats_atom>::with<audit_snapshot>>;

/// Collects request outcomes; answers /stats and /metrics.
using metrics_actor
  = caf::typed_actor<caf::reacts_to<outcome_atom, request_outcome>,
                     caf::reacts_to<outcome_atom, hit_outcomes>,
                     caf::reacts_to<report_atom, divergence_report>, caf::reacts_to<ingress_actor>,
                     caf::replies_to<stats_atom>::with<service_snapshot>,
                     caf::replies_to<metrics_atom>::with<std::string>>;

// -- errors ---------------------------------------------------------------------------

/// The CAF error category of sil::errc.
constexpr caf::atom_value error_category = caf::atom("sil");

/// Wraps a core error as a caf::error (category "sil", message as context).
caf::error to_caf_error(const sil::error& err);

/// Shorthand for to_caf_error({code, message}).
caf::error make_caf_error(errc code, std::string message);

/// Recovers a sil::error from a caf::error; foreign errors become
/// errc::internal (or encoder_timeout for request timeouts) with CAF's text.
sil::error from_caf_error(const caf::error& err);

/// Announces every message type and handle; call on every node.
void register_message_types(caf::actor_system_config& cfg);

} // namespace sil

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sil::predict_callback)
