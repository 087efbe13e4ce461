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
  return ok();
}

void audit_budget::expire(time_point now) {
  auto horizon = now - cfg_.window;
  while (!requests_.empty() && requests_.front() <= horizon)
    requests_.pop_front();
  while (!audits_.empty() && audits_.front() <= horizon)
    audits_.pop_front();
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
  expire(now);
  requests_.push_back(now);
}

std::size_t audit_budget::budget() const noexcept {
  return static_cast<std::size_t>(
           std::floor(cfg_.max_share * static_cast<double>(requests_.size())))
         + 1;
}

audit_verdict audit_budget::on_hit(prefix_key key, time_point now, double u) {
  expire(now);
  auto& ks = keys_[key];
  ks.last_hit = now;
  auto horizon = now - cfg_.window;
  while (!ks.audits.empty() && ks.audits.front() <= horizon)
    ks.audits.pop_front();
  if (!(u < cfg_.rate))
    return audit_verdict::not_sampled;
  auto total = budget();
  if (audits_.size() >= total) {
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
  audits_.push_back(now);
  ks.audits.push_back(now);
  ++audited_;
  return audit_verdict::audit;
}

} // namespace sil
