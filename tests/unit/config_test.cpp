#include "config/sil_config.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace sil {
namespace {

/// argv for CAF's parser (it wants mutable char*).
struct args {
  std::vector<std::string> store;
  std::vector<char*> ptrs;

  explicit args(std::vector<std::string> xs)
    : store(std::move(xs)) {
    store.insert(store.begin(), "sil-server");
    for (auto& s : store)
      ptrs.push_back(s.data());
  }

  int argc() {
    return static_cast<int>(ptrs.size());
  }

  char** argv() {
    return ptrs.data();
  }
};

std::map<std::string, std::string> fake_env;

const char* fake_getenv(const char* name) {
  auto i = fake_env.find(name);
  return i == fake_env.end() ? nullptr : i->second.c_str();
}

class ConfigTest : public ::testing::Test {
protected:
  void SetUp() override {
    fake_env.clear();
  }
};

TEST_F(ConfigTest, DefaultsMatchTheDocumentation) {
  sil_config cfg;
  args a{{}};
  ASSERT_FALSE(cfg.parse(a.argc(), a.argv()));
  const auto& s = cfg.settings;
  EXPECT_EQ(s.host, "127.0.0.1");
  EXPECT_EQ(s.port, 8000);
  EXPECT_EQ(s.cache_max_size, 256);
  EXPECT_EQ(s.cache_admission, "tinylfu");
  EXPECT_DOUBLE_EQ(s.cache_ttl_seconds, 30.0);
  EXPECT_TRUE(s.cache_enabled);
  EXPECT_EQ(s.cache_prefix_k, 4);
  EXPECT_EQ(s.model_preset, "base");
  EXPECT_TRUE(validate(s, 32));
}

TEST_F(ConfigTest, CliFlagsSetValues) {
  sil_config cfg;
  args a{{"--port=0", "--cache.max-size=12", "--cache.ttl-seconds=0.5", "--cache.enabled=false",
          "--cache.prefix-k=8", "--model.preset=seed", "--workers=3"}};
  ASSERT_TRUE(cfg.parse_all(a.argc(), a.argv(), fake_getenv));
  const auto& s = cfg.settings;
  EXPECT_EQ(s.port, 0);
  EXPECT_EQ(s.cache_max_size, 12);
  EXPECT_DOUBLE_EQ(s.cache_ttl_seconds, 0.5);
  EXPECT_FALSE(s.cache_enabled);
  EXPECT_EQ(s.cache_prefix_k, 8);
  EXPECT_EQ(s.model_preset, "seed");
  EXPECT_EQ(s.workers, 3);
}

TEST_F(ConfigTest, EnvironmentOverridesDefaultsButNotTheCli) {
  fake_env = {{"CACHE_MAX_SIZE", "64"},
              {"CACHE_TTL_SECONDS", "2.5"},
              {"CACHE_ENABLED", "false"},
              {"PREFIX_K", "6"}};
  sil_config cfg;
  args a{{"--cache.prefix-k=3"}};
  ASSERT_FALSE(cfg.parse(a.argc(), a.argv()));
  ASSERT_TRUE(cfg.apply_environment(a.argc(), a.argv(), fake_getenv));
  const auto& s = cfg.settings;
  EXPECT_EQ(s.cache_max_size, 64);
  EXPECT_DOUBLE_EQ(s.cache_ttl_seconds, 2.5);
  EXPECT_FALSE(s.cache_enabled);
  EXPECT_EQ(s.cache_prefix_k, 3); // the CLI wins
}

TEST_F(ConfigTest, BadEnvironmentValuesNameTheVariable) {
  for (auto [var, value] :
       std::vector<std::pair<std::string, std::string>>{{"CACHE_MAX_SIZE", "lots"},
                                                        {"CACHE_TTL_SECONDS", "1s"},
                                                        {"CACHE_ENABLED", "maybe"},
                                                        {"PREFIX_K", ""}}) {
    fake_env = {{var, value}};
    sil_config cfg;
    args a{{}};
    ASSERT_FALSE(cfg.parse(a.argc(), a.argv()));
    auto st = cfg.apply_environment(a.argc(), a.argv(), fake_getenv);
    ASSERT_FALSE(st) << var;
    EXPECT_EQ(st.error().code, errc::invalid_config);
    EXPECT_NE(st.error().message.find(var), std::string::npos) << st.error().message;
  }
}

TEST_F(ConfigTest, InvalidValuesNameTheKey) {
  struct bad {
    std::string flag;
    std::string key;
  };
  for (const auto& b : std::vector<bad>{{"--cache.max-size=-1", "cache.max-size"},
                                        {"--cache.max-size=0", "cache.max-size"},
                                        {"--cache.admission=lfu", "cache.admission"},
                                        {"--cache.admission=LRU", "cache.admission"},
                                        {"--cache.prefix-k=0", "cache.prefix-k"},
                                        {"--cache.prefix-k=33", "cache.prefix-k"},
                                        {"--cache.ttl-seconds=-2", "cache.ttl-seconds"},
                                        {"--port=70000", "port"},
                                        {"--workers=-3", "workers"},
                                        {"--http.max-rows=0", "http.max-rows"},
                                        {"--audit.rate=2", "audit.rate"},
                                        {"--audit.max-share=-0.1", "audit.max-share"},
                                        {"--audit.window=0", "audit.window"},
                                        {"--agent.ttl-threshold=0.5", "agent.ttl-threshold"},
                                        {"--agent.recover-windows=0", "agent.recover-windows"},
                                        {"--agent.ttl-floor=0", "agent.ttl-floor"}}) {
    sil_config cfg;
    args a{{b.flag}};
    ASSERT_FALSE(cfg.parse(a.argc(), a.argv())) << b.flag;
    auto st = validate(cfg.settings, 32);
    ASSERT_FALSE(st) << b.flag;
    EXPECT_EQ(st.error().message.rfind(b.key + " ", 0), 0u) << st.error().message;
  }
}

TEST_F(ConfigTest, BooleanFlagTakesAValueAndWinsOverTheEnvironment) {
  fake_env = {{"CACHE_ENABLED", "false"}};
  sil_config on;
  args a{{"--cache.enabled=true"}};
  ASSERT_TRUE(on.parse_all(a.argc(), a.argv(), fake_getenv));
  EXPECT_TRUE(on.settings.cache_enabled);
  sil_config bad;
  args b{{"--cache.enabled=perhaps"}};
  auto st = bad.parse_all(b.argc(), b.argv(), fake_getenv);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("cache.enabled"), std::string::npos);
}

TEST_F(ConfigTest, SingleFlightAndAgentSwitchesTakeValues) {
  sil_config defaults;
  args none{std::vector<std::string>{}};
  ASSERT_TRUE(defaults.parse_all(none.argc(), none.argv(), fake_getenv));
  EXPECT_TRUE(defaults.settings.cache_single_flight);
  EXPECT_TRUE(defaults.settings.agent_enabled);
  sil_config off;
  args a{{"--cache.single-flight=false", "--agent.enabled=0", "--cache.enabled=no"}};
  ASSERT_TRUE(off.parse_all(a.argc(), a.argv(), fake_getenv));
  EXPECT_FALSE(off.settings.cache_single_flight);
  EXPECT_FALSE(off.settings.agent_enabled);
  EXPECT_FALSE(off.settings.cache_enabled);
  sil_config bad;
  args b{{"--agent.enabled=sometimes"}};
  auto st = bad.parse_all(b.argc(), b.argv(), fake_getenv);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("agent.enabled"), std::string::npos);
  EXPECT_NE(st.error().message.find("sometimes"), std::string::npos);
}

TEST_F(ConfigTest, SilEnvironmentVariablesSetEveryOptionAndTheCommandLineWins) {
  fake_env = {{"SIL_ROLE", "gateway"},
              {"SIL_NODE_NAME", "gw1"},
              {"SIL_CLUSTER_PORT", "7100"},
              {"SIL_CLUSTER_HOST", "0.0.0.0"},
              {"SIL_CACHE_SINGLE_FLIGHT", "false"},
              {"SIL_HTTP_MAX_ROWS", "9"}};
  sil_config cfg;
  args a{{"--http.max-rows=5"}};
  ASSERT_TRUE(cfg.parse_all(a.argc(), a.argv(), fake_getenv));
  const auto& s = cfg.settings;
  EXPECT_EQ(s.role, "gateway");
  EXPECT_EQ(s.node_name, "gw1");
  EXPECT_EQ(s.cluster_port, 7100);
  EXPECT_EQ(s.cluster_host, "0.0.0.0");
  EXPECT_FALSE(s.cache_single_flight);
  EXPECT_EQ(s.http_max_rows, 5); // the flag wins over SIL_HTTP_MAX_ROWS
  fake_env = {{"SIL_CLUSTER_PORT", "lots"}};
  sil_config bad;
  args none{std::vector<std::string>{}};
  auto st = bad.parse_all(none.argc(), none.argv(), fake_getenv);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("cluster.port"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("SIL_CLUSTER_PORT"), std::string::npos) << st.error().message;
  fake_env = {{"SIL_AGENT_ENABLED", "sometimes"}};
  sil_config bad_bool;
  st = bad_bool.parse_all(none.argc(), none.argv(), fake_getenv);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("SIL_AGENT_ENABLED"), std::string::npos) << st.error().message;
}

TEST_F(ConfigTest, AdmissionPolicyFromTheCommandLineTheEnvironmentOrAFile) {
  sil_config cli;
  args a{{"--cache.admission=tinylfu"}};
  ASSERT_TRUE(cli.parse_all(a.argc(), a.argv(), fake_getenv));
  EXPECT_EQ(cli.settings.cache_admission, "tinylfu");
  EXPECT_TRUE(validate(cli.settings, 32));
  fake_env = {{"SIL_CACHE_ADMISSION", "tinylfu"}};
  sil_config env;
  args none{std::vector<std::string>{}};
  ASSERT_TRUE(env.parse_all(none.argc(), none.argv(), fake_getenv));
  EXPECT_EQ(env.settings.cache_admission, "tinylfu");
  sil_config both; // the command line wins over the environment
  args lru{{"--cache.admission=lru"}};
  ASSERT_TRUE(both.parse_all(lru.argc(), lru.argv(), fake_getenv));
  EXPECT_EQ(both.settings.cache_admission, "lru");
  // A bad value from the environment fails validation, naming the key.
  fake_env = {{"SIL_CACHE_ADMISSION", "random"}};
  sil_config bad;
  ASSERT_TRUE(bad.parse_all(none.argc(), none.argv(), fake_getenv));
  auto st = validate(bad.settings, 32);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message.rfind("cache.admission ", 0), 0u) << st.error().message;
  EXPECT_NE(st.error().message.find("random"), std::string::npos) << st.error().message;
  std::string path = std::string{SIL_TEST_TMPDIR} + "/sil-admission.conf";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("[cache]\nadmission=\"tinylfu\"\n", f);
    std::fclose(f);
  }
  fake_env.clear();
  sil_config file;
  args fa{{"--config-file=" + path}};
  ASSERT_TRUE(file.parse_all(fa.argc(), fa.argv(), fake_getenv));
  EXPECT_EQ(file.settings.cache_admission, "tinylfu");
}

TEST_F(ConfigTest, UnknownArgumentsAreRejected) {
  sil_config cfg;
  args a{{"--no-such-option=1"}};
  EXPECT_FALSE(cfg.parse_all(a.argc(), a.argv(), fake_getenv));
}

TEST_F(ConfigTest, ExampleFileListsEveryKeyWithItsDefault) {
  std::string path = std::string{SIL_SOURCE_DIR} + "/config/sil.conf.example";
  std::ifstream in{path};
  ASSERT_TRUE(in) << path;
  std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  sil_config probe;
  auto keys = probe.sil_option_keys();
  EXPECT_GE(keys.size(), 20u);
  for (const auto& key : keys) {
    auto dot = key.find('.');
    auto section = "[" + key.substr(0, dot) + "]";
    auto at = text.find(section);
    ASSERT_NE(at, std::string::npos) << section;
    auto end = text.find("\n[", at + 1);
    auto block = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
    EXPECT_NE(block.find("\n" + key.substr(dot + 1) + "="), std::string::npos)
      << key << " is missing from config/sil.conf.example";
  }
  // Loading it changes nothing: it holds exactly the defaults.
  sil_config cfg;
  args a{{"--config-file=" + path}};
  ASSERT_TRUE(cfg.parse_all(a.argc(), a.argv(), fake_getenv));
  service_settings defaults;
  const auto& s = cfg.settings;
  EXPECT_EQ(s.host, defaults.host);
  EXPECT_EQ(s.port, defaults.port);
  EXPECT_EQ(s.workers, defaults.workers);
  EXPECT_EQ(s.cache_max_size, defaults.cache_max_size);
  EXPECT_EQ(s.cache_admission, defaults.cache_admission);
  EXPECT_EQ(s.cache_ttl_seconds, defaults.cache_ttl_seconds);
  EXPECT_EQ(s.cache_enabled, defaults.cache_enabled);
  EXPECT_EQ(s.cache_prefix_k, defaults.cache_prefix_k);
  EXPECT_EQ(s.cache_sweep_interval_seconds, defaults.cache_sweep_interval_seconds);
  EXPECT_EQ(s.model_preset, defaults.model_preset);
  EXPECT_EQ(s.model_weights, defaults.model_weights);
  EXPECT_EQ(s.model_seed, defaults.model_seed);
  EXPECT_EQ(s.encoder_max_batch, defaults.encoder_max_batch);
  EXPECT_EQ(s.encoder_timeout_seconds, defaults.encoder_timeout_seconds);
  EXPECT_EQ(s.encoder_max_attempts, defaults.encoder_max_attempts);
  EXPECT_EQ(s.http_threads, defaults.http_threads);
  EXPECT_EQ(s.http_body_limit, defaults.http_body_limit);
  EXPECT_EQ(s.http_read_timeout_seconds, defaults.http_read_timeout_seconds);
  EXPECT_EQ(s.http_max_inflight, defaults.http_max_inflight);
  EXPECT_EQ(s.http_max_rows, defaults.http_max_rows);
  EXPECT_EQ(s.http_drain_timeout_seconds, defaults.http_drain_timeout_seconds);
  EXPECT_EQ(s.agent_interval_seconds, defaults.agent_interval_seconds);
  EXPECT_EQ(s.audit_rate, defaults.audit_rate);
  EXPECT_EQ(s.audit_max_share, defaults.audit_max_share);
  EXPECT_EQ(s.audit_window_seconds, defaults.audit_window_seconds);
  EXPECT_EQ(s.agent_recover_threshold, defaults.agent_recover_threshold);
  EXPECT_EQ(s.agent_ttl_threshold, defaults.agent_ttl_threshold);
  EXPECT_EQ(s.agent_disable_threshold, defaults.agent_disable_threshold);
  EXPECT_EQ(s.agent_recover_windows, defaults.agent_recover_windows);
  EXPECT_EQ(s.agent_min_samples, defaults.agent_min_samples);
  EXPECT_EQ(s.agent_ttl_floor_seconds, defaults.agent_ttl_floor_seconds);
  EXPECT_EQ(s.agent_entry_evict_threshold, defaults.agent_entry_evict_threshold);
  EXPECT_EQ(s.admin_token, defaults.admin_token);
}

TEST_F(ConfigTest, TypeErrorsAreParseErrors) {
  sil_config cfg;
  args a{{"--cache.max-size=many"}};
  EXPECT_TRUE(static_cast<bool>(cfg.parse(a.argc(), a.argv())));
}

TEST_F(ConfigTest, ConfigFileValuesAreRead) {
  std::string path = std::string{SIL_TEST_TMPDIR} + "/sil-test.conf";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("[cache]\nmax-size=99\nttl-seconds=4.5\n[model]\npreset=\"seed\"\n", f);
    std::fclose(f);
  }
  sil_config cfg;
  args a{{"--config-file=" + path, "--cache.ttl-seconds=7"}};
  ASSERT_FALSE(cfg.parse(a.argc(), a.argv()));
  EXPECT_EQ(cfg.settings.cache_max_size, 99);
  EXPECT_DOUBLE_EQ(cfg.settings.cache_ttl_seconds, 7.0); // CLI over file
  EXPECT_EQ(cfg.settings.model_preset, "seed");
}

} // namespace
} // namespace sil
