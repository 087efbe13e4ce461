#include "actors/cache_owner.hpp"

#include <limits>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/tsan.hpp"

namespace sil {

namespace {

struct waiter {
  caf::typed_response_promise<cache_lookup> promise;
  std::vector<float> suffix;
  /// The guard's verdict on reusing the leader's embedding.
  reuse_info verdict;
};

struct flight {
  caf::actor_clock::time_point started;
  std::vector<waiter> waiters;
  /// The leader's values outside the key: a waiter joins only if the guard
  /// would reuse the leader's embedding for its own input.
  std::vector<float> suffix;
  /// The clients waiting on the computation: the encode is dropped only if
  /// the leader's client and every waiter's have gone.
  demand_ptr wanted_by;
};

struct cache_owner_state {
  std::optional<lru_ttl_cache> cache;
  std::optional<reuse_estimator> guard;
  std::unordered_map<prefix_key, flight> flights;
  std::uint64_t joins = 0;
  std::uint64_t invalidations = 0;
  /// Lookups that found a live entry (or a flight), by verdict.
  std::uint64_t verdicts[4] = {0, 0, 0, 0};
  cache_owner_config cfg;
  static inline const char* name = "cache_owner";
};

/// The guard's verdict for `q` against an entry computed from `source`.
reuse_info judge(const cache_owner_state& st, const lookup_query& q, const float* source,
                 std::size_t source_size, float wrong_distance) {
  double d = st.cfg.guard.enabled
               ? reuse_estimator::distance_of(q.suffix.data(), q.suffix.size(), source, source_size)
               : 0.0;
  auto v = st.guard->judge(q.rows, d, wrong_distance, q.max_wrong_rate);
  reuse_info out;
  out.present = true;
  out.basis = v.basis;
  out.distance = v.distance;
  out.p_wrong_upper = v.p_wrong_upper;
  return out;
}

void count(cache_owner_state& st, reuse_basis b) {
  ++st.verdicts[static_cast<std::size_t>(b)];
}

bool reuses(const reuse_info& r) {
  return r.basis != reuse_basis::refused;
}

using self_ptr = cache_actor::stateful_pointer<cache_owner_state>;

void publish_enabled(self_ptr self) {
  if (self->state.cfg.board)
    self->state.cfg.board->cache_enabled.store(self->state.cache->enabled());
}

/// Hands a flight whose leader gave up (or vanished) to its first waiter.
/// Returns false if nobody waits, so the flight can be dropped.
bool promote(self_ptr self, flight& f) {
  if (f.waiters.empty())
    return false;
  auto next = std::move(f.waiters.front());
  f.waiters.erase(f.waiters.begin());
  f.started = self->clock().now();
  f.suffix = std::move(next.suffix);
  next.promise.deliver(cache_lookup{lookup_kind::lead, embedding{}, 0, {}, f.wanted_by});
  return true;
}

cache_snapshot snapshot(self_ptr self) {
  const auto& st = self->state;
  cache_snapshot out;
  out.stats = st.cache->stats();
  out.single_flight_joins = st.joins;
  out.invalidations = st.invalidations;
  out.in_flight = st.flights.size();
  out.single_flight = st.cfg.single_flight;
  out.prefix_k = st.cfg.prefix_k;
  auto& g = out.guard;
  g.enabled = st.cfg.guard.enabled;
  g.tolerance = st.cfg.guard.tolerance;
  g.max_wrong_rate = st.cfg.guard.max_wrong_rate;
  g.confidence = st.cfg.guard.confidence;
  g.unit = st.cfg.unit;
  g.exact = st.verdicts[static_cast<std::size_t>(reuse_basis::exact)];
  g.certified = st.verdicts[static_cast<std::size_t>(reuse_basis::certified)];
  g.refused = st.verdicts[static_cast<std::size_t>(reuse_basis::refused)];
  g.unguarded = st.verdicts[static_cast<std::size_t>(reuse_basis::unguarded)];
  if (st.cfg.view) {
    // Hits served on the read path: counted there, added here.
    auto v = st.cfg.view->counters();
    out.stats.hits += v.hits;
    out.read_path_hits = v.hits;
    out.access_batches = v.access_batches;
    out.accesses_applied = v.accesses_applied;
    out.accesses_dropped = v.accesses_dropped;
    g.exact += v.by_basis[static_cast<std::size_t>(reuse_basis::exact)];
    g.certified += v.by_basis[static_cast<std::size_t>(reuse_basis::certified)];
    g.unguarded += v.by_basis[static_cast<std::size_t>(reuse_basis::unguarded)];
  }
  g.labels = st.guard->labels();
  g.wrong_labels = st.guard->wrong_labels();
  for (auto rows : st.guard->shapes()) {
    guard_shape shape;
    shape.rows = rows;
    for (const auto& b : *st.guard->bins(rows)) {
      shape.labels += b.n;
      shape.wrong += b.wrong;
    }
    shape.reach = st.guard->reach(rows);
    g.shapes.push_back(shape);
  }
  return out;
}

cache_actor::behavior_type cache_owner(self_ptr self, cache_owner_config cfg, lru_ttl_cache c) {
  self->state.cfg = std::move(cfg);
  self->state.cache.emplace(std::move(c));
  self->state.guard.emplace(self->state.cfg.guard);
  if (self->state.cfg.view)
    self->state.cache->attach(self->state.cfg.view);
  publish_enabled(self);
  self->delayed_send(self, self->state.cfg.sweep_interval, sweep_atom::value);
  return {
    [=](lookup_atom, prefix_key key, lookup_query& q) -> caf::result<cache_lookup> {
      auto& st = self->state;
      if (!st.cache->enabled()) {
        st.cache->get(key); // counted as a bypass
        // Hand out what is still stored, so that the fresh result can be
        // compared with it for free: that is how the agent sees when reuse
        // would be safe again (and whether the guard would have served it).
        cache_lookup out{lookup_kind::bypass, embedding{}, 0, {}, nullptr};
        if (auto pk = st.cache->peek(key); pk && !pk->expired) {
          out.value = std::move(pk->value);
          out.age_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(pk->age).count();
          out.risk = judge(st, q, pk->source.data(), pk->source.size(), pk->wrong_distance);
        }
        return out;
      }
      cache_duration max_age{q.max_age_ns};
      reuse_info verdict;
      auto r = st.cache->get_if(
        key, q.max_age_ns >= 0 ? &max_age : nullptr, [&](const lookup_result& e) {
          verdict = judge(st, q, e.source.data(), e.source.size(), e.wrong_distance);
          return reuses(verdict);
        });
      auto age_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(r.age).count();
      if (r.hit()) {
        count(st, verdict.basis);
        return cache_lookup{lookup_kind::hit, std::move(r.value), age_ns, verdict, nullptr};
      }
      if (r.status == lookup_status::refused) {
        count(st, verdict.basis);
        return cache_lookup{lookup_kind::refresh, std::move(r.value), age_ns, verdict, nullptr};
      }
      if (!st.cfg.single_flight)
        return cache_lookup{lookup_kind::lead, embedding{}, 0, {}, nullptr};
      if (auto i = st.flights.find(key); i != st.flights.end()) {
        auto& f = i->second;
        auto v
          = judge(st, q, f.suffix.data(), f.suffix.size(), std::numeric_limits<float>::infinity());
        if (!reuses(v)) {
          // The leader's input is too far from this one: compute it apart.
          count(st, v.basis);
          return cache_lookup{lookup_kind::refresh, embedding{}, 0, v, nullptr};
        }
        auto rp = self->make_response_promise<cache_lookup>();
        count(st, v.basis);
        f.waiters.push_back(waiter{rp, std::move(q.suffix), v});
        f.wanted_by->join(std::move(q.cancel));
        return rp;
      }
      auto wanted = std::make_shared<demand>(std::move(q.cancel));
      st.flights.emplace(key, flight{self->clock().now(), {}, std::move(q.suffix), wanted});
      return cache_lookup{lookup_kind::lead, embedding{}, 0, {}, std::move(wanted)};
    },
    [=](insert_atom, prefix_key key, const embedding& value, const embedding& source) {
      auto& st = self->state;
      st.cache->put(key, value, source);
      if (auto i = st.flights.find(key); i != st.flights.end()) {
        for (auto& w : i->second.waiters)
          w.promise.deliver(cache_lookup{lookup_kind::joined, value, 0, w.verdict, nullptr});
        st.joins += i->second.waiters.size();
        st.flights.erase(i);
      }
    },
    [=](label_atom, prefix_key key, const reuse_label& l) {
      auto& st = self->state;
      if (!st.cfg.guard.enabled)
        return;
      st.guard->observe(l.rows, l.distance, l.wrong);
      if (st.cfg.view)
        st.cfg.view->publish(*st.guard);
      // An entry that served a wrong answer is not reused that far again.
      if (l.wrong && l.served)
        st.cache->mark_wrong(key, static_cast<float>(l.distance));
    },
    [=](access_atom, const std::vector<prefix_key>& keys) {
      // Hits served on the read path, in the order their threads saw them.
      tsan::handoff_acquire(&tsan::read_path_batches); // sent by hit_path::send
      auto& st = self->state;
      for (auto key : keys)
        st.cache->record_access(key);
      if (st.cfg.view)
        st.cfg.view->applied(keys.size());
    },
    [=](abandon_atom, prefix_key key) {
      auto& st = self->state;
      if (auto i = st.flights.find(key); i != st.flights.end() && !promote(self, i->second))
        st.flights.erase(i);
    },
    [=](invalidate_atom, prefix_key key) {
      // An audit found this entry too far from a fresh result.
      if (!self->state.cache->erase(key))
        return false;
      ++self->state.invalidations;
      return true;
    },
    [=](enable_atom) {
      self->state.cache->enabled(true);
      publish_enabled(self);
      return true;
    },
    [=](disable_atom) {
      self->state.cache->enabled(false);
      publish_enabled(self);
      return false;
    },
    [=](set_ttl_atom, std::int64_t ttl_ns) -> caf::result<std::int64_t> {
      if (auto st = self->state.cache->ttl(std::chrono::nanoseconds{ttl_ns}); !st)
        return to_caf_error(st.error());
      return ttl_ns;
    },
    [=](erase_atom, prefix_key key) { return self->state.cache->erase(key); },
    [=](clear_atom) {
      auto n = static_cast<std::uint64_t>(self->state.cache->size());
      self->state.cache->clear();
      return n;
    },
    [=](stats_atom) { return snapshot(self); },
    [=](sweep_atom) {
      auto& st = self->state;
      st.cache->sweep();
      auto now = self->clock().now();
      for (auto i = st.flights.begin(); i != st.flights.end();) {
        if (now - i->second.started >= st.cfg.flight_timeout && !promote(self, i->second))
          i = st.flights.erase(i);
        else
          ++i;
      }
      self->delayed_send(self, st.cfg.sweep_interval, sweep_atom::value);
    },
  };
}

} // namespace

caf::expected<cache_actor> spawn_cache_owner(caf::actor_system& sys,
                                             const cache_owner_config& cfg) {
  // The cache reads time from the actor system's clock, so that tests on
  // CAF's deterministic coordinator control expiry with simulated time.
  auto* clk = &sys.clock();
  auto c = lru_ttl_cache::make(cfg.cache, [clk] { return clk->now(); });
  if (!c)
    return to_caf_error(c.error());
  if (auto st = validate(cfg.guard); !st)
    return to_caf_error(st.error());
  return sys.spawn(cache_owner, cfg, std::move(*c));
}

} // namespace sil
