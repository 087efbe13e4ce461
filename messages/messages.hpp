// What makes the payloads (messages/payloads.hpp) messages: the atoms, the
// inspect() overload of every payload, the typed handle of each actor, and
// the translation of errors to and from caf::error.
//
// Owns: the CAF side of the actors' vocabulary. No logic lives here.
// Everything an encoder worker sends or receives is serializable, so workers
// can move to other nodes (cluster roles); `register_message_types`
// announces the types and must run on every node, where its actor system is
// built. Code that only needs the values (the HTTP codec) includes
// payloads.hpp and compiles without CAF.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "messages/payloads.hpp"

namespace sil {

// -- atoms (at most 10 characters) ----------------------------------------------------

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
using models_atom = caf::atom_constant<caf::atom("models")>;

// -- embeddings on the wire -----------------------------------------------------------

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

// -- inspect() of the payloads (messages/payloads.hpp) --------------------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, predict_request& x) {
  return f(caf::meta::type_name("predict_request"), x.features, x.rows, x.use_cache, x.max_age_ms,
           x.max_wrong_rate, x.timeout_ms, x.model, x.version);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reuse_info& x) {
  return f(caf::meta::type_name("reuse_info"), x.present, x.basis, x.distance, x.p_wrong_upper);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, predict_reply& x) {
  return f(caf::meta::type_name("predict_reply"), x.prediction, x.cache_hit, x.source,
           x.cache_age_ns, x.model_version, x.risk);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_candidate& x) {
  return f(caf::meta::type_name("audit_candidate"), x.key, x.req, x.suffix_begin, x.value, x.age_ns,
           x.risk);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hit_batch& x) {
  return f(caf::meta::type_name("hit_batch"), x.requests, x.candidates);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hit_outcomes& x) {
  return f(caf::meta::type_name("hit_outcomes"), x.latency_ns, x.lane);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, encode_item& x) {
  return f(caf::meta::type_name("encode_item"), x.features, x.rows);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, encode_batch& x) {
  return f(caf::meta::type_name("encode_batch"), x.items, x.version);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, encoded_batch& x) {
  return f(caf::meta::type_name("encoded_batch"), x.embeddings, x.busy_ns, x.flops);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lookup_query& x) {
  return f(caf::meta::type_name("lookup_query"), x.max_age_ns, x.max_wrong_rate, x.rows, x.suffix);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_lookup& x) {
  return f(caf::meta::type_name("cache_lookup"), x.kind, x.value, x.age_ns, x.risk);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reuse_label& x) {
  return f(caf::meta::type_name("reuse_label"), x.rows, x.distance, x.wrong, x.served);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, guard_shape& x) {
  return f(caf::meta::type_name("guard_shape"), x.rows, x.labels, x.wrong, x.reach);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, guard_snapshot& x) {
  return f(caf::meta::type_name("guard_snapshot"), x.enabled, x.tolerance, x.max_wrong_rate,
           x.confidence, x.unit, x.exact, x.certified, x.refused, x.unguarded, x.labels,
           x.wrong_labels, x.shapes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_stats& x) {
  return f(caf::meta::type_name("cache_stats"), x.hits, x.misses, x.expirations, x.evictions,
           x.rejections, x.inserts, x.erasures, x.bypasses, x.refusals, x.size, x.max_size,
           x.enabled, x.ttl, x.admission);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_snapshot& x) {
  return f(caf::meta::type_name("cache_snapshot"), x.stats, x.single_flight_joins, x.invalidations,
           x.in_flight, x.single_flight, x.prefix_k, x.guard, x.read_path_hits, x.access_batches,
           x.accesses_applied, x.accesses_dropped);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, divergence_report& x) {
  return f(caf::meta::type_name("divergence_report"), x.key, x.entry_age_ns, x.cosine, x.l2,
           x.prediction_delta, x.kind, x.wrong, x.served, x.distance);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_snapshot& x) {
  return f(caf::meta::type_name("audit_snapshot"), x.audits, x.skipped, x.shadow_comparisons,
           x.failed, x.requests_in_window, x.audits_in_window, x.rate, x.max_share, x.requests,
           x.encodes, x.served_labels, x.served_wrong);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, decision_counts& x) {
  return f(caf::meta::type_name("decision_counts"), x.by_action, x.manual);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, decision_record& x) {
  return f(caf::meta::type_name("decision_record"), x.unix_ms, x.from, x.to, x.action, x.manual,
           x.reason, x.samples, x.p50, x.p95, x.max, x.hits, x.misses, x.ttl_seconds, x.labels,
           x.wrong);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, agent_snapshot& x) {
  return f(caf::meta::type_name("agent_snapshot"), x.mode, x.acts, x.manual_override, x.ttl_seconds,
           x.clean_windows, x.reports, x.recover_threshold, x.ttl_threshold, x.disable_threshold,
           x.entry_evict_threshold, x.recover_windows, x.min_samples, x.base_ttl_seconds,
           x.ttl_floor_seconds, x.interval_seconds, x.decisions, x.counts, x.trigger,
           x.max_wrong_rate, x.disable_wrong_rate, x.confidence, x.served_labels, x.served_wrong,
           x.served_lower, x.served_upper);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_info& x) {
  return f(caf::meta::type_name("node_info"), x.name, x.state, x.workers, x.outstanding, x.encodes,
           x.changed_unix_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pool_snapshot& x) {
  return f(caf::meta::type_name("pool_snapshot"), x.workers, x.batches, x.items, x.retries,
           x.failures, x.restarts, x.queued, x.outstanding, x.max_batch_seen, x.nodes,
           x.fallback_items, x.busy_seconds, x.flops, x.cancelled, x.shed, x.expired, x.queued_rows,
           x.rows_per_second);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_outcome& x) {
  return f(caf::meta::type_name("request_outcome"), x.error_code, x.status, x.route, x.source,
           x.cache_hit, x.latency_ns, x.lane);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, latency_summary& x) {
  return f(caf::meta::type_name("latency_summary"), x.count, x.window, x.mean, x.p50, x.p95, x.p99,
           x.max);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, served_estimate& x) {
  return f(caf::meta::type_name("served_estimate"), x.total_labels, x.total_wrong, x.labels,
           x.wrong, x.lower, x.upper);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_counters& x) {
  return f(caf::meta::type_name("http_counters"), x.connections_open, x.connections_refused,
           x.accept_backoffs, x.clients_gone, x.read_timeouts, x.framing_errors);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, model_version_stats& x) {
  return f(caf::meta::type_name("model_version_stats"), x.model, x.version, x.is_default, x.hits,
           x.misses, x.entries, x.audits, x.labels, x.wrong_labels, x.mode, x.served_labels,
           x.served_wrong, x.served_lower, x.served_upper, x.policy, x.canary, x.requests,
           x.encodes, x.latency);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, service_snapshot& x) {
  return f(caf::meta::type_name("service_snapshot"), x.cache, x.pool, x.audit, x.agent, x.cosine,
           x.l2, x.prediction_delta, x.latency, x.hit_latency, x.miss_latency, x.requests, x.errors,
           x.rejected_overload, x.model_name, x.model_version, x.uptime_s, x.served, x.http,
           x.models);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_policy& x) {
  return f(caf::meta::type_name("cache_policy"), x.name, x.prefix_k, x.unit, x.ttl_seconds,
           x.capacity_share, x.tolerance, x.max_wrong_rate, x.admission);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, arm_view& x) {
  return f(caf::meta::type_name("arm_view"), x.policy, x.requests, x.encodes, x.hits, x.lookups,
           x.labels, x.wrong, x.wrong_lower, x.wrong_upper);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, canary_view& x) {
  return f(caf::meta::type_name("canary_view"), x.model, x.version, x.share, x.elapsed_seconds, x.a,
           x.b, x.candidate, x.verdict, x.reason, x.diff_lower, x.diff_upper);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, canary_decision& x) {
  return f(caf::meta::type_name("canary_decision"), x.unix_ms, x.model, x.version, x.policy_a,
           x.policy_b, x.action, x.manual, x.reason, x.labels_a, x.wrong_a, x.labels_b, x.wrong_b,
           x.diff_lower, x.diff_upper, x.b_lower, x.cost_a, x.cost_b);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, model_command& x) {
  return f(caf::meta::type_name("model_command"), x.op, x.name, x.version, x.preset, x.weights,
           x.seed, x.warm, x.make_default, x.policy, x.share);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, model_version_info& x) {
  return f(caf::meta::type_name("model_version_info"), x.model, x.version, x.declared,
           x.architecture, x.state, x.is_default, x.bytes, x.input_dim, x.embedding_dim,
           x.warm_encodes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, model_listing& x) {
  return f(caf::meta::type_name("model_listing"), x.default_model, x.bytes, x.max_bytes, x.versions,
           x.version, x.previous_default, x.canaries, x.decisions);
}

/// Completion callback for requests from outside the actor system (the HTTP
/// layer). Local only: it never crosses a node.
using predict_callback = std::function<void(caf::expected<predict_reply>)>;

// -- typed actor handles --------------------------------------------------------------

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
  caf::replies_to<join_atom, std::string, std::string, encoder_worker_actor>::with<std::uint64_t>,
  caf::reacts_to<models_atom, std::vector<std::string>>>;

/// What a gateway publishes on cluster.port (the encoder pool, seen through
/// this narrow interface): a worker node joins with its name, its model
/// version (which must be one the gateway serves) and one encoder worker per
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

/// What the metrics aggregator pulls for one served version.
struct lane_refs {
  std::string model;
  std::string version;
  bool is_default = false;
  /// The lane's id (request outcomes name it), policy, and whether it is a
  /// canary.
  std::uint32_t id = 0;
  std::string policy;
  bool canary = false;
  cache_actor cache;
  agent_actor agent;
  ingress_actor ingress;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lane_refs& x) {
  return f(caf::meta::type_name("lane_refs"), x.model, x.version, x.is_default, x.cache, x.agent,
           x.ingress, x.id, x.policy, x.canary);
}

/// Collects request outcomes; answers /stats and /metrics.
using metrics_actor
  = caf::typed_actor<caf::reacts_to<outcome_atom, request_outcome>,
                     caf::reacts_to<outcome_atom, hit_outcomes>,
                     caf::reacts_to<report_atom, divergence_report>, caf::reacts_to<ingress_actor>,
                     caf::reacts_to<models_atom, std::vector<lane_refs>>,
                     caf::replies_to<stats_atom>::with<service_snapshot>,
                     caf::replies_to<metrics_atom>::with<std::string>>;

/// Loads, warms, promotes and unloads model versions; the only writer of
/// the model catalog.
using model_manager_actor
  = caf::typed_actor<caf::replies_to<models_atom>::with<model_listing>,
                     caf::replies_to<models_atom, model_command>::with<model_listing>,
                     caf::reacts_to<observe_atom>>;

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
