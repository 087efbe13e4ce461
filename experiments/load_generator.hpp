// Open-loop HTTP load generator.
//
// Owns: sending requests on a fixed schedule over keep-alive connections and
// timing them. Latency is measured from each request's *intended* send time,
// not from when a connection was free to send it, so a server that stalls
// cannot hide the stall behind the requests it delayed (coordinated
// omission). The generator reports its own lag (how late it sent) and the
// requests it had to drop.
// Does not own: what to send (the caller's body function) or statistics
// (experiments/analysis).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace sil::lab {

/// What to send, where, and when.
struct load_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;
  std::string target = "/predict";
  /// Keep-alive connections; a request waits for a free one.
  std::size_t connections = 16;
  /// Intended send times, seconds from the start, ascending.
  std::vector<double> schedule;
  /// The JSON body of request i.
  std::function<std::string(std::size_t)> body;
  /// Requests waiting for a connection beyond this are dropped.
  std::size_t max_pending = 100000;
  /// After the last intended send, wait this long for answers.
  double drain_seconds = 10.0;
  /// Called now and then with (requests done, requests planned).
  std::function<void(std::size_t, std::size_t)> progress;
};

/// One request's fate.
struct request_result {
  /// Seconds from the start: intended send, actual send, answer received.
  double intended = 0.0;
  double sent = -1.0;
  double done = -1.0;
  /// HTTP status; 0 if the request failed (connection error, timeout) or was
  /// dropped.
  int status = 0;
  bool cache_hit = false;
  bool dropped = false;
  /// The connection failed, or no answer came before the drain deadline.
  bool failed = false;
  /// The "prediction" field of a 200 answer, -1 if absent.
  double prediction = -1.0;
  /// The "source" field: 'c'ache, 's'ingle_flight, 'e'ncoder; 0 if absent.
  char source = 0;
  /// The "cache_age_ms" field (cache hits only), -1 if absent.
  double cache_age_ms = -1.0;
  /// The reuse guard's "risk" object: its "basis" ('e'xact, 'c'ertified,
  /// 'r'efused, 'u'nguarded; 0 if absent), "distance" and "p_wrong_upper"
  /// (-1 if absent).
  char basis = 0;
  double risk_distance = -1.0;
  double p_wrong_upper = -1.0;

  /// Latency from the intended send time, seconds; negative if unanswered.
  double latency() const noexcept {
    return done < 0 ? -1.0 : done - intended;
  }
};

/// The outcome of a run.
struct load_result {
  std::vector<request_result> requests;
  /// Wall time from the first intended send to the last answer, seconds.
  double elapsed = 0.0;
  /// The generator's own lag: largest (sent - intended) over sent requests.
  double max_lag = 0.0;
  std::size_t dropped = 0;
  /// Connection errors plus requests unanswered at the drain deadline.
  std::size_t failed = 0;
  /// Connections re-opened after an error or a server-side close.
  std::size_t reconnects = 0;
};

/// Runs the schedule against host:port and returns every request's result.
/// Fails with invalid_config for an empty schedule or no connections, and
/// io_error if no connection can be opened.
result<load_result> run_load(const load_config& cfg);

/// A plain answer from http_call.
struct http_answer {
  int status = 0;
  std::string body;
};

/// One synchronous HTTP/1.1 request (for /stats, /agent and admin calls
/// around a run). `bearer` adds an Authorization header when not empty.
/// Fails with io_error on connection errors or after `timeout_seconds`.
result<http_answer> http_call(const std::string& host, std::uint16_t port,
                              const std::string& method, const std::string& target,
                              const std::string& body = {}, const std::string& bearer = {},
                              double timeout_seconds = 10.0);

} // namespace sil::lab
