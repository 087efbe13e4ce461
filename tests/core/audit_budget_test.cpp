#include "core/audit_budget.hpp"

#include <gtest/gtest.h>

#include <random>

namespace sil {
namespace {

using namespace std::chrono_literals;
using tp = audit_budget::time_point;

TEST(AuditBudget, ValidateRejectsOutOfRangeValues) {
  EXPECT_TRUE(validate(audit_config{}));
  EXPECT_FALSE(validate(audit_config{1.5, 0.05, 10s}));
  EXPECT_FALSE(validate(audit_config{0.5, -0.1, 10s}));
  EXPECT_FALSE(validate(audit_config{0.5, 0.05, 0s}));
}

TEST(AuditBudget, RateDecidesCandidates) {
  audit_budget b{{0.25, 1.0, 10s}};
  tp t{1h};
  b.on_request(t);
  EXPECT_EQ(b.on_hit(1, t, 0.3), audit_verdict::not_sampled);
  EXPECT_EQ(b.on_hit(1, t, 0.2), audit_verdict::audit);
  audit_budget never{{0.0, 1.0, 10s}};
  EXPECT_EQ(never.on_hit(1, t, 0.0), audit_verdict::not_sampled);
}

TEST(AuditBudget, AllHitLoadStaysWithinTheShareAndNeverStops) {
  // rate 1, max-share 5%: at most 5% of requests (+1) are audited, and
  // audits keep happening as requests keep coming.
  audit_budget b{{1.0, 0.05, 10s}};
  tp t{1h};
  std::uint64_t audits = 0;
  std::uint64_t last_quarter_audits = 0;
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    t += 1ms; // 1000 requests per second, 40 s in all
    b.on_request(t);
    if (b.on_hit(static_cast<prefix_key>(i % 7), t, 0.0) == audit_verdict::audit) {
      ++audits;
      if (i >= 3 * n / 4)
        ++last_quarter_audits;
    }
    ASSERT_LE(b.audits_in_window(), b.requests_in_window() / 20 + 1) << i;
  }
  EXPECT_LE(audits, n / 20 + 10u);
  EXPECT_GE(audits, n / 20 - 60u); // the budget is used, not starved
  EXPECT_GT(last_quarter_audits, 0u);
  EXPECT_EQ(b.audited(), audits);
  EXPECT_GT(b.skipped(), 0u);
}

TEST(AuditBudget, OneHotKeyCannotStarveTheOthers) {
  audit_budget b{{1.0, 0.05, 10s}};
  tp t{1h};
  std::uint64_t hot = 0;
  std::uint64_t cold = 0;
  std::mt19937 rng{3};
  for (int i = 0; i < 20000; ++i) {
    t += 1ms;
    b.on_request(t);
    // 95% of hits go to key 0; 5% spread over keys 1..10.
    prefix_key key = rng() % 100 < 95 ? 0 : 1 + rng() % 10;
    if (b.on_hit(key, t, 0.0) == audit_verdict::audit)
      (key == 0 ? hot : cold) += 1;
  }
  ASSERT_GT(hot + cold, 0u);
  // With 11 keys live, the hot key gets about 1/11 of the budget, not 95%.
  EXPECT_LT(static_cast<double>(hot) / static_cast<double>(hot + cold), 0.25);
  EXPECT_GT(cold, 0u);
}

TEST(AuditBudget, ALoneKeyMayUseTheWholeBudget) {
  audit_budget b{{1.0, 0.5, 10s}};
  tp t{1h};
  int audits = 0;
  for (int i = 0; i < 100; ++i) {
    t += 10ms;
    b.on_request(t);
    audits += b.on_hit(42, t, 0.0) == audit_verdict::audit ? 1 : 0;
  }
  EXPECT_GE(audits, 49);
  EXPECT_LE(audits, 51);
}

TEST(AuditBudget, TheWindowSlides) {
  audit_budget b{{1.0, 0.1, 1s}};
  tp t{1h};
  for (int i = 0; i < 100; ++i) {
    t += 1ms;
    b.on_request(t);
  }
  EXPECT_EQ(b.budget(), 11u);
  t += 2s; // everything left the window
  b.on_request(t);
  EXPECT_EQ(b.requests_in_window(), 1u);
  EXPECT_EQ(b.budget(), 1u);
  EXPECT_EQ(b.on_hit(1, t, 0.0), audit_verdict::audit);
  EXPECT_EQ(b.on_hit(2, t, 0.0), audit_verdict::over_budget);
}

} // namespace
} // namespace sil
