#include "actors/agent_supervisor.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "actors/encoder_worker.hpp"
#include "core/node_identity.hpp"
#include "core/wait_estimator.hpp"
#include "core/window_stats.hpp"
#include "core/tsan.hpp"
#include "logging/log.hpp"

namespace sil {

namespace {

struct job {
  encode_item item;
  caf::typed_response_promise<embedding> rp;
  std::size_t attempts = 0;
};

struct worker_slot {
  encoder_worker_actor handle;
  std::uint64_t id = 0;
  bool busy = false;
  std::size_t outstanding = 0;
  /// The node it runs on; remote workers are not restarted here (their node
  /// replaces them and joins again).
  std::string node;
  bool remote = false;
  /// A local worker spawned only because no other worker was reachable.
  bool fallback = false;
  /// Batches sent to it: ties between idle workers go to the one used least.
  std::uint64_t dispatched = 0;
  /// The batch this worker is encoding, so that it can be retried the moment
  /// the worker dies, not only when the request times out.
  std::shared_ptr<std::vector<job>> jobs;
  /// Input rows in that batch.
  std::uint64_t rows = 0;
};

struct supervisor_state {
  supervisor_config cfg;
  std::vector<worker_slot> workers;
  std::deque<job> queue;
  /// Input rows in `queue`, and in batches at workers: the work ahead of a
  /// new request, for its expected wait.
  std::uint64_t queued_rows = 0;
  std::uint64_t running_rows = 0;
  /// The workers' measured cost per row.
  wait_estimator wait;
  std::uint64_t next_id = 0;
  /// Encoder nodes by name (the local one included).
  std::map<std::string, node_info> nodes;
  /// The CAF node id each remote node last joined with, by name.
  std::map<std::string, std::string> node_ids;
  pool_snapshot stats;
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
  std::vector<std::uint64_t> action_counts = std::vector<std::uint64_t>(6, 0);
  /// Every live worker; shared with the exit hook, which outlives the state.
  std::shared_ptr<std::vector<caf::actor>> registry = std::make_shared<std::vector<caf::actor>>();
  static inline const char* name = "agent_supervisor";
};

using self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

void dispatch(self_ptr self);

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Workers that count for /health: the fallback worker does not (the
/// gateway is degraded while it is the only one). Logs every node whose
/// state changed, with `reason`: what changed the pool.
void publish_workers(self_ptr self, std::string_view reason) {
  auto& st = self->state;
  std::uint32_t alive = 0;
  for (auto& [name, n] : st.nodes)
    n.workers = 0;
  for (const auto& w : st.workers) {
    if (!w.fallback)
      ++alive;
    ++st.nodes[w.node].workers;
  }
  for (auto& [name, n] : st.nodes) {
    const char* state = n.state == "local" ? "local" : n.workers > 0 ? "up" : "down";
    if (n.state != state) {
      if (!n.state.empty() && st.cfg.log_nodes) {
        auto lvl = std::string_view{state} == "down" ? logging::level::warn : logging::level::info;
        logging::write(lvl, "cluster", "node state",
                       {{"node", n.name},
                        {"from", n.state},
                        {"to", state},
                        {"workers", n.workers},
                        {"reason", reason}});
      }
      n.state = state;
      n.changed_unix_ms = now_unix_ms();
    }
  }
  if (st.cfg.board)
    st.cfg.board->workers_alive.store(alive);
}

worker_slot* find_slot(self_ptr self, std::uint64_t id) {
  for (auto& w : self->state.workers)
    if (w.id == id)
      return &w;
  return nullptr;
}

/// Spawns a worker into a new slot and monitors it. (Not linked: a worker
/// killed with exit_reason::kill would take a linked supervisor with it.)
void add_worker(self_ptr self) {
  auto& st = self->state;
  auto index = st.workers.size();
  encoder_worker_actor h;
  if (st.cfg.factory)
    h = st.cfg.factory(self, index);
  else if (st.cfg.detached_workers)
    h = self->spawn<caf::detached>(detached_encoder_worker, st.cfg.m, st.cfg.worker_nice);
  else
    h = self->spawn(encoder_worker, st.cfg.m);
  self->monitor(h);
  st.registry->push_back(caf::actor_cast<caf::actor>(h));
  worker_slot slot;
  slot.handle = h;
  slot.id = st.next_id++;
  slot.node = st.cfg.node_name;
  st.workers.push_back(std::move(slot));
  publish_workers(self, "local worker started");
}

/// No worker at all: spawn the local fallback worker, if allowed.
void add_fallback(self_ptr self) {
  add_worker(self);
  self->state.workers.back().fallback = true;
  publish_workers(self, "fallback worker started: no other worker is reachable");
}

/// A remote node's worker joins the pool.
caf::result<std::uint64_t> join(self_ptr self, const std::string& node, const std::string& version,
                                const encoder_worker_actor& h) {
  auto& st = self->state;
  if (version != st.cfg.m.version())
    return make_caf_error(errc::invalid_config, "model version " + version + " of node " + node
                                                  + " differs from the gateway's "
                                                  + st.cfg.m.version());
  if (!h)
    return make_caf_error(errc::bad_request, "no worker handle");
  // Before anything else looks at the handle: a node with another live
  // node's id (or ours) has a handle that CAF routes to that other node, so
  // it would "join" as someone else's worker.
  std::vector<known_node> known;
  for (const auto& [name, id] : st.node_ids) {
    auto n = st.nodes.find(name);
    known.push_back({name, id, n != st.nodes.end() && n->second.workers > 0});
  }
  auto id_text = caf::to_string(h.node());
  if (auto verdict = check_node_identity(node, id_text, caf::to_string(self->node()), known);
      !verdict) {
    logging::error("cluster", "node refused: node id clash",
                   {{"node", node}, {"node_id", id_text}, {"reason", verdict.error().message}});
    return to_caf_error(verdict.error());
  }
  for (const auto& w : st.workers)
    if (w.handle == h)
      return w.id; // joined twice (a retried request): keep one slot
  st.node_ids[node] = id_text;
  self->monitor(h);
  worker_slot slot;
  slot.handle = h;
  slot.id = st.next_id++;
  slot.node = node;
  slot.remote = true;
  st.workers.push_back(std::move(slot));
  st.nodes[node].name = node;
  if (st.nodes[node].state.empty())
    st.nodes[node].state = "new";
  auto id = st.workers.back().id;
  if (st.cfg.log_nodes)
    logging::info("cluster", "node joined", {{"node", node}, {"node_id", id_text}});
  publish_workers(self, "worker joined");
  dispatch(self);
  return id;
}

/// Puts the jobs of a failed batch back at the front of the queue, or fails
/// the ones out of attempts.
void requeue(self_ptr self, std::vector<job>& jobs, const caf::error& why) {
  auto& st = self->state;
  for (auto i = jobs.rbegin(); i != jobs.rend(); ++i) {
    if (++i->attempts >= st.cfg.max_attempts) {
      ++st.stats.failures;
      i->rp.deliver(
        make_caf_error(errc::encoder_timeout, "encoder failed " + std::to_string(i->attempts)
                                                + " times; last error: " + caf::to_string(why)));
    } else {
      ++st.stats.retries;
      st.queued_rows += i->item.rows;
      st.queue.push_front(std::move(*i));
    }
  }
}

/// The worker in slot `id` died or hung: replace it and retry its batch.
/// Does nothing if the slot is already gone (the other path got there first).
void fail_slot(self_ptr self, std::uint64_t id, const caf::error& why) {
  auto& st = self->state;
  auto i = std::find_if(st.workers.begin(), st.workers.end(),
                        [id](const worker_slot& w) { return w.id == id; });
  if (i == st.workers.end())
    return;
  auto old = i->handle;
  auto jobs = std::move(i->jobs);
  st.running_rows -= i->rows;
  bool local = !i->remote && !i->fallback;
  auto reason = "lost a worker: " + caf::to_string(why);
  if (i->remote && st.cfg.log_nodes)
    logging::warn("cluster", "node lost a worker",
                  {{"node", i->node},
                   {"reason", caf::to_string(why)},
                   {"retried", jobs ? jobs->size() : std::size_t{0}}});
  st.workers.erase(i);
  self->demonitor(old.address());
  // A hung remote worker is killed too: its node sees it die, replaces it
  // and joins again.
  caf::anon_send_exit(old, caf::exit_reason::kill);
  auto& reg = *st.registry;
  reg.erase(std::remove(reg.begin(), reg.end(), caf::actor_cast<caf::actor>(old)), reg.end());
  if (local) {
    ++st.stats.restarts;
    add_worker(self);
  } else {
    publish_workers(self, reason);
  }
  if (jobs)
    requeue(self, *jobs, why);
}

caf::error cancelled_error() {
  return make_caf_error(errc::cancelled, "every client waiting on this encode has gone");
}

/// Drops a job leaving the queue if nobody waits for it or it cannot meet
/// its deadline any more, and answers it. Returns true if it was dropped.
bool skip_job(self_ptr self, job& j, std::chrono::steady_clock::time_point now) {
  auto& st = self->state;
  if (abandoned(j.item.wanted_by)) {
    ++st.stats.cancelled;
    j.rp.deliver(cancelled_error());
    return true;
  }
  // A retry (its worker died or hung) is not refused: it was admitted, and
  // the failover, not the queue, made it late.
  if (j.attempts == 0 && j.item.deadline != std::chrono::steady_clock::time_point{}
      && now + st.wait.cost(j.item.rows) > j.item.deadline) {
    ++st.stats.expired;
    j.rp.deliver(make_caf_error(errc::overloaded, "the request's deadline passed while it "
                                                  "waited for an encoder; retry later"));
    return true;
  }
  return false;
}

/// Removes queued jobs that nobody waits for any more (they would inflate
/// the expected wait of new work). Returns how many it removed.
std::size_t prune_abandoned(self_ptr self) {
  auto& st = self->state;
  std::size_t removed = 0;
  for (auto i = st.queue.begin(); i != st.queue.end();) {
    if (abandoned(i->item.wanted_by)) {
      st.queued_rows -= i->item.rows;
      ++st.stats.cancelled;
      i->rp.deliver(cancelled_error());
      i = st.queue.erase(i);
      ++removed;
    } else {
      ++i;
    }
  }
  return removed;
}

/// Publishes the pool's load for the front end, which refuses a miss
/// before it reaches any actor when the pool would refuse it anyway.
void publish_load(self_ptr self) {
  auto& st = self->state;
  if (!st.cfg.board)
    return;
  auto& b = *st.cfg.board;
  b.encoder_rows_ahead.store(st.queued_rows + st.running_rows, std::memory_order_relaxed);
  b.encoder_ns_per_row.store(static_cast<std::uint64_t>(st.wait.ns_per_row()),
                             std::memory_order_relaxed);
  b.encoder_workers.store(static_cast<std::uint32_t>(st.workers.size()), std::memory_order_relaxed);
}

/// A worker finished (or failed) its batch: it is free again.
void release_slot(self_ptr self, worker_slot& w) {
  self->state.running_rows -= w.rows;
  w.rows = 0;
  w.busy = false;
  w.outstanding = 0;
  w.jobs.reset();
}

/// Admits an encode, or refuses it at once when the work ahead of it
/// would make it miss its deadline (an answer of 503 now beats one after
/// the client has given up).
caf::result<embedding> admit(self_ptr self, encode_item& item) {
  auto& st = self->state;
  if (abandoned(item.wanted_by)) {
    ++st.stats.cancelled;
    return cancelled_error();
  }
  if (item.deadline != std::chrono::steady_clock::time_point{}) {
    auto now = std::chrono::steady_clock::now();
    auto wait = [&] {
      return st.wait.expected(st.queued_rows + st.running_rows, item.rows, st.workers.size());
    };
    if (now + wait() > item.deadline
        && (prune_abandoned(self) == 0 || now + wait() > item.deadline)) {
      ++st.stats.shed;
      auto ms = [](auto d) {
        return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
      };
      return make_caf_error(errc::overloaded,
                            "the encoders are busy: the expected wait of " + ms(wait())
                              + " ms exceeds this request's deadline (" + ms(item.deadline - now)
                              + " ms left); retry later");
    }
  }
  auto rp = self->make_response_promise<embedding>();
  st.queued_rows += item.rows;
  st.queue.push_back(job{std::move(item), rp, 0});
  dispatch(self);
  publish_load(self);
  return rp;
}

void dispatch(self_ptr self) {
  auto& st = self->state;
  while (!st.queue.empty()) {
    if (st.workers.empty()) {
      // No worker reachable at all (a gateway whose nodes are gone).
      if (!st.cfg.fallback_local) {
        while (!st.queue.empty()) {
          ++st.stats.failures;
          st.queue.front().rp.deliver(
            make_caf_error(errc::unavailable, "no encoder node is reachable; retry later"));
          st.queue.pop_front();
        }
        st.queued_rows = 0;
        return;
      }
      add_fallback(self);
    }
    bool regular = std::any_of(st.workers.begin(), st.workers.end(),
                               [](const worker_slot& w) { return !w.fallback; });
    // Least-loaded idle worker; the fallback worker only while no other
    // worker exists.
    worker_slot* target = nullptr;
    for (auto& w : st.workers)
      if (!w.busy && (!w.fallback || !regular)
          && (target == nullptr || w.outstanding < target->outstanding
              || (w.outstanding == target->outstanding && w.dispatched < target->dispatched)))
        target = &w;
    if (target == nullptr)
      return; // every worker busy: requests wait and will leave as one batch
    auto jobs = std::make_shared<std::vector<job>>();
    jobs->reserve(std::min(st.queue.size(), st.cfg.max_batch));
    encode_batch batch;
    std::uint64_t rows = 0;
    auto now = std::chrono::steady_clock::now();
    while (!st.queue.empty() && jobs->size() < st.cfg.max_batch) {
      auto j = std::move(st.queue.front());
      st.queue.pop_front();
      st.queued_rows -= j.item.rows;
      // The last moment to skip work: nobody waits for it any more, or it
      // could not finish before its deadline.
      if (skip_job(self, j, now))
        continue;
      rows += j.item.rows;
      batch.items.push_back(j.item);
      jobs->push_back(std::move(j));
    }
    if (jobs->empty())
      continue;
    auto n = jobs->size();
    target->busy = true;
    ++target->dispatched;
    target->outstanding = n;
    target->jobs = jobs;
    target->rows = rows;
    st.running_rows += rows;
    st.stats.max_batch_seen = std::max<std::uint64_t>(st.stats.max_batch_seen, n);
    auto id = target->id;
    self->request(target->handle, st.cfg.encoder_timeout, encode_atom::value, std::move(batch))
      .then(
        [=](encoded_batch& out) {
          tsan::handoff_acquire(&tsan::encoder_batches); // see encode_with
          auto& s = self->state;
          auto* w = find_slot(self, id);
          if (w == nullptr)
            return; // declared dead meanwhile; its batch was already retried
          release_slot(self, *w);
          if (out.embeddings.size() != jobs->size()) {
            requeue(self, *jobs, make_caf_error(errc::internal, "worker returned a short batch"));
          } else {
            // A local worker leaves out items nobody waits for any more.
            std::uint64_t done = 0;
            std::uint64_t done_rows = 0;
            for (std::size_t i = 0; i < jobs->size(); ++i) {
              auto& j = (*jobs)[i];
              if (!out.embeddings[i]) {
                ++s.stats.cancelled;
                j.rp.deliver(cancelled_error());
                continue;
              }
              ++done;
              done_rows += j.item.rows;
              j.rp.deliver(std::move(out.embeddings[i]));
            }
            ++s.stats.batches;
            s.stats.items += done;
            s.stats.busy_seconds += static_cast<double>(out.busy_ns) / 1e9;
            s.stats.flops += out.flops;
            s.wait.on_batch(done_rows, std::chrono::nanoseconds{out.busy_ns});
            publish_load(self);
            s.nodes[w->node].encodes += done;
            if (w->fallback)
              s.stats.fallback_items += done;
          }
          dispatch(self);
        },
        [=](caf::error& err) {
          auto* w = find_slot(self, id);
          if (w == nullptr)
            return; // already handled when the worker died
          if (err.category() == error_category
              && static_cast<errc>(err.code()) == errc::bad_request) {
            // A bad item fails alone; the worker is fine.
            release_slot(self, *w);
            for (auto& j : *jobs)
              j.rp.deliver(err);
          } else {
            // Death or timeout: replace the worker, retry the batch elsewhere.
            fail_slot(self, id, err);
          }
          dispatch(self);
        });
  }
}

constexpr std::size_t max_log = 100;
constexpr std::size_t manual_index = 5; // action_counts: keep .. enable, then manual

/// The agent's mode changed (by a decision or an operator's command).
void log_mode_change(const decision_record& rec) {
  if (rec.from == rec.to)
    return;
  logging::info("agent", "mode changed",
                {{"from", rec.from},
                 {"to", rec.to},
                 {"ttl_s", rec.ttl_seconds},
                 {"by", rec.manual ? "operator" : "agent"},
                 {"action", rec.action}});
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
        obs.hits = snap.hits - std::min(snap.hits, s.last_hits);
        obs.misses = snap.misses - std::min(snap.misses, s.last_misses);
        s.last_hits = snap.hits;
        s.last_misses = snap.misses;
        obs.state = s.agent;
        if (s.manual_override || !s.cfg.agent_acts)
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
        ++s.action_counts[static_cast<std::size_t>(d.action)];
        decision_record rec;
        rec.unix_ms = now_unix_ms();
        rec.from = to_string(obs.state.mode);
        rec.to = to_string(d.next.mode);
        rec.action = to_string(d.action);
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
  out.mode = to_string(st.agent.mode);
  out.acts = st.cfg.agent_acts;
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
  out.interval_seconds = std::chrono::duration<double>(st.cfg.agent_interval).count();
  out.trigger = to_string(p.trigger);
  out.max_wrong_rate = p.max_wrong_rate;
  out.disable_wrong_rate = p.disable_wrong_rate;
  out.confidence = p.confidence;
  out.served_labels = st.served.size();
  out.served_wrong = st.served.wrong();
  out.served_lower = st.served.lower(p.confidence);
  out.served_upper = st.served.upper(p.confidence);
  out.decisions.assign(st.log.begin(), st.log.end());
  out.action_counts = st.action_counts;
  return out;
}

/// Applies an operator's command; it holds until resume_agent.
caf::result<agent_snapshot> admin(self_ptr self, admin_command cmd, double value) {
  auto& st = self->state;
  decision_record rec;
  rec.unix_ms = now_unix_ms();
  rec.from = to_string(st.agent.mode);
  rec.manual = true;
  switch (cmd) {
    case admin_command::disable_cache:
      caf::anon_send(st.cfg.cache, disable_atom::value);
      st.agent.mode = agent_mode::disabled;
      st.manual_override = true;
      rec.action = "disable";
      rec.reason = "operator: POST /admin/cache/disable; the agent holds until resume";
      break;
    case admin_command::enable_cache:
      caf::anon_send(st.cfg.cache, enable_atom::value);
      st.agent.mode = st.agent.ttl_seconds < st.cfg.policy.base_ttl_seconds ? agent_mode::short_ttl
                                                                            : agent_mode::normal;
      st.manual_override = true;
      rec.action = "enable";
      rec.reason = "operator: POST /admin/cache/enable; the agent holds until resume";
      break;
    case admin_command::clear_cache:
      caf::anon_send(st.cfg.cache, clear_atom::value);
      rec.action = "clear";
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
      rec.action = "set_ttl";
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
      rec.action = "resume";
      rec.reason = "operator: POST /admin/agent/resume; the agent decides again";
      break;
  }
  rec.to = to_string(st.agent.mode);
  rec.ttl_seconds = st.agent.ttl_seconds;
  ++st.action_counts[manual_index];
  log_mode_change(rec);
  if (cmd == admin_command::resume_agent)
    logging::info("agent", "resumed: the agent decides again", {{"mode", rec.to}});
  else if (cmd != admin_command::clear_cache)
    logging::info("agent", "operator override: the agent holds until resume",
                  {{"action", rec.action}, {"mode", rec.to}});
  append_log(self, std::move(rec));
  return agent_view(self);
}

supervisor_actor::behavior_type supervisor(self_ptr self, supervisor_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.served = label_window{st.cfg.label_window};
  st.agent.ttl_seconds = st.cfg.policy.base_ttl_seconds;
  auto& local = st.nodes[st.cfg.node_name];
  local.name = st.cfg.node_name;
  local.state = "local";
  for (std::size_t i = 0; i < st.cfg.workers; ++i)
    add_worker(self);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& s = self->state;
    for (const auto& w : s.workers)
      if (w.handle.address() == dm.source) {
        // A worker died: retry its batch now and replace it.
        auto id = w.id;
        fail_slot(self, id, dm.reason);
        dispatch(self);
        return;
      }
  });
  // Workers die with the supervisor.
  self->attach_functor([registry = st.registry](const caf::error&) {
    for (auto& w : *registry)
      caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  });
  if (st.cfg.cache)
    self->delayed_send(self, st.cfg.agent_interval, observe_atom::value);
  return {
    [=](encode_atom, encode_item& item) -> caf::result<embedding> { return admit(self, item); },
    [=](stats_atom) {
      auto& s = self->state;
      auto out = s.stats;
      out.workers = static_cast<std::uint32_t>(s.workers.size());
      out.queued = s.queue.size();
      out.queued_rows = s.queued_rows + s.running_rows;
      out.rows_per_second = s.wait.rows_per_second(s.workers.size());
      out.outstanding = 0;
      for (const auto& w : s.workers)
        out.outstanding += w.outstanding;
      out.agent_mode = to_string(s.agent.mode);
      for (const auto& [name, n] : s.nodes) {
        auto info = n;
        info.outstanding = 0;
        for (const auto& w : s.workers)
          if (w.node == name)
            info.outstanding += w.outstanding;
        out.nodes.push_back(std::move(info));
      }
      return out;
    },
    [=](observe_atom) {
      observe(self);
      self->delayed_send(self, self->state.cfg.agent_interval, observe_atom::value);
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
    [=](join_atom, const std::string& node, const std::string& version,
        const encoder_worker_actor& h) { return join(self, node, version, h); },
  };
}

} // namespace

supervisor_actor spawn_agent_supervisor(caf::actor_system& sys, supervisor_config cfg) {
  return sys.spawn(supervisor, std::move(cfg));
}

} // namespace sil
