// The read path: cache hits answered on the thread that read the request.
//
// A hit used to cross threads twice (I/O thread -> cache owner -> I/O
// thread); on a busy machine each crossing is a context switch, and that,
// not JSON or the head, was most of a hit's cost. Here the calling thread
// keys the input, asks the cache's read view (core/read_view.hpp) whether a
// live entry may answer it (TTL, max_age, the reuse guard's verdict),
// computes the head and returns the answer. Nothing is sent per hit.
//
// What the actors still need to know travels in batches, one message per
// batch and destination, from per-thread stripes:
//  - access events to the cache owner, which replays them against the LRU
//    order (as Caffeine's read buffers do). These are lossy: a stripe keeps
//    at most `max_pending_accesses` events, and a batch is dropped when
//    `max_access_batches` batches already wait in the owner's mailbox.
//    Drops are counted, never hidden.
//  - hit latencies to the metrics aggregator (exact: never dropped);
//  - the number of requests answered and the hits offered for audit to the
//    ingress, which keeps the audit budget and runs the audits.
// A stripe is sent by the hit that fills it (`batch` hits) or that finds
// its oldest event `max_delay` old; what a thread leaves behind when it goes
// quiet is sent when the transport calls flush(), which it does at most
// 5 ms after the first unsent event (the on_pending callback asks for it).
//
// Overload: while `max_access_batches` access batches wait in the owner's
// mailbox (the scheduler thread that runs the owner, the ingress and the
// metrics is behind, e.g. under a flood of misses), hits are still answered
// here and their access records are dropped (counted): recency is
// approximate for a while, and no hit waits behind the misses or is refused
// by the in-flight cap that holds misses back. The owner's mailbox stays
// bounded; latencies and audit offers are exact, one message per batch.
//
// Misses, refusals, expired or too-old entries, disabled reuse and
// use_cache=false are not handled here: serve() returns nullopt without
// counting anything, and the caller sends the request to the ingress,
// which asks the owner as before (single-flight, inserts, labels).
//
// Owns: the stripes and the audit offer gate. Knows nothing of HTTP.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "core/model.hpp"
#include "core/read_view.hpp"
#include "messages/messages.hpp"

namespace sil {

/// Parameters of the read path.
struct hit_path_config {
  model m;
  prefix_spec spec;
  std::shared_ptr<const read_view> view;
  cache_actor cache;
  ingress_actor ingress;
  metrics_actor metrics;
  /// The lane this read path serves (its hits' outcomes name it).
  std::uint32_t lane = 0;
  /// The audit sampling rate (audit.rate) and pace (audit.per-second):
  /// hits are offered for audit at up to twice the pace, or at most
  /// 1000 per second without pacing; the ingress's budget decides.
  double audit_rate = 1.0;
  double audit_per_second = 20.0;
  /// Hits per stripe that trigger a send.
  std::size_t batch = 64;
  /// A stripe whose oldest unsent event is this old is sent by the next
  /// hit on its thread, whether or not the transport's flush came (the
  /// flush covers threads that go quiet).
  std::chrono::nanoseconds max_delay = std::chrono::milliseconds{5};
  /// Access events a stripe keeps at most (beyond: dropped).
  std::size_t max_pending_accesses = 4096;
  /// Access batches in the owner's mailbox at most (beyond: dropped).
  std::size_t max_access_batches = 16;
};

class hit_path {
public:
  using clock = std::chrono::steady_clock;

  explicit hit_path(hit_path_config cfg);

  hit_path(const hit_path&) = delete;
  hit_path& operator=(const hit_path&) = delete;

  /// Answers `req` on the calling thread if the read view serves it;
  /// `started` is when the request arrived (its latency is recorded).
  /// nullopt: not served here (nothing counted), ask the ingress.
  std::optional<predict_reply> serve(const predict_request& req, clock::time_point started);

  /// Sends everything the stripes hold.
  void flush();

  /// Called (from a serving thread) when events wait and no flush is
  /// pending; the transport must then call flush() soon. Set before use.
  void on_pending(std::function<void()> fn) {
    on_pending_ = std::move(fn);
  }

  const hit_path_config& config() const noexcept {
    return cfg_;
  }

private:
  struct alignas(64) stripe {
    std::mutex mu;
    std::vector<prefix_key> accesses;
    std::vector<std::int64_t> latencies;
    std::vector<audit_candidate> candidates;
    /// When the oldest unsent event was recorded.
    clock::time_point first_at{};
  };

  /// What one stripe hands over for sending.
  struct taken {
    std::vector<prefix_key> accesses;
    hit_outcomes outcomes;
    hit_batch hits;
  };

  static constexpr std::size_t stripe_count = 16;

  bool offer_audit(clock::time_point now) noexcept;
  static void take(stripe& s, taken& out);
  void send(taken& t);

  hit_path_config cfg_;
  std::string version_;
  std::unique_ptr<stripe[]> stripes_;
  std::int64_t offer_interval_ns_;
  std::atomic<std::int64_t> next_offer_ns_{0};
  std::atomic<bool> flush_pending_{false};
  std::function<void()> on_pending_;
};

} // namespace sil
