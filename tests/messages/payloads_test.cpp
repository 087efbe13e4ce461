// The enums of messages/payloads.hpp and their words: each word is spelled
// once, in its to_string, and the vocabularies that must agree do.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "messages/payloads.hpp"

namespace sil {
namespace {

TEST(Payloads, EveryRouteLabelHasItsOwnWord) {
  std::set<std::string> words;
  for (int i = 0; i <= static_cast<int>(route_label::other); ++i) {
    std::string w = to_string(static_cast<route_label>(i));
    EXPECT_NE(w, "unknown");
    EXPECT_TRUE(words.insert(w).second) << w << " twice";
  }
  EXPECT_EQ(words.size(), 10u);
  EXPECT_STREQ(to_string(route_label::predict), "predict");
  EXPECT_STREQ(to_string(route_label::other), "other");
}

// The decision log speaks the policy's words for the agent's own actions,
// so a renamed action cannot make the log and the policy disagree.
TEST(Payloads, TheDecisionLogUsesThePolicysWordsForTheAgentsActions) {
  for (auto a : all_agent_actions)
    EXPECT_STREQ(to_string(decision_of(a)), to_string(a));
}

TEST(Payloads, OperatorCommandsHaveAnAdminNameAndADecisionWord) {
  struct row {
    admin_command cmd;
    const char* admin_name;
    decision_action logged;
    const char* word;
  };
  for (const auto& r :
       {row{admin_command::disable_cache, "disable_cache", decision_action::disable, "disable"},
        row{admin_command::enable_cache, "enable_cache", decision_action::enable, "enable"},
        row{admin_command::clear_cache, "clear_cache", decision_action::clear, "clear"},
        row{admin_command::set_ttl, "set_ttl", decision_action::set_ttl, "set_ttl"},
        row{admin_command::resume_agent, "resume_agent", decision_action::resume, "resume"}}) {
    EXPECT_STREQ(to_string(r.cmd), r.admin_name);
    EXPECT_EQ(decision_of(r.cmd), r.logged) << r.admin_name;
    EXPECT_STREQ(to_string(decision_of(r.cmd)), r.word);
  }
}

TEST(Payloads, NodeStatesAndTheSeriesOfTheSettledOnes) {
  EXPECT_STREQ(to_string(node_state::joining), "new");
  std::set<std::string> words;
  for (auto s : settled_node_states)
    words.insert(to_string(s));
  EXPECT_EQ(words, (std::set<std::string>{"local", "up", "down"}));
}

TEST(Payloads, DecisionCountsAreIndexedByAction) {
  decision_counts c;
  ++c.of(agent_action::disable);
  ++c.of(agent_action::disable);
  ++c.of(agent_action::enable);
  ++c.manual;
  const auto& k = c;
  EXPECT_EQ(k.of(agent_action::disable), 2u);
  EXPECT_EQ(k.of(agent_action::enable), 1u);
  EXPECT_EQ(k.of(agent_action::keep), 0u);
  EXPECT_EQ(k.of(agent_action::shorten_ttl), 0u);
  EXPECT_EQ(k.manual, 1u);
}

// Counters and metric series are indexed by these arrays' positions.
TEST(Payloads, EachListOfValuesIsInTheEnumsOrder) {
  for (std::size_t i = 0; i < all_agent_actions.size(); ++i)
    EXPECT_EQ(static_cast<std::size_t>(all_agent_actions[i]), i);
  for (std::size_t i = 0; i < all_embedding_sources.size(); ++i)
    EXPECT_EQ(static_cast<std::size_t>(all_embedding_sources[i]), i);
  for (std::size_t i = 0; i < all_comparison_kinds.size(); ++i)
    EXPECT_EQ(static_cast<std::size_t>(all_comparison_kinds[i]), i);
  EXPECT_STREQ(to_string(embedding_source::single_flight), "single_flight");
  EXPECT_STREQ(to_string(comparison_kind::refusal), "refusal");
}

} // namespace
} // namespace sil
