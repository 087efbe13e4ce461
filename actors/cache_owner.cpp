#include "actors/cache_owner.hpp"

#include <optional>
#include <unordered_map>
#include <vector>

namespace sil {

namespace {

struct flight {
  caf::actor_clock::time_point started;
  std::vector<caf::typed_response_promise<cache_lookup>> waiters;
};

struct cache_owner_state {
  std::optional<lru_ttl_cache> cache;
  std::unordered_map<prefix_key, flight> flights;
  std::uint64_t joins = 0;
  std::uint64_t invalidations = 0;
  cache_owner_config cfg;
  static inline const char* name = "cache_owner";
};

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
  next.deliver(cache_lookup{lookup_kind::lead, embedding{}, 0});
  return true;
}

cache_snapshot snapshot(self_ptr self) {
  const auto& st = self->state;
  auto s = st.cache->stats();
  cache_snapshot out;
  out.hits = s.hits;
  out.misses = s.misses;
  out.expirations = s.expirations;
  out.evictions = s.evictions;
  out.inserts = s.inserts;
  out.erasures = s.erasures;
  out.bypasses = s.bypasses;
  out.single_flight_joins = st.joins;
  out.invalidations = st.invalidations;
  out.in_flight = st.flights.size();
  out.size = s.size;
  out.max_size = s.max_size;
  out.enabled = s.enabled;
  out.single_flight = st.cfg.single_flight;
  out.ttl_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(s.ttl).count();
  out.prefix_k = st.cfg.prefix_k;
  return out;
}

cache_actor::behavior_type cache_owner(self_ptr self, cache_owner_config cfg, lru_ttl_cache c) {
  self->state.cfg = std::move(cfg);
  self->state.cache.emplace(std::move(c));
  publish_enabled(self);
  self->delayed_send(self, self->state.cfg.sweep_interval, sweep_atom::value);
  return {
    [=](lookup_atom, prefix_key key, std::int64_t max_age_ns) -> caf::result<cache_lookup> {
      auto& st = self->state;
      if (!st.cache->enabled()) {
        st.cache->get(key); // counted as a bypass
        // Hand out what is still stored, so that the fresh result can be
        // compared with it for free: that is how the agent sees when reuse
        // would be safe again.
        cache_lookup out{lookup_kind::bypass, embedding{}, 0};
        if (auto pk = st.cache->peek(key); pk && !pk->expired) {
          out.value = std::move(pk->value);
          out.age_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(pk->age).count();
        }
        return out;
      }
      auto r = max_age_ns >= 0 ? st.cache->get(key, std::chrono::nanoseconds{max_age_ns})
                               : st.cache->get(key);
      if (r.hit())
        return cache_lookup{lookup_kind::hit, std::move(r.value),
                            std::chrono::duration_cast<std::chrono::nanoseconds>(r.age).count()};
      if (!st.cfg.single_flight)
        return cache_lookup{lookup_kind::lead, embedding{}, 0};
      if (auto i = st.flights.find(key); i != st.flights.end()) {
        auto rp = self->make_response_promise<cache_lookup>();
        i->second.waiters.push_back(rp);
        return rp;
      }
      st.flights.emplace(key, flight{self->clock().now(), {}});
      return cache_lookup{lookup_kind::lead, embedding{}, 0};
    },
    [=](insert_atom, prefix_key key, const embedding& value) {
      auto& st = self->state;
      st.cache->put(key, value);
      if (auto i = st.flights.find(key); i != st.flights.end()) {
        for (auto& rp : i->second.waiters)
          rp.deliver(cache_lookup{lookup_kind::joined, value, 0});
        st.joins += i->second.waiters.size();
        st.flights.erase(i);
      }
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
  return sys.spawn(cache_owner, cfg, std::move(*c));
}

} // namespace sil
