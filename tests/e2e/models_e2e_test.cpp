// End-to-end tests of several models and versions in one sil-server: routing
// by model and version, the admin API that loads, warms, promotes and
// unloads them, bad weights files, the memory limit, and a default switch
// under load.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/e2e_support.hpp"

namespace sil::test {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

class ModelsE2E : public E2E {};

constexpr const char* token = "m0d3ls";

json predict_json(http_client& c, const std::string& request_body, int expect = 200) {
  auto r = c.request("POST", "/predict", request_body);
  EXPECT_EQ(r.status, expect) << r.body;
  return json::parse(r.body, nullptr, false);
}

/// /predict's body with a model and version.
std::string body_for(float first, const std::string& model, const std::string& version = "") {
  auto b = features({row(first)});
  if (!model.empty())
    b += ",\"model\":\"" + model + "\"";
  if (!version.empty())
    b += ",\"version\":\"" + version + "\"";
  return b + "}";
}

/// The versions of the listing, by state.
std::set<std::string> versions_of(const json& listing, const std::string& model,
                                  const std::string& state = "") {
  std::set<std::string> out;
  for (const auto& v : listing["versions"])
    if (v["model"] == model && (state.empty() || v["state"] == state))
      out.insert(v["version"].get<std::string>());
  return out;
}

/// Writes the weights of the seed preset with `seed` to a file in the
/// test's temporary directory and returns its path.
std::string export_weights(const std::string& name, int seed) {
  auto path = (std::filesystem::path{SIL_TEST_TMPDIR} / name).string();
  auto [code, err] = run_to_exit(SIL_MODEL_BINARY, {"export", "--out", path, "--preset", "seed",
                                                    "--seed", std::to_string(seed)});
  EXPECT_EQ(code, 0) << err;
  return path;
}

TEST_F(ModelsE2E, ServesSeveralModelsAndVersionsSideBySide) {
  start({"--models.load=name=seed,preset=seed,seed=43; name=churn,preset=seed,seed=7"});
  http_client c{port()};
  // No model named: the default model ("seed", the architecture's name) at
  // its default version (the first one, seed 42).
  auto first = predict_json(c, body(1.0f));
  EXPECT_EQ(first["model"], "seed");
  auto v42 = first["model_version"].get<std::string>();
  EXPECT_EQ(v42.rfind("s42-", 0), 0u) << v42;
  // By declared version, by full version, another model.
  auto v43 = predict_json(c, body_for(1.0f, "seed", "s43"))["model_version"].get<std::string>();
  EXPECT_EQ(v43.rfind("s43-", 0), 0u) << v43;
  EXPECT_EQ(predict_json(c, body_for(1.0f, "seed", v43))["model_version"], v43);
  auto churn = predict_json(c, body_for(1.0f, "churn"));
  EXPECT_EQ(churn["model"], "churn");
  EXPECT_EQ(churn["model_version"].get<std::string>().rfind("s7-", 0), 0u);
  // One input, three versions: each has its own entries, so each version's
  // first answer is a miss and its second a hit, with its own prediction.
  for (const auto& [model, version] :
       std::vector<std::pair<std::string, std::string>>{{"seed", "s42"}, {"seed", "s43"}}) {
    auto a = predict_json(c, body_for(2.0f, model, version));
    auto b = predict_json(c, body_for(2.0f, model, version));
    EXPECT_FALSE(a["cache_hit"].get<bool>()) << version;
    EXPECT_TRUE(b["cache_hit"].get<bool>()) << version;
    EXPECT_EQ(a["prediction"], b["prediction"]) << version;
  }
  EXPECT_NE(predict_json(c, body_for(2.0f, "seed", "s42"))["prediction"],
            predict_json(c, body_for(2.0f, "seed", "s43"))["prediction"]);

  // Unknown names are 404 with a JSON error that lists what exists.
  auto nope = predict_json(c, body_for(1.0f, "nope"), 404);
  EXPECT_EQ(nope["error"]["code"], "not_found");
  EXPECT_NE(nope["error"]["message"].get<std::string>().find("'churn'"), std::string::npos);
  auto old = predict_json(c, body_for(1.0f, "churn", "s8"), 404);
  EXPECT_NE(old["error"]["message"].get<std::string>().find("s7-"), std::string::npos);
  EXPECT_EQ(predict_json(c, features({row(1.0f)}) + ",\"model\":7}", 400)["error"]["code"],
            "bad_request");

  // The Open Inference Protocol routes resolve the same way.
  auto meta = get_json(c, "/v2/models/seed");
  EXPECT_EQ(meta["versions"].size(), 2u);
  EXPECT_EQ(c.request("GET", "/v2/models/churn/versions/s7/ready").status, 200);
  EXPECT_EQ(c.request("GET", "/v2/models/churn/versions/s9").status, 404);
  auto infer = c.request("POST", "/v2/models/seed/versions/s43/infer",
                         R"({"inputs":[{"name":"features","datatype":"FP32","shape":[1,32],"data":)"
                           + row(3.0f) + "}]}");
  ASSERT_EQ(infer.status, 200) << infer.body;
  EXPECT_EQ(json::parse(infer.body)["model_version"], v43);
  EXPECT_EQ(c.request("POST", "/v2/models/nope/infer", "{}").status, 404);

  // Each version has its own counters in /stats and its own series.
  auto stats = get_json(c, "/stats");
  ASSERT_EQ(stats["models"].size(), 3u) << stats["models"].dump();
  std::map<std::string, json> by_version;
  for (const auto& m : stats["models"])
    by_version[m["version"].get<std::string>()] = m;
  EXPECT_TRUE(by_version[v42]["default"].get<bool>());
  EXPECT_FALSE(by_version[v43]["default"].get<bool>());
  EXPECT_GE(by_version[v42]["hits"].get<int>(), 1);
  EXPECT_GE(by_version[v43]["hits"].get<int>(), 1);
  auto metrics = c.request("GET", "/metrics").body;
  EXPECT_NE(metrics.find("sil_model_cache_hits_total{model=\"seed\",policy=\"default\",version=\""
                         + v43 + "\"}"),
            std::string::npos);
  EXPECT_NE(metrics.find("sil_model_version_info{default=\"true\",model=\"churn\""),
            std::string::npos)
    << metrics.substr(0, 200);
}

TEST_F(ModelsE2E, TheAdminApiLoadsWarmsPromotesAndUnloads) {
  start({std::string{"--admin.token="} + token});
  http_client c{port()};
  EXPECT_EQ(admin(c, "GET", "/admin/models", "").status, 401);
  auto before = json::parse(admin(c, "GET", "/admin/models", token).body);
  ASSERT_EQ(before["versions"].size(), 1u) << before.dump();
  auto v42 = before["versions"][0]["version"].get<std::string>();
  EXPECT_EQ(before["versions"][0]["state"], "ready");
  EXPECT_TRUE(before["versions"][0]["default"].get<bool>());

  // Load with four warm-up encodes: ready, not yet the default.
  auto loaded = admin(c, "POST", "/admin/models", token,
                      R"({"name": "seed", "preset": "seed", "seed": 9, "warm": 4})");
  ASSERT_EQ(loaded.status, 201) << loaded.body;
  auto l = json::parse(loaded.body);
  auto v9 = l["version"].get<std::string>();
  EXPECT_EQ(v9.rfind("s9-", 0), 0u);
  EXPECT_EQ(versions_of(l, "seed", "ready"), (std::set<std::string>{v42, v9}));
  for (const auto& v : l["versions"])
    if (v["version"] == v9) {
      EXPECT_EQ(v["warm_encodes"], 4);
      EXPECT_FALSE(v["default"].get<bool>());
    }
  EXPECT_EQ(predict_json(c, body(1.0f))["model_version"], v42);
  EXPECT_EQ(predict_json(c, body_for(1.0f, "seed", "s9"))["model_version"], v9);
  // Loading it twice conflicts.
  EXPECT_EQ(
    admin(c, "POST", "/admin/models", token, R"({"name":"seed","preset":"seed","seed":9})").status,
    409);

  // Promote: the default follows at once.
  auto promoted = admin(c, "PUT", "/admin/models/seed/default", token, R"({"version": "s9"})");
  ASSERT_EQ(promoted.status, 200) << promoted.body;
  EXPECT_EQ(json::parse(promoted.body)["previous_default"], v42);
  EXPECT_EQ(predict_json(c, body(1.0f))["model_version"], v9);
  EXPECT_EQ(get_json(c, "/health")["model_version"], v9);

  // The default cannot go; the old version can, and leaves.
  auto busy = admin(c, "DELETE", "/admin/models/seed/versions/" + v9, token);
  EXPECT_EQ(busy.status, 409) << busy.body;
  auto gone = admin(c, "DELETE", "/admin/models/seed/versions/s42", token);
  ASSERT_EQ(gone.status, 200) << gone.body;
  EXPECT_EQ(versions_of(json::parse(gone.body), "seed", "ready"), std::set<std::string>{v9});
  auto deadline = clock_type::now() + 5s;
  while (!versions_of(json::parse(admin(c, "GET", "/admin/models", token).body), "seed", "draining")
            .empty()
         && clock_type::now() < deadline)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(versions_of(json::parse(admin(c, "GET", "/admin/models", token).body), "seed"),
            std::set<std::string>{v9});
  EXPECT_EQ(predict_json(c, body_for(1.0f, "seed", "s42"), 404)["error"]["code"], "not_found");
  EXPECT_EQ(admin(c, "DELETE", "/admin/models/seed/versions/s42", token).status, 404);

  // Warm again by hand; a body with a typo is refused.
  auto warmed = admin(c, "POST", "/admin/models/seed/versions/s9/warm", token, R"({"encodes":2})");
  EXPECT_EQ(warmed.status, 200) << warmed.body;
  EXPECT_EQ(
    admin(c, "POST", "/admin/models/seed/versions/s9/warm", token, R"({"encode":2})").status, 400);
  EXPECT_EQ(admin(c, "POST", "/admin/models", token, R"({"name":"a b"})").status, 400);
  EXPECT_EQ(admin(c, "POST", "/admin/models", token, R"({"name":"x","preset":"huge"})").status,
            400);
  EXPECT_EQ(admin(c, "PUT", "/admin/models/nope/default", token, R"({"version":"s1"})").status,
            404);
  // Every answer above was a JSON error or listing; the server still serves.
  EXPECT_EQ(predict_json(c, body(5.0f))["model_version"], v9);
}

TEST_F(ModelsE2E, BadWeightsFilesAndTheMemoryLimitAreRefusedAndServingGoesOn) {
  // Room for the first version and one more of the seed preset's size.
  auto one = 69'000 * 4; // a little under the seed preset's bytes
  start({std::string{"--admin.token="} + token,
         "--models.max-bytes=" + std::to_string(2 * one + one / 2)});
  http_client c{port()};
  auto good = export_weights("models_e2e_good.bin", 5);
  auto cut = export_weights("models_e2e_cut.bin", 6);
  std::filesystem::resize_file(cut, std::filesystem::file_size(cut) / 3);

  auto truncated
    = admin(c, "POST", "/admin/models", token, R"({"name":"seed","weights":")" + cut + "\"}");
  EXPECT_EQ(truncated.status, 422) << truncated.body;
  EXPECT_EQ(json::parse(truncated.body)["error"]["code"], "unprocessable");
  auto missing = admin(c, "POST", "/admin/models", token,
                       R"({"name":"seed","weights":")" + good + ".absent\"}");
  EXPECT_EQ(missing.status, 422) << missing.body;
  // A seed-shaped file declared as the base preset.
  auto shape = admin(c, "POST", "/admin/models", token,
                     R"({"name":"seed","preset":"base","weights":")" + good + "\"}");
  EXPECT_EQ(shape.status, 422) << shape.body;
  EXPECT_NE(json::parse(shape.body)["error"]["message"].get<std::string>().find("shape"),
            std::string::npos)
    << shape.body;
  EXPECT_EQ(predict_json(c, body(1.0f))["model_version"].get<std::string>().rfind("s42-", 0), 0u);

  // The good file loads; a third version would pass the limit.
  auto loaded
    = admin(c, "POST", "/admin/models", token, R"({"name":"other","weights":")" + good + "\"}");
  ASSERT_EQ(loaded.status, 201) << loaded.body;
  EXPECT_EQ(
    predict_json(c, body_for(1.0f, "other"))["model_version"].get<std::string>().rfind("s5-", 0),
    0u);
  auto full = admin(c, "POST", "/admin/models", token, R"({"name":"third","preset":"seed"})");
  EXPECT_EQ(full.status, 409) << full.body;
  EXPECT_NE(json::parse(full.body)["error"]["message"].get<std::string>().find("models.max-bytes"),
            std::string::npos);
  auto listing = json::parse(admin(c, "GET", "/admin/models", token).body);
  EXPECT_EQ(listing["versions"].size(), 2u);
  EXPECT_LE(listing["bytes"].get<std::int64_t>(), listing["max_bytes"].get<std::int64_t>());
  // Unloading the other model makes room again.
  ASSERT_EQ(admin(c, "DELETE", "/admin/models/other/versions/s5", token).status, 200);
  EXPECT_EQ(admin(c, "POST", "/admin/models", token, R"({"name":"third","preset":"seed"})").status,
            201);
}

// The default switch under 300 requests per second: no request fails, and
// none is answered by the wrong version. A request sent before the switch
// began is answered by the old version, one sent after it returned by the
// new one; the old version then drains and unloads.
TEST_F(ModelsE2E, HotSwapUnderLoadFailsNothingAndTheOldVersionDrains) {
  start({std::string{"--admin.token="} + token, "--http.max-inflight=4096"});
  http_client ctl{port()};
  auto loaded = admin(ctl, "POST", "/admin/models", token,
                      R"({"name":"seed","preset":"seed","seed":77,"warm":8})");
  ASSERT_EQ(loaded.status, 201) << loaded.body;
  auto v_new = json::parse(loaded.body)["version"].get<std::string>();
  auto v_old = predict_json(ctl, body(0.5f))["model_version"].get<std::string>();
  ASSERT_NE(v_new, v_old);

  struct answer {
    clock_type::time_point sent;
    int status;
    std::string version;
  };
  std::mutex mu;
  std::vector<answer> answers;
  std::atomic<bool> stop{false};
  constexpr int clients = 4;
  constexpr auto gap = std::chrono::microseconds{1'000'000 * clients / 300};
  std::vector<std::thread> load;
  for (int t = 0; t < clients; ++t)
    load.emplace_back([&, t] {
      http_client c{port()};
      auto next = clock_type::now() + gap * t / clients;
      for (int i = 0; !stop.load(); ++i) {
        std::this_thread::sleep_until(next);
        next += gap;
        // A mix of repeated prefixes (hits) and new ones (misses).
        auto b = body(static_cast<float>((t * 7 + i) % 40), static_cast<float>(i % 3));
        auto sent = clock_type::now();
        auto r = c.request("POST", "/predict", b);
        auto j = json::parse(r.body, nullptr, false);
        std::lock_guard<std::mutex> guard{mu};
        answers.push_back({sent, r.status,
                           j.is_object() && j.contains("model_version")
                             ? j["model_version"].get<std::string>()
                             : std::string{"?"}});
      }
    });
  std::this_thread::sleep_for(1500ms);
  auto switch_begin = clock_type::now();
  auto swapped
    = admin(ctl, "PUT", "/admin/models/seed/default", token, "{\"version\":\"" + v_new + "\"}");
  auto switch_end = clock_type::now();
  ASSERT_EQ(swapped.status, 200) << swapped.body;
  std::this_thread::sleep_for(1000ms);
  auto unloaded = admin(ctl, "DELETE", "/admin/models/seed/versions/" + v_old, token);
  ASSERT_EQ(unloaded.status, 200) << unloaded.body;
  std::this_thread::sleep_for(1000ms);
  stop = true;
  for (auto& th : load)
    th.join();

  std::size_t failed = 0, wrong = 0, before = 0, after = 0;
  for (const auto& a : answers) {
    if (a.status != 200) {
      ++failed;
      continue;
    }
    if (a.sent < switch_begin) {
      ++before;
      wrong += a.version != v_old;
    } else if (a.sent >= switch_end) {
      ++after;
      wrong += a.version != v_new;
    } else {
      wrong += a.version != v_old && a.version != v_new;
    }
  }
  // About 3.5 s at 300/s; a slow (sanitizer) build sends fewer, never none.
  EXPECT_GE(answers.size(), 300u);
  EXPECT_EQ(failed, 0u);
  EXPECT_EQ(wrong, 0u);
  EXPECT_GE(before, 100u);
  EXPECT_GE(after, 100u);
  std::printf("hot swap: %zu requests, %zu before the switch, %zu after, %zu failed, %zu from "
              "the wrong version\n",
              answers.size(), before, after, failed, wrong);
  // The old version drained: nothing holds it, it is gone, and says so.
  auto deadline = clock_type::now() + 5s;
  while (versions_of(json::parse(admin(ctl, "GET", "/admin/models", token).body), "seed")
           != std::set<std::string>{v_new}
         && clock_type::now() < deadline)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(versions_of(json::parse(admin(ctl, "GET", "/admin/models", token).body), "seed"),
            std::set<std::string>{v_new});
}

} // namespace
} // namespace sil::test

namespace sil::test {
namespace {

/// The /stats lane of `policy` for the default model's default version.
json lane_stats(http_client& c, const std::string& policy) {
  auto stats = get_json(c, "/stats");
  for (const auto& m : stats["models"])
    if (m["policy"] == policy)
      return m;
  return nullptr;
}

/// A body whose first value picks the prefix and whose later values
/// scatter around the prefix's own (N(0, 0.15^2) per value): far enough
/// apart that reusing one request's answer for another is often off by
/// more than the service's tolerance.
std::string scattered_body(int prefix, std::mt19937& rng) {
  std::normal_distribution<double> noise{0.0, 0.15};
  std::string s = "{\"features\":[[" + std::to_string(prefix) + ",1,1,1";
  for (int i = 4; i < 32; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, ",%g", std::sin(i * 1.3 + prefix) + noise(rng));
    s += buf;
  }
  return s + "]]}";
}

TEST_F(ModelsE2E, ACanarySplitsByPrefixAndAnOperatorPromotesIt) {
  start({std::string{"--admin.token="} + token, "--cache.ttl-seconds=30"});
  http_client c{port()};
  const std::string canary = "/admin/models/seed/versions/s42/canary";
  // Refusals: bad policy values, unknown fields, an unknown version.
  EXPECT_EQ(
    admin(c, "POST", canary, token, R"({"policy":{"name":"short","ttl_seconds":-1}})").status, 400);
  EXPECT_EQ(admin(c, "POST", canary, token, R"({"policy":{"name":"short","ttl":5}})").status, 400);
  EXPECT_EQ(admin(c, "POST", canary, token, R"({"policy":{"name":"default"}})").status, 400);
  EXPECT_EQ(admin(c, "POST", canary, token, R"({"policy":{"name":"x"},"share":1.5})").status, 400);
  EXPECT_EQ(
    admin(c, "POST", "/admin/models/seed/versions/s9/canary", token, R"({"policy":{"name":"x"}})")
      .status,
    404);
  EXPECT_EQ(admin(c, "POST", canary + "/promote", token).status, 404); // none runs
  auto started = admin(c, "POST", canary, token,
                       R"({"policy":{"name":"short-ttl","ttl_seconds":5},"share":0.5})");
  ASSERT_EQ(started.status, 200) << started.body;
  auto running = json::parse(started.body)["canaries"]["running"];
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0]["candidate"]["ttl_seconds"], 5.0);
  EXPECT_EQ(running[0]["candidate"]["prefix_k"], 4); // kept from the incumbent
  EXPECT_EQ(admin(c, "POST", canary, token, R"({"policy":{"name":"other"}})").status, 409);

  // Distinct prefixes spread over both policies; one prefix stays on one.
  for (int p = 0; p < 200; ++p)
    ASSERT_EQ(c.request("POST", "/predict", body(static_cast<float>(p) + 0.5f)).status, 200);
  auto a = lane_stats(c, "default");
  auto b = lane_stats(c, "short-ttl");
  ASSERT_TRUE(a.is_object() && b.is_object());
  EXPECT_EQ(b["role"], "canary");
  auto ra = a["requests"].get<int>();
  auto rb = b["requests"].get<int>();
  EXPECT_EQ(ra + rb, 200);
  EXPECT_GT(rb, 60);
  EXPECT_GT(ra, 60);
  for (int i = 0; i < 50; ++i)
    c.request("POST", "/predict", body(1000.5f, static_cast<float>(i)));
  auto a2 = lane_stats(c, "default")["requests"].get<int>();
  auto b2 = lane_stats(c, "short-ttl")["requests"].get<int>();
  EXPECT_TRUE((a2 == ra + 50 && b2 == rb) || (a2 == ra && b2 == rb + 50)) << a2 << " " << b2;
  // /agent and /metrics show both sides.
  auto agent = get_json(c, "/agent", token);
  ASSERT_EQ(agent["canaries"]["running"].size(), 1u) << agent.dump();
  EXPECT_EQ(agent["canaries"]["running"][0]["b"]["policy"], "short-ttl");
  auto metrics = c.request("GET", "/metrics").body;
  EXPECT_NE(metrics.find("policy=\"short-ttl\",role=\"canary\""), std::string::npos);

  // The operator promotes: the candidate's policy serves every prefix.
  auto promoted = admin(c, "POST", canary + "/promote", token);
  ASSERT_EQ(promoted.status, 200) << promoted.body;
  auto listing = json::parse(promoted.body);
  EXPECT_TRUE(listing["canaries"]["running"].empty());
  auto decisions = listing["canaries"]["decisions"];
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_EQ(decisions[0]["action"], "start");
  EXPECT_EQ(decisions[1]["action"], "promote");
  EXPECT_TRUE(decisions[1]["manual"].get<bool>());
  EXPECT_TRUE(lane_stats(c, "default").is_null());
  EXPECT_DOUBLE_EQ(get_json(c, "/stats")["models"][0]["policy"] == "short-ttl" ? 1.0 : 0.0, 1.0);
  EXPECT_DOUBLE_EQ(get_json(c, "/stats")["cache"]["ttl_seconds"].get<double>(), 5.0);
  // An abort of a canary that no longer runs is 404.
  EXPECT_EQ(admin(c, "DELETE", canary, token).status, 404);
}

TEST_F(ModelsE2E, ACanaryThatBreachesTheBudgetIsRolledBackByItself) {
  start({std::string{"--admin.token="} + token, "--audit.rate=1", "--audit.max-share=1",
         "--audit.per-second=0", "--audit.max-encoder-share=1", "--canary.interval=0.2"});
  http_client c{port()};
  // A guard that calls an answer wrong only beyond 0.3 and certifies reuse
  // up to 30% wrong: by the service's tolerance (0.05) it serves wrong
  // answers, and the judge counts them by that tolerance.
  auto started = admin(c, "POST", "/admin/models/seed/versions/s42/canary", token,
                       R"({"policy":{"name":"loose","max_wrong_rate":0.3,"tolerance":0.3},)"
                       R"("share":0.5})");
  ASSERT_EQ(started.status, 200) << started.body;
  json listing;
  std::mt19937 rng{42};
  auto deadline = clock_type::now() + 30s;
  while (clock_type::now() < deadline) {
    for (int p = 0; p < 20; ++p)
      ASSERT_EQ(c.request("POST", "/predict", scattered_body(p, rng)).status, 200);
    listing = json::parse(admin(c, "GET", "/admin/models", token).body);
    if (listing["canaries"]["running"].empty())
      break;
  }
  ASSERT_TRUE(listing["canaries"]["running"].empty()) << listing.dump();
  auto last = listing["canaries"]["decisions"].back();
  EXPECT_EQ(last["action"], "rollback");
  EXPECT_FALSE(last["manual"].get<bool>());
  EXPECT_NE(last["reason"].get<std::string>().find("breaches the error budget"), std::string::npos)
    << last.dump();
  EXPECT_GT(last["figures"]["b_lower"].get<double>(), 0.01);
  // The incumbent serves everything again.
  EXPECT_TRUE(lane_stats(c, "loose").is_null());
  EXPECT_TRUE(lane_stats(c, "default").is_object());
}

} // namespace
} // namespace sil::test
