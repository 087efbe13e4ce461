#include "actors/ingress.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include "core/divergence.hpp"
#include "core/tsan.hpp"

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

/// A request in flight, with what the cache needs to know about its input.
struct job {
  predict_request req;
  prefix_key key = 0;
  /// Index of the first value outside the key.
  std::size_t suffix_begin = 0;

  const float* suffix() const noexcept {
    return req.features.data() + suffix_begin;
  }

  std::size_t suffix_size() const noexcept {
    return req.features.size() - suffix_begin;
  }
};

using job_ptr = std::shared_ptr<const job>;

predict_reply make_reply(self_ptr self, const embedding& e, embedding_source src,
                         std::int64_t age_ns, const reuse_info& risk = {}) {
  predict_reply r;
  r.prediction = self->state.cfg.m.head(e);
  r.cache_hit = src != embedding_source::encoder;
  r.source = src;
  r.cache_age_ns = age_ns;
  r.model_version = self->state.version;
  r.risk = risk;
  return r;
}

/// Compares a stored embedding with a fresh one for the same input, reports
/// it (agent, metrics) and labels it for the guard. Audits beyond the evict
/// threshold invalidate the entry.
void compare(self_ptr self, const job& j, const embedding& cached, std::int64_t age_ns,
             const embedding& fresh, comparison_kind kind, const reuse_info& risk) {
  auto& st = self->state;
  auto d = measure_divergence(cached, fresh);
  if (!d)
    return;
  divergence_report r;
  r.key = j.key;
  r.entry_age_ns = age_ns;
  r.cosine = d->cosine;
  r.l2 = d->l2;
  r.prediction_delta = std::abs(static_cast<double>(st.cfg.m.head(cached))
                                - static_cast<double>(st.cfg.m.head(fresh)));
  r.kind = kind;
  r.wrong = r.prediction_delta > st.cfg.guard.tolerance;
  // Audits measure served answers; a shadow comparison counts as served if
  // the guard would have served it.
  r.served
    = kind == comparison_kind::audit
      || (kind == comparison_kind::shadow && risk.present && risk.basis != reuse_basis::refused);
  r.distance = risk.distance;
  if (kind == comparison_kind::shadow)
    ++st.audits.shadow_comparisons;
  if (r.served) {
    // Judged by the service's tolerance, whatever this lane's policy says
    // (a canary is compared with the policy in place on one definition of
    // wrong).
    ++st.audits.served_labels;
    st.audits.served_wrong += r.prediction_delta > st.cfg.service_tolerance ? 1 : 0;
  }
  if (kind == comparison_kind::audit && st.cfg.evict_far_entries
      && r.cosine >= st.cfg.entry_evict_threshold)
    caf::anon_send(st.cfg.cache, invalidate_atom::value, j.key);
  if (st.cfg.guard.enabled && risk.present && std::isfinite(risk.distance))
    self->send(st.cfg.cache, label_atom::value, j.key,
               reuse_label{j.req.rows, risk.distance, r.wrong, kind == comparison_kind::audit});
  self->send(st.cfg.agent, report_atom::value, r);
  if (st.cfg.metrics)
    self->send(st.cfg.metrics, report_atom::value, r);
}

/// Re-encodes the input of a hit off the request path and compares.
void audit(self_ptr self, const job_ptr& j, const embedding& cached, std::int64_t age_ns,
           const reuse_info& risk) {
  auto& cfg = self->state.cfg;
  auto started = self->clock().now();
  // The audit's encoder time counts against its budget, failed or not.
  auto done = [self, started] {
    auto now = self->clock().now();
    self->state.budget.on_audit_done(
      now, std::chrono::duration_cast<std::chrono::nanoseconds>(now - started));
  };
  self
    ->request(cfg.pool, cfg.encode_timeout, encode_atom::value,
              encode_item{j->req.features, j->req.rows, nullptr, {}, cfg.m})
    .then(
      [=](embedding& fresh) {
        done();
        compare(self, *j, cached, age_ns, fresh, comparison_kind::audit, risk);
      },
      [=](caf::error&) {
        done();
        ++self->state.audits.failed;
      });
}

/// What to do with a fresh result besides answering.
struct fresh_plan {
  /// Insert it under the key (with its source).
  bool insert = false;
  /// This request leads a single-flight computation (abandon on failure).
  bool leader = false;
  /// A stored entry to compare with (empty: none), and how.
  embedding stored;
  std::int64_t stored_age_ns = 0;
  comparison_kind kind = comparison_kind::shadow;
  /// The guard's verdict on the stored entry (for the label).
  reuse_info risk;
  /// Whether the answer shows that verdict (not while reuse is disabled:
  /// the answer did not weigh reuse).
  bool answer_shows_risk = false;
  /// A single-flight computation: the clients that wait on it (from the
  /// cache owner). Otherwise only this request's client does.
  demand_ptr wanted_by;
};

/// Encodes the request at the pool and answers with the fresh result.
void encode_fresh(self_ptr self, const job_ptr& j, const fresh_plan& plan, const done_fn& done) {
  auto& cfg = self->state.cfg;
  ++self->state.audits.encodes;
  encode_item item{j->req.features, j->req.rows, plan.wanted_by, j->req.deadline, cfg.m};
  if (!item.wanted_by && j->req.cancel)
    item.wanted_by = std::make_shared<demand>(j->req.cancel);
  self->request(cfg.pool, cfg.encode_timeout, encode_atom::value, std::move(item))
    .then(
      [=](embedding& e) {
        done(make_reply(self, e, embedding_source::encoder, 0,
                        plan.answer_shows_risk ? plan.risk : reuse_info{}));
        if (plan.stored) // a free labelled comparison with the stored entry
          compare(self, *j, plan.stored, plan.stored_age_ns, e, plan.kind, plan.risk);
        if (plan.insert) {
          embedding source;
          if (self->state.cfg.guard.enabled)
            source = embedding::copy_of(j->suffix(), j->suffix_size());
          self->send(self->state.cfg.cache, insert_atom::value, j->key, e, source);
        }
      },
      [=](caf::error& err) {
        if (plan.leader)
          self->send(self->state.cfg.cache, abandon_atom::value, j->key);
        done(std::move(err));
      });
}

/// Audits the hit if the budget admits it; `u` is the sampling draw.
void consider_audit(self_ptr self, const job_ptr& j, const embedding& value, std::int64_t age_ns,
                    const reuse_info& risk, double u) {
  auto& st = self->state;
  switch (st.budget.on_hit(j->key, self->clock().now(), u)) {
    case audit_verdict::audit:
      ++st.audits.audits;
      audit(self, j, value, age_ns, risk);
      break;
    case audit_verdict::over_budget:
    case audit_verdict::over_key_share:
    case audit_verdict::over_encoder_share:
      ++st.audits.skipped;
      break;
    case audit_verdict::not_sampled:
    case audit_verdict::paced:
      break;
  }
}

void on_hit(self_ptr self, const job_ptr& j, cache_lookup& r, const done_fn& done) {
  done(make_reply(self, r.value, embedding_source::cache, r.age_ns, r.risk));
  double u = std::uniform_real_distribution<double>{0.0, 1.0}(self->state.rng);
  consider_audit(self, j, r.value, r.age_ns, r.risk, u);
}

/// Hits the read path answered: they count as requests for the audit
/// budget, and the ones it offers (already sampled) may be audited.
void on_read_path_hits(self_ptr self, hit_batch& b) {
  tsan::handoff_acquire(&tsan::read_path_batches); // sent by hit_path::send
  auto& st = self->state;
  st.budget.on_requests(self->clock().now(), static_cast<std::size_t>(b.requests));
  st.audits.requests += b.requests;
  for (auto& c : b.candidates) {
    auto j = std::make_shared<job>();
    j->key = c.key;
    j->suffix_begin = std::min<std::size_t>(c.suffix_begin, c.req.features.size());
    j->req = std::move(c.req);
    consider_audit(self, j, c.value, c.age_ns, c.risk, 0.0);
  }
}

void handle(self_ptr self, predict_request&& in, const done_fn& done) {
  auto& cfg = self->state.cfg;
  auto j = std::make_shared<job>();
  j->req = std::move(in);
  const auto& req = j->req;
  prefix_spec spec{cfg.unit, cfg.prefix_k};
  auto key = make_prefix_key({cfg.m.name(), self->state.version}, spec, req.features.data(),
                             req.features.size(), req.rows);
  if (!key) {
    done(make_caf_error(errc::bad_request, key.error().message));
    return;
  }
  j->key = *key;
  j->suffix_begin = *prefix_values(spec, req.features.size(), req.rows);
  job_ptr jp = j;
  self->state.budget.on_request(self->clock().now());
  ++self->state.audits.requests;
  if (!req.use_cache) {
    encode_fresh(self, jp, fresh_plan{}, done);
    return;
  }
  lookup_query q;
  q.max_age_ns = max_age_ns_of(req.max_age_ms);
  q.max_wrong_rate = req.max_wrong_rate;
  q.rows = req.rows;
  q.cancel = req.cancel;
  if (cfg.guard.enabled)
    q.suffix.assign(jp->suffix(), jp->suffix() + jp->suffix_size());
  // No timeout on the hit path: a finite one costs a round trip through
  // CAF's clock thread per request (a context switch on a busy 2-core
  // box), and the local cache owner always answers; if it dies, the
  // request fails at once with request_receiver_down and we compute fresh.
  self->request(cfg.cache, caf::infinite, lookup_atom::value, j->key, std::move(q))
    .then(
      [=](cache_lookup& r) {
        fresh_plan plan;
        switch (r.kind) {
          case lookup_kind::hit:
            on_hit(self, jp, r, done);
            return;
          case lookup_kind::joined:
            done(make_reply(self, r.value, embedding_source::single_flight, 0, r.risk));
            return;
          case lookup_kind::lead:
            plan.insert = true;
            plan.leader = true;
            plan.wanted_by = std::move(r.wanted_by);
            break;
          case lookup_kind::bypass:
          case lookup_kind::refresh:
            // Reuse is off (bypass: would the guard have served it?) or the
            // guard refused: keep the cache current and compare the fresh
            // result with what is stored.
            plan.insert = true;
            plan.stored = std::move(r.value);
            plan.stored_age_ns = r.age_ns;
            plan.risk = r.risk;
            plan.answer_shows_risk = r.kind == lookup_kind::refresh;
            plan.kind = plan.answer_shows_risk ? comparison_kind::refusal : comparison_kind::shadow;
            break;
        }
        encode_fresh(self, jp, plan, done);
      },
      [=](caf::error& err) {
        // The cache is an optimization, never a dependency: compute fresh.
        (void)err;
        encode_fresh(self, jp, fresh_plan{}, done);
      });
}

ingress_actor::behavior_type ingress(self_ptr self, ingress_config cfg) {
  self->state.cfg = std::move(cfg);
  self->state.version = self->state.cfg.m.version();
  self->state.budget = audit_budget{self->state.cfg.audit};
  return {
    [=](predict_atom, predict_request& req) -> caf::result<predict_reply> {
      tsan::handoff_acquire(&tsan::predict_requests); // sent by the routes
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
      tsan::handoff_acquire(&tsan::predict_requests); // sent by the routes
      handle(self, std::move(req), cb);
    },
    [=](hits_atom, hit_batch& b) { on_read_path_hits(self, b); },
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
