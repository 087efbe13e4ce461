#include "actors/ingress.hpp"

#include <memory>
#include <string>

namespace sil {

namespace {

struct ingress_state {
  ingress_config cfg;
  std::string version;
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

/// Encodes `req` at the pool; on success optionally inserts under `key`.
void encode_fresh(self_ptr self, const std::shared_ptr<predict_request>& req, prefix_key key,
                  bool insert, bool leader, const done_fn& done) {
  auto& cfg = self->state.cfg;
  self
    ->request(cfg.pool, cfg.encode_timeout, encode_atom::value,
              encode_item{req->features, req->rows})
    .then(
      [=](embedding& e) {
        if (insert)
          self->send(self->state.cfg.cache, insert_atom::value, key, e);
        done(make_reply(self, e, embedding_source::encoder, 0));
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
          case lookup_kind::hit:
            done(make_reply(self, r.value, embedding_source::cache, r.age_ns));
            break;
          case lookup_kind::joined:
            done(make_reply(self, r.value, embedding_source::single_flight, 0));
            break;
          case lookup_kind::lead:
            encode_fresh(self, req, *key, true, true, done);
            break;
          case lookup_kind::bypass:
            encode_fresh(self, req, *key, true, false, done);
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
  };
}

} // namespace

ingress_actor spawn_ingress(caf::actor_system& sys, ingress_config cfg) {
  return sys.spawn(ingress, std::move(cfg));
}

} // namespace sil
