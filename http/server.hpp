// The HTTP front end: an asynchronous Boost.Beast server.
//
// Owns: sockets, keep-alive sessions, hard limits (body size, read timeout,
// connections), request framing, the request id and CORS fields of every
// answer, waiting for answers that come later (never blocking an I/O
// thread), and the drain at shutdown.
// Does not own: what a request means. A handler does (http/exchange.hpp):
// http/routes.* on a serving node, http/worker_routes.* on a worker node.
#pragma once

#include <caf/fwd.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "http/exchange.hpp"

namespace sil {

struct service_handles;

/// Parameters of the HTTP server.
struct http_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;
  std::size_t threads = 2;
  std::size_t body_limit = 1 << 20;
  /// A request must arrive complete within this (else 408); an idle
  /// keep-alive connection is closed after it.
  std::chrono::milliseconds read_timeout{30000};
  std::size_t max_inflight = 1024;
  /// Open connections at most; more are answered 503 and closed at once.
  /// 0: derived from the file-descriptor limit.
  std::size_t max_connections = 0;
  /// How long a prediction that needs the encoder may wait for one: work
  /// that is expected to finish later is refused at once with 503. A
  /// request's own "timeout_ms" replaces it. 0: no limit.
  std::chrono::milliseconds max_queue_delay{0};
  /// After an error that closes the connection, how long to keep reading
  /// (and discarding) what the client still sends, so that it reads the
  /// answer instead of a reset.
  std::chrono::milliseconds linger{2000};
  std::size_t max_rows = 64;
  std::size_t input_dim = 32;
  std::string model_version;
  /// The model's name (the KServe v2 routes' {model_name}).
  std::string model_name;
  /// Bearer token of /admin/... and /agent; empty disables them (403).
  std::string admin_token;
  /// Browser origins that may read answers (http.cors-origins; "*": any);
  /// empty: no CORS field in any answer.
  std::vector<std::string> cors_origins;
  /// Readiness: the node runs encoder workers of its own (until one is up
  /// it is "starting"); a gateway without any encodes on a local fallback
  /// (cluster.fallback=local) and so stays ready.
  bool local_workers = true;
  bool fallback_local = false;
};

/// A running HTTP server.
class http_server {
public:
  /// Binds and starts serving on `cfg.threads` I/O threads. Fails with
  /// io_error if the address cannot be bound.
  static result<std::unique_ptr<http_server>> start(caf::actor_system& sys, const http_config& cfg,
                                                    const service_handles& service);

  /// Binds and serves `routes` (a worker node's listener: no actors
  /// behind it). Fails with io_error if the address cannot be bound.
  static result<std::unique_ptr<http_server>> start(const http_config& cfg,
                                                    std::shared_ptr<http_api::handler> routes);

  ~http_server();

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// The bound port (useful with port 0).
  std::uint16_t port() const noexcept;

  /// Blocks until SIGINT or SIGTERM arrives. Meanwhile (and until the I/O
  /// context ends) SIGHUP reopens the log files (sil::logging::reopen).
  void wait_for_signal();

  /// Stops accepting, lets requests in flight finish, and serves requests
  /// that arrive on open connections until 200 ms pass without any (at most
  /// `drain` in all); answers during the drain close their connection.
  /// Requests still waiting for an answer at the deadline are answered 503.
  /// Then closes every connection and joins the I/O threads. Returns the
  /// number of requests that did not get their computed answer (answered
  /// 503 at the deadline, or still unanswered): 0 after a clean drain.
  std::size_t shutdown(std::chrono::milliseconds drain);

  /// The connection cap in effect (max_connections, or the derived one).
  std::size_t max_connections() const noexcept;

  struct impl;

private:
  explicit http_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace sil
