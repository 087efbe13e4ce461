// Pure pieces of the correctness-risk experiments: the features a
// drifting client sends, which cached entry a hit was served from, the
// hit / wrong-hit / miss classification, and Che's approximation of an LRU
// cache's hit rate. No CAF, no Beast, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sil::lab {

/// How a drifting client population forms its requests.
///
/// A request for prefix `p` at drift step `s` has 32 values: the first
/// `prefix_len` come from `p` alone (so every request of `p` shares a cache
/// key), the rest are the prefix's own base suffix plus `s x strength` in
/// every drifting position plus N(0, noise^2) per request. With strength 0
/// and noise 0 a prefix always sends the same features, so a hit is exactly
/// right.
struct feature_spec {
  std::size_t dim = 32;
  std::size_t prefix_len = 4;
  double strength = 0.0;
  double noise = 0.0;
  std::uint64_t seed = 1;
  /// Which base suffix a prefix has: another epoch draws another one (a
  /// sudden shift of every suffix value).
  std::uint64_t suffix_epoch = 0;
  /// How many suffix values drift, from the first one after the prefix;
  /// 0: all of them.
  std::size_t drifting = 0;
  /// The drift study's original formulation: every request's suffix is a
  /// new draw from N(s x strength, 1) (no base suffix; `noise` unused).
  bool resampled = false;
};

/// The features of one request, rounded to what "%.6g" prints (the
/// server sees the JSON text, so the local model must see the same values).
/// `noise_draw` is the request's own index: the same index gives the same
/// noise.
std::vector<float> make_features(const feature_spec& spec, std::uint64_t prefix, double step,
                                 std::uint64_t noise_draw);

/// Formats features as a /predict body.
std::string predict_body(const std::vector<float>& features, bool use_cache);

/// What the experiment knows about one answered request.
struct observed_request {
  std::uint64_t prefix = 0;
  /// Seconds from the start: when the request left and when its answer
  /// arrived.
  double sent = 0.0;
  double done = 0.0;
  bool ok = false;
  bool cache_hit = false;
  /// Computed by the encoder for this request (a miss that stored its
  /// result, or one refreshing the entry while reuse was off).
  bool computed = false;
  double prediction = 0.0;
};

/// For every request, the index of the request whose computation it reused:
/// the latest computed request of the same prefix, sent before this one was
/// answered, with exactly the same prediction (the head is deterministic, so
/// a reused embedding gives its source's prediction bit for bit). "Sent",
/// not "answered": a single-flight joiner can be answered before the leader
/// whose computation it shares. -1 for misses and for hits with no such
/// request (e.g. an entry stored before the run).
std::vector<long> attribute_sources(const std::vector<observed_request>& requests);

/// Hit / wrong-hit / miss counts.
struct risk_counts {
  std::size_t requests = 0;
  std::size_t errors = 0;
  std::size_t hits = 0;
  std::size_t correct_hits = 0;
  std::size_t wrong_hits = 0;
  std::size_t misses = 0;
  /// Largest |prediction - fresh| over misses; 0 unless the service is
  /// nondeterministic.
  double max_miss_error = 0.0;
  double max_hit_error = 0.0;
  double mean_hit_error = 0.0;

  double hit_rate() const noexcept;
  /// Wrong hits over hits.
  double wrong_hit_rate() const noexcept;
  /// Wrong hits over all answered requests: the share of wrong answers.
  double wrong_answer_rate() const noexcept;
};

/// Classifies answered requests against fresh predictions (`fresh[i]`, the
/// answer to the same features with use_cache false; NaN if unknown). A hit
/// is wrong when |prediction - fresh| > tolerance. Requests that failed, or
/// whose fresh value is unknown, count as errors.
risk_counts classify(const std::vector<observed_request>& requests,
                     const std::vector<double>& fresh, double tolerance);

/// The input distance between a request and the request whose computation
/// it reused: the root mean square of x[i] - source[i] over the values
/// outside the key (i >= prefix_len). 0 when nothing lies outside the key.
double input_distance(const std::vector<float>& x, const std::vector<float>& source,
                      std::size_t prefix_len);

/// One request of a recorded run, in send order, for replaying reuse
/// policies offline.
struct replay_request {
  std::uint64_t prefix = 0;
  /// The recorded run found a live entry for the key (the request was a
  /// hit). A recorded miss is computed and stored in every replay.
  bool entry_live = false;
};

/// score(i, j) or error(i, j): request i answered from the entry computed
/// for request j (j < i, same prefix).
using pair_measure = std::function<double(std::size_t, std::size_t)>;

/// What a replayed policy served.
struct replay_outcome {
  std::size_t requests = 0;
  std::size_t hits = 0;
  /// Hits with error > tolerance.
  std::size_t wrong = 0;

  double hit_rate() const noexcept;
  /// Wrong hits over hits.
  double wrong_rate() const noexcept;
};

/// Replays a static-threshold policy: a request with a live entry reuses it
/// iff score(i, entry) <= threshold; otherwise it is computed fresh and
/// replaces the entry (as a refusing cache does), so later requests reuse
/// the fresher result. The oracle is the replay with score = error and
/// threshold = tolerance: it reuses exactly the answers within tolerance.
replay_outcome replay_threshold(const std::vector<replay_request>& requests,
                                const pair_measure& score, double threshold,
                                const pair_measure& error, double tolerance);

/// One point of a threshold sweep.
struct threshold_point {
  double threshold = 0.0;
  replay_outcome outcome;
};

/// replay_threshold at every threshold.
std::vector<threshold_point> threshold_curve(const std::vector<replay_request>& requests,
                                             const pair_measure& score,
                                             const std::vector<double>& thresholds,
                                             const pair_measure& error, double tolerance);

/// The point with the highest hit rate among those whose wrong rate is at
/// most `max_wrong_rate` (ties: the lower wrong rate, then the lower
/// threshold); nullptr if none qualifies.
const threshold_point* best_within(const std::vector<threshold_point>& curve,
                                   double max_wrong_rate);

/// `n` thresholds from `lo` to `hi` (0 < lo < hi), equally spaced in log
/// scale, after a leading 0 (exact reuse only).
std::vector<double> log_thresholds(double lo, double hi, std::size_t n);

/// Che's approximation of the hit rate of an LRU cache of `capacity`
/// entries under independent requests with the given popularities (they
/// need not be normalized). 1 when the capacity holds every item.
double che_hit_rate(const std::vector<double>& popularity, double capacity);

} // namespace sil::lab
