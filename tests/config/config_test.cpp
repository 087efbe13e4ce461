#include "config/sil_config.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
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

// -- strict config files -------------------------------------------------------

/// Writes `text` to a file in the test directory and returns its path.
std::string write_conf(const std::string& name, const std::string& text) {
  std::string path = std::string{SIL_TEST_TMPDIR} + "/" + name;
  std::ofstream out{path, std::ios::trunc};
  out << text;
  return path;
}

/// parse_all with only --config-file=PATH (and `extra` flags).
status parse_file(sil_config& cfg, const std::string& path, std::vector<std::string> extra = {}) {
  extra.insert(extra.begin(), "--config-file=" + path);
  args a{std::move(extra)};
  return cfg.parse_all(a.argc(), a.argv(), fake_getenv);
}

TEST_F(ConfigTest, ConfigFileIntegerForARealIsAcceptedAsReal) {
  auto path = write_conf("int-real.conf", "[cache]\nttl-seconds=7\n[risk]\ntolerance=0\n");
  sil_config cfg;
  ASSERT_TRUE(parse_file(cfg, path));
  EXPECT_DOUBLE_EQ(cfg.settings.cache_ttl_seconds, 7.0);
  EXPECT_DOUBLE_EQ(cfg.settings.risk_tolerance, 0.0);
}

TEST_F(ConfigTest, ConfigFileWrongTypeNamesTheFileTheKeyAndTheProblem) {
  struct bad {
    std::string text;
    std::string message; // after "PATH: "
  };
  for (const auto& b : std::vector<bad>{
         {"[cache]\nmax-size=\"big\"\n", "cache.max-size: expected an integer, got \"big\""},
         {"[cache]\nmax-size=7.5\n", "cache.max-size: expected an integer, got 7.5"},
         {"[cache]\nttl-seconds=\"7\"\n", "cache.ttl-seconds: expected a number, got \"7\""},
         {"[cache]\nenabled=3\n", "cache.enabled: expected true or false, got 3"},
         {"[model]\npreset=42\n", "model.preset: expected a string, got 42"},
         {"[http]\nthreads=[1, 2]\n", "http.threads: expected an integer, got [1, 2]"},
         {"port=\"80\"\n", "port: expected an integer, got \"80\""},
         {"[scheduler]\nmax-threads=\"x\"\n",
          "scheduler.max-threads: expected an integer, got \"x\""},
       }) {
    auto path = write_conf("wrong-type.conf", b.text);
    sil_config cfg;
    auto st = parse_file(cfg, path);
    ASSERT_FALSE(st) << b.text;
    EXPECT_EQ(st.error().code, errc::invalid_config);
    EXPECT_EQ(st.error().message, path + ": " + b.message) << b.text;
  }
}

TEST_F(ConfigTest, ConfigFileUnknownKeysAndSectionsAreRefused) {
  struct bad {
    std::string text;
    std::string message;
  };
  for (const auto& b : std::vector<bad>{
         {"[cache]\nttl=7\n", "cache.ttl: unknown key (did you mean cache.ttl-seconds?)"},
         {"[cache]\nmax-sise=7\n", "cache.max-sise: unknown key (did you mean cache.max-size?)"},
         {"[cache]\nfrobnicate=1\n", "cache.frobnicate: unknown key"},
         {"[cach]\nmax-size=7\n", "cach.max-size: unknown section [cach] (did you mean [cache]?)"},
         {"[nonsense]\nx=1\n", "nonsense.x: unknown section [nonsense]"},
         {"prot=8000\n", "prot: unknown key (did you mean port?)"},
         {"config-file=\"x.conf\"\n", "config-file: unknown key"},
         {"[scheduler]\nmax-thread=2\n",
          "scheduler.max-thread: unknown key (did you mean scheduler.max-threads?)"},
         {"[caf.schedule]\npolicy='sharing'\n", "caf.schedule: unknown section [caf.schedule]"},
         {"[cache.extra]\nx=1\n", "cache.extra: unknown key"},
       }) {
    auto path = write_conf("unknown.conf", b.text);
    sil_config cfg;
    auto st = parse_file(cfg, path);
    ASSERT_FALSE(st) << b.text;
    EXPECT_EQ(st.error().message, path + ": " + b.message) << b.text;
  }
}

TEST_F(ConfigTest, ConfigFileKeySetTwiceIsRefused) {
  auto path
    = write_conf("twice.conf", "[cache]\nmax-size=7 ; first\nttl-seconds=1\nlist=[\n  1,\n]\n"
                               "[http]\nthreads=1\n[cache]\nmax-size=8\n");
  sil_config cfg;
  auto st = parse_file(cfg, path);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, path + ": cache.max-size: set twice (lines 2 and 10); keep one");
  // The same key in different sections is not a repetition.
  auto fine = write_conf("not-twice.conf", "[http]\nthreads=3\n[encoder]\nmax-batch=3\n"
                                           "[cluster]\nport=7001\nhost=\"0.0.0.0\"\n"
                                           "[global]\nport=8001\nhost=\"0.0.0.0\"\n");
  sil_config ok_cfg;
  ASSERT_TRUE(parse_file(ok_cfg, fine));
  EXPECT_EQ(ok_cfg.settings.cluster_port, 7001);
  EXPECT_EQ(ok_cfg.settings.port, 8001);
}

TEST_F(ConfigTest, ConfigFileSyntaxErrorsNameTheLine) {
  auto path = write_conf("syntax.conf", "[cache]\nmax-size=1\nadmission=lru\n");
  sil_config cfg;
  auto st = parse_file(cfg, path);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message.rfind(path + ": line 3, column ", 0), 0u) << st.error().message;
  EXPECT_NE(st.error().message.find("double quotes"), std::string::npos) << st.error().message;
}

TEST_F(ConfigTest, ANamedConfigFileMustExist) {
  sil_config cfg;
  auto st = parse_file(cfg, std::string{SIL_TEST_TMPDIR} + "/no-such.conf");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("no-such.conf: cannot open the config file"), std::string::npos)
    << st.error().message;
}

TEST_F(ConfigTest, ConfigFileFlexibleButExactValues) {
  // Booleans take the words a flag takes; an atom is a string where a
  // string is expected; a string is an atom where CAF expects one.
  auto path = write_conf("flexible.conf", "[risk]\nguard=\"off\"\n[cache]\nadmission='lru'\n"
                                          "[scheduler]\npolicy=\"stealing\"\n");
  sil_config cfg;
  ASSERT_TRUE(parse_file(cfg, path));
  EXPECT_FALSE(cfg.settings.risk_guard);
  EXPECT_EQ(cfg.settings.cache_admission, "lru");
  EXPECT_EQ(caf::get_or(cfg, "scheduler.policy", caf::atom("")), caf::atom("stealing"));
}

TEST_F(ConfigTest, CafSectionsStayAllowedUnderBothNames) {
  auto path = write_conf("caf.conf", "[scheduler]\nmax-threads=3\n"
                                     "[caf.middleman]\nheartbeat-interval=250ms\n"
                                     "[logger]\nverbosity='quiet'\n");
  sil_config cfg;
  ASSERT_TRUE(parse_file(cfg, path));
  EXPECT_EQ(caf::get_or(cfg, "scheduler.max-threads", std::size_t{0}), 3u);
  EXPECT_EQ(caf::get_or(cfg, "middleman.heartbeat-interval", caf::timespan{0}),
            caf::timespan{std::chrono::milliseconds{250}});
  EXPECT_EQ(caf::get_or(cfg, "logger.verbosity", caf::atom("")), caf::atom("quiet"));
}

TEST_F(ConfigTest, NothingFromABadFileIsApplied) {
  auto path = write_conf("half.conf", "[cache]\nmax-size=99\nttl=1\n");
  sil_config cfg;
  ASSERT_FALSE(parse_file(cfg, path));
  EXPECT_EQ(cfg.settings.cache_max_size, 256);
}

// -- one precedence -----------------------------------------------------------

TEST_F(ConfigTest, PrecedenceFlagThenSilVariableThenLegacyThenFileThenDefault) {
  auto path = write_conf("precedence.conf", "[cache]\nmax-size=11\nttl-seconds=11\n"
                                            "prefix-k=11\nenabled=false\n[http]\nmax-rows=11\n");
  // Each key is set by every layer from the file up to one: the highest wins.
  fake_env
    = {{"SIL_CACHE_MAX_SIZE", "22"}, {"CACHE_MAX_SIZE", "33"}, {"SIL_CACHE_TTL_SECONDS", "22"},
       {"CACHE_TTL_SECONDS", "33"},  {"PREFIX_K", "5"},        {"SIL_CACHE_ENABLED", "true"},
       {"CACHE_ENABLED", "false"}};
  sil_config cfg;
  ASSERT_TRUE(parse_file(cfg, path, {"--cache.max-size=44"}));
  const auto& s = cfg.settings;
  EXPECT_EQ(s.cache_max_size, 44);             // flag > SIL_* > legacy > file
  EXPECT_DOUBLE_EQ(s.cache_ttl_seconds, 22.0); // SIL_* > legacy > file
  EXPECT_EQ(s.cache_prefix_k, 5);              // legacy > file
  EXPECT_TRUE(s.cache_enabled);                // SIL_* (a bool) > legacy > file
  EXPECT_EQ(s.http_max_rows, 11);              // file > default
  EXPECT_EQ(s.http_threads, 2);                // default
}

/// One effective value as text ("10", "1.5", "false").
std::string value_of(const sil_config& cfg, const std::string& section, const std::string& name) {
  for (const auto& e : cfg.effective(false))
    if (e.section == section && e.name == name) {
      switch (e.k) {
        case sil_config::entry::kind::integer:
          return std::to_string(e.i);
        case sil_config::entry::kind::real: {
          std::ostringstream os;
          os << e.d;
          return os.str();
        }
        case sil_config::entry::kind::boolean:
          return e.b ? "true" : "false";
        case sil_config::entry::kind::text:
          return e.s;
      }
    }
  return "?";
}

TEST_F(ConfigTest, SilVariableWinsOverTheLegacyOne) {
  struct both {
    std::string key;
    std::string sil_var, sil_value;
    std::string legacy_var, legacy_value;
  };
  for (const auto& b :
       std::vector<both>{{"max-size", "SIL_CACHE_MAX_SIZE", "10", "CACHE_MAX_SIZE", "20"},
                         {"ttl-seconds", "SIL_CACHE_TTL_SECONDS", "1.5", "CACHE_TTL_SECONDS", "9"},
                         {"enabled", "SIL_CACHE_ENABLED", "false", "CACHE_ENABLED", "true"},
                         {"prefix-k", "SIL_CACHE_PREFIX_K", "2", "PREFIX_K", "3"}}) {
    args none{std::vector<std::string>{}};
    fake_env = {{b.sil_var, b.sil_value}, {b.legacy_var, b.legacy_value}};
    sil_config both_set;
    ASSERT_TRUE(both_set.parse_all(none.argc(), none.argv(), fake_getenv)) << b.key;
    EXPECT_EQ(value_of(both_set, "cache", b.key), b.sil_value) << b.key;
    // Without the SIL_ variable the legacy one still counts.
    fake_env = {{b.legacy_var, b.legacy_value}};
    sil_config legacy_only;
    ASSERT_TRUE(legacy_only.parse_all(none.argc(), none.argv(), fake_getenv)) << b.key;
    EXPECT_EQ(value_of(legacy_only, "cache", b.key), b.legacy_value) << b.key;
  }
}

// -- the command line ---------------------------------------------------------

TEST_F(ConfigTest, UnknownFlagsAndBadValuesGiveOneHumanLine) {
  struct bad {
    std::vector<std::string> flags;
    std::string message;
  };
  for (const auto& b : std::vector<bad>{
         {{"--cache.ttl=3"}, "unknown option --cache.ttl; see --help"},
         {{"--cache.ttl"}, "unknown option --cache.ttl; see --help"},
         {{"-x"}, "unknown option -x; see --help"},
         {{"stray"}, "unexpected argument \"stray\"; see --help"},
         {{"--cache.max-size=many"},
          "--cache.max-size: expected an integer, got \"many\"; see --help"},
         {{"--cache.ttl-seconds=soon"},
          "--cache.ttl-seconds: expected a number, got \"soon\"; see --help"},
         {{"--port"}, "--port needs a value (--port=VALUE); see --help"},
         {{"-p", "x"}, "-p: expected an integer, got \"x\"; see --help"},
         {{"--risk.guard=maybe"},
          "--risk.guard: expected true or false, got \"maybe\"; see --help"},
         {{"--scheduler.max-threads=two"},
          "--scheduler.max-threads: expected an integer, got \"two\"; see --help"},
       }) {
    sil_config cfg;
    args a{b.flags};
    auto st = cfg.parse_all(a.argc(), a.argv(), fake_getenv);
    ASSERT_FALSE(st) << b.flags.front();
    EXPECT_EQ(st.error().code, errc::invalid_config);
    EXPECT_EQ(st.error().message, b.message);
  }
  sil_config short_port;
  args p{{"-p", "9001"}};
  ASSERT_TRUE(short_port.parse_all(p.argc(), p.argv(), fake_getenv));
  EXPECT_EQ(short_port.settings.port, 9001);
}

TEST_F(ConfigTest, HelpListsSilOptionsWithDefaultsAndCafOnlyInLongHelp) {
  sil_config cfg;
  auto help = cfg.help_text(false);
  for (const auto& key : cfg.sil_option_keys()) {
    auto flag = "--" + (key.rfind("global.", 0) == 0 ? key.substr(7) : key) + "=";
    EXPECT_NE(help.find(flag), std::string::npos) << flag << " missing from --help";
  }
  EXPECT_NE(help.find("--cache.max-size=INT"), std::string::npos);
  EXPECT_NE(help.find("[default: 256]"), std::string::npos);
  EXPECT_NE(help.find("[default: 30.0]"), std::string::npos);
  EXPECT_NE(help.find("[default: \"tinylfu\"]"), std::string::npos);
  EXPECT_NE(help.find("--log.level=TEXT"), std::string::npos);
  EXPECT_NE(help.find("--version"), std::string::npos);
  EXPECT_NE(help.find("--dump-config"), std::string::npos);
  EXPECT_EQ(help.find("--scheduler.policy"), std::string::npos);
  EXPECT_EQ(help.find("--middleman."), std::string::npos);
  auto long_help = cfg.help_text(true);
  EXPECT_NE(long_help.find("--scheduler.policy=ATOM"), std::string::npos);
  EXPECT_NE(long_help.find("[default: 'sharing']"), std::string::npos); // sil's choice
  EXPECT_NE(long_help.find("--middleman.heartbeat-interval=DURATION"), std::string::npos);
  EXPECT_NE(long_help.find("--logger.verbosity"), std::string::npos);
  EXPECT_NE(long_help.find("--cache.max-size=INT"), std::string::npos);
}

// -- --dump-config ---------------------------------------------------------------

TEST_F(ConfigTest, DumpConfigRoundTripsEveryLayer) {
  auto path = write_conf("layers.conf", "[cache]\nttl-seconds=7\n[risk]\ntolerance=0.0625\n"
                                        "[scheduler]\nmax-threads=2\n");
  fake_env = {{"SIL_NODE_NAME", "node \"a\"\\b"}, {"PREFIX_K", "6"}};
  sil_config first;
  ASSERT_TRUE(parse_file(first, path,
                         {"--cache.enabled=false", "--audit.rate=0.1", "--admin.token=t0k\"3n",
                          "--log.format=json", "--dump-config"}));
  EXPECT_TRUE(first.dump_requested);
  auto dump1 = first.dump_config();
  for (const char* line :
       {"ttl-seconds=7.0\n", "tolerance=0.0625\n", "enabled=false\n", "rate=0.1\n", "prefix-k=6\n",
        "node-name=\"node \\\"a\\\"\\\\b\"\n", "token=\"t0k\\\"3n\"\n", "format=\"json\"\n",
        "max-threads=2\n", "policy='sharing'\n", "max-size=256\n", "[log]\n"})
    EXPECT_NE(dump1.find(line), std::string::npos) << line << " not in\n" << dump1;
  auto again = write_conf("dumped.conf", dump1);
  fake_env.clear();
  sil_config second;
  ASSERT_TRUE(parse_file(second, again));
  EXPECT_EQ(second.dump_config(), dump1);
  EXPECT_EQ(second.settings.node_name, "node \"a\"\\b");
  EXPECT_EQ(second.settings.admin_token, "t0k\"3n");
  EXPECT_FALSE(second.settings.cache_enabled);
  EXPECT_EQ(second.settings.cache_prefix_k, 6);
  EXPECT_DOUBLE_EQ(second.settings.audit_rate, 0.1);
}

TEST_F(ConfigTest, DumpOfTheDefaultsListsEveryKeyAndReadsBackAsTheDefaults) {
  sil_config cfg;
  args none{std::vector<std::string>{}};
  ASSERT_TRUE(cfg.parse_all(none.argc(), none.argv(), fake_getenv));
  auto dump = cfg.dump_config();
  for (const auto& key : cfg.sil_option_keys()) {
    auto dot = key.find('.');
    auto section = "\n[" + key.substr(0, dot) + "]\n";
    auto at = dump.find(section);
    ASSERT_NE(at, std::string::npos) << section;
    auto end = dump.find("\n[", at + 1);
    EXPECT_NE(dump.substr(at, end - at).find("\n" + key.substr(dot + 1) + "="), std::string::npos)
      << key;
  }
  // Reading the dump back changes nothing; neither does reading the example.
  sil_config back;
  ASSERT_TRUE(parse_file(back, write_conf("defaults.conf", dump)));
  EXPECT_EQ(back.dump_config(), dump);
  sil_config example;
  ASSERT_TRUE(parse_file(example, std::string{SIL_SOURCE_DIR} + "/config/sil.conf.example"));
  EXPECT_EQ(example.dump_config(), dump);
}

TEST_F(ConfigTest, EffectiveSettingsRedactTheAdminToken) {
  sil_config cfg;
  args a{{"--admin.token=hunter2", "--cache.max-size=9"}};
  ASSERT_TRUE(cfg.parse_all(a.argc(), a.argv(), fake_getenv));
  bool saw_token = false;
  bool saw_size = false;
  for (const auto& e : cfg.effective(true)) {
    EXPECT_NE(e.s, "hunter2");
    if (e.section == "admin" && e.name == "token") {
      saw_token = true;
      EXPECT_EQ(e.s, "(set)");
    }
    if (e.section == "cache" && e.name == "max-size") {
      saw_size = true;
      EXPECT_EQ(e.k, sil_config::entry::kind::integer);
      EXPECT_EQ(e.i, 9);
    }
  }
  EXPECT_TRUE(saw_token);
  EXPECT_TRUE(saw_size);
}

TEST_F(ConfigTest, LogSettingsAreValidated) {
  for (const auto& [flag, key] : std::vector<std::pair<std::string, std::string>>{
         {"--log.level=verbose", "log.level"}, {"--log.format=xml", "log.format"}}) {
    sil_config cfg;
    args a{{flag}};
    ASSERT_TRUE(cfg.parse_all(a.argc(), a.argv(), fake_getenv)) << flag;
    auto st = validate(cfg.settings, 32);
    ASSERT_FALSE(st) << flag;
    EXPECT_EQ(st.error().message.rfind(key + " ", 0), 0u) << st.error().message;
  }
  sil_config fine;
  args a{{"--log.level=debug", "--log.format=json", "--log.access=true", "--log.file=x.log"}};
  ASSERT_TRUE(fine.parse_all(a.argc(), a.argv(), fake_getenv));
  EXPECT_TRUE(validate(fine.settings, 32));
  EXPECT_TRUE(fine.settings.log_access);
  EXPECT_EQ(fine.settings.log_file, "x.log");
}

} // namespace
} // namespace sil
