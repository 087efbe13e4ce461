#include "actors/agent.hpp"

#include <chrono>
#include <cstdio>
#include <deque>
#include <string>
#include <vector>

#include "core/reuse_guard.hpp"
#include "core/window_stats.hpp"
#include "logging/log.hpp"

namespace sil {

namespace {

struct agent_actor_state {
  agent_config cfg;
  agent_state agent;
  /// Cosine divergences reported in the current window.
  std::vector<double> window;
  /// Reports in the window that came from audits of hits (not shadow ones).
  std::uint64_t window_audits = 0;
  /// Labels of served (or would-be-served) answers: the served wrong-rate.
  label_window served{1};
  std::uint64_t reports = 0;
  /// Cache counters at the previous observation, for per-window deltas.
  std::uint64_t last_hits = 0;
  std::uint64_t last_misses = 0;
  /// An operator's command holds until resume.
  bool manual_override = false;
  std::deque<decision_record> log;
  decision_counts counts;
  static inline const char* name = "agent";
};

using self_ptr = agent_actor::stateful_pointer<agent_actor_state>;

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

constexpr std::size_t max_log = 100;

/// The agent's mode changed (by a decision or an operator's command).
void log_mode_change(const decision_record& rec) {
  if (rec.from == rec.to)
    return;
  logging::info("agent", "mode changed",
                {{"from", to_string(rec.from)},
                 {"to", to_string(rec.to)},
                 {"ttl_s", rec.ttl_seconds},
                 {"by", rec.manual ? "operator" : "agent"},
                 {"action", to_string(rec.action)}});
}

void append_log(self_ptr self, decision_record rec) {
  auto& st = self->state;
  st.log.push_back(std::move(rec));
  while (st.log.size() > max_log)
    st.log.pop_front();
}

/// Sends what `action` means to the cache owner (the only one who flips it).
void act(self_ptr self, agent_action action, double ttl_seconds) {
  auto& cache = self->state.cfg.cache;
  auto ttl_ns = static_cast<std::int64_t>(ttl_seconds * 1e9);
  switch (action) {
    case agent_action::keep:
      break;
    case agent_action::disable:
      caf::anon_send(cache, disable_atom::value);
      break;
    case agent_action::enable:
      caf::anon_send(cache, set_ttl_atom::value, ttl_ns);
      caf::anon_send(cache, enable_atom::value);
      break;
    case agent_action::shorten_ttl:
    case agent_action::restore_ttl:
      caf::anon_send(cache, set_ttl_atom::value, ttl_ns);
      break;
  }
}

/// One agent step: observe the window, decide with the pure policy, act,
/// and log any change with the observation that caused it.
void observe(self_ptr self) {
  auto& st = self->state;
  self->request(st.cfg.cache, std::chrono::seconds{1}, stats_atom::value)
    .then(
      [=](const cache_snapshot& snap) {
        auto& s = self->state;
        observation obs;
        obs.divergence = summarize(std::move(s.window));
        s.window.clear();
        obs.audits = s.window_audits;
        s.window_audits = 0;
        obs.labels = s.served.size();
        obs.wrong = s.served.wrong();
        const auto& c = snap.stats;
        obs.hits = c.hits - std::min(c.hits, s.last_hits);
        obs.misses = c.misses - std::min(c.misses, s.last_misses);
        s.last_hits = c.hits;
        s.last_misses = c.misses;
        obs.state = s.agent;
        if (s.manual_override || !s.cfg.acts)
          return; // an operator's command holds until resume; a disabled agent only observes
        auto d = decide(obs, s.cfg.policy);
        s.agent = d.next;
        const auto& p = s.cfg.policy;
        // The figures the rule read: the served labels' bounds (wrong-rate
        // trigger) and the window's cosine summary (cosine trigger).
        auto lower = s.served.lower(p.confidence);
        auto upper = s.served.upper(p.confidence);
        if (d.action == agent_action::keep) {
          if (logging::enabled(logging::level::debug))
            logging::debug("agent", "window",
                           {{"action", "keep"},
                            {"mode", to_string(d.next.mode)},
                            {"trigger", to_string(p.trigger)},
                            {"labels", obs.labels},
                            {"wrong", obs.wrong},
                            {"wrong_rate_lower", lower},
                            {"samples", obs.divergence.count},
                            {"p95", obs.divergence.p95},
                            {"clean_windows", d.next.clean_windows},
                            {"reason", d.reason}});
          return;
        }
        logging::info("agent", "decision",
                      {{"action", to_string(d.action)},
                       {"from", to_string(obs.state.mode)},
                       {"to", to_string(d.next.mode)},
                       {"ttl_s", d.next.ttl_seconds},
                       {"trigger", to_string(p.trigger)},
                       {"labels", obs.labels},
                       {"wrong", obs.wrong},
                       {"wrong_rate_lower", lower},
                       {"wrong_rate_upper", upper},
                       {"max_wrong_rate", p.max_wrong_rate},
                       {"samples", obs.divergence.count},
                       {"p50", obs.divergence.p50},
                       {"p95", obs.divergence.p95},
                       {"max", obs.divergence.max},
                       {"hits", obs.hits},
                       {"misses", obs.misses},
                       {"audits", obs.audits},
                       {"reason", d.reason}});
        act(self, d.action, d.next.ttl_seconds);
        // Evidence gathered under the old mode says little about the new one.
        s.served.clear();
        ++s.counts.of(d.action);
        decision_record rec;
        rec.unix_ms = now_unix_ms();
        rec.from = obs.state.mode;
        rec.to = d.next.mode;
        rec.action = decision_of(d.action);
        rec.reason = std::move(d.reason);
        rec.samples = obs.divergence.count;
        rec.p50 = obs.divergence.p50;
        rec.p95 = obs.divergence.p95;
        rec.max = obs.divergence.max;
        rec.hits = obs.hits;
        rec.misses = obs.misses;
        rec.ttl_seconds = d.next.ttl_seconds;
        rec.labels = obs.labels;
        rec.wrong = obs.wrong;
        log_mode_change(rec);
        append_log(self, std::move(rec));
      },
      [](caf::error&) {
        // The cache owner is busy or gone; try again next tick.
      });
}

agent_snapshot agent_view(self_ptr self) {
  auto& st = self->state;
  const auto& p = st.cfg.policy;
  agent_snapshot out;
  out.mode = st.agent.mode;
  out.acts = st.cfg.acts;
  out.manual_override = st.manual_override;
  out.ttl_seconds = st.agent.ttl_seconds;
  out.clean_windows = st.agent.clean_windows;
  out.reports = st.reports;
  out.recover_threshold = p.recover_threshold;
  out.ttl_threshold = p.ttl_threshold;
  out.disable_threshold = p.disable_threshold;
  out.entry_evict_threshold = st.cfg.entry_evict_threshold;
  out.recover_windows = p.recover_windows;
  out.min_samples = p.min_samples;
  out.base_ttl_seconds = p.base_ttl_seconds;
  out.ttl_floor_seconds = p.ttl_floor_seconds;
  out.interval_seconds = std::chrono::duration<double>(st.cfg.interval).count();
  out.trigger = p.trigger;
  out.max_wrong_rate = p.max_wrong_rate;
  out.disable_wrong_rate = p.disable_wrong_rate;
  out.confidence = p.confidence;
  out.served_labels = st.served.size();
  out.served_wrong = st.served.wrong();
  out.served_lower = st.served.lower(p.confidence);
  out.served_upper = st.served.upper(p.confidence);
  out.decisions.assign(st.log.begin(), st.log.end());
  out.counts = st.counts;
  return out;
}

/// Applies an operator's command; it holds until resume_agent.
caf::result<agent_snapshot> admin(self_ptr self, admin_command cmd, double value) {
  auto& st = self->state;
  decision_record rec;
  rec.unix_ms = now_unix_ms();
  rec.from = st.agent.mode;
  rec.manual = true;
  rec.action = decision_of(cmd);
  switch (cmd) {
    case admin_command::disable_cache:
      caf::anon_send(st.cfg.cache, disable_atom::value);
      st.agent.mode = agent_mode::disabled;
      st.manual_override = true;
      rec.reason = "operator: POST /admin/cache/disable; the agent holds until resume";
      break;
    case admin_command::enable_cache:
      caf::anon_send(st.cfg.cache, enable_atom::value);
      st.agent.mode = st.agent.ttl_seconds < st.cfg.policy.base_ttl_seconds ? agent_mode::short_ttl
                                                                            : agent_mode::normal;
      st.manual_override = true;
      rec.reason = "operator: POST /admin/cache/enable; the agent holds until resume";
      break;
    case admin_command::clear_cache:
      caf::anon_send(st.cfg.cache, clear_atom::value);
      rec.reason = "operator: POST /admin/cache/clear";
      break;
    case admin_command::set_ttl: {
      if (!(value >= 0.0) || value > 31536000.0)
        return make_caf_error(errc::bad_request, "ttl_seconds must be in [0, 31536000]");
      caf::anon_send(st.cfg.cache, set_ttl_atom::value, static_cast<std::int64_t>(value * 1e9));
      st.agent.ttl_seconds = value;
      if (st.agent.mode != agent_mode::disabled)
        st.agent.mode
          = value < st.cfg.policy.base_ttl_seconds ? agent_mode::short_ttl : agent_mode::normal;
      st.manual_override = true;
      char buf[96];
      std::snprintf(buf, sizeof buf,
                    "operator: PUT /admin/cache/ttl to %.3gs; the agent holds "
                    "until resume",
                    value);
      rec.reason = buf;
      break;
    }
    case admin_command::resume_agent:
      st.manual_override = false;
      st.agent.clean_windows = 0;
      rec.reason = "operator: POST /admin/agent/resume; the agent decides again";
      break;
  }
  rec.to = st.agent.mode;
  rec.ttl_seconds = st.agent.ttl_seconds;
  ++st.counts.manual;
  log_mode_change(rec);
  if (cmd == admin_command::resume_agent)
    logging::info("agent", "resumed: the agent decides again", {{"mode", to_string(rec.to)}});
  else if (cmd != admin_command::clear_cache)
    logging::info("agent", "operator override: the agent holds until resume",
                  {{"action", to_string(rec.action)}, {"mode", to_string(rec.to)}});
  append_log(self, std::move(rec));
  return agent_view(self);
}

agent_actor::behavior_type agent_behavior(self_ptr self, agent_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.served = label_window{st.cfg.label_window};
  st.agent.ttl_seconds = st.cfg.policy.base_ttl_seconds;
  if (st.cfg.cache)
    self->delayed_send(self, st.cfg.interval, observe_atom::value);
  return {
    [=](observe_atom) {
      observe(self);
      self->delayed_send(self, self->state.cfg.interval, observe_atom::value);
    },
    [=](report_atom, const divergence_report& r) {
      auto& s = self->state;
      // The cosine window keeps its meaning: audits and shadow comparisons.
      if (r.kind != comparison_kind::refusal) {
        s.window.push_back(r.cosine);
        if (r.kind == comparison_kind::audit)
          ++s.window_audits;
      }
      if (r.served)
        s.served.add(r.wrong);
      ++s.reports;
    },
    [=](agent_atom) { return agent_view(self); },
    [=](admin_atom, admin_command cmd, double value) { return admin(self, cmd, value); },
  };
}

} // namespace

agent_actor spawn_agent(caf::actor_system& sys, agent_config cfg) {
  return sys.spawn(agent_behavior, std::move(cfg));
}

} // namespace sil
