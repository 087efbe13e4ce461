#include "core/agent_policy.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sil {
namespace {

policy_config cfg() {
  policy_config c;
  c.recover_threshold = 0.01;
  c.ttl_threshold = 0.05;
  c.disable_threshold = 0.20;
  c.recover_windows = 3;
  c.min_samples = 5;
  c.base_ttl_seconds = 30.0;
  c.ttl_floor_seconds = 2.0;
  return c;
}

observation obs(double p95, agent_state st, std::size_t n = 20) {
  observation o;
  o.divergence.count = n;
  o.divergence.p50 = p95 / 2;
  o.divergence.p95 = p95;
  o.divergence.max = p95 * 1.5;
  o.hits = 100;
  o.misses = 10;
  o.audits = 5;
  o.state = st;
  return o;
}

agent_state normal() {
  return {agent_mode::normal, 0, 30.0};
}

TEST(AgentPolicy, ValidateRejectsBadConfigs) {
  EXPECT_TRUE(validate(cfg()));
  auto c = cfg();
  c.ttl_threshold = 0.3; // above disable
  EXPECT_EQ(validate(c).error().code, errc::invalid_config);
  c = cfg();
  c.recover_threshold = 0.05; // equal to ttl threshold: no hysteresis band
  EXPECT_FALSE(validate(c));
  c = cfg();
  c.recover_windows = 0;
  EXPECT_FALSE(validate(c));
  c = cfg();
  c.ttl_floor_seconds = 0.0;
  EXPECT_FALSE(validate(c));
  c = cfg();
  c.ttl_floor_seconds = 60.0; // above base
  EXPECT_FALSE(validate(c));
  c = cfg();
  c.disable_threshold = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(validate(c));
  c = cfg();
  c.min_samples = 0;
  EXPECT_FALSE(validate(c));
}

TEST(AgentPolicy, ScaledTtlFallsLinearlyToTheFloor) {
  auto c = cfg();
  EXPECT_DOUBLE_EQ(scaled_ttl(0.05, c), 30.0);
  EXPECT_DOUBLE_EQ(scaled_ttl(0.125, c), 16.0); // halfway: 30 - 0.5 * 28
  EXPECT_DOUBLE_EQ(scaled_ttl(0.20, c), 2.0);
  EXPECT_DOUBLE_EQ(scaled_ttl(5.0, c), 2.0);
  EXPECT_DOUBLE_EQ(scaled_ttl(0.0, c), 30.0);
}

struct step_case {
  const char* name;
  agent_state state;
  double p95;
  std::size_t samples;
  agent_action action;
  agent_mode next_mode;
  std::size_t next_clean;
  double next_ttl;
};

class PolicyTable : public ::testing::TestWithParam<step_case> {};

TEST_P(PolicyTable, Decides) {
  const auto& t = GetParam();
  auto d = decide(obs(t.p95, t.state, t.samples), cfg());
  EXPECT_EQ(d.action, t.action) << to_string(d.action) << ": " << d.reason;
  EXPECT_EQ(d.next.mode, t.next_mode) << d.reason;
  EXPECT_EQ(d.next.clean_windows, t.next_clean) << d.reason;
  EXPECT_DOUBLE_EQ(d.next.ttl_seconds, t.next_ttl) << d.reason;
  EXPECT_FALSE(d.reason.empty());
}

using A = agent_action;
using M = agent_mode;

INSTANTIATE_TEST_SUITE_P(
  Cases, PolicyTable,
  ::testing::Values(
    step_case{"normal_quiet", {M::normal, 0, 30}, 0.005, 20, A::keep, M::normal, 1, 30},
    step_case{"normal_band", {M::normal, 2, 30}, 0.03, 20, A::keep, M::normal, 0, 30},
    step_case{
      "normal_to_short", {M::normal, 0, 30}, 0.125, 20, A::shorten_ttl, M::short_ttl, 0, 16},
    step_case{"normal_to_disabled", {M::normal, 0, 30}, 0.5, 20, A::disable, M::disabled, 0, 2},
    step_case{"short_shortens_more",
              {M::short_ttl, 0, 16},
              0.17,
              20,
              A::shorten_ttl,
              M::short_ttl,
              0,
              30 - 28 * 0.8},
    step_case{
      "short_never_lengthens", {M::short_ttl, 0, 10}, 0.06, 20, A::keep, M::short_ttl, 0, 10},
    step_case{"short_to_disabled", {M::short_ttl, 1, 10}, 0.25, 20, A::disable, M::disabled, 0, 2},
    step_case{"short_clean_1", {M::short_ttl, 0, 10}, 0.001, 20, A::keep, M::short_ttl, 1, 10},
    step_case{
      "short_clean_3_restores", {M::short_ttl, 2, 10}, 0.001, 20, A::restore_ttl, M::normal, 0, 30},
    step_case{"disabled_stays_above", {M::disabled, 0, 2}, 0.3, 20, A::keep, M::disabled, 0, 2},
    step_case{
      "disabled_stays_in_ttl_band", {M::disabled, 2, 2}, 0.1, 20, A::keep, M::disabled, 0, 2},
    step_case{"disabled_clean_2", {M::disabled, 1, 2}, 0.0, 20, A::keep, M::disabled, 2, 2},
    step_case{
      "disabled_clean_3_enables", {M::disabled, 2, 2}, 0.0, 20, A::enable, M::short_ttl, 0, 2},
    step_case{"few_samples_ignored", {M::normal, 1, 30}, 0.9, 4, A::keep, M::normal, 1, 30},
    step_case{"few_samples_keep_streak", {M::disabled, 2, 2}, 0.0, 0, A::keep, M::disabled, 2, 2}),
  [](const auto& info) { return std::string{info.param.name}; });

/// Runs the policy over a sequence of p95 values, feeding each decision's
/// state into the next observation; returns the actions taken (not keeps).
std::vector<agent_action> run(const std::vector<double>& signal, agent_state st = normal()) {
  std::vector<agent_action> actions;
  for (double p95 : signal) {
    auto d = decide(obs(p95, st), cfg());
    if (d.action != agent_action::keep)
      actions.push_back(d.action);
    st = d.next;
  }
  return actions;
}

TEST(AgentPolicy, NoiseAroundTheDisableThresholdDoesNotFlap) {
  std::vector<double> signal;
  for (int i = 0; i < 200; ++i)
    signal.push_back(i % 2 == 0 ? 0.19 : 0.21);
  auto actions = run(signal);
  // Shorten on the first window (0.19 > ttl threshold), disable on the
  // second, then stay disabled: 0.19 is far from clean.
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0], A::shorten_ttl);
  EXPECT_EQ(actions[1], A::disable);
}

TEST(AgentPolicy, NoiseAroundTheRecoverThresholdDoesNotReenable) {
  std::vector<double> signal;
  for (int i = 0; i < 200; ++i)
    signal.push_back(i % 3 == 2 ? 0.011 : 0.009); // two clean, one not, repeat
  auto actions = run(signal, {M::disabled, 0, 2});
  EXPECT_TRUE(actions.empty());
}

TEST(AgentPolicy, NoiseAroundTheTtlThresholdShortensOnce) {
  std::vector<double> signal;
  for (int i = 0; i < 100; ++i)
    signal.push_back(i % 2 == 0 ? 0.049 : 0.051);
  auto actions = run(signal);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0], A::shorten_ttl);
}

TEST(AgentPolicy, FullCycleDriftThenRecovery) {
  // Rising drift: NORMAL -> SHORT_TTL -> DISABLED; then clean windows bring
  // it back one step per recover_windows windows.
  std::vector<double> signal{0.0, 0.08, 0.12, 0.3, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  auto actions = run(signal);
  std::vector<agent_action> want{A::shorten_ttl, A::shorten_ttl, A::disable, A::enable,
                                 A::restore_ttl};
  EXPECT_EQ(actions, want);
}

TEST(AgentPolicy, ReasonNamesTheNumbers) {
  auto d = decide(obs(0.5, normal()), cfg());
  EXPECT_NE(d.reason.find("0.5"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("n=20"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("disable threshold"), std::string::npos) << d.reason;
}

// The configuration's words for the trigger are the ones to_string spells.
TEST(AgentPolicy, TriggersParseFromTheirOwnWords) {
  for (auto t : {agent_trigger::wrong_rate, agent_trigger::cosine})
    EXPECT_EQ(parse_agent_trigger(to_string(t)), t);
  EXPECT_EQ(parse_agent_trigger("wrong-rate"), agent_trigger::wrong_rate);
  EXPECT_FALSE(parse_agent_trigger("wrong_rate"));
  EXPECT_FALSE(parse_agent_trigger(""));
}

} // namespace
} // namespace sil
