// The gateway's rule for node ids: a joining node must not have the
// gateway's id, nor the id of another live node.
#include <gtest/gtest.h>

#include "core/node_identity.hpp"

namespace sil {
namespace {

const std::string gw = "0123456789abcdef0123456789abcdef01234567#1";
const std::string a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa#1";
const std::string b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb#1";

TEST(NodeIdentity, DistinctIdsJoin) {
  EXPECT_TRUE(check_node_identity("w1", a, gw, {}));
  EXPECT_TRUE(check_node_identity("w2", b, gw, {{"w1", a, true}}));
}

TEST(NodeIdentity, TheGatewaysOwnIdIsRefusedWithTheRemedy) {
  auto s = check_node_identity("w1", gw, gw, {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::forbidden);
  const auto& m = s.error().message;
  EXPECT_NE(m.find("w1"), std::string::npos) << m;
  EXPECT_NE(m.find("gateway's own node id"), std::string::npos) << m;
  EXPECT_NE(m.find(gw), std::string::npos) << m;
  EXPECT_NE(m.find("network namespace"), std::string::npos) << m;
  EXPECT_NE(m.find("--pid=host"), std::string::npos) << m;
}

TEST(NodeIdentity, AnotherLiveNodesIdIsRefusedNamingBoth) {
  auto s = check_node_identity("w2", a, gw, {{"w0", b, true}, {"w1", a, true}});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::forbidden);
  const auto& m = s.error().message;
  EXPECT_NE(m.find("node w2"), std::string::npos) << m;
  EXPECT_NE(m.find("live node w1"), std::string::npos) << m;
  EXPECT_NE(m.find(a), std::string::npos) << m;
}

TEST(NodeIdentity, RejoiningUnderTheSameNameIsAllowed) {
  // More workers of one node, or the node restarted (same id or a new one).
  EXPECT_TRUE(check_node_identity("w1", a, gw, {{"w1", a, true}}));
  EXPECT_TRUE(check_node_identity("w1", b, gw, {{"w1", a, true}}));
}

TEST(NodeIdentity, TheIdOfANodeThatIsGoneMayBeReused) {
  // A container restarted as PID 1 on the same network gets its old id back.
  EXPECT_TRUE(check_node_identity("w2", a, gw, {{"w1", a, false}}));
}

} // namespace
} // namespace sil
