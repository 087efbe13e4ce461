#include "actors/metrics_aggregator.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/build_info.hpp"
#include "core/process_stats.hpp"
#include "core/tsan.hpp"
#include "core/window_stats.hpp"

namespace sil {

namespace {

namespace prom = prometheus;

/// The most recent N samples.
class ring {
public:
  explicit ring(std::size_t capacity)
    : capacity_(capacity) {
    samples_.reserve(capacity);
  }

  void push(double x) {
    ++count_;
    if (samples_.size() < capacity_) {
      samples_.push_back(x);
    } else {
      samples_[next_] = x;
      next_ = (next_ + 1) % capacity_;
    }
  }

  latency_summary summary() const {
    auto w = summarize(samples_);
    latency_summary out;
    out.count = count_;
    out.window = w.count;
    out.mean = w.mean;
    out.p50 = w.p50;
    out.p95 = w.p95;
    out.p99 = w.p99;
    out.max = w.max;
    return out;
  }

private:
  std::size_t capacity_;
  std::size_t next_ = 0;
  std::uint64_t count_ = 0;
  std::vector<double> samples_;
};

/// A counter that mirrors a monotonic value owned elsewhere.
struct mirrored_counter {
  prom::Counter* counter = nullptr;
  std::uint64_t last = 0;

  void update(std::uint64_t now) {
    if (now > last)
      counter->Increment(static_cast<double>(now - last));
    last = now;
  }
};

/// One model version's series.
struct version_series {
  prom::Gauge* info = nullptr;
  bool is_default = false;
  mirrored_counter hits;
  mirrored_counter misses;
  prom::Gauge* entries = nullptr;
  mirrored_counter audits;
  prom::Gauge* served_upper = nullptr;
  prom::Gauge* agent_mode = nullptr;
  mirrored_counter requests;
  mirrored_counter encodes;
  prom::Gauge* p50 = nullptr;
  prom::Gauge* p99 = nullptr;
};

/// The families of the per-version series.
struct version_family_set {
  prom::Family<prom::Gauge>* info = nullptr;
  prom::Family<prom::Counter>* hits = nullptr;
  prom::Family<prom::Counter>* misses = nullptr;
  prom::Family<prom::Gauge>* entries = nullptr;
  prom::Family<prom::Counter>* audits = nullptr;
  prom::Family<prom::Gauge>* served_upper = nullptr;
  prom::Family<prom::Gauge>* agent_mode = nullptr;
  prom::Family<prom::Counter>* requests = nullptr;
  prom::Family<prom::Counter>* encodes = nullptr;
  prom::Family<prom::Gauge>* p50 = nullptr;
  prom::Family<prom::Gauge>* p99 = nullptr;
};

/// One node's series, looked up once when the node first appears.
struct node_series {
  prom::Gauge* up = nullptr;
  prom::Gauge* workers = nullptr;
  prom::Gauge* outstanding = nullptr;
  mirrored_counter encodes;
  std::array<prom::Gauge*, settled_node_states.size()> state{};
};

struct metrics_state {
  metrics_config cfg;
  // The process, from /proc (Prometheus's standard process_* names).
  prom::Counter* process_cpu = nullptr;
  double cpu_seconds = 0.0;
  prom::Gauge* process_resident = nullptr;
  prom::Gauge* process_virtual = nullptr;
  prom::Gauge* process_start = nullptr;
  prom::Gauge* process_open_fds = nullptr;
  prom::Gauge* process_max_fds = nullptr;
  std::shared_ptr<prom::Registry> registry = std::make_shared<prom::Registry>();
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  ring all{10000};
  ring hits{10000};
  ring misses{10000};
  ring cosine{10000};
  ring l2{10000};
  ring delta{10000};
  ingress_actor ingress;
  prom::Histogram* cosine_hist = nullptr;
  prom::Histogram* l2_hist = nullptr;
  prom::Histogram* delta_hist = nullptr;
  std::array<prom::Counter*, all_comparison_kinds.size()> reports_by_kind{};
  /// The served wrong-rate: the last labels of served answers (audits, and
  /// shadow comparisons the guard would have served), and totals.
  label_window served{1000};
  std::uint64_t served_total = 0;
  std::uint64_t served_wrong_total = 0;
  std::array<prom::Counter*, 2> served_labels{}; // right, wrong
  prom::Gauge* served_rate = nullptr;
  prom::Gauge* served_lower = nullptr;
  prom::Gauge* served_upper = nullptr;
  prom::Gauge* risk_budget = nullptr;
  prom::Gauge* risk_tolerance = nullptr;
  prom::Gauge* guard_enabled = nullptr;
  std::vector<std::pair<mirrored_counter, std::uint64_t guard_snapshot::*>> guard_counters;
  std::vector<std::pair<mirrored_counter, std::uint64_t audit_snapshot::*>> audit_counters;
  /// sil_agent_decisions_total: the agent's, by action, and operators'.
  std::array<mirrored_counter, all_agent_actions.size()> decision_counters{};
  mirrored_counter manual_decisions;
  prom::Gauge* agent_mode = nullptr;
  prom::Gauge* agent_override = nullptr;
  audit_snapshot last_audit;
  agent_snapshot last_agent;
  /// Every served version (the default model's default first), and what
  /// the last pull found for each.
  std::vector<lane_refs> lanes;
  std::vector<model_version_stats> last_models;
  /// Recent latencies of successful predictions, by lane.
  std::map<std::uint32_t, ring> lane_latency;
  prom::Family<prom::Gauge>* model_info_family = nullptr;
  prom::Gauge* model_info = nullptr;
  version_family_set version_families;
  std::map<std::string, version_series> version_series_by_key;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::uint64_t rejected = 0;

  prom::Family<prom::Counter>* http_requests = nullptr;
  prom::Family<prom::Histogram>* duration = nullptr;
  prom::Family<prom::Counter>* predictions = nullptr;
  // Children looked up once: Family::Add builds a label map per call, too
  // slow for every request on the actor thread that also serves hits.
  /// By (route << 16 | status).
  std::unordered_map<std::uint32_t, prom::Counter*> http_by_route_status;
  std::array<prom::Histogram*, all_embedding_sources.size()> duration_by_source{};
  std::array<prom::Counter*, all_embedding_sources.size()> predictions_by_source{};
  /// The structure's own counters, and those its owner adds.
  std::vector<std::pair<mirrored_counter, std::uint64_t cache_stats::*>> cache_stats_counters;
  std::vector<std::pair<mirrored_counter, std::uint64_t cache_snapshot::*>> cache_counters;
  std::vector<std::pair<mirrored_counter, std::uint64_t pool_snapshot::*>> pool_counters;
  prom::Gauge* cache_entries = nullptr;
  prom::Gauge* cache_max_entries = nullptr;
  prom::Gauge* cache_enabled = nullptr;
  prom::Gauge* cache_ttl = nullptr;
  prom::Gauge* cache_hit_ratio = nullptr;
  prom::Gauge* workers = nullptr;
  prom::Gauge* queue_depth = nullptr;
  prom::Gauge* queued_rows = nullptr;
  prom::Gauge* rows_per_second = nullptr;
  prom::Gauge* http_open = nullptr;
  std::vector<std::pair<mirrored_counter, std::uint64_t http_counters::*>> http_mirrors;
  prom::Gauge* uptime = nullptr;
  // Per encoder node (cluster roles), labelled by node name only, so that a
  // node keeps its series across state changes; children added as nodes
  // appear. The state is its own 0/1 series per state (sil_node_state).
  prom::Family<prom::Gauge>* node_up = nullptr;
  prom::Family<prom::Gauge>* node_workers = nullptr;
  prom::Family<prom::Gauge>* node_outstanding = nullptr;
  prom::Family<prom::Counter>* node_encodes = nullptr;
  prom::Family<prom::Gauge>* node_state = nullptr;
  std::map<std::string, node_series> nodes;

  cache_snapshot last_cache;
  pool_snapshot last_pool;

  static inline const char* name = "metrics_aggregator";
};

using self_ptr = metrics_actor::stateful_pointer<metrics_state>;

/// Server-side latency buckets, seconds. A hit answered on the read path
/// takes a few microseconds and a miss a millisecond or more, so the buckets
/// start at 2.5 us (with 10 us among them) and reach 5 s in steps of
/// 1-2.5-5: both kinds of answer spread over several buckets.
const prom::Histogram::BucketBoundaries& latency_buckets() {
  static const prom::Histogram::BucketBoundaries b{
    0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
    0.005,     0.01,     0.025,   0.05,     0.1,     0.25,   0.5,     1.0,    2.5,   5.0};
  return b;
}

void build_registry(metrics_state& st) {
  auto& reg = *st.registry;
  st.http_requests = &prom::BuildCounter()
                        .Name("sil_http_requests_total")
                        .Help("HTTP requests answered, by route and status code")
                        .Register(reg);
  st.duration = &prom::BuildHistogram()
                   .Name("sil_request_duration_seconds")
                   .Help("Server-side latency of successful predictions, by embedding source")
                   .Register(reg);
  st.predictions = &prom::BuildCounter()
                      .Name("sil_predictions_total")
                      .Help("Successful predictions, by embedding source")
                      .Register(reg);
  auto counter = [&](const char* name, const char* help) {
    return mirrored_counter{&prom::BuildCounter().Name(name).Help(help).Register(reg).Add({}), 0};
  };
  auto gauge = [&](const char* name, const char* help) {
    return &prom::BuildGauge().Name(name).Help(help).Register(reg).Add({});
  };
  st.cache_stats_counters = {
    {counter("sil_cache_hits_total", "Cache lookups served from the cache"), &cache_stats::hits},
    {counter("sil_cache_misses_total", "Cache lookups not served while reuse was enabled"),
     &cache_stats::misses},
    {counter("sil_cache_expirations_total", "Entries removed because they reached the TTL"),
     &cache_stats::expirations},
    {counter(
       "sil_cache_evictions_total",
       "Live entries evicted to make room (LRU, or W-TinyLFU's victim or rejected candidate)"),
     &cache_stats::evictions},
    {counter("sil_cache_admission_rejections_total",
             "Of the evictions: new entries W-TinyLFU did not admit past its window "
             "(cache.admission=tinylfu)"),
     &cache_stats::rejections},
    {counter("sil_cache_inserts_total", "Embeddings inserted or refreshed"), &cache_stats::inserts},
    {counter("sil_cache_bypasses_total", "Lookups while reuse was disabled"),
     &cache_stats::bypasses},
  };
  st.cache_counters = {
    {counter("sil_cache_single_flight_joins_total",
             "Lookups that waited for a concurrent computation of the same prefix"),
     &cache_snapshot::single_flight_joins},
    {counter("sil_cache_read_path_hits_total",
             "Hits answered on the I/O thread from the read view (part of sil_cache_hits_total)"),
     &cache_snapshot::read_path_hits},
    {counter("sil_cache_access_batches_total",
             "Batches of read-path accesses the cache owner replayed against the LRU order"),
     &cache_snapshot::access_batches},
    {counter("sil_cache_accesses_replayed_total",
             "Read-path accesses the cache owner replayed against the LRU order"),
     &cache_snapshot::accesses_applied},
    {counter("sil_cache_accesses_dropped_total",
             "Read-path accesses dropped before the cache owner saw them (lossy buffers)"),
     &cache_snapshot::accesses_dropped},
  };
  st.pool_counters = {
    {counter("sil_encoder_batches_total", "Batches encoded by the workers"),
     &pool_snapshot::batches},
    {counter("sil_encoder_items_total", "Inputs encoded by the workers"), &pool_snapshot::items},
    {counter("sil_encoder_retries_total", "Inputs retried after a worker died or timed out"),
     &pool_snapshot::retries},
    {counter("sil_encoder_failures_total", "Inputs that failed after every attempt"),
     &pool_snapshot::failures},
    {counter("sil_encoder_restarts_total", "Workers restarted"), &pool_snapshot::restarts},
    {counter("sil_encoder_cancelled_total",
             "Encodes dropped before they ran: every client waiting on them had gone"),
     &pool_snapshot::cancelled},
    {counter("sil_encoder_shed_total",
             "Encodes refused at once (503): the expected wait exceeded their deadline"),
     &pool_snapshot::shed},
    {counter("sil_encoder_expired_total",
             "Encodes refused (503) because their deadline passed while they were queued"),
     &pool_snapshot::expired},
  };
  st.cache_entries = gauge("sil_cache_entries", "Embeddings in the cache");
  st.cache_max_entries = gauge("sil_cache_max_entries", "Capacity of the cache");
  st.cache_enabled = gauge("sil_cache_enabled", "1 if cached embeddings are reused");
  st.cache_ttl = gauge("sil_cache_ttl_seconds", "Current TTL of cache entries");
  st.cache_hit_ratio = gauge("sil_cache_hit_ratio", "hits / (hits + misses) since start");
  st.workers = gauge("sil_encoder_workers", "Encoder workers alive");
  st.queue_depth = gauge("sil_encoder_queue_depth", "Inputs waiting for a worker");
  st.queued_rows = gauge("sil_encoder_queued_rows", "Input rows waiting for or at a worker");
  st.rows_per_second
    = gauge("sil_encoder_rows_per_second", "Measured encoder throughput, rows per second");
  st.http_open = gauge("sil_http_connections", "Open HTTP connections");
  st.http_mirrors = {
    {counter("sil_http_connections_refused_total",
             "Connections refused with 503 at the connection cap or the descriptor limit"),
     &http_counters::connections_refused},
    {counter("sil_http_accept_backoffs_total",
             "Times accept() failed for lack of file descriptors and the acceptor backed off"),
     &http_counters::accept_backoffs},
    {counter("sil_http_clients_gone_total",
             "Predictions whose client disconnected before the answer (their work cancelled)"),
     &http_counters::clients_gone},
    {counter("sil_http_read_timeouts_total", "Requests not received complete in time (408)"),
     &http_counters::read_timeouts},
    {counter("sil_http_framing_errors_total",
             "Requests refused at the HTTP level and closed (400, 413, 414, 431)"),
     &http_counters::framing_errors},
  };
  st.process_cpu = &prom::BuildCounter()
                      .Name("process_cpu_seconds_total")
                      .Help("Total user and system CPU time spent in seconds")
                      .Register(reg)
                      .Add({});
  st.process_resident = gauge("process_resident_memory_bytes", "Resident memory size in bytes");
  st.process_virtual = gauge("process_virtual_memory_bytes", "Virtual memory size in bytes");
  st.process_start
    = gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds");
  st.process_open_fds = gauge("process_open_fds", "Number of open file descriptors");
  st.process_max_fds = gauge("process_max_fds", "Maximum number of open file descriptors");
  prom::BuildGauge()
    .Name("sil_build_info")
    .Help("The version and commit this binary was built from; the value is always 1")
    .Register(reg)
    .Add({{"version", build_version()}, {"commit", build_commit()}})
    .Set(1);
  st.uptime = gauge("sil_uptime_seconds", "Seconds since the service started");
  const prom::Histogram::BucketBoundaries div_buckets{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.02,
                                                      0.05,   0.1,    0.2,   0.3,   0.5,  1.0};
  st.cosine_hist = &prom::BuildHistogram()
                      .Name("sil_divergence_cosine")
                      .Help("Cosine distance between cached and fresh embeddings")
                      .Register(reg)
                      .Add({}, div_buckets);
  st.l2_hist
    = &prom::BuildHistogram()
         .Name("sil_divergence_l2")
         .Help("L2 distance between cached and fresh embeddings")
         .Register(reg)
         .Add({}, prom::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 20, 50});
  st.delta_hist = &prom::BuildHistogram()
                     .Name("sil_divergence_prediction_delta")
                     .Help("|prediction(cached) - prediction(fresh)| per comparison")
                     .Register(reg)
                     .Add({}, div_buckets);
  auto& reports = prom::BuildCounter()
                    .Name("sil_divergence_reports_total")
                    .Help("Divergence comparisons, by kind (audit of a hit, shadow comparison "
                          "while reuse is disabled, or refusal: the guard chose a fresh result)")
                    .Register(reg);
  for (auto kind : all_comparison_kinds)
    st.reports_by_kind[static_cast<std::size_t>(kind)] = &reports.Add({{"kind", to_string(kind)}});
  auto& served = prom::BuildCounter()
                   .Name("sil_served_labels_total")
                   .Help("Audited served cached answers (and shadow comparisons the guard would "
                         "have served), by result: wrong means off by more than risk.tolerance")
                   .Register(reg);
  st.served_labels = {&served.Add({{"result", "right"}}), &served.Add({{"result", "wrong"}})};
  st.served_rate = gauge("sil_served_wrong_rate",
                         "Share of audited served cached answers that were wrong (recent labels)");
  st.served_lower = gauge("sil_served_wrong_rate_lower",
                          "Lower confidence bound of sil_served_wrong_rate (risk.confidence)");
  st.served_upper = gauge("sil_served_wrong_rate_upper",
                          "Upper confidence bound of sil_served_wrong_rate (risk.confidence)");
  st.risk_budget = gauge("sil_risk_max_wrong_rate",
                         "The error budget: largest share of served cached answers that may be "
                         "wrong (risk.max-wrong-rate)");
  st.risk_tolerance = gauge("sil_risk_tolerance",
                            "Largest prediction difference that is not wrong (risk.tolerance)");
  st.guard_enabled = gauge("sil_risk_guard_enabled", "1 if the reuse guard decides reuse");
  auto& verdicts = prom::BuildCounter()
                     .Name("sil_reuse_decisions_total")
                     .Help("Lookups that found a live entry, by the guard's verdict: exact (same "
                           "input), certified, refused (computed fresh), unguarded (guard off)")
                     .Register(reg);
  st.guard_counters = {
    {mirrored_counter{&verdicts.Add({{"basis", "exact"}}), 0}, &guard_snapshot::exact},
    {mirrored_counter{&verdicts.Add({{"basis", "certified"}}), 0}, &guard_snapshot::certified},
    {mirrored_counter{&verdicts.Add({{"basis", "refused"}}), 0}, &guard_snapshot::refused},
    {mirrored_counter{&verdicts.Add({{"basis", "unguarded"}}), 0}, &guard_snapshot::unguarded},
    {counter("sil_guard_labels_total",
             "Labelled comparisons (cached vs fresh) the reuse guard learned from"),
     &guard_snapshot::labels},
  };
  auto& audits = prom::BuildCounter()
                   .Name("sil_audits_total")
                   .Help("Audit decisions on cache hits, by result")
                   .Register(reg);
  st.audit_counters = {
    {mirrored_counter{&audits.Add({{"result", "run"}}), 0}, &audit_snapshot::audits},
    {mirrored_counter{&audits.Add({{"result", "skipped"}}), 0}, &audit_snapshot::skipped},
    {mirrored_counter{&audits.Add({{"result", "failed"}}), 0}, &audit_snapshot::failed},
  };
  auto& decisions = prom::BuildCounter()
                      .Name("sil_agent_decisions_total")
                      .Help("Agent decisions that changed something, by action")
                      .Register(reg);
  for (auto action : all_agent_actions)
    st.decision_counters[static_cast<std::size_t>(action)].counter
      = &decisions.Add({{"action", to_string(action)}});
  st.manual_decisions.counter = &decisions.Add({{"action", "manual"}});
  st.agent_mode = gauge("sil_agent_state",
                        "Agent mode: 0 normal, 1 short_ttl (TTL shortened), 2 disabled (no reuse)");
  st.agent_override
    = gauge("sil_agent_manual_override", "1 while an operator's command holds the agent");
  st.cache_counters.push_back(
    {counter("sil_cache_invalidations_total",
             "Entries evicted because an audit found them beyond the evict threshold"),
     &cache_snapshot::invalidations});
  for (auto src : all_embedding_sources) {
    auto i = static_cast<std::size_t>(src);
    st.duration_by_source[i] = &st.duration->Add({{"source", to_string(src)}}, latency_buckets());
    st.predictions_by_source[i] = &st.predictions->Add({{"source", to_string(src)}});
  }
  st.node_up = &prom::BuildGauge()
                  .Name("sil_node_up")
                  .Help("1 if the encoder node has live workers or is the gateway's own")
                  .Register(reg);
  st.node_workers = &prom::BuildGauge()
                       .Name("sil_node_workers")
                       .Help("Encoder workers of the node in the pool")
                       .Register(reg);
  st.node_outstanding = &prom::BuildGauge()
                           .Name("sil_node_outstanding")
                           .Help("Requests the node is encoding now")
                           .Register(reg);
  st.node_encodes = &prom::BuildCounter()
                       .Name("sil_node_encodes_total")
                       .Help("Requests the node has encoded since it first joined")
                       .Register(reg);
  st.node_state = &prom::BuildGauge()
                     .Name("sil_node_state")
                     .Help("1 for the node's current state (local: the gateway's own; up: has "
                           "live workers; down: had workers, has none), 0 for the others")
                     .Register(reg);
  st.model_info_family = &prom::BuildGauge()
                            .Name("sil_model_info")
                            .Help("The default model and its default version; the value is "
                                  "always 1")
                            .Register(reg);
  st.model_info
    = &st.model_info_family->Add({{"name", st.cfg.model_name}, {"version", st.cfg.model_version}});
  st.model_info->Set(1);
  st.version_families.info = &prom::BuildGauge()
                                .Name("sil_model_version_info")
                                .Help("Every served model version (default=\"true\" for its "
                                      "model's default); the value is always 1")
                                .Register(reg);
  st.version_families.hits = &prom::BuildCounter()
                                .Name("sil_model_cache_hits_total")
                                .Help("Cache hits of the version's own cache")
                                .Register(reg);
  st.version_families.misses = &prom::BuildCounter()
                                  .Name("sil_model_cache_misses_total")
                                  .Help("Cache misses of the version's own cache")
                                  .Register(reg);
  st.version_families.entries = &prom::BuildGauge()
                                   .Name("sil_model_cache_entries")
                                   .Help("Entries in the version's own cache")
                                   .Register(reg);
  st.version_families.audits = &prom::BuildCounter()
                                  .Name("sil_model_audits_total")
                                  .Help("Audits of the version's served hits")
                                  .Register(reg);
  st.version_families.served_upper = &prom::BuildGauge()
                                        .Name("sil_model_served_wrong_rate_upper")
                                        .Help("Upper confidence bound of the version's served "
                                              "wrong-rate, as its agent weighs it")
                                        .Register(reg);
  st.version_families.requests = &prom::BuildCounter()
                                    .Name("sil_model_requests_total")
                                    .Help("Predictions the lane (a version under a cache policy) "
                                          "answered or failed")
                                    .Register(reg);
  st.version_families.encodes = &prom::BuildCounter()
                                   .Name("sil_model_encodes_total")
                                   .Help("Encodes the lane asked of the encoder pool (misses, "
                                         "refreshes, audits)")
                                   .Register(reg);
  st.version_families.p50 = &prom::BuildGauge()
                               .Name("sil_model_latency_p50_seconds")
                               .Help("Median server-side latency of the lane's recent "
                                     "successful predictions")
                               .Register(reg);
  st.version_families.p99 = &prom::BuildGauge()
                               .Name("sil_model_latency_p99_seconds")
                               .Help("99th percentile server-side latency of the lane's recent "
                                     "successful predictions")
                               .Register(reg);
  st.version_families.agent_mode = &prom::BuildGauge()
                                      .Name("sil_model_agent_state")
                                      .Help("Mode of the version's agent: 0 normal, 1 short TTL, "
                                            "2 reuse disabled")
                                      .Register(reg);
}

/// Brings the per-version series in line with the last pull: series of
/// versions that left are removed, new ones added.
void refresh_versions(metrics_state& st) {
  auto& f = st.version_families;
  std::map<std::string, version_series> next;
  for (const auto& v : st.last_models) {
    auto key = v.model + '\n' + v.version + '\n' + v.policy;
    auto i = st.version_series_by_key.find(key);
    version_series vs;
    if (i != st.version_series_by_key.end()) {
      vs = i->second;
      st.version_series_by_key.erase(i);
    } else {
      prom::Labels labels{{"model", v.model}, {"version", v.version}, {"policy", v.policy}};
      vs.hits.counter = &f.hits->Add(labels);
      vs.misses.counter = &f.misses->Add(labels);
      vs.entries = &f.entries->Add(labels);
      vs.audits.counter = &f.audits->Add(labels);
      vs.served_upper = &f.served_upper->Add(labels);
      vs.agent_mode = &f.agent_mode->Add(labels);
      vs.requests.counter = &f.requests->Add(labels);
      vs.encodes.counter = &f.encodes->Add(labels);
      vs.p50 = &f.p50->Add(labels);
      vs.p99 = &f.p99->Add(labels);
    }
    if (vs.info == nullptr || vs.is_default != v.is_default) {
      if (vs.info != nullptr)
        f.info->Remove(vs.info);
      vs.info = &f.info->Add({{"model", v.model},
                              {"version", v.version},
                              {"policy", v.policy},
                              {"role", v.canary ? "canary" : "serving"},
                              {"default", v.is_default ? "true" : "false"}});
      vs.info->Set(1);
      vs.is_default = v.is_default;
    }
    vs.hits.update(v.hits);
    vs.misses.update(v.misses);
    vs.entries->Set(static_cast<double>(v.entries));
    vs.audits.update(v.audits);
    vs.served_upper->Set(v.served_upper);
    vs.agent_mode->Set(static_cast<double>(v.mode));
    vs.requests.update(v.requests);
    vs.encodes.update(v.encodes);
    vs.p50->Set(v.latency.p50 / 1e3);
    vs.p99->Set(v.latency.p99 / 1e3);
    next.emplace(std::move(key), vs);
  }
  for (auto& [key, vs] : st.version_series_by_key) {
    f.info->Remove(vs.info);
    f.hits->Remove(vs.hits.counter);
    f.misses->Remove(vs.misses.counter);
    f.entries->Remove(vs.entries);
    f.audits->Remove(vs.audits.counter);
    f.served_upper->Remove(vs.served_upper);
    f.agent_mode->Remove(vs.agent_mode);
    f.requests->Remove(vs.requests.counter);
    f.encodes->Remove(vs.encodes.counter);
    f.p50->Remove(vs.p50);
    f.p99->Remove(vs.p99);
  }
  st.version_series_by_key = std::move(next);
}

served_estimate served_of(const metrics_state& st) {
  served_estimate e;
  e.total_labels = st.served_total;
  e.total_wrong = st.served_wrong_total;
  e.labels = st.served.size();
  e.wrong = st.served.wrong();
  double conf = st.last_cache.guard.confidence > 0.0 ? st.last_cache.guard.confidence : 0.95;
  e.lower = st.served.lower(conf);
  e.upper = st.served.upper(conf);
  return e;
}

http_counters http_of(const metrics_state& st) {
  http_counters h;
  if (const auto* b = st.cfg.board.get()) {
    h.connections_open = b->connections_open.load(std::memory_order_relaxed);
    h.connections_refused = b->connections_refused.load(std::memory_order_relaxed);
    h.accept_backoffs = b->accept_backoffs.load(std::memory_order_relaxed);
    h.clients_gone = b->clients_gone.load(std::memory_order_relaxed);
    h.read_timeouts = b->read_timeouts.load(std::memory_order_relaxed);
    h.framing_errors = b->framing_errors.load(std::memory_order_relaxed);
  }
  return h;
}

/// Updates one node's series, creating them when the node first appears.
void refresh_node(metrics_state& st, const node_info& n) {
  auto [it, fresh] = st.nodes.try_emplace(n.name);
  auto& ns = it->second;
  if (fresh) {
    std::map<std::string, std::string> labels{{"node", n.name}};
    ns.up = &st.node_up->Add(labels);
    ns.workers = &st.node_workers->Add(labels);
    ns.outstanding = &st.node_outstanding->Add(labels);
    ns.encodes.counter = &st.node_encodes->Add(labels);
    for (std::size_t i = 0; i < settled_node_states.size(); ++i)
      ns.state[i]
        = &st.node_state->Add({{"node", n.name}, {"state", to_string(settled_node_states[i])}});
  }
  ns.up->Set(n.state == node_state::up || n.state == node_state::local ? 1.0 : 0.0);
  ns.workers->Set(n.workers);
  ns.outstanding->Set(static_cast<double>(n.outstanding));
  ns.encodes.update(n.encodes);
  for (std::size_t i = 0; i < settled_node_states.size(); ++i)
    ns.state[i]->Set(n.state == settled_node_states[i] ? 1.0 : 0.0);
}

void refresh(metrics_state& st) {
  for (auto& [c, field] : st.cache_stats_counters)
    c.update(st.last_cache.stats.*field);
  for (auto& [c, field] : st.cache_counters)
    c.update(st.last_cache.*field);
  for (auto& [c, field] : st.pool_counters)
    c.update(st.last_pool.*field);
  for (auto& [c, field] : st.guard_counters)
    c.update(st.last_cache.guard.*field);
  auto est = served_of(st);
  st.served_rate->Set(
    est.labels == 0 ? 0.0 : static_cast<double>(est.wrong) / static_cast<double>(est.labels));
  st.served_lower->Set(est.lower);
  st.served_upper->Set(est.upper);
  st.risk_budget->Set(st.last_cache.guard.max_wrong_rate);
  st.risk_tolerance->Set(st.last_cache.guard.tolerance);
  st.guard_enabled->Set(st.last_cache.guard.enabled ? 1.0 : 0.0);
  const auto& cs = st.last_cache.stats;
  st.cache_entries->Set(static_cast<double>(cs.size));
  st.cache_max_entries->Set(static_cast<double>(cs.max_size));
  st.cache_enabled->Set(cs.enabled ? 1.0 : 0.0);
  st.cache_ttl->Set(std::chrono::duration<double>(cs.ttl).count());
  st.cache_hit_ratio->Set(cs.hit_rate());
  st.workers->Set(st.last_pool.workers);
  st.queue_depth->Set(static_cast<double>(st.last_pool.queued));
  st.queued_rows->Set(static_cast<double>(st.last_pool.queued_rows));
  st.rows_per_second->Set(st.last_pool.rows_per_second);
  auto http = http_of(st);
  st.http_open->Set(static_cast<double>(http.connections_open));
  for (auto& [c, field] : st.http_mirrors)
    c.update(http.*field);
  // The process as /proc sees it; where /proc is missing the series stay 0.
  if (auto p = proc::read_self()) {
    if (p->cpu_seconds > st.cpu_seconds) {
      st.process_cpu->Increment(p->cpu_seconds - st.cpu_seconds);
      st.cpu_seconds = p->cpu_seconds;
    }
    st.process_resident->Set(p->resident_bytes);
    st.process_virtual->Set(p->virtual_bytes);
    st.process_start->Set(p->start_time_seconds);
    st.process_open_fds->Set(p->open_fds);
    st.process_max_fds->Set(p->max_fds);
  }
  for (const auto& n : st.last_pool.nodes)
    refresh_node(st, n);
  st.uptime->Set(
    std::chrono::duration<double>(std::chrono::steady_clock::now() - st.started).count());
  for (auto& [c, field] : st.audit_counters)
    c.update(st.last_audit.*field);
  for (auto action : all_agent_actions)
    st.decision_counters[static_cast<std::size_t>(action)].update(st.last_agent.counts.of(action));
  st.manual_decisions.update(st.last_agent.counts.manual);
  st.agent_mode->Set(static_cast<double>(st.last_agent.mode));
  st.agent_override->Set(st.last_agent.manual_override ? 1.0 : 0.0);
}

/// Fetches fresh cache and pool snapshots, then calls `k`. On a timeout the
/// last known values are used: /stats must answer even if an actor lags.
/// Fetches fresh cache, pool, agent and audit snapshots, then calls `k`. On
/// a timeout the last known values are used: /stats must answer even if an
/// actor lags.
/// Pulls the cache and audit counters of every lane from `i` on, one
/// after the other, into `out`; then calls `k`. A lane that does not answer
/// in time keeps zeros (it is draining or busy).
template <class K>
void collect_lanes(self_ptr self, std::size_t i,
                   std::shared_ptr<std::vector<model_version_stats>> out, K k) {
  auto& st = self->state;
  if (i >= st.lanes.size()) {
    st.last_models = std::move(*out);
    return k();
  }
  auto timeout = std::chrono::seconds{1};
  const auto& l = st.lanes[i];
  model_version_stats v;
  v.model = l.model;
  v.version = l.version;
  v.is_default = l.is_default;
  v.policy = l.policy;
  v.canary = l.canary;
  if (auto r = st.lane_latency.find(l.id); r != st.lane_latency.end())
    v.latency = r->second.summary();
  out->push_back(v);
  auto ingress = l.ingress;
  auto agent = l.agent;
  auto audits = [=]() mutable {
    self->request(ingress, timeout, stats_atom::value)
      .then(
        [=](audit_snapshot& a) mutable {
          out->at(i).audits = a.audits;
          out->at(i).requests = a.requests;
          out->at(i).encodes = a.encodes;
          collect_lanes(self, i + 1, out, k);
        },
        [=](caf::error&) mutable { collect_lanes(self, i + 1, out, k); });
  };
  auto next = [=]() mutable {
    self->request(agent, timeout, agent_atom::value)
      .then(
        [=](agent_snapshot& a) mutable {
          auto& v = out->at(i);
          v.mode = a.mode;
          v.served_labels = a.served_labels;
          v.served_wrong = a.served_wrong;
          v.served_lower = a.served_lower;
          v.served_upper = a.served_upper;
          audits();
        },
        [=](caf::error&) mutable { audits(); });
  };
  self->request(l.cache, timeout, stats_atom::value)
    .then(
      [=](cache_snapshot& c) mutable {
        auto& v = out->at(i);
        v.hits = c.stats.hits;
        v.misses = c.stats.misses;
        v.entries = c.stats.size;
        v.labels = c.guard.labels;
        v.wrong_labels = c.guard.wrong_labels;
        next();
      },
      [=](caf::error&) mutable { next(); });
}

template <class K>
void collect(self_ptr self, K k) {
  auto timeout = std::chrono::seconds{1};
  auto& st = self->state;
  auto fetch_models = [=]() mutable {
    collect_lanes(self, 0, std::make_shared<std::vector<model_version_stats>>(), k);
  };
  auto fetch_audit = [=]() mutable {
    if (!self->state.ingress)
      return fetch_models();
    self->request(self->state.ingress, timeout, stats_atom::value)
      .then(
        [=](audit_snapshot& a) mutable {
          self->state.last_audit = a;
          fetch_models();
        },
        [=](caf::error&) mutable { fetch_models(); });
  };
  auto fetch_agent = [=]() mutable {
    if (!self->state.cfg.agent)
      return fetch_audit();
    self->request(self->state.cfg.agent, timeout, agent_atom::value)
      .then(
        [=](agent_snapshot& a) mutable {
          self->state.last_agent = std::move(a);
          fetch_audit();
        },
        [=](caf::error&) mutable { fetch_audit(); });
  };
  if (!st.cfg.cache)
    return fetch_agent();
  self->request(st.cfg.cache, timeout, stats_atom::value)
    .then(
      [=](cache_snapshot& c) mutable {
        self->state.last_cache = c;
        self->request(self->state.cfg.pool, timeout, stats_atom::value)
          .then(
            [=](pool_snapshot& p) mutable {
              self->state.last_pool = p;
              fetch_agent();
            },
            [=](caf::error&) mutable { fetch_agent(); });
      },
      [=](caf::error&) mutable { fetch_agent(); });
}

service_snapshot make_snapshot(metrics_state& st) {
  service_snapshot s;
  s.cache = st.last_cache;
  s.pool = st.last_pool;
  s.audit = st.last_audit;
  s.agent = st.last_agent;
  s.cosine = st.cosine.summary();
  s.l2 = st.l2.summary();
  s.prediction_delta = st.delta.summary();
  s.latency = st.all.summary();
  s.hit_latency = st.hits.summary();
  s.miss_latency = st.misses.summary();
  s.requests = st.requests;
  s.errors = st.errors;
  s.rejected_overload = st.rejected;
  s.http = http_of(st);
  s.model_name = st.cfg.model_name;
  s.model_version = st.cfg.model_version;
  s.uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - st.started).count();
  s.served = served_of(st);
  s.models = st.last_models;
  return s;
}

/// Counts one request's outcome.
void record(metrics_state& s, const request_outcome& o) {
  auto key = static_cast<std::uint32_t>(o.route) << 16 | o.status;
  auto& counter = s.http_by_route_status[key];
  if (counter == nullptr)
    counter = &s.http_requests->Add(
      {{"route", to_string(o.route)}, {"status", std::to_string(o.status)}});
  counter->Increment();
  if (o.route != route_label::predict)
    return;
  ++s.requests;
  if (o.error_code != 0) {
    ++s.errors;
    if (static_cast<errc>(o.error_code) == errc::overloaded)
      ++s.rejected;
    return;
  }
  double ms = static_cast<double>(o.latency_ns) / 1e6;
  if (o.lane != 0)
    if (auto i = s.lane_latency.find(o.lane); i != s.lane_latency.end())
      i->second.push(ms);
  s.all.push(ms);
  (o.cache_hit ? s.hits : s.misses).push(ms);
  auto src = static_cast<std::size_t>(o.source);
  if (src >= s.duration_by_source.size())
    return;
  s.duration_by_source[src]->Observe(static_cast<double>(o.latency_ns) / 1e9);
  s.predictions_by_source[src]->Increment();
}

metrics_actor::behavior_type aggregator(self_ptr self, metrics_config cfg) {
  auto& st = self->state;
  st.cosine = ring{cfg.latency_window};
  st.l2 = ring{cfg.latency_window};
  st.delta = ring{cfg.latency_window};
  st.all = ring{cfg.latency_window};
  st.hits = ring{cfg.latency_window};
  st.misses = ring{cfg.latency_window};
  st.cfg = std::move(cfg);
  build_registry(st);
  return {
    [=](outcome_atom, const request_outcome& o) { record(self->state, o); },
    [=](outcome_atom, const hit_outcomes& batch) {
      // Hits answered on the read path: each a /predict 200 from the cache.
      tsan::handoff_acquire(&tsan::read_path_batches); // sent by hit_path::send
      request_outcome o;
      o.route = route_label::predict;
      o.source = embedding_source::cache;
      o.cache_hit = true;
      o.lane = batch.lane;
      for (auto ns : batch.latency_ns) {
        o.latency_ns = ns;
        record(self->state, o);
      }
    },
    [=](report_atom, const divergence_report& r) {
      auto& s = self->state;
      s.cosine.push(r.cosine);
      s.l2.push(r.l2);
      s.delta.push(r.prediction_delta);
      s.cosine_hist->Observe(r.cosine);
      s.l2_hist->Observe(r.l2);
      s.delta_hist->Observe(r.prediction_delta);
      s.reports_by_kind[static_cast<std::size_t>(r.kind) % s.reports_by_kind.size()]->Increment();
      if (r.served) {
        s.served.add(r.wrong);
        ++s.served_total;
        if (r.wrong)
          ++s.served_wrong_total;
        s.served_labels[r.wrong ? 1 : 0]->Increment();
      }
    },
    [=](ingress_actor& h) { self->state.ingress = std::move(h); },
    [=](models_atom, std::vector<lane_refs>& lanes) {
      // The unlabelled cache, audit and agent series follow the default
      // model's default version (first); every version has its own
      // labelled series too.
      auto& s = self->state;
      s.lanes = std::move(lanes);
      std::map<std::uint32_t, ring> kept;
      for (const auto& l : s.lanes) {
        auto i = s.lane_latency.find(l.id);
        kept.emplace(l.id, i != s.lane_latency.end() ? std::move(i->second) : ring{2000});
      }
      s.lane_latency = std::move(kept);
      if (s.lanes.empty())
        return;
      const auto& primary = s.lanes.front();
      s.cfg.cache = primary.cache;
      s.cfg.agent = primary.agent;
      s.ingress = primary.ingress;
      if (primary.model != s.cfg.model_name || primary.version != s.cfg.model_version) {
        s.cfg.model_name = primary.model;
        s.cfg.model_version = primary.version;
        s.model_info_family->Remove(s.model_info);
        s.model_info
          = &s.model_info_family->Add({{"name", primary.model}, {"version", primary.version}});
        s.model_info->Set(1);
      }
    },
    [=](stats_atom) -> caf::result<service_snapshot> {
      auto rp = self->make_response_promise<service_snapshot>();
      collect(self, [=]() mutable { rp.deliver(make_snapshot(self->state)); });
      return rp;
    },
    [=](metrics_atom) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      collect(self, [=]() mutable {
        refresh(self->state);
        refresh_versions(self->state);
        prom::TextSerializer ser;
        rp.deliver(ser.Serialize(self->state.registry->Collect()));
      });
      return rp;
    },
  };
}

} // namespace

metrics_actor spawn_metrics_aggregator(caf::actor_system& sys, metrics_config cfg) {
  return sys.spawn(aggregator, std::move(cfg));
}

} // namespace sil
