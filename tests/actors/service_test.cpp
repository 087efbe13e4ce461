// Actor-level integration tests of the service on CAF's deterministic test
// coordinator: every message is delivered by hand (sched.run()) and timers
// run on a simulated clock (advance_time()), so TTL and agent tests need no
// sleeping and are exactly repeatable.
#include "tests/support/caf_gtest.hpp"

#include <caf/all.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "actors/encoder_worker.hpp"
#include "actors/service.hpp"
#include "config/sil_config.hpp"
#include "core/build_info.hpp"

namespace sil {
namespace {

using namespace std::chrono_literals;

predict_request make_request(float first, float last = 0.0f, std::uint32_t rows = 1) {
  predict_request r;
  r.features.assign(std::size_t{32} * rows, 0.0f);
  r.features[0] = first;
  r.features.back() = last;
  r.rows = rows;
  return r;
}

/// The server's configuration, with the message types announced as main()
/// does before it builds its actor system.
struct service_config : sil_config {
  service_config() {
    register_message_types(*this);
  }
};

struct ServiceTest : ::testing::Test, test_coordinator_fixture<service_config> {
  service_settings settings;
  service_handles svc;
  model m;
  bool started = false;

  ServiceTest() {
    settings.model_preset = "seed";
    settings.workers = 2;
    settings.cache_max_size = 8;
    settings.cache_ttl_seconds = 10.0;
    settings.cache_sweep_interval_seconds = 1.0;
    settings.agent_interval_seconds = 1.0;
    settings.audit_rate = 0.0; // audits draw random numbers; tests that want them opt in
  }

  ~ServiceTest() override {
    if (started) {
      stop_service(svc);
      sched.run();
    }
  }

  void start(service_options opts = {}) {
    opts.detached_workers = false; // everything on the deterministic scheduler
    auto mm = make_model(settings);
    ASSERT_TRUE(mm) << mm.error().message;
    m = *mm;
    ASSERT_TRUE(validate(settings, m.input_dim()));
    auto h = start_service(sys, settings, m, std::move(opts));
    ASSERT_TRUE(h) << sys.render(h.error());
    svc = *h;
    started = true;
    sched.run();
  }

  /// Sends one prediction and returns its answer after running the system.
  caf::expected<predict_reply> predict(const predict_request& req) {
    auto hdl = self->request(svc.ingress, caf::infinite, predict_atom::value, req);
    sched.run();
    if (self->mailbox().empty()) // never block: a missing reply is a failure
      return caf::make_error(caf::sec::request_timeout);
    caf::expected<predict_reply> out{caf::sec::bad_function_call};
    hdl.receive([&](predict_reply& r) { out = std::move(r); },
                [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  /// Requests `T` from `dst` and runs the scheduler (never the clock).
  template <class T, class Handle, class... Ts>
  T ask(const Handle& dst, Ts... xs) {
    return ask_and_run<T>(*this, dst, xs...);
  }

  cache_snapshot cache_stats() {
    return ask<cache_snapshot>(svc.cache, stats_atom::value);
  }

  pool_snapshot pool_stats() {
    return ask<pool_snapshot>(svc.pool, stats_atom::value);
  }

  /// The prediction the model gives for `req`, computed directly.
  float direct(const predict_request& req) {
    auto e = m.encode({req.features.data(), req.rows});
    return m.head(*e);
  }
};

// With the guard off (the seed's pure prefix semantics), any input that
// shares the key reuses the entry.
TEST_F(ServiceTest, MissThenHitForTheSamePrefixWithADifferentSuffix) {
  settings.risk_guard = false;
  start();
  auto a = make_request(1.0f, 0.0f);
  auto b = make_request(1.0f, 5.0f); // same first 4 values, different suffix
  auto ra = predict(a);
  ASSERT_TRUE(ra) << sys.render(ra.error());
  EXPECT_FALSE(ra->cache_hit);
  EXPECT_EQ(ra->source, embedding_source::encoder);
  EXPECT_FLOAT_EQ(ra->prediction, direct(a));
  auto rb = predict(b);
  ASSERT_TRUE(rb);
  EXPECT_TRUE(rb->cache_hit);
  EXPECT_EQ(rb->source, embedding_source::cache);
  // A hit reuses a's embedding: b's prediction equals a's, not b's own.
  EXPECT_FLOAT_EQ(rb->prediction, ra->prediction);
  EXPECT_NE(direct(b), direct(a));
  EXPECT_EQ(rb->model_version, m.version());
  auto s = cache_stats();
  EXPECT_EQ(s.stats.hits, 1u);
  EXPECT_EQ(s.stats.misses, 1u);
  EXPECT_EQ(s.stats.inserts, 1u);
  EXPECT_EQ(pool_stats().items, 1u);
}

TEST_F(ServiceTest, EntryExpiresAfterTheTtlOnTheSimulatedClock) {
  settings.cache_ttl_seconds = 2.5;
  start();
  auto req = make_request(2.0f);
  ASSERT_FALSE(predict(req)->cache_hit);
  advance_time(2s);
  sched.run();
  auto hit = predict(req);
  EXPECT_TRUE(hit->cache_hit);
  EXPECT_EQ(hit->cache_age_ns, std::chrono::nanoseconds{2s}.count());
  advance_time(1s); // now 3 s old: past the TTL; the sweep removes it
  sched.run();
  auto s = cache_stats();
  EXPECT_EQ(s.stats.expirations, 1u);
  EXPECT_EQ(s.stats.size, 0u);
  EXPECT_EQ(s.stats.evictions, 0u);
  auto again = predict(req);
  EXPECT_FALSE(again->cache_hit);
  EXPECT_EQ(pool_stats().items, 2u);
}

TEST_F(ServiceTest, MaxAgeRefusesOlderEntriesAndReportsTheAge) {
  start();
  auto req = make_request(11.0f);
  ASSERT_FALSE(predict(req)->cache_hit);
  advance_time(3s);
  sched.run();
  auto strict = req;
  strict.max_age_ms = 2000; // the entry is 3 s old: refused, computed fresh
  auto fresh = predict(strict);
  EXPECT_FALSE(fresh->cache_hit);
  advance_time(1s);
  sched.run();
  auto lenient = req;
  lenient.max_age_ms = 5000; // the fresh result replaced it 1 s ago
  auto hit = predict(lenient);
  EXPECT_TRUE(hit->cache_hit);
  EXPECT_EQ(hit->cache_age_ns, std::chrono::nanoseconds{1s}.count());
}

TEST_F(ServiceTest, EvictionAtCapacity) {
  settings.cache_admission = "lru"; // the seed's policy: recency alone decides
  settings.cache_max_size = 2;
  start();
  ASSERT_FALSE(predict(make_request(1))->cache_hit);
  ASSERT_FALSE(predict(make_request(2))->cache_hit);
  ASSERT_FALSE(predict(make_request(3))->cache_hit); // evicts prefix 1
  EXPECT_TRUE(predict(make_request(3))->cache_hit);
  EXPECT_TRUE(predict(make_request(2))->cache_hit);
  EXPECT_FALSE(predict(make_request(1))->cache_hit); // evicts prefix 3 (LRU)
  auto s = cache_stats();
  EXPECT_EQ(s.stats.evictions, 2u);
  EXPECT_EQ(s.stats.size, 2u);
  EXPECT_EQ(s.stats.expirations, 0u);
}

TEST_F(ServiceTest, DisabledCacheComputesFresh) {
  settings.cache_enabled = false;
  start();
  auto a = make_request(4.0f, 0.0f);
  auto b = make_request(4.0f, 3.0f);
  for (int i = 0; i < 2; ++i) {
    auto ra = predict(a);
    ASSERT_TRUE(ra);
    EXPECT_FALSE(ra->cache_hit);
    EXPECT_FLOAT_EQ(ra->prediction, direct(a));
  }
  auto rb = predict(b);
  EXPECT_FALSE(rb->cache_hit);
  EXPECT_FLOAT_EQ(rb->prediction, direct(b)); // its own answer, not a's
  auto s = cache_stats();
  EXPECT_FALSE(s.stats.enabled);
  EXPECT_EQ(s.stats.bypasses, 3u);
  EXPECT_EQ(s.stats.hits, 0u);
  EXPECT_EQ(pool_stats().items, 3u);
  EXPECT_FALSE(svc.board->cache_enabled.load());
}

TEST_F(ServiceTest, UseCacheFalseNeitherReadsNorWritesTheCache) {
  start();
  auto req = make_request(5.0f);
  req.use_cache = false;
  EXPECT_FALSE(predict(req)->cache_hit);
  EXPECT_FALSE(predict(req)->cache_hit);
  auto s = cache_stats();
  EXPECT_EQ(s.stats.inserts, 0u);
  EXPECT_EQ(s.stats.hits + s.stats.misses + s.stats.bypasses, 0u);
}

TEST_F(ServiceTest, SingleFlightFiftyConcurrentMissesEncodeOnce) {
  settings.risk_guard = false; // different suffixes join only without the guard
  start();
  std::vector<decltype(self->request(svc.ingress, caf::infinite, predict_atom::value,
                                     predict_request{}))>
    handles;
  auto req = make_request(6.0f);
  for (int i = 0; i < 50; ++i) {
    req.features.back() = static_cast<float>(i); // same prefix, different suffixes
    handles.push_back(self->request(svc.ingress, caf::infinite, predict_atom::value, req));
  }
  sched.run();
  int fresh = 0;
  int joined = 0;
  float first = -1.0f;
  for (auto& h : handles)
    h.receive(
      [&](predict_reply& r) {
        if (r.source == embedding_source::encoder)
          ++fresh;
        if (r.source == embedding_source::single_flight)
          ++joined;
        if (first < 0)
          first = r.prediction;
        EXPECT_FLOAT_EQ(r.prediction, first);
      },
      [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  EXPECT_EQ(fresh, 1);
  EXPECT_EQ(joined, 49);
  EXPECT_EQ(pool_stats().items, 1u);
  auto s = cache_stats();
  EXPECT_EQ(s.single_flight_joins, 49u);
  EXPECT_EQ(s.in_flight, 0u);
}

TEST_F(ServiceTest, AnEncodeWhoseClientHasGoneNeverReachesAWorker) {
  start();
  auto req = make_request(7.0f);
  auto gone = std::make_shared<cancel_flag>();
  gone->cancel();
  req.cancel = gone;
  auto r = predict(req);
  ASSERT_FALSE(r);
  EXPECT_EQ(from_caf_error(r.error()).code, errc::cancelled);
  auto p = pool_stats();
  EXPECT_EQ(p.items, 0u);
  EXPECT_EQ(p.cancelled, 1u);
  EXPECT_EQ(cache_stats().in_flight, 0u); // the abandoned flight is gone too
  // A client that stays gets its answer as usual.
  auto ok = predict(make_request(7.0f));
  ASSERT_TRUE(ok) << sys.render(ok.error());
  EXPECT_EQ(pool_stats().items, 1u);
}

TEST_F(ServiceTest, AJoinerKeepsTheSharedResultWhenTheLeadersClientLeaves) {
  settings.risk_guard = false;
  start();
  auto leader_flag = std::make_shared<cancel_flag>();
  auto joiner_flag = std::make_shared<cancel_flag>();
  auto a = make_request(8.0f, 1.0f);
  a.cancel = leader_flag;
  auto b = make_request(8.0f, 2.0f); // same key: joins the leader's encode
  b.cancel = joiner_flag;
  auto ha = self->request(svc.ingress, caf::infinite, predict_atom::value, a);
  auto hb = self->request(svc.ingress, caf::infinite, predict_atom::value, b);
  leader_flag->cancel(); // the leader's client disconnects before any encode
  sched.run();
  ha.receive([](predict_reply&) {}, [](caf::error&) {});
  bool joined = false;
  hb.receive([&](predict_reply& r) { joined = r.source == embedding_source::single_flight; },
             [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  EXPECT_TRUE(joined);
  auto p = pool_stats();
  EXPECT_EQ(p.items, 1u);
  EXPECT_EQ(p.cancelled, 0u);
}

TEST_F(ServiceTest, WhenEveryClientOfASharedEncodeLeavesItIsDropped) {
  settings.risk_guard = false;
  start();
  std::vector<std::shared_ptr<cancel_flag>> flags;
  std::vector<decltype(self->request(svc.ingress, caf::infinite, predict_atom::value,
                                     predict_request{}))>
    handles;
  for (int i = 0; i < 3; ++i) {
    auto req = make_request(9.0f, static_cast<float>(i));
    flags.push_back(std::make_shared<cancel_flag>());
    req.cancel = flags.back();
    handles.push_back(self->request(svc.ingress, caf::infinite, predict_atom::value, req));
  }
  for (auto& f : flags)
    f->cancel();
  sched.run();
  int cancelled = 0;
  for (auto& h : handles)
    h.receive([](predict_reply&) {},
              [&](caf::error& e) { cancelled += from_caf_error(e).code == errc::cancelled; });
  EXPECT_EQ(cancelled, 3); // the leader, then each waiter promoted in turn
  EXPECT_EQ(pool_stats().items, 0u);
  EXPECT_EQ(cache_stats().in_flight, 0u);
}

TEST_F(ServiceTest, AnEncodeThatCannotMeetItsDeadlineIsRefusedAtOnce) {
  start();
  auto late = make_request(10.0f);
  late.deadline = std::chrono::steady_clock::now() - 1ms; // already past
  auto r = predict(late);
  ASSERT_FALSE(r);
  auto e = from_caf_error(r.error());
  EXPECT_EQ(e.code, errc::overloaded);
  EXPECT_NE(e.message.find("deadline"), std::string::npos) << e.message;
  EXPECT_EQ(pool_stats().shed, 1u);
  EXPECT_EQ(pool_stats().items, 0u);
  // A deadline the encoder can meet is no obstacle, and the pool learns its
  // speed from the batch.
  auto ok = make_request(11.0f);
  ok.deadline = std::chrono::steady_clock::now() + 60s;
  auto r2 = predict(ok);
  ASSERT_TRUE(r2) << sys.render(r2.error());
  auto p = pool_stats();
  EXPECT_EQ(p.items, 1u);
  EXPECT_GT(p.rows_per_second, 0.0);
  EXPECT_EQ(p.queued_rows, 0u);
}

TEST_F(ServiceTest, WithoutSingleFlightEveryConcurrentMissEncodes) {
  settings.cache_single_flight = false;
  start();
  std::vector<decltype(self->request(svc.ingress, caf::infinite, predict_atom::value,
                                     predict_request{}))>
    handles;
  auto req = make_request(6.0f);
  for (int i = 0; i < 20; ++i)
    handles.push_back(self->request(svc.ingress, caf::infinite, predict_atom::value, req));
  sched.run();
  int fresh = 0;
  for (auto& h : handles)
    h.receive(
      [&](predict_reply& r) {
        EXPECT_FALSE(r.cache_hit);
        fresh += r.source == embedding_source::encoder ? 1 : 0;
      },
      [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  EXPECT_EQ(fresh, 20);
  EXPECT_EQ(pool_stats().items, 20u);
  auto s = cache_stats();
  EXPECT_FALSE(s.single_flight);
  EXPECT_EQ(s.single_flight_joins, 0u);
  EXPECT_EQ(s.in_flight, 0u);
  EXPECT_EQ(s.stats.size, 1u);          // the 20 results went to one entry
  EXPECT_TRUE(predict(req)->cache_hit); // and later requests reuse it
}

TEST_F(ServiceTest, ConcurrentMissesOfDifferentPrefixesAreBatched) {
  settings.workers = 1;
  start();
  std::vector<decltype(self->request(svc.ingress, caf::infinite, predict_atom::value,
                                     predict_request{}))>
    handles;
  for (int i = 0; i < 10; ++i)
    handles.push_back(self->request(svc.ingress, caf::infinite, predict_atom::value,
                                    make_request(100.0f + static_cast<float>(i))));
  sched.run();
  for (auto& h : handles)
    h.receive([](predict_reply& r) { EXPECT_FALSE(r.cache_hit); },
              [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  auto p = pool_stats();
  EXPECT_EQ(p.items, 10u);
  // The first miss occupies the only worker; the other nine leave as one batch.
  EXPECT_EQ(p.batches, 2u);
  EXPECT_EQ(p.max_batch_seen, 9u);
}

/// A worker that dies on its first batch without answering. (The unused
/// argument works around CAF 0.17 dereferencing a null pointer to an empty
/// argument tuple when a function actor is spawned without arguments, which
/// UBSan reports.)
encoder_worker_actor::behavior_type dying_worker(encoder_worker_actor::pointer self, int) {
  return {
    [=](encode_atom, const encode_batch&) -> caf::result<encoded_batch> {
      auto rp = self->make_response_promise<encoded_batch>();
      self->quit(caf::exit_reason::kill);
      return rp; // never delivered: the requester sees an error
    },
  };
}

TEST_F(ServiceTest, AWorkerKilledDuringARequestCostsNoFailedRequest) {
  settings.workers = 1;
  int made = 0;
  service_options opts;
  opts.factory = [&](caf::local_actor* parent, std::size_t) -> encoder_worker_actor {
    // The first worker dies mid-request; its replacement works.
    if (made++ == 0)
      return parent->spawn(dying_worker, 0);
    return parent->spawn(encoder_worker, m);
  };
  start(std::move(opts));
  auto req = make_request(7.0f);
  auto r = predict(req);
  ASSERT_TRUE(r) << sys.render(r.error());
  EXPECT_FALSE(r->cache_hit);
  EXPECT_FLOAT_EQ(r->prediction, direct(req));
  auto p = pool_stats();
  EXPECT_EQ(p.retries, 1u);
  EXPECT_EQ(p.restarts, 1u);
  EXPECT_EQ(p.failures, 0u);
  EXPECT_EQ(p.workers, 1u);
  EXPECT_EQ(made, 2);
  // The replacement keeps serving.
  EXPECT_TRUE(predict(make_request(8.0f)));
}

TEST_F(ServiceTest, EveryWorkerFailingGivesAnEncoderTimeoutNotAHang) {
  settings.workers = 1;
  settings.encoder_max_attempts = 3;
  service_options opts;
  opts.factory = [](caf::local_actor* parent, std::size_t) -> encoder_worker_actor {
    return parent->spawn(dying_worker, 0);
  };
  start(std::move(opts));
  auto r = predict(make_request(9.0f));
  ASSERT_FALSE(r);
  auto e = from_caf_error(r.error());
  EXPECT_EQ(e.code, errc::encoder_timeout);
  EXPECT_EQ(pool_stats().failures, 1u);
  // The failed leader abandoned its key: the next request leads again.
  EXPECT_EQ(cache_stats().in_flight, 0u);
}

TEST_F(ServiceTest, TheCacheIsNotADependency) {
  start();
  caf::anon_send_exit(svc.cache, caf::exit_reason::kill);
  sched.run();
  auto req = make_request(10.0f);
  auto r = predict(req);
  ASSERT_TRUE(r) << sys.render(r.error());
  EXPECT_FALSE(r->cache_hit);
  EXPECT_FLOAT_EQ(r->prediction, direct(req));
}

TEST_F(ServiceTest, StatsAreCountedCorrectly) {
  settings.cache_max_size = 2;
  start();
  predict(make_request(1)); // miss
  predict(make_request(1)); // hit
  predict(make_request(1)); // hit
  predict(make_request(2)); // miss
  predict(make_request(3)); // miss, evicts 1
  auto off = make_request(2);
  off.use_cache = false;
  predict(off); // not counted by the cache
  auto s = cache_stats();
  EXPECT_EQ(s.stats.hits, 2u);
  EXPECT_EQ(s.stats.misses, 3u);
  EXPECT_EQ(s.stats.inserts, 3u);
  EXPECT_EQ(s.stats.evictions, 1u);
  EXPECT_EQ(s.stats.size, 2u);
  EXPECT_EQ(s.stats.max_size, 2u);
  EXPECT_DOUBLE_EQ(s.stats.hit_rate(), 0.4);
  EXPECT_EQ(s.stats.ttl, 10s);
  EXPECT_EQ(s.prefix_k, 4u);
  EXPECT_EQ(pool_stats().items, 4u);
  // The metrics aggregator counts outcomes reported by the transport.
  for (int i = 0; i < 4; ++i) {
    request_outcome o;
    o.route = route_label::predict;
    o.cache_hit = i % 2 == 0;
    o.source = o.cache_hit ? embedding_source::cache : embedding_source::encoder;
    o.latency_ns = static_cast<std::int64_t>(i + 1) * 1000000;
    caf::anon_send(svc.metrics, outcome_atom::value, o);
  }
  request_outcome bad;
  bad.route = route_label::predict;
  bad.status = 400;
  bad.error_code = static_cast<std::uint8_t>(errc::bad_request);
  caf::anon_send(svc.metrics, outcome_atom::value, bad);
  sched.run();
  auto snap = ask<service_snapshot>(svc.metrics, stats_atom::value);
  EXPECT_EQ(snap.requests, 5u);
  EXPECT_EQ(snap.errors, 1u);
  EXPECT_EQ(snap.latency.count, 4u);
  EXPECT_DOUBLE_EQ(snap.latency.p50, 2.0);
  EXPECT_DOUBLE_EQ(snap.latency.max, 4.0);
  EXPECT_EQ(snap.hit_latency.count, 2u);
  EXPECT_DOUBLE_EQ(snap.hit_latency.mean, 2.0); // 1 ms and 3 ms
  EXPECT_EQ(snap.cache.stats.hits, 2u);
  EXPECT_EQ(snap.pool.items, 4u);
  EXPECT_EQ(snap.model_version, m.version());
}

TEST_F(ServiceTest, EmbeddingsSurviveSerialization) {
  // Workers move to other nodes (cluster roles): their messages must round-trip.
  start();
  encode_batch batch;
  batch.items.push_back(encode_item{make_request(1.0f).features, 1, nullptr, {}, {}});
  auto copy = roundtrip(batch);
  ASSERT_EQ(copy.items.size(), 1u);
  EXPECT_EQ(copy.items[0].features, batch.items[0].features);
  encoded_batch out;
  out.embeddings.push_back(embedding::copy_of(std::vector<float>{1.5f, -2.0f, 3.25f}));
  auto back = roundtrip(out);
  ASSERT_EQ(back.embeddings.size(), 1u);
  EXPECT_EQ(back.embeddings[0], out.embeddings[0]);
  EXPECT_FALSE(back.embeddings[0].same_block(out.embeddings[0]));
}

// The registry refuses a worker whose handle carries the gateway's own node
// id: on a real cluster that is two processes CAF cannot tell apart (the
// hazard of host networking with PID 1 in every container).
TEST_F(ServiceTest, AJoinWithTheGatewaysOwnNodeIdIsRefused) {
  start();
  auto before = pool_stats().workers;
  auto w = sys.spawn(encoder_worker, m);
  auto hdl
    = self->request(svc.pool, caf::infinite, join_atom::value, std::string{"w9"}, m.version(), w);
  sched.run();
  ASSERT_FALSE(self->mailbox().empty());
  bool refused = false;
  hdl.receive([&](std::uint64_t) { ADD_FAILURE() << "joined"; },
              [&](caf::error& e) {
                auto err = from_caf_error(e);
                EXPECT_EQ(err.code, errc::forbidden);
                EXPECT_NE(err.message.find("gateway's own node id"), std::string::npos)
                  << err.message;
                EXPECT_NE(err.message.find("--pid=host"), std::string::npos) << err.message;
                refused = true;
              });
  EXPECT_TRUE(refused);
  auto after = pool_stats();
  EXPECT_EQ(after.workers, before);
  for (const auto& n : after.nodes)
    EXPECT_NE(n.name, "w9");
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  sched.run();
}

// /metrics follows Prometheus practice: node series are labelled by node
// only, encodes are a counter, the state is one 0/1 series per state; the
// process_* family and the build info are there; latency buckets start in
// microseconds.
TEST_F(ServiceTest, MetricsNodeSeriesProcessFamilyAndBuildInfo) {
  settings.node_name = "gw-test";
  start();
  predict(make_request(1.0f));
  predict(make_request(2.0f));
  auto text = ask<std::string>(svc.metrics, metrics_atom::value);
  auto has = [&](const std::string& s) { return text.find(s) != std::string::npos; };
  EXPECT_TRUE(has("# TYPE sil_node_encodes_total counter\n")) << text;
  EXPECT_TRUE(has("sil_node_encodes_total{node=\"gw-test\"} 2\n"));
  EXPECT_TRUE(has("sil_node_up{node=\"gw-test\"} 1\n"));
  EXPECT_TRUE(has("sil_node_workers{node=\"gw-test\"} 2\n"));
  EXPECT_TRUE(has("sil_node_state{node=\"gw-test\",state=\"local\"} 1\n"));
  EXPECT_TRUE(has("sil_node_state{node=\"gw-test\",state=\"up\"} 0\n"));
  EXPECT_TRUE(has("sil_node_state{node=\"gw-test\",state=\"down\"} 0\n"));
  EXPECT_FALSE(has("sil_node_up{node=\"gw-test\",state=")); // no churning label
  EXPECT_FALSE(has("sil_node_encodes{"));
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_start_time_seconds",
                           "process_open_fds", "process_max_fds"})
    EXPECT_TRUE(has(std::string{"\n"} + name + " ")) << name;
  EXPECT_TRUE(has("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_FALSE(has("\nprocess_resident_memory_bytes 0\n")) << "not read from /proc";
  EXPECT_TRUE(has(std::string{"sil_build_info{commit=\""} + build_commit() + "\",version=\""
                  + build_version() + "\"} 1\n"))
    << text;
  EXPECT_TRUE(has("sil_request_duration_seconds_bucket{source=\"encoder\",le=\"1e-05\"}"));
  EXPECT_TRUE(has("sil_request_duration_seconds_bucket{source=\"cache\",le=\"2.5e-06\"}"));
}

} // namespace
} // namespace sil

// -- the agent (cosine trigger) -----------------------------------------------------

namespace sil {
namespace {

// The cosine trigger (the first version's rule), with pure prefix reuse.
struct AgentTest : ServiceTest {
  AgentTest() {
    settings.risk_guard = false;
    settings.agent_trigger = "cosine";
    settings.agent_interval_seconds = 1.0;
    settings.agent_recover_threshold = 0.01;
    settings.agent_ttl_threshold = 0.05;
    settings.agent_disable_threshold = 0.2;
    settings.agent_recover_windows = 2;
    settings.agent_min_samples = 3;
    settings.cache_ttl_seconds = 30.0;
    settings.agent_ttl_floor_seconds = 2.0;
    settings.audit_rate = 0.0; // reports come from the test
  }

  /// Sends `n` reports with cosine divergence `cos`, then ends the window.
  void window(double cos, int n = 5) {
    for (int i = 0; i < n; ++i) {
      divergence_report r;
      r.key = 1;
      r.cosine = cos;
      caf::anon_send(svc.agent, report_atom::value, r);
    }
    sched.run();
    advance_time(std::chrono::seconds{1}); // the agent's tick (and the sweep)
    sched.run();
  }

  agent_snapshot agent() {
    return ask<agent_snapshot>(svc.agent, agent_atom::value);
  }

  std::vector<decision_action> actions() {
    std::vector<decision_action> out;
    for (const auto& d : agent().decisions)
      out.push_back(d.action);
    return out;
  }
};

TEST_F(AgentTest, GrowingDriftGoesNormalShortTtlDisabledInOrder) {
  start();
  EXPECT_EQ(agent().mode, agent_mode::normal);
  window(0.001);
  EXPECT_EQ(agent().mode, agent_mode::normal);
  window(0.1); // above the TTL threshold: shorten, scaled by the risk
  auto a = agent();
  EXPECT_EQ(a.mode, agent_mode::short_ttl);
  EXPECT_LT(a.ttl_seconds, 30.0);
  EXPECT_GE(a.ttl_seconds, 2.0);
  EXPECT_EQ(cache_stats().stats.ttl.count(), static_cast<std::int64_t>(a.ttl_seconds * 1e9));
  window(0.5); // above the disable threshold
  EXPECT_EQ(agent().mode, agent_mode::disabled);
  EXPECT_FALSE(cache_stats().stats.enabled);
  EXPECT_FALSE(svc.board->cache_enabled.load());
  EXPECT_EQ(actions(),
            (std::vector<decision_action>{decision_action::shorten_ttl, decision_action::disable}));
  auto log = agent().decisions;
  EXPECT_EQ(log[1].from, agent_mode::short_ttl);
  EXPECT_EQ(log[1].to, agent_mode::disabled);
  EXPECT_EQ(log[1].samples, 5u);
  EXPECT_DOUBLE_EQ(log[1].p95, 0.5);
  EXPECT_NE(log[1].reason.find("disable threshold"), std::string::npos);
  // While disabled, predictions are fresh.
  auto req = make_request(3.0f);
  predict(req);
  EXPECT_FALSE(predict(req)->cache_hit);
}

TEST_F(AgentTest, RecoveryNeedsRecoverWindowsCleanWindowsPerStep) {
  start();
  window(0.5);
  ASSERT_EQ(agent().mode, agent_mode::disabled);
  window(0.001); // 1 clean window of 2
  EXPECT_EQ(agent().mode, agent_mode::disabled);
  EXPECT_FALSE(cache_stats().stats.enabled);
  window(0.001); // 2 of 2: re-enable with the floor TTL
  auto a = agent();
  EXPECT_EQ(a.mode, agent_mode::short_ttl);
  EXPECT_TRUE(cache_stats().stats.enabled);
  EXPECT_EQ(cache_stats().stats.ttl, 2s);
  window(0.001);
  EXPECT_EQ(agent().mode, agent_mode::short_ttl);
  window(0.001); // and back to normal, TTL restored
  EXPECT_EQ(agent().mode, agent_mode::normal);
  EXPECT_EQ(cache_stats().stats.ttl, 30s);
  EXPECT_EQ(actions(),
            (std::vector<decision_action>{decision_action::disable, decision_action::enable,
                                          decision_action::restore_ttl}));
}

TEST_F(AgentTest, WindowsWithoutEvidenceChangeNothing) {
  start();
  window(0.9, 2); // 2 reports < min_samples 3
  EXPECT_EQ(agent().mode, agent_mode::normal);
  EXPECT_TRUE(actions().empty());
}

TEST_F(AgentTest, NoiseAroundTheDisableThresholdDoesNotFlap) {
  start();
  for (int i = 0; i < 20; ++i)
    window(i % 2 == 0 ? 0.19 : 0.21);
  EXPECT_EQ(actions(),
            (std::vector<decision_action>{decision_action::shorten_ttl, decision_action::disable}));
  EXPECT_EQ(agent().mode, agent_mode::disabled);
}

TEST_F(AgentTest, AManualOverrideHoldsUntilResume) {
  start();
  auto a = ask<agent_snapshot>(svc.agent, admin_atom::value, admin_command::disable_cache, 0.0);
  EXPECT_TRUE(a.manual_override);
  EXPECT_EQ(a.mode, agent_mode::disabled);
  EXPECT_FALSE(cache_stats().stats.enabled);
  // Clean windows would re-enable, but the operator's command holds.
  for (int i = 0; i < 5; ++i)
    window(0.0);
  EXPECT_FALSE(cache_stats().stats.enabled);
  EXPECT_EQ(agent().mode, agent_mode::disabled);
  auto resumed
    = ask<agent_snapshot>(svc.agent, admin_atom::value, admin_command::resume_agent, 0.0);
  EXPECT_FALSE(resumed.manual_override);
  window(0.0);
  window(0.0);
  EXPECT_TRUE(cache_stats().stats.enabled);
  auto log = agent().decisions;
  ASSERT_GE(log.size(), 3u);
  EXPECT_TRUE(log[0].manual);
  EXPECT_EQ(log[0].action, decision_action::disable);
  EXPECT_TRUE(log[1].manual);
  EXPECT_EQ(log[1].action, decision_action::resume);
  EXPECT_FALSE(log[2].manual);
  EXPECT_EQ(log[2].action, decision_action::enable);
}

TEST_F(AgentTest, ManualTtlIsValidated) {
  start();
  auto hdl
    = self->request(svc.agent, caf::infinite, admin_atom::value, admin_command::set_ttl, -1.0);
  sched.run();
  bool failed = false;
  hdl.receive([](agent_snapshot&) {},
              [&](caf::error& e) { failed = from_caf_error(e).code == errc::bad_request; });
  EXPECT_TRUE(failed);
  auto ok = ask<agent_snapshot>(svc.agent, admin_atom::value, admin_command::set_ttl, 5.0);
  EXPECT_DOUBLE_EQ(ok.ttl_seconds, 5.0);
  EXPECT_EQ(cache_stats().stats.ttl, 5s);
}

TEST_F(AgentTest, AuditsReportDivergenceAndInvalidateFarEntries) {
  settings.audit_rate = 1.0;
  settings.audit_max_share = 1.0;
  settings.agent_entry_evict_threshold = 0.0001;
  start();
  auto a = make_request(5.0f, 0.0f);
  auto b = make_request(5.0f, 4.0f); // same prefix, different suffix
  predict(a);
  auto hit = predict(b);
  ASSERT_TRUE(hit->cache_hit); // answered from the cache at once
  sched.run();                 // the audit runs after the answer
  EXPECT_EQ(agent().reports, 1u);
  auto s = cache_stats();
  EXPECT_EQ(s.invalidations, 1u); // the suffix moved the embedding far
  EXPECT_EQ(s.stats.size, 0u);
  auto audits = ask<audit_snapshot>(svc.ingress, stats_atom::value);
  EXPECT_EQ(audits.audits, 1u);
  EXPECT_FALSE(predict(b)->cache_hit);
}

TEST_F(AgentTest, WhileDisabledFreshResultsAreComparedForFree) {
  settings.audit_rate = 0.0;
  start();
  auto req = make_request(6.0f);
  predict(req); // cached
  ask<agent_snapshot>(svc.agent, admin_atom::value, admin_command::disable_cache, 0.0);
  predict(req); // fresh; compared with the stored entry
  predict(req);
  sched.run();
  EXPECT_EQ(agent().reports, 2u);
  EXPECT_EQ(ask<audit_snapshot>(svc.ingress, stats_atom::value).shadow_comparisons, 2u);
}

// /metrics names the agent's mode by its number and counts decisions by
// action, the operator's apart, from the enums the agent keeps.
TEST_F(AgentTest, MetricsShowTheModeAndTheDecisionsByAction) {
  start();
  window(0.1); // shorten
  window(0.5); // disable
  ask<agent_snapshot>(svc.agent, admin_atom::value, admin_command::clear_cache, 0.0);
  auto a = agent();
  EXPECT_EQ(a.counts.of(agent_action::shorten_ttl), 1u);
  EXPECT_EQ(a.counts.of(agent_action::disable), 1u);
  EXPECT_EQ(a.counts.manual, 1u);
  auto text = ask<std::string>(svc.metrics, metrics_atom::value);
  auto has = [&](const std::string& s) { return text.find(s) != std::string::npos; };
  EXPECT_TRUE(has("\nsil_agent_state 2\n")) << text;
  EXPECT_TRUE(has("sil_agent_decisions_total{action=\"shorten_ttl\"} 1\n"));
  EXPECT_TRUE(has("sil_agent_decisions_total{action=\"disable\"} 1\n"));
  EXPECT_TRUE(has("sil_agent_decisions_total{action=\"manual\"} 1\n"));
  EXPECT_TRUE(has("sil_agent_decisions_total{action=\"keep\"} 0\n"));
  EXPECT_TRUE(has("sil_agent_decisions_total{action=\"enable\"} 0\n"));
  EXPECT_EQ(a.decisions.back().action, decision_action::clear);
  EXPECT_EQ(a.decisions.back().to, agent_mode::disabled);
}

TEST_F(AgentTest, ADisabledAgentMeasuresButNeverActs) {
  settings.agent_enabled = false;
  settings.audit_rate = 1.0;
  settings.audit_max_share = 1.0;
  settings.agent_entry_evict_threshold = 0.0001;
  start();
  // An audit far above the eviction threshold: measured, entry kept.
  auto a = make_request(5.0f, 0.0f);
  auto b = make_request(5.0f, 4.0f);
  predict(a);
  ASSERT_TRUE(predict(b)->cache_hit);
  sched.run();
  EXPECT_EQ(agent().reports, 1u);
  EXPECT_EQ(cache_stats().invalidations, 0u);
  EXPECT_TRUE(predict(b)->cache_hit);
  // Windows far above the disable threshold: no decision, reuse stays on.
  for (int i = 0; i < 4; ++i)
    window(0.9);
  auto s = agent();
  EXPECT_FALSE(s.acts);
  EXPECT_EQ(s.mode, agent_mode::normal);
  EXPECT_TRUE(s.decisions.empty());
  EXPECT_TRUE(cache_stats().stats.enabled);
  EXPECT_EQ(cache_stats().stats.ttl, 30s);
}

} // namespace
} // namespace sil

// -- reuse under an error budget ----------------------------------------------------

namespace sil {
namespace {

/// The guard at its defaults (on, tolerance 0.05, budget 0.01).
struct GuardTest : ServiceTest {
  /// Sends `req` with its last value set to `last`.
  caf::expected<predict_reply> predict_last(predict_request req, float last) {
    req.features.back() = last;
    return predict(req);
  }

  guard_snapshot guard() {
    return cache_stats().guard;
  }
};

TEST_F(GuardTest, StartsSafeOnlyExactInputsReuse) {
  start();
  auto a = make_request(1.0f, 0.0f);
  auto b = make_request(1.0f, 0.25f); // same key, other suffix
  ASSERT_FALSE(predict(a)->cache_hit);
  auto rb = predict(b);
  ASSERT_TRUE(rb);
  // No label yet: the guard refuses and the answer is b's own, fresh.
  EXPECT_FALSE(rb->cache_hit);
  EXPECT_EQ(rb->source, embedding_source::encoder);
  EXPECT_FLOAT_EQ(rb->prediction, direct(b));
  ASSERT_TRUE(rb->risk.present);
  EXPECT_EQ(rb->risk.basis, reuse_basis::refused);
  EXPECT_NEAR(rb->risk.distance, 0.25 / std::sqrt(28.0), 1e-6);
  EXPECT_EQ(rb->risk.p_wrong_upper, 1.0);
  // The entry now remembers b: b again is an exact reuse.
  auto again = predict(b);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->cache_hit);
  EXPECT_EQ(again->risk.basis, reuse_basis::exact);
  EXPECT_EQ(again->risk.distance, 0.0);
  EXPECT_FLOAT_EQ(again->prediction, direct(b));
  auto g = guard();
  EXPECT_TRUE(g.enabled);
  EXPECT_EQ(g.refused, 1u);
  EXPECT_EQ(g.exact, 1u);
  EXPECT_EQ(g.labels, 1u); // the refusal compared a's entry with b's fresh result
  EXPECT_EQ(pool_stats().items, 2u);
}

TEST_F(GuardTest, FreshResultsTeachItToReuseHarmlessDifferences) {
  start();
  auto req = make_request(2.0f, 0.0f);
  predict(req);
  // Alternate the last value by 1e-3: every request is 1e-3/sqrt(28) from the
  // entry's source, far below anything that moves the prediction by 0.05.
  int first_certified = -1;
  for (int i = 1; i <= 400 && first_certified < 0; ++i) {
    auto r = predict_last(req, i % 2 == 0 ? 0.0f : 1e-3f);
    ASSERT_TRUE(r);
    if (r->cache_hit) {
      EXPECT_EQ(r->risk.basis, reuse_basis::certified);
      EXPECT_LE(r->risk.p_wrong_upper, 0.01);
      EXPECT_NEAR(r->prediction, direct(req), 0.05);
      first_certified = i;
    }
  }
  // 299 clean labels certify a 1% budget at 95% confidence, not fewer.
  EXPECT_GE(first_certified, 300);
  EXPECT_LE(first_certified, 302);
  auto g = guard();
  EXPECT_GE(g.labels, 299u);
  EXPECT_EQ(g.wrong_labels, 0u);
  ASSERT_EQ(g.shapes.size(), 1u);
  EXPECT_EQ(g.shapes[0].rows, 1u);
  EXPECT_GT(g.shapes[0].reach, 1e-3 / std::sqrt(28.0));
  // Far inputs stay refused ...
  auto far = predict_last(req, 3.0f);
  EXPECT_FALSE(far->cache_hit);
  EXPECT_EQ(far->risk.basis, reuse_basis::refused);
  // ... and a request may tighten the budget for itself.
  auto tight = make_request(2.0f, 3.0f + 1e-3f);
  tight.max_wrong_rate = 0.001;
  auto rt = predict(tight);
  EXPECT_FALSE(rt->cache_hit);
  EXPECT_FLOAT_EQ(rt->prediction, direct(tight));
  auto loose = make_request(2.0f, 3.0f);
  EXPECT_TRUE(predict(loose)->cache_hit);
}

TEST_F(GuardTest, WrongLabelsWithdrawACertification) {
  start();
  auto req = make_request(3.0f, 0.0f);
  predict(req);
  for (int i = 1; i <= 310; ++i)
    predict_last(req, i % 2 == 0 ? 0.0f : 1e-3f);
  ASSERT_TRUE(predict_last(req, 1e-3f)->cache_hit);
  // Wrong answers observed at that distance (as audits would report them).
  auto key = *make_prefix_key({m.name(), m.version()}, {prefix_unit::values, 4},
                              req.features.data(), req.features.size(), 1);
  for (int i = 0; i < 5; ++i)
    caf::anon_send(svc.cache, label_atom::value, key,
                   reuse_label{1, 1e-3 / std::sqrt(28.0), true, true});
  sched.run();
  auto r = predict_last(req, 0.0f);
  EXPECT_FALSE(r->cache_hit);
  EXPECT_EQ(r->risk.basis, reuse_basis::refused);
  EXPECT_EQ(guard().wrong_labels, 5u);
}

TEST_F(GuardTest, AuditsOfServedHitsAreLabelsForTheGuardAndTheAgent) {
  settings.audit_rate = 1.0;
  settings.audit_max_share = 1.0;
  settings.audit_per_second = 0.0;
  start();
  auto req = make_request(4.0f);
  predict(req);
  ASSERT_TRUE(predict(req)->cache_hit); // exact
  sched.run();                          // the audit runs after the answer
  auto g = guard();
  EXPECT_EQ(g.labels, 1u);
  EXPECT_EQ(g.wrong_labels, 0u);
  auto a = ask<agent_snapshot>(svc.agent, agent_atom::value);
  EXPECT_EQ(a.trigger, agent_trigger::wrong_rate);
  EXPECT_EQ(a.served_labels, 1u);
  EXPECT_EQ(a.served_wrong, 0u);
  EXPECT_EQ(ask<audit_snapshot>(svc.ingress, stats_atom::value).audits, 1u);
}

TEST_F(GuardTest, ConcurrentIdenticalMissesStillEncodeOnceOthersComputeApart) {
  start();
  auto req = make_request(6.0f, 1.0f);
  std::vector<decltype(self->request(svc.ingress, caf::infinite, predict_atom::value, req))> hs;
  for (int i = 0; i < 10; ++i)
    hs.push_back(self->request(svc.ingress, caf::infinite, predict_atom::value, req));
  auto other = make_request(6.0f, 2.0f); // same key, far suffix: must not join
  hs.push_back(self->request(svc.ingress, caf::infinite, predict_atom::value, other));
  sched.run();
  int joined = 0;
  std::vector<float> got;
  for (auto& h : hs)
    h.receive(
      [&](predict_reply& r) {
        joined += r.source == embedding_source::single_flight ? 1 : 0;
        got.push_back(r.prediction);
      },
      [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  ASSERT_EQ(got.size(), 11u);
  EXPECT_EQ(joined, 9);
  EXPECT_FLOAT_EQ(got.back(), direct(other));
  EXPECT_EQ(pool_stats().items, 2u);
}

TEST_F(GuardTest, AnInputOfAnotherShapeNeverReusesAnEmbedding) {
  for (const char* unit : {"values", "rows"}) {
    SCOPED_TRACE(unit);
    settings.risk_guard = false; // even with pure prefix reuse
    settings.cache_prefix_unit = unit;
    settings.cache_prefix_k = 1;
    start();
    auto one = make_request(7.0f, 0.5f, 1);
    auto two = make_request(7.0f, 0.5f, 2); // [A, C]: row 0 equals one's row 0 but its last
    two.features[31] = 0.5f;                // value, which is set in row 1 here
    ASSERT_FALSE(predict(one)->cache_hit);
    auto r2 = predict(two);
    EXPECT_FALSE(r2->cache_hit);
    EXPECT_FLOAT_EQ(r2->prediction, direct(two));
    EXPECT_TRUE(predict(one)->cache_hit);
    EXPECT_TRUE(predict(two)->cache_hit);
    stop_service(svc);
    sched.run();
    started = false;
  }
}

TEST_F(GuardTest, RowsUnitKeysOnTheFirstKRows) {
  settings.risk_guard = false;
  settings.cache_prefix_unit = "rows";
  settings.cache_prefix_k = 1;
  start();
  auto a = make_request(8.0f, 0.0f, 2);
  auto b = make_request(8.0f, 0.0f, 2);
  b.features[40] = 9.0f; // row 1 differs: same first row
  auto c = make_request(8.0f, 0.0f, 2);
  c.features[5] = 9.0f; // row 0 differs beyond the 4th value
  predict(a);
  EXPECT_TRUE(predict(b)->cache_hit);
  EXPECT_FALSE(predict(c)->cache_hit);
  EXPECT_EQ(cache_stats().guard.unit, prefix_unit::rows);
}

/// The agent's wrong-rate trigger: served labels, not cosine.
struct RateAgentTest : GuardTest {
  RateAgentTest() {
    settings.agent_recover_windows = 2;
    settings.agent_min_samples = 10;
    settings.cache_ttl_seconds = 30.0;
    settings.agent_ttl_floor_seconds = 2.0;
  }

  void labels(int n, int wrong) {
    for (int i = 0; i < n; ++i) {
      divergence_report r;
      r.key = 1;
      r.served = true;
      r.wrong = i < wrong;
      caf::anon_send(svc.agent, report_atom::value, r);
    }
    sched.run();
    advance_time(std::chrono::seconds{1});
    sched.run();
  }

  agent_snapshot agent() {
    return ask<agent_snapshot>(svc.agent, agent_atom::value);
  }
};

TEST_F(RateAgentTest, ActsOnlyWhenTheLowerBoundExceedsTheBudget) {
  start();
  labels(50, 1); // 2%: above the budget, but the lower bound is not
  EXPECT_EQ(agent().mode, agent_mode::normal);
  labels(50, 4); // 5/100: lower bound ~2% > 1%
  auto a = agent();
  EXPECT_EQ(a.mode, agent_mode::short_ttl);
  EXPECT_LT(a.ttl_seconds, 30.0);
  ASSERT_EQ(a.decisions.size(), 1u);
  EXPECT_NE(a.decisions[0].reason.find("served wrong-rate 5/100"), std::string::npos)
    << a.decisions[0].reason;
  EXPECT_EQ(a.served_labels, 0u); // the window starts again after acting
  labels(20, 10);                 // lower bound far above 5%: disable
  EXPECT_EQ(agent().mode, agent_mode::disabled);
  EXPECT_FALSE(cache_stats().stats.enabled);
  labels(20, 0); // clean: 1 of 2
  EXPECT_EQ(agent().mode, agent_mode::disabled);
  labels(20, 0); // 2 of 2: re-enable at the floor TTL
  EXPECT_EQ(agent().mode, agent_mode::short_ttl);
  EXPECT_TRUE(cache_stats().stats.enabled);
}

TEST_F(RateAgentTest, FewLabelsAreNoEvidence) {
  start();
  labels(5, 5);
  EXPECT_EQ(agent().mode, agent_mode::normal);
  EXPECT_TRUE(agent().decisions.empty());
}

TEST_F(RateAgentTest, WhileDisabledShadowComparisonsCountAsServedIfTheGuardWouldServe) {
  start();
  auto req = make_request(9.0f);
  predict(req);
  ask<agent_snapshot>(svc.agent, admin_atom::value, admin_command::disable_cache, 0.0);
  predict(req); // exact: the guard would serve it
  auto other = make_request(9.0f, 3.0f);
  predict(other); // far: it would not (the entry is req's fresh copy)
  sched.run();
  auto a = agent();
  EXPECT_EQ(a.reports, 2u);
  EXPECT_EQ(a.served_labels, 1u);
}

} // namespace
} // namespace sil
