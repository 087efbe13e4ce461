#include "actors/hit_path.hpp"

#include <cstdint>
#include <utility>

#include "core/tsan.hpp"

namespace sil {

namespace {

/// A per-thread uniform random number in [0, 1) (splitmix64): audit
/// sampling needs no quality beyond independence from the inputs.
double uniform01() noexcept {
  thread_local std::uint64_t state
    = 0x9e3779b97f4a7c15ull * (this_thread_stripe() + 1)
      ^ static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  state += 0x9e3779b97f4a7c15ull;
  auto z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

std::int64_t ns_since_epoch(hit_path::clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

} // namespace

hit_path::hit_path(hit_path_config cfg)
  : cfg_(std::move(cfg))
  , version_(cfg_.m.version())
  , stripes_(new stripe[stripe_count]) {
  // Offers run at twice the audit pace, so that the ingress's token bucket,
  // not this gate, sets the pace; without pacing at most 1000 per second.
  offer_interval_ns_ = cfg_.audit_per_second > 0.0
                         ? static_cast<std::int64_t>(0.5e9 / cfg_.audit_per_second)
                         : std::int64_t{1000000};
  for (std::size_t i = 0; i < stripe_count; ++i) {
    stripes_[i].accesses.reserve(cfg_.batch);
    stripes_[i].latencies.reserve(cfg_.batch);
  }
}

bool hit_path::offer_audit(clock::time_point now) noexcept {
  if (cfg_.audit_rate <= 0.0)
    return false;
  auto t = ns_since_epoch(now);
  // The common case reads one shared word and writes nothing.
  auto next = next_offer_ns_.load(std::memory_order_relaxed);
  if (t < next)
    return false;
  if (cfg_.audit_rate < 1.0 && uniform01() >= cfg_.audit_rate)
    return false;
  return next_offer_ns_.compare_exchange_strong(next, t + offer_interval_ns_,
                                                std::memory_order_relaxed);
}

std::optional<predict_reply> hit_path::serve(const predict_request& req,
                                             clock::time_point started) {
  if (!req.use_cache)
    return std::nullopt;
  const auto& view = *cfg_.view;
  if (!view.enabled())
    return std::nullopt;
  // No backpressure here: while the owner is behind, the hit is still
  // answered, and only its access record is dropped (counted) when the
  // batch is sent. Sending a known hit to the actors instead would put it
  // behind the misses that keep them busy, and under the in-flight cap
  // that holds misses back: a cheap answer is never refused for them.
  auto n = req.features.size();
  auto key
    = make_prefix_key({cfg_.m.name(), version_}, cfg_.spec, req.features.data(), n, req.rows);
  if (!key)
    return std::nullopt; // the ingress reports the error
  auto suffix_begin = prefix_values(cfg_.spec, n, req.rows);
  if (!suffix_begin)
    return std::nullopt;
  view_query q;
  q.key = *key;
  q.now = clock::now();
  q.max_age = std::chrono::nanoseconds{max_age_ns_of(req.max_age_ms)};
  q.suffix = req.features.data() + *suffix_begin;
  q.suffix_size = n - *suffix_begin;
  q.rows = req.rows;
  q.max_wrong_rate = req.max_wrong_rate;
  auto hit = view.serve(q);
  if (!hit)
    return std::nullopt;
  predict_reply r;
  r.prediction = cfg_.m.head(hit->value);
  r.cache_hit = true;
  r.source = embedding_source::cache;
  r.cache_age_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(hit->age).count();
  r.model_version = version_;
  r.risk.present = true;
  r.risk.basis = hit->verdict.basis;
  r.risk.distance = hit->verdict.distance;
  r.risk.p_wrong_upper = hit->verdict.p_wrong_upper;
  // Record it. Only the offered audits copy the input.
  std::optional<audit_candidate> offer;
  if (offer_audit(q.now)) {
    offer.emplace();
    offer->key = q.key;
    offer->req = req;
    offer->suffix_begin = static_cast<std::uint32_t>(*suffix_begin);
    offer->value = hit->value;
    offer->age_ns = r.cache_age_ns;
    offer->risk = r.risk;
  }
  auto latency = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - started);
  auto& s = stripes_[this_thread_stripe() % stripe_count];
  taken full;
  bool first = false;
  bool send_now = false;
  {
    std::lock_guard<std::mutex> guard{s.mu};
    first = s.latencies.empty();
    if (first)
      s.first_at = q.now;
    if (s.accesses.size() < cfg_.max_pending_accesses)
      s.accesses.push_back(q.key);
    else
      view.dropped(1);
    s.latencies.push_back(latency.count());
    if (offer)
      s.candidates.push_back(std::move(*offer));
    if (s.latencies.size() >= cfg_.batch || q.now - s.first_at >= cfg_.max_delay) {
      take(s, full);
      send_now = true;
    }
  }
  if (send_now)
    send(full);
  else if (first && !flush_pending_.exchange(true, std::memory_order_acq_rel) && on_pending_)
    on_pending_();
  return r;
}

void hit_path::take(stripe& s, taken& out) {
  out.accesses.swap(s.accesses);
  out.outcomes.latency_ns.swap(s.latencies);
  out.hits.requests = out.outcomes.latency_ns.size();
  out.hits.candidates.swap(s.candidates);
  // The next batch gets fresh capacity (the old vectors travel).
  s.accesses.reserve(out.accesses.capacity());
  s.latencies.reserve(out.outcomes.latency_ns.capacity());
}

void hit_path::send(taken& t) {
  if (!t.accesses.empty()) {
    if (cfg_.view->reserve_batch(cfg_.max_access_batches)) {
      caf::anon_send(cfg_.cache, access_atom::value, std::move(t.accesses));
      tsan::handoff_release(&tsan::read_path_batches); // see core/tsan.hpp
    } else
      cfg_.view->dropped(t.accesses.size());
  }
  if (!t.outcomes.latency_ns.empty()) {
    t.outcomes.lane = cfg_.lane;
    if (cfg_.metrics) {
      caf::anon_send(cfg_.metrics, outcome_atom::value, std::move(t.outcomes));
      tsan::handoff_release(&tsan::read_path_batches);
    }
    caf::anon_send(cfg_.ingress, hits_atom::value, std::move(t.hits));
    tsan::handoff_release(&tsan::read_path_batches);
  }
}

void hit_path::flush() {
  // Clear first: an event recorded from now on asks for another flush.
  flush_pending_.store(false, std::memory_order_release);
  for (std::size_t i = 0; i < stripe_count; ++i) {
    auto& s = stripes_[i];
    taken t;
    {
      std::lock_guard<std::mutex> guard{s.mu};
      if (s.latencies.empty() && s.accesses.empty())
        continue;
      take(s, t);
    }
    send(t);
  }
}

} // namespace sil
