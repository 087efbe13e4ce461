#include "actors/encoder_pool.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "actors/encoder_worker.hpp"
#include "core/node_identity.hpp"
#include "core/tsan.hpp"
#include "core/wait_estimator.hpp"
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
  /// The one model version a remote worker holds (a local worker encodes
  /// whatever version a batch brings).
  std::string version;
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

struct pool_state {
  encoder_pool_config cfg;
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
  /// The versions the service serves: remote workers may join for these.
  std::vector<std::string> versions;
  /// Every live worker; shared with the exit hook, which outlives the state.
  std::shared_ptr<std::vector<caf::actor>> registry = std::make_shared<std::vector<caf::actor>>();
  static inline const char* name = "encoder_pool";
};

using self_ptr = encoder_pool_actor::stateful_pointer<pool_state>;

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
    auto state = n.state == node_state::local ? node_state::local
                 : n.workers > 0              ? node_state::up
                                              : node_state::down;
    if (n.state != state) {
      if (st.cfg.log_nodes) {
        auto lvl = state == node_state::down ? logging::level::warn : logging::level::info;
        logging::write(lvl, "cluster", "node state",
                       {{"node", n.name},
                        {"from", to_string(n.state)},
                        {"to", to_string(state)},
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
/// killed with exit_reason::kill would take a linked pool with it.)
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
  if (std::find(st.versions.begin(), st.versions.end(), version) == st.versions.end()) {
    std::string served;
    for (const auto& v : st.versions)
      served += (served.empty() ? "" : ", ") + v;
    return make_caf_error(errc::invalid_config, "model version " + version + " of node " + node
                                                  + " is not one the gateway serves (" + served
                                                  + ")");
  }
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
  slot.version = version;
  st.workers.push_back(std::move(slot));
  st.nodes[node].name = node; // a node seen for the first time starts as joining
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

const std::string& version_of(const pool_state& st, const job& j) {
  return j.item.with ? j.item.with.version() : st.cfg.m.version();
}

/// Whether a worker can encode for `version`: a local one encodes any.
bool serves(const worker_slot& w, const std::string& version) {
  return !w.remote || w.version == version;
}

/// Answers every queued job for `version` with `why` (no worker serves it).
void fail_version(self_ptr self, const std::string& version, const std::string& why) {
  auto& st = self->state;
  for (auto i = st.queue.begin(); i != st.queue.end();) {
    if (version_of(st, *i) == version) {
      ++st.stats.failures;
      st.queued_rows -= i->item.rows;
      i->rp.deliver(make_caf_error(errc::unavailable, why));
      i = st.queue.erase(i);
    } else {
      ++i;
    }
  }
}

/// The least-loaded idle worker for `version`, or null. Spawns the local
/// fallback worker (if allowed) when no worker at all serves the version;
/// fails the version's jobs when none may. Sets `failed` if it did.
worker_slot* pick_worker(self_ptr self, const std::string& version, bool& failed) {
  auto& st = self->state;
  auto regular_for = [&] {
    return std::any_of(st.workers.begin(), st.workers.end(),
                       [&](const worker_slot& w) { return !w.fallback && serves(w, version); });
  };
  bool regular = regular_for();
  if (!regular && std::none_of(st.workers.begin(), st.workers.end(), [](const worker_slot& w) {
        return w.fallback;
      })) {
    if (!st.cfg.fallback_local) {
      failed = true;
      fail_version(self, version,
                   st.workers.empty()
                     ? std::string{"no encoder node is reachable; retry later"}
                     : "no encoder node serves model version " + version + "; retry later");
      return nullptr;
    }
    add_fallback(self);
  }
  // Least-loaded idle worker; the fallback worker only while no other
  // worker serves the version.
  worker_slot* target = nullptr;
  for (auto& w : st.workers)
    if (!w.busy && serves(w, version) && (!w.fallback || !regular)
        && (target == nullptr || w.outstanding < target->outstanding
            || (w.outstanding == target->outstanding && w.dispatched < target->dispatched)))
      target = &w;
  return target;
}

void dispatch(self_ptr self) {
  auto& st = self->state;
  while (!st.queue.empty()) {
    // The oldest job whose version has an idle worker goes first, with the
    // queued jobs of its version: a batch is one version, and a version
    // whose workers are busy does not hold up another's.
    worker_slot* target = nullptr;
    std::string version;
    std::vector<std::string> tried;
    bool failed = false;
    for (const auto& j : st.queue) {
      const auto& v = version_of(st, j);
      if (std::find(tried.begin(), tried.end(), v) != tried.end())
        continue;
      tried.push_back(v);
      target = pick_worker(self, v, failed);
      if (failed || target != nullptr) {
        version = v;
        break;
      }
    }
    if (failed)
      continue; // the queue changed under the loop: look again
    if (target == nullptr)
      return; // every worker busy: requests wait and will leave as one batch
    auto jobs = std::make_shared<std::vector<job>>();
    jobs->reserve(std::min(st.queue.size(), st.cfg.max_batch));
    encode_batch batch;
    batch.version = version;
    std::uint64_t rows = 0;
    auto now = std::chrono::steady_clock::now();
    for (auto i = st.queue.begin(); i != st.queue.end() && jobs->size() < st.cfg.max_batch;) {
      if (version_of(st, *i) != version) {
        ++i;
        continue;
      }
      auto j = std::move(*i);
      i = st.queue.erase(i);
      st.queued_rows -= j.item.rows;
      // The last moment to skip work: nobody waits for it any more, or it
      // could not finish before its deadline.
      if (skip_job(self, j, now))
        continue;
      if (!batch.with)
        batch.with = j.item.with;
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

encoder_pool_actor::behavior_type pool_behavior(self_ptr self, encoder_pool_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.versions = {st.cfg.m.version()};
  auto& local = st.nodes[st.cfg.node_name];
  local.name = st.cfg.node_name;
  local.state = node_state::local;
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
  // Workers die with the pool.
  self->attach_functor([registry = st.registry](const caf::error&) {
    for (auto& w : *registry)
      caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  });
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
    [=](join_atom, const std::string& node, const std::string& version,
        const encoder_worker_actor& h) { return join(self, node, version, h); },
    [=](models_atom, std::vector<std::string>& versions) {
      self->state.versions = std::move(versions);
    },
  };
}

} // namespace

encoder_pool_actor spawn_encoder_pool(caf::actor_system& sys, encoder_pool_config cfg) {
  return sys.spawn(pool_behavior, std::move(cfg));
}

} // namespace sil
