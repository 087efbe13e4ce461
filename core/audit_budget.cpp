#include "core/audit_budget.hpp"

#include <algorithm>
#include <cmath>

namespace sil {

status validate(const audit_config& cfg) {
  if (!(cfg.rate >= 0.0 && cfg.rate <= 1.0))
    return {errc::invalid_config, "audit.rate must be in [0, 1]"};
  if (!(cfg.max_share >= 0.0 && cfg.max_share <= 1.0))
    return {errc::invalid_config, "audit.max-share must be in [0, 1]"};
  if (cfg.window <= std::chrono::steady_clock::duration::zero())
    return {errc::invalid_config, "audit.window must be positive"};
  if (!(std::isfinite(cfg.per_second) && cfg.per_second >= 0.0))
    return {errc::invalid_config, "audit.per-second must be a number >= 0"};
  if (!(cfg.max_encoder_share >= 0.0 && cfg.max_encoder_share <= 1.0))
    return {errc::invalid_config, "audit.max-encoder-share must be in [0, 1]"};
  if (!(std::isfinite(cfg.encoder_capacity) && cfg.encoder_capacity > 0.0))
    return {errc::invalid_config, "audit encoder capacity must be > 0"};
  return ok();
}

audit_budget::bucket& audit_budget::current(time_point now) {
  auto width = std::max<std::int64_t>(1, cfg_.window.count() / buckets);
  auto index = now.time_since_epoch().count() / width;
  if (index > last_index_) {
    // Retire the slices that left the window (at most all of them).
    auto first = std::max(last_index_ + 1, index - buckets + 1);
    for (auto i = first; i <= index; ++i) {
      auto& b = ring_[static_cast<std::size_t>(i % buckets)];
      requests_total_ -= b.requests;
      audits_total_ -= b.audits;
      audit_ns_total_ -= b.audit_ns;
      b = bucket{i, 0, 0, 0};
    }
    if (index - last_index_ >= buckets) {
      // Everything left the window.
      requests_total_ = 0;
      audits_total_ = 0;
      audit_ns_total_ = 0;
    }
    last_index_ = index;
  }
  return ring_[static_cast<std::size_t>(last_index_ % buckets)];
}

void audit_budget::expire(time_point now) {
  auto horizon = now - cfg_.window;
  // Forget keys not hit in a whole window, at most once per window, so that
  // the map stays bounded by the keys of the last window.
  if (now - last_key_prune_ >= cfg_.window) {
    for (auto i = keys_.begin(); i != keys_.end();) {
      if (i->second.last_hit <= horizon)
        i = keys_.erase(i);
      else
        ++i;
    }
    last_key_prune_ = now;
  }
}

void audit_budget::on_request(time_point now) {
  on_requests(now, 1);
}

void audit_budget::on_requests(time_point now, std::size_t n) {
  expire(now);
  current(now).requests += n;
  requests_total_ += n;
}

std::size_t audit_budget::budget() const noexcept {
  return static_cast<std::size_t>(std::floor(cfg_.max_share * static_cast<double>(requests_total_)))
         + 1;
}

void audit_budget::on_audit_done(time_point now, std::chrono::nanoseconds busy) {
  auto ns = std::max<std::int64_t>(0, busy.count());
  current(now).audit_ns += ns;
  audit_ns_total_ += ns;
}

audit_verdict audit_budget::on_hit(prefix_key key, time_point now, double u) {
  if (cfg_.per_second > 0.0) {
    // Token bucket: one second's worth at most, refilled by elapsed time.
    double cap = std::max(1.0, cfg_.per_second);
    if (refilled_) {
      std::chrono::duration<double> dt = now - last_refill_;
      if (dt.count() > 0.0)
        tokens_ = std::min(cap, tokens_ + dt.count() * cfg_.per_second);
    }
    last_refill_ = now;
    refilled_ = true;
    if (tokens_ < 1.0)
      return audit_verdict::paced;
  }
  expire(now);
  current(now);
  auto& ks = keys_[key];
  ks.last_hit = now;
  auto horizon = now - cfg_.window;
  while (!ks.audits.empty() && ks.audits.front() <= horizon)
    ks.audits.pop_front();
  if (!(u < cfg_.rate))
    return audit_verdict::not_sampled;
  std::chrono::duration<double> window = cfg_.window;
  double encoder_ns = cfg_.max_encoder_share * window.count() * 1e9 * cfg_.encoder_capacity;
  if (static_cast<double>(audit_ns_total_) >= encoder_ns) {
    ++skipped_;
    return audit_verdict::over_encoder_share;
  }
  auto total = budget();
  if (audits_total_ >= total) {
    ++skipped_;
    return audit_verdict::over_budget;
  }
  // Keys recently hit share the budget equally (at least one audit each).
  // keys_ holds the keys hit in the last one to two windows (pruned once a
  // window), which keeps this O(1).
  auto share = std::max<std::size_t>(1, total / std::max<std::size_t>(1, keys_.size()));
  if (ks.audits.size() >= share) {
    ++skipped_;
    return audit_verdict::over_key_share;
  }
  ++current(now).audits;
  ++audits_total_;
  ks.audits.push_back(now);
  ++audited_;
  if (cfg_.per_second > 0.0)
    tokens_ -= 1.0;
  return audit_verdict::audit;
}

} // namespace sil
