#include "actors/service.hpp"

#include <atomic>
#include <cmath>
#include <thread>

#include "actors/cache_owner.hpp"
#include "actors/hit_path.hpp"
#include "actors/ingress.hpp"
#include "actors/metrics_aggregator.hpp"
#include "actors/model_manager.hpp"

namespace sil {

namespace {

caf::timespan seconds(double s) {
  return std::chrono::duration_cast<caf::timespan>(std::chrono::duration<double>(s));
}

} // namespace

result<model> make_model(const service_settings& s) {
  auto cfg = preset(s.model_preset);
  if (!cfg)
    return error{errc::invalid_config, "model.preset: " + cfg.error().message};
  auto m = s.model_weights.empty()
             ? model::from_seed(*cfg, static_cast<std::uint64_t>(s.model_seed))
             : model::load(s.model_weights, *cfg);
  if (!m)
    return error{m.error().code, "model.weights: " + m.error().message};
  return m;
}

std::size_t worker_count(const service_settings& s) {
  if (s.workers > 0)
    return static_cast<std::size_t>(s.workers);
  if (s.role == "gateway")
    return 0; // a gateway with workers=0 uses remote nodes only
  auto n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

namespace {

/// What every lane shares.
struct lane_context {
  const service_settings* settings = nullptr;
  encoder_pool_actor pool;
  metrics_actor metrics;
  /// Only the first lane writes the board (its cache_enabled is /health's).
  std::shared_ptr<service_board> board;
  std::weak_ptr<read_paths> reads;
};

cache_owner_config cache_config_of(const service_settings& s, const cache_policy& p) {
  cache_owner_config cc;
  cc.cache.max_size
    = std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(
                                 p.capacity_share * static_cast<double>(s.cache_max_size))));
  cc.cache.admission = p.admission;
  cc.cache.ttl = seconds(p.ttl_seconds);
  cc.cache.enabled = s.cache_enabled;
  cc.single_flight = s.cache_single_flight;
  cc.prefix_k = p.prefix_k;
  cc.unit = p.unit;
  cc.guard.enabled = s.risk_guard;
  cc.guard.tolerance = p.tolerance;
  cc.guard.max_wrong_rate = p.max_wrong_rate;
  cc.guard.confidence = s.risk_confidence;
  cc.sweep_interval = seconds(s.cache_sweep_interval_seconds);
  cc.flight_timeout
    = seconds(s.encoder_timeout_seconds * static_cast<double>(s.encoder_max_attempts) + 1.0);
  if (s.cache_read_path)
    cc.view = std::make_shared<read_view>(cc.guard);
  return cc;
}

agent_config agent_config_of(const service_settings& s, const cache_policy& p, cache_actor cache) {
  agent_config ac;
  ac.cache = std::move(cache);
  ac.interval = seconds(s.agent_interval_seconds);
  ac.acts = s.agent_enabled;
  ac.policy.trigger = parse_agent_trigger(s.agent_trigger).value_or(agent_trigger::wrong_rate);
  ac.policy.max_wrong_rate = s.risk_max_wrong_rate;
  ac.policy.disable_wrong_rate = s.agent_disable_wrong_rate;
  ac.policy.confidence = s.risk_confidence;
  ac.label_window = static_cast<std::size_t>(s.agent_label_window);
  ac.policy.recover_threshold = s.agent_recover_threshold;
  ac.policy.ttl_threshold = s.agent_ttl_threshold;
  ac.policy.disable_threshold = s.agent_disable_threshold;
  ac.policy.recover_windows = static_cast<std::size_t>(s.agent_recover_windows);
  ac.policy.min_samples = static_cast<std::size_t>(s.agent_min_samples);
  ac.policy.base_ttl_seconds = p.ttl_seconds;
  // The floor never exceeds the configured TTL (a TTL of 0 keeps 0).
  ac.policy.ttl_floor_seconds = std::min(s.agent_ttl_floor_seconds, p.ttl_seconds);
  ac.entry_evict_threshold = s.agent_entry_evict_threshold;
  return ac;
}

/// Spawns the actors that serve one model version.
caf::expected<std::shared_ptr<lane>> spawn_lane(caf::actor_system& sys, const lane_context& ctx,
                                                const std::string& name, const model& m,
                                                const cache_policy& policy) {
  const auto& s = *ctx.settings;
  auto out = std::make_shared<lane>();
  out->model_name = name;
  out->m = m;
  out->policy = policy;
  static std::atomic<std::uint32_t> next_id{1};
  out->id = next_id.fetch_add(1, std::memory_order_relaxed);
  auto cc = cache_config_of(s, policy);
  cc.board = ctx.board;
  auto cache = spawn_cache_owner(sys, cc);
  if (!cache)
    return std::move(cache.error());
  out->cache = *cache;
  out->agent = spawn_agent(sys, agent_config_of(s, policy, out->cache));

  ingress_config ic;
  ic.m = m;
  ic.prefix_k = cc.prefix_k;
  ic.unit = cc.unit;
  ic.guard = cc.guard;
  ic.service_tolerance = s.risk_tolerance;
  ic.cache = out->cache;
  ic.pool = ctx.pool;
  ic.agent = out->agent;
  ic.encode_timeout
    = seconds(s.encoder_timeout_seconds * static_cast<double>(s.encoder_max_attempts) + 1.0);
  ic.metrics = ctx.metrics;
  ic.audit.rate = s.audit_rate;
  ic.audit.max_share = s.audit_max_share;
  ic.audit.window = seconds(s.audit_window_seconds);
  ic.audit.per_second = s.audit_per_second;
  ic.audit.max_encoder_share = s.audit_max_encoder_share;
  ic.audit.encoder_capacity = static_cast<double>(std::max<std::size_t>(1, worker_count(s)));
  ic.entry_evict_threshold = s.agent_entry_evict_threshold;
  ic.evict_far_entries = s.agent_enabled;
  out->ingress = spawn_ingress(sys, std::move(ic));
  if (cc.view) {
    hit_path_config hc;
    hc.m = m;
    hc.spec = prefix_spec{cc.unit, cc.prefix_k};
    hc.view = cc.view;
    hc.cache = out->cache;
    hc.ingress = out->ingress;
    hc.metrics = ctx.metrics;
    hc.lane = out->id;
    hc.audit_rate = s.audit_rate;
    hc.audit_per_second = s.audit_per_second;
    out->hits = std::make_shared<hit_path>(std::move(hc));
    out->hits->on_pending([weak = ctx.reads] {
      if (auto hub = weak.lock())
        hub->pending();
    });
  }
  return out;
}

} // namespace

lane::~lane() {
  if (hits)
    hits->flush();
  auto reason = caf::exit_reason::user_shutdown;
  caf::anon_send_exit(ingress, reason);
  caf::anon_send_exit(agent, reason);
  caf::anon_send_exit(cache, reason);
  if (on_drained)
    on_drained();
}

void read_paths::flush() const {
  auto catalog = models_->load();
  if (!catalog)
    return;
  for (const auto& m : catalog->models())
    for (const auto& v : m.versions)
      if (v.lane && v.lane->hits)
        v.lane->hits->flush();
}

cache_policy default_policy(const service_settings& s) {
  cache_policy p;
  p.name = "default";
  p.prefix_k = static_cast<std::uint32_t>(s.cache_prefix_k);
  auto unit = parse_prefix_unit(s.cache_prefix_unit); // validated
  p.unit = unit ? *unit : prefix_unit::values;
  p.ttl_seconds = s.cache_ttl_seconds;
  p.capacity_share = 1.0;
  p.tolerance = s.risk_tolerance;
  p.max_wrong_rate = s.risk_max_wrong_rate;
  p.admission = parse_admission_policy(s.cache_admission).value_or(admission_policy::lru);
  return p;
}

caf::expected<service_handles> start_service(caf::actor_system& sys, const service_settings& s,
                                             const model& m, const service_options& opts) {
  service_handles h;
  h.board = std::make_shared<service_board>();
  h.models = std::make_shared<published_catalog>();
  h.reads = std::make_shared<read_paths>(h.models);

  encoder_pool_config pc;
  pc.m = m;
  pc.workers = worker_count(s);
  pc.node_name = s.node_name.empty() ? "local" : s.node_name;
  pc.fallback_local = s.cluster_fallback == "local";
  pc.log_nodes = s.role == "gateway";
  pc.max_batch = static_cast<std::size_t>(s.encoder_max_batch);
  pc.encoder_timeout = seconds(s.encoder_timeout_seconds);
  pc.max_attempts = static_cast<std::size_t>(s.encoder_max_attempts);
  pc.detached_workers = opts.detached_workers;
  pc.worker_nice = static_cast<int>(s.encoder_nice);
  pc.factory = opts.factory;
  pc.board = h.board;
  h.pool = spawn_encoder_pool(sys, std::move(pc));

  auto name = s.model_name.empty() ? m.name() : s.model_name;
  metrics_config mc;
  mc.pool = h.pool;
  mc.model_name = name;
  mc.model_version = m.version();
  mc.board = h.board;

  // The first lane's actors exist before the aggregator that pulls them.
  lane_context ctx;
  ctx.settings = &s;
  ctx.pool = h.pool;
  ctx.board = h.board;
  ctx.reads = h.reads;
  // The aggregator is spawned first with no lane; the manager tells it
  // which lanes to pull as soon as the first one exists.
  h.metrics = spawn_metrics_aggregator(sys, std::move(mc));
  ctx.metrics = h.metrics;
  auto policy = default_policy(s);
  auto first = spawn_lane(sys, ctx, name, m, policy);
  if (!first)
    return std::move(first.error());
  h.ingress = (*first)->ingress;
  h.cache = (*first)->cache;
  h.agent = (*first)->agent;
  h.hits = (*first)->hits;
  ctx.board = nullptr; // the board is the first lane's
  // The metrics aggregator pulls the audit counters from the ingress.
  caf::anon_send(h.metrics, h.ingress);

  model_manager_config mm;
  mm.models = h.models;
  mm.pool = h.pool;
  mm.metrics = h.metrics;
  mm.max_bytes = static_cast<std::uint64_t>(s.models_max_bytes);
  mm.warm_encodes = static_cast<std::uint32_t>(s.models_warm_encodes);
  mm.input_dim = m.input_dim();
  mm.default_policy = policy;
  mm.cache_max_size = static_cast<std::size_t>(s.cache_max_size);
  mm.max_rows = static_cast<std::size_t>(s.http_max_rows);
  mm.rule.max_wrong_rate = s.risk_max_wrong_rate;
  mm.rule.confidence = s.risk_confidence;
  mm.rule.margin = s.canary_margin;
  mm.rule.min_saving = s.canary_min_saving;
  mm.rule.max_cost_increase = s.canary_max_cost_increase;
  mm.rule.min_labels = static_cast<std::uint64_t>(s.canary_min_labels);
  mm.rule.min_requests = static_cast<std::uint64_t>(s.canary_min_requests);
  mm.rule.max_seconds = s.canary_max_seconds;
  mm.canary_interval = seconds(s.canary_interval_seconds);
  mm.spawn = [&sys, ctx_settings = s, pool = h.pool, metrics = h.metrics,
              reads = std::weak_ptr<read_paths>{h.reads}](
               const std::string& lane_name, const model& lane_model,
               const cache_policy& lane_policy) -> caf::expected<std::shared_ptr<lane>> {
    lane_context c;
    c.settings = &ctx_settings;
    c.pool = pool;
    c.metrics = metrics;
    c.reads = reads;
    return spawn_lane(sys, c, lane_name, lane_model, lane_policy);
  };
  std::vector<initial_version> initial;
  initial.push_back({std::move(*first), s.model_weights.empty() ? s.model_preset : m.name()});
  // More versions served from the start (validated settings).
  auto specs = parse_model_specs(s.models_load);
  for (const auto& spec : specs ? *specs : std::vector<model_spec>{}) {
    auto extra = build_model(spec, m.input_dim());
    if (!extra)
      return make_caf_error(errc::invalid_config, "models.load: " + extra.error().message);
    auto serving = spawn_lane(sys, ctx, spec.name, *extra, policy);
    if (!serving)
      return std::move(serving.error());
    initial.push_back({std::move(*serving), extra->name()});
  }
  auto manager = spawn_model_manager(sys, std::move(mm), std::move(initial));
  if (!manager)
    return std::move(manager.error());
  h.manager = *manager;
  return h;
}

void stop_service(service_handles& h) {
  auto reason = caf::exit_reason::user_shutdown;
  caf::anon_send_exit(h.manager, reason);
  if (h.models) {
    // Every lane goes now, while the actor system runs: the catalog is
    // emptied, so the last holder of each lane (this, or a request that is
    // still finishing) asks its actors to exit.
    if (auto catalog = h.models->load())
      for (const auto& m : catalog->models())
        for (const auto& v : m.versions) {
          caf::anon_send_exit(v.lane->ingress, reason);
          caf::anon_send_exit(v.lane->agent, reason);
          caf::anon_send_exit(v.lane->cache, reason);
        }
    h.models->store(std::make_shared<model_catalog>());
  }
  caf::anon_send_exit(h.ingress, reason);
  caf::anon_send_exit(h.metrics, reason);
  caf::anon_send_exit(h.agent, reason);
  caf::anon_send_exit(h.pool, reason);
  caf::anon_send_exit(h.cache, reason);
}

} // namespace sil
