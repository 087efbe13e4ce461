#include "actors/ingress.hpp"

#include <cmath>
#include <memory>
#include <random>
#include <string>

#include "core/divergence.hpp"

namespace sil {

namespace {

struct ingress_state {
  ingress_config cfg;
  std::string version;
  audit_budget budget{audit_config{}};
  std::mt19937_64 rng{std::random_device{}()};
  audit_snapshot audits;
  static inline const char* name = "ingress";
};

using self_ptr = ingress_actor::stateful_pointer<ingress_state>;
using done_fn = std::function<void(caf::expected<predict_reply>)>;

predict_reply make_reply(self_ptr self, const embedding& e, embedding_source src,
                         std::int64_t age_ns) {
  predict_reply r;
  r.prediction = self->state.cfg.m.head(e);
  r.cache_hit = src != embedding_source::encoder;
  r.source = src;
  r.cache_age_ns = age_ns;
  r.model_version = self->state.version;
  return r;
}

/// Compares a stored embedding with a fresh one for the same input and
/// reports it; invalidates the entry if it is too far off (audits only).
void report_divergence(self_ptr self, prefix_key key, const embedding& cached, std::int64_t age_ns,
                       const embedding& fresh, bool shadow) {
  auto& st = self->state;
  auto d = measure_divergence(cached, fresh);
  if (!d)
    return;
  divergence_report r;
  r.key = key;
  r.entry_age_ns = age_ns;
  r.cosine = d->cosine;
  r.l2 = d->l2;
  r.prediction_delta = std::abs(static_cast<double>(st.cfg.m.head(cached))
                                - static_cast<double>(st.cfg.m.head(fresh)));
  r.shadow = shadow;
  if (shadow)
    ++st.audits.shadow_comparisons;
  if (!shadow && st.cfg.evict_far_entries && r.cosine >= st.cfg.entry_evict_threshold)
    caf::anon_send(st.cfg.cache, invalidate_atom::value, key);
  self->send(st.cfg.pool, report_atom::value, r);
  if (st.cfg.metrics)
    self->send(st.cfg.metrics, report_atom::value, r);
}

/// Re-encodes the input of a hit off the request path and reports how far
/// the cached embedding is from the fresh one.
void audit(self_ptr self, const std::shared_ptr<predict_request>& req, prefix_key key,
           const embedding& cached, std::int64_t age_ns) {
  auto& cfg = self->state.cfg;
  self
    ->request(cfg.pool, cfg.encode_timeout, encode_atom::value,
              encode_item{req->features, req->rows})
    .then([=](embedding& fresh) { report_divergence(self, key, cached, age_ns, fresh, false); },
          [=](caf::error&) { ++self->state.audits.failed; });
}

/// Encodes `req` at the pool; on success optionally inserts under `key`.
void encode_fresh(self_ptr self, const std::shared_ptr<predict_request>& req, prefix_key key,
                  bool insert, bool leader, const done_fn& done,
                  const cache_lookup* stored = nullptr) {
  auto& cfg = self->state.cfg;
  embedding old;
  std::int64_t old_age = 0;
  if (stored != nullptr) {
    old = stored->value;
    old_age = stored->age_ns;
  }
  self
    ->request(cfg.pool, cfg.encode_timeout, encode_atom::value,
              encode_item{req->features, req->rows})
    .then(
      [=](embedding& e) {
        done(make_reply(self, e, embedding_source::encoder, 0));
        if (old) // reuse is off: compare with the stored entry for free
          report_divergence(self, key, old, old_age, e, true);
        if (insert)
          self->send(self->state.cfg.cache, insert_atom::value, key, e);
      },
      [=](caf::error& err) {
        if (leader)
          self->send(self->state.cfg.cache, abandon_atom::value, key);
        done(std::move(err));
      });
}

void handle(self_ptr self, predict_request&& in, const done_fn& done) {
  auto& cfg = self->state.cfg;
  auto req = std::make_shared<predict_request>(std::move(in));
  auto key = make_prefix_key({cfg.m.name(), self->state.version}, cfg.prefix_k,
                             req->features.data(), req->features.size());
  if (!key) {
    done(make_caf_error(errc::bad_request, key.error().message));
    return;
  }
  self->state.budget.on_request(self->clock().now());
  if (!req->use_cache) {
    encode_fresh(self, req, *key, false, false, done);
    return;
  }
  std::int64_t max_age_ns = req->max_age_ms < 0 ? -1 : req->max_age_ms * 1000000;
  // No timeout on the hit path: a finite one costs a round trip through
  // CAF's clock thread per request (a context switch on a busy 2-core
  // box), and the local cache owner always answers; if it dies, the
  // request fails at once with request_receiver_down and we compute fresh.
  self->request(cfg.cache, caf::infinite, lookup_atom::value, *key, max_age_ns)
    .then(
      [=](cache_lookup& r) {
        switch (r.kind) {
          case lookup_kind::hit: {
            done(make_reply(self, r.value, embedding_source::cache, r.age_ns));
            auto& st = self->state;
            double u = std::uniform_real_distribution<double>{0.0, 1.0}(st.rng);
            switch (st.budget.on_hit(*key, self->clock().now(), u)) {
              case audit_verdict::audit:
                ++st.audits.audits;
                audit(self, req, *key, r.value, r.age_ns);
                break;
              case audit_verdict::over_budget:
              case audit_verdict::over_key_share:
                ++st.audits.skipped;
                break;
              case audit_verdict::not_sampled:
                break;
            }
            break;
          }
          case lookup_kind::joined:
            done(make_reply(self, r.value, embedding_source::single_flight, 0));
            break;
          case lookup_kind::lead:
            encode_fresh(self, req, *key, true, true, done);
            break;
          case lookup_kind::bypass:
            encode_fresh(self, req, *key, true, false, done, &r);
            break;
        }
      },
      [=](caf::error& err) {
        // The cache is an optimization, never a dependency: compute fresh.
        (void)err;
        encode_fresh(self, req, *key, false, false, done);
      });
}

ingress_actor::behavior_type ingress(self_ptr self, ingress_config cfg) {
  self->state.cfg = std::move(cfg);
  self->state.version = self->state.cfg.m.version();
  self->state.budget = audit_budget{self->state.cfg.audit};
  return {
    [=](predict_atom, predict_request& req) -> caf::result<predict_reply> {
      auto rp = self->make_response_promise<predict_reply>();
      handle(self, std::move(req), [rp](caf::expected<predict_reply> r) mutable {
        if (r)
          rp.deliver(std::move(*r));
        else
          rp.deliver(std::move(r.error()));
      });
      return rp;
    },
    [=](predict_atom, predict_request& req, predict_callback& cb) {
      handle(self, std::move(req), cb);
    },
    [=](stats_atom) {
      auto& st = self->state;
      auto out = st.audits;
      out.requests_in_window = st.budget.requests_in_window();
      out.audits_in_window = st.budget.audits_in_window();
      out.rate = st.cfg.audit.rate;
      out.max_share = st.cfg.audit.max_share;
      return out;
    },
  };
}

} // namespace

ingress_actor spawn_ingress(caf::actor_system& sys, ingress_config cfg) {
  return sys.spawn(ingress, std::move(cfg));
}

} // namespace sil
