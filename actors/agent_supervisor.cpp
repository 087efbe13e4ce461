#include "actors/agent_supervisor.hpp"

#include <algorithm>
#include <deque>
#include <string>
#include <vector>

#include "actors/encoder_worker.hpp"

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
  /// The batch this worker is encoding, so that it can be retried the moment
  /// the worker dies, not only when the request times out.
  std::shared_ptr<std::vector<job>> jobs;
};

struct supervisor_state {
  supervisor_config cfg;
  std::vector<worker_slot> workers;
  std::deque<job> queue;
  std::uint64_t next_id = 0;
  pool_snapshot stats;
  agent_state agent;
  /// Every live worker; shared with the exit hook, which outlives the state.
  std::shared_ptr<std::vector<caf::actor>> registry = std::make_shared<std::vector<caf::actor>>();
  static inline const char* name = "agent_supervisor";
};

using self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

void dispatch(self_ptr self);

void publish_workers(self_ptr self) {
  if (self->state.cfg.board)
    self->state.cfg.board->workers_alive.store(
      static_cast<std::uint32_t>(self->state.workers.size()));
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
    h = self->spawn<caf::detached>(encoder_worker, st.cfg.m);
  else
    h = self->spawn(encoder_worker, st.cfg.m);
  self->monitor(h);
  st.registry->push_back(caf::actor_cast<caf::actor>(h));
  st.workers.push_back(worker_slot{h, st.next_id++, false, 0, nullptr});
  publish_workers(self);
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
  st.workers.erase(i);
  self->demonitor(old.address());
  caf::anon_send_exit(old, caf::exit_reason::kill);
  auto& reg = *st.registry;
  reg.erase(std::remove(reg.begin(), reg.end(), caf::actor_cast<caf::actor>(old)), reg.end());
  ++st.stats.restarts;
  add_worker(self);
  if (jobs)
    requeue(self, *jobs, why);
}

void dispatch(self_ptr self) {
  auto& st = self->state;
  while (!st.queue.empty()) {
    // Least-loaded idle worker.
    worker_slot* target = nullptr;
    for (auto& w : st.workers)
      if (!w.busy && (target == nullptr || w.outstanding < target->outstanding))
        target = &w;
    if (target == nullptr)
      return; // every worker busy: requests wait and will leave as one batch
    auto n = std::min(st.queue.size(), st.cfg.max_batch);
    auto jobs = std::make_shared<std::vector<job>>();
    jobs->reserve(n);
    encode_batch batch;
    batch.items.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      batch.items.push_back(st.queue.front().item);
      jobs->push_back(std::move(st.queue.front()));
      st.queue.pop_front();
    }
    target->busy = true;
    target->outstanding = n;
    target->jobs = jobs;
    st.stats.max_batch_seen = std::max<std::uint64_t>(st.stats.max_batch_seen, n);
    auto id = target->id;
    self->request(target->handle, st.cfg.encoder_timeout, encode_atom::value, std::move(batch))
      .then(
        [=](encoded_batch& out) {
          auto& s = self->state;
          auto* w = find_slot(self, id);
          if (w == nullptr)
            return; // declared dead meanwhile; its batch was already retried
          w->busy = false;
          w->outstanding = 0;
          w->jobs.reset();
          if (out.embeddings.size() != jobs->size()) {
            requeue(self, *jobs, make_caf_error(errc::internal, "worker returned a short batch"));
          } else {
            ++s.stats.batches;
            s.stats.items += jobs->size();
            for (std::size_t i = 0; i < jobs->size(); ++i)
              (*jobs)[i].rp.deliver(std::move(out.embeddings[i]));
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
            w->busy = false;
            w->outstanding = 0;
            w->jobs.reset();
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

/// One agent step: observe the cache, decide with the pure policy, act.
void observe(self_ptr self) {
  auto& st = self->state;
  self->request(st.cfg.cache, std::chrono::seconds{1}, stats_atom::value)
    .then(
      [=](const cache_snapshot& snap) {
        auto& s = self->state;
        observation obs;
        obs.hits = snap.hits;
        obs.misses = snap.misses;
        obs.state = s.agent;
        // Divergence reports arrive with audit sampling (issue #4); until
        // then every window has no samples and the policy keeps its state.
        auto d = decide(obs, s.cfg.policy);
        s.agent = d.next;
        switch (d.action) {
          case agent_action::keep:
            break;
          case agent_action::disable:
            caf::anon_send(s.cfg.cache, disable_atom::value);
            break;
          case agent_action::enable:
            caf::anon_send(s.cfg.cache, enable_atom::value);
            [[fallthrough]];
          case agent_action::shorten_ttl:
          case agent_action::restore_ttl:
            caf::anon_send(s.cfg.cache, set_ttl_atom::value,
                           static_cast<std::int64_t>(d.next.ttl_seconds * 1e9));
            break;
        }
      },
      [](caf::error&) {
        // The cache owner is busy or gone; try again next tick.
      });
}

supervisor_actor::behavior_type supervisor(self_ptr self, supervisor_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.agent.ttl_seconds = st.cfg.policy.base_ttl_seconds;
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
    [=](encode_atom, encode_item& item) -> caf::result<embedding> {
      auto rp = self->make_response_promise<embedding>();
      self->state.queue.push_back(job{std::move(item), rp, 0});
      dispatch(self);
      return rp;
    },
    [=](stats_atom) {
      auto& s = self->state;
      auto out = s.stats;
      out.workers = static_cast<std::uint32_t>(s.workers.size());
      out.queued = s.queue.size();
      out.outstanding = 0;
      for (const auto& w : s.workers)
        out.outstanding += w.outstanding;
      out.agent_mode = to_string(s.agent.mode);
      return out;
    },
    [=](observe_atom) {
      observe(self);
      self->delayed_send(self, self->state.cfg.agent_interval, observe_atom::value);
    },
  };
}

} // namespace

supervisor_actor spawn_agent_supervisor(caf::actor_system& sys, supervisor_config cfg) {
  return sys.spawn(supervisor, std::move(cfg));
}

} // namespace sil
