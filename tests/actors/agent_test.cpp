// The agent on its own: a cache owner and the agent, no encoder pool, no
// ingress, no worker. Reports come from the test; the agent's ticks run on
// CAF's deterministic coordinator with a simulated clock.
#include "tests/support/caf_gtest.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

#include "actors/agent.hpp"
#include "actors/cache_owner.hpp"

namespace sil {
namespace {

using namespace std::chrono_literals;

struct LoneAgentTest : ::testing::Test, test_coordinator_fixture<> {
  cache_actor cache;
  agent_actor agent;

  LoneAgentTest() {
    cache_owner_config cc;
    cc.cache.max_size = 8;
    cc.cache.ttl = 30s;
    cc.sweep_interval = 1s;
    auto c = spawn_cache_owner(sys, cc);
    if (!c) {
      ADD_FAILURE() << sys.render(c.error());
      return;
    }
    cache = *c;
    agent_config ac;
    ac.cache = cache;
    ac.interval = 1s;
    ac.policy.trigger = agent_trigger::cosine;
    ac.policy.recover_threshold = 0.01;
    ac.policy.ttl_threshold = 0.05;
    ac.policy.disable_threshold = 0.2;
    ac.policy.recover_windows = 2;
    ac.policy.min_samples = 3;
    ac.policy.base_ttl_seconds = 30.0;
    ac.policy.ttl_floor_seconds = 2.0;
    agent = spawn_agent(sys, ac);
    sched.run();
  }

  ~LoneAgentTest() override {
    caf::anon_send_exit(agent, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(cache, caf::exit_reason::user_shutdown);
    sched.run();
  }

  /// Requests `T` from `dst` and runs the scheduler (never the clock).
  template <class T, class Handle, class... Ts>
  T ask(const Handle& dst, Ts... xs) {
    return ask_and_run<T>(*this, dst, xs...);
  }

  /// `n` reports with cosine divergence `cos`, then the agent's tick.
  void window(double cos, int n = 5) {
    for (int i = 0; i < n; ++i) {
      divergence_report r;
      r.key = static_cast<prefix_key>(i);
      r.cosine = cos;
      caf::anon_send(agent, report_atom::value, r);
    }
    sched.run();
    advance_time(1s);
    sched.run();
  }

  agent_snapshot state() {
    return ask<agent_snapshot>(agent, agent_atom::value);
  }

  cache_snapshot cache_stats() {
    return ask<cache_snapshot>(cache, stats_atom::value);
  }
};

TEST_F(LoneAgentTest, DisablesAndReenablesTheCacheWithoutAnyEncoder) {
  window(0.5);
  EXPECT_EQ(state().mode, agent_mode::disabled);
  EXPECT_FALSE(cache_stats().stats.enabled);
  window(0.001);
  window(0.001); // two clean windows: back on, with the floor TTL
  EXPECT_EQ(state().mode, agent_mode::short_ttl);
  auto c = cache_stats();
  EXPECT_TRUE(c.stats.enabled);
  EXPECT_EQ(c.stats.ttl, 2s);
  auto log = state().decisions;
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].action, decision_action::disable);
  EXPECT_EQ(log[1].action, decision_action::enable);
  EXPECT_EQ(state().counts.of(agent_action::enable), 1u);
}

TEST_F(LoneAgentTest, AnOperatorsTtlReachesTheCacheAndHoldsTheAgent) {
  auto a = ask<agent_snapshot>(agent, admin_atom::value, admin_command::set_ttl, 5.0);
  EXPECT_TRUE(a.manual_override);
  EXPECT_EQ(a.mode, agent_mode::short_ttl); // below the configured 30 s
  EXPECT_EQ(cache_stats().stats.ttl, 5s);
  window(0.9); // would disable, but the command holds
  EXPECT_TRUE(cache_stats().stats.enabled);
  EXPECT_EQ(state().counts.manual, 1u);
  EXPECT_EQ(state().decisions.back().action, decision_action::set_ttl);
}

TEST_F(LoneAgentTest, ClearGoesToTheCacheOwner) {
  caf::anon_send(cache, insert_atom::value, prefix_key{7},
                 embedding::copy_of(std::vector<float>{1.0f, 2.0f}), embedding{});
  sched.run();
  ASSERT_EQ(cache_stats().stats.size, 1u);
  auto a = ask<agent_snapshot>(agent, admin_atom::value, admin_command::clear_cache, 0.0);
  EXPECT_FALSE(a.manual_override); // clearing does not hold the agent
  EXPECT_EQ(cache_stats().stats.size, 0u);
  EXPECT_EQ(a.decisions.back().action, decision_action::clear);
}

TEST_F(LoneAgentTest, ATickWithoutItsCacheOwnerChangesNothing) {
  caf::anon_send_exit(cache, caf::exit_reason::user_shutdown);
  sched.run();
  window(0.9);
  window(0.9);
  auto a = state();
  EXPECT_EQ(a.mode, agent_mode::normal);
  EXPECT_TRUE(a.decisions.empty());
  EXPECT_EQ(a.reports, 10u);
}

} // namespace
} // namespace sil
