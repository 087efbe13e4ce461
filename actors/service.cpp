#include "actors/service.hpp"

#include <thread>

#include "actors/cache_owner.hpp"
#include "actors/hit_path.hpp"
#include "actors/ingress.hpp"
#include "actors/metrics_aggregator.hpp"

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

caf::expected<service_handles> start_service(caf::actor_system& sys, const service_settings& s,
                                             const model& m, const service_options& opts) {
  service_handles h;
  h.board = std::make_shared<service_board>();

  cache_owner_config cc;
  cc.cache.max_size = static_cast<std::size_t>(s.cache_max_size);
  cc.cache.admission
    = parse_admission_policy(s.cache_admission).value_or(admission_policy::lru); // validated
  cc.cache.ttl = seconds(s.cache_ttl_seconds);
  cc.cache.enabled = s.cache_enabled;
  cc.single_flight = s.cache_single_flight;
  cc.prefix_k = static_cast<std::uint32_t>(s.cache_prefix_k);
  auto unit = parse_prefix_unit(s.cache_prefix_unit); // validated
  cc.unit = unit ? *unit : prefix_unit::values;
  cc.guard.enabled = s.risk_guard;
  cc.guard.tolerance = s.risk_tolerance;
  cc.guard.max_wrong_rate = s.risk_max_wrong_rate;
  cc.guard.confidence = s.risk_confidence;
  cc.sweep_interval = seconds(s.cache_sweep_interval_seconds);
  cc.flight_timeout
    = seconds(s.encoder_timeout_seconds * static_cast<double>(s.encoder_max_attempts) + 1.0);
  cc.board = h.board;
  if (s.cache_read_path)
    cc.view = std::make_shared<read_view>(cc.guard);
  auto cache = spawn_cache_owner(sys, cc);
  if (!cache)
    return std::move(cache.error());
  h.cache = *cache;

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

  agent_config ac;
  ac.cache = h.cache;
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
  ac.policy.base_ttl_seconds = s.cache_ttl_seconds;
  // The floor never exceeds the configured TTL (a TTL of 0 keeps 0).
  ac.policy.ttl_floor_seconds = std::min(s.agent_ttl_floor_seconds, s.cache_ttl_seconds);
  ac.entry_evict_threshold = s.agent_entry_evict_threshold;
  h.agent = spawn_agent(sys, std::move(ac));

  ingress_config ic;
  ic.m = m;
  ic.prefix_k = cc.prefix_k;
  ic.unit = cc.unit;
  ic.guard = cc.guard;
  ic.cache = h.cache;
  ic.pool = h.pool;
  ic.agent = h.agent;
  ic.encode_timeout
    = seconds(s.encoder_timeout_seconds * static_cast<double>(s.encoder_max_attempts) + 1.0);

  metrics_config mc;
  mc.cache = h.cache;
  mc.pool = h.pool;
  mc.agent = h.agent;
  mc.model_name = m.name();
  mc.model_version = m.version();
  mc.board = h.board;
  h.metrics = spawn_metrics_aggregator(sys, std::move(mc));

  ic.metrics = h.metrics;
  ic.audit.rate = s.audit_rate;
  ic.audit.max_share = s.audit_max_share;
  ic.audit.window = seconds(s.audit_window_seconds);
  ic.audit.per_second = s.audit_per_second;
  ic.audit.max_encoder_share = s.audit_max_encoder_share;
  ic.audit.encoder_capacity = static_cast<double>(std::max<std::size_t>(1, worker_count(s)));
  ic.entry_evict_threshold = s.agent_entry_evict_threshold;
  ic.evict_far_entries = s.agent_enabled;
  h.ingress = spawn_ingress(sys, std::move(ic));
  // The metrics aggregator pulls the audit counters from the ingress.
  caf::anon_send(h.metrics, h.ingress);
  if (cc.view) {
    hit_path_config hc;
    hc.m = m;
    hc.spec = prefix_spec{cc.unit, cc.prefix_k};
    hc.view = cc.view;
    hc.cache = h.cache;
    hc.ingress = h.ingress;
    hc.metrics = h.metrics;
    hc.audit_rate = s.audit_rate;
    hc.audit_per_second = s.audit_per_second;
    h.hits = std::make_shared<hit_path>(std::move(hc));
  }
  return h;
}

void stop_service(service_handles& h) {
  auto reason = caf::exit_reason::user_shutdown;
  caf::anon_send_exit(h.ingress, reason);
  caf::anon_send_exit(h.metrics, reason);
  caf::anon_send_exit(h.agent, reason);
  caf::anon_send_exit(h.pool, reason);
  caf::anon_send_exit(h.cache, reason);
}

} // namespace sil
