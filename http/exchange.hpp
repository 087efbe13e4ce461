// The boundary between the HTTP transport (http/server.cpp: sockets,
// framing, limits, drain) and what answers requests (http/routes.* for a
// serving node, http/worker_routes.* for an encoder node).
//
// Owns: the plain values that cross it (a request as views, a response as a
// value, the record of a finished exchange) and the interfaces each side
// implements. No Beast and no CAF include: a handler can be driven by a test
// without sockets, and the transport knows nothing of actors.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/cancellation.hpp"
#include "core/error.hpp"
#include "messages/payloads.hpp"

namespace sil::http_api {

using clock_type = std::chrono::steady_clock;

/// One parsed request, as views into the transport's buffers. Valid only
/// during handler::handle(); a handler that answers later copies what it
/// needs.
struct request_view {
  /// As sent: "GET", "HEAD", "POST", ...
  std::string_view method;
  /// The path, without the query string.
  std::string_view target;
  /// The Content-Type field; `has_content_type` tells an empty one from none.
  std::string_view content_type;
  bool has_content_type = false;
  std::string_view authorization;
  /// The Origin field ("" when absent).
  std::string_view origin;
  /// The Access-Control-Request-Method field of a CORS preflight ("" when absent).
  std::string_view preflight_method;
  /// Set when the request carries Inference-Header-Content-Length (the
  /// binary tensor extension of the KServe v2 protocol, not supported).
  bool binary_tensors = false;
  /// The request id (the client's X-Request-Id if valid, else generated);
  /// never empty.
  std::string_view request_id;
  std::string_view body;
  /// The client's address, "IP:PORT".
  std::string_view remote;
  /// When the request was parsed: latencies count from here.
  clock_type::time_point start{};
};

/// One answer, as a value.
struct response {
  unsigned status = 200;
  std::string body;
  /// nullptr: no Content-Type (a 204).
  const char* content_type = "application/json";
  /// The Allow field (405 answers and OPTIONS), empty: none.
  std::string allow;
  /// Retry-After: 1 (503 answers).
  bool retry_after = false;
  /// WWW-Authenticate: Bearer (401 answers).
  bool www_authenticate = false;
  /// More fields (a CORS preflight's), name and value.
  std::vector<std::pair<std::string, std::string>> headers;

  // -- labels of the exchange, for metrics and the access log ---------------
  /// The route label of sil_http_requests_total.
  route_label route = route_label::other;
  /// The error this answer reports (errc{} if none).
  errc error{};
  /// The outcome was already counted elsewhere (the read path counts its
  /// hits, a prediction's callback its own outcome).
  bool reported = false;
  /// What happened, for the access log: "hit", "miss", "joined", an error
  /// code name, or "" when nothing more than the status is worth saying.
  std::string_view outcome;
};

/// The end of one exchange, as the access log records it.
struct finished_exchange {
  std::string_view request_id;
  std::string_view remote;
  std::string_view method;
  std::string_view target;
  unsigned status = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  /// From the header's arrival to the answer's write.
  std::chrono::nanoseconds latency{0};
  /// From the request parsed to the answer's write (what the service's
  /// latency metrics count).
  std::chrono::nanoseconds service_latency{0};
  route_label route = route_label::other;
  errc error{};
  bool reported = false;
  std::string_view outcome;
};

/// Builds an answer later, on the connection's own thread (so that encoding
/// JSON never runs on an actor's thread).
using deferred_response = std::function<response()>;

/// What the transport offers the handler of one request.
class responder {
public:
  virtual ~responder() = default;

  /// A function that answers this request later, from any thread, exactly
  /// once. Called only by a handler that answers later.
  virtual std::function<void(deferred_response)> later() = 0;

  /// Whether the client has already gone (end of stream or reset seen
  /// without consuming anything).
  virtual bool client_gone() = 0;
};

/// An answer that comes later (through responder::later()), and what the
/// transport keeps for the request while it waits.
struct pending {
  /// The route label, should the transport have to answer itself (503 at
  /// the drain deadline).
  route_label route = route_label::other;
  /// The request took one of the in-flight slots: the transport gives it
  /// back (handler::release_slot) once the answer is ready or the client
  /// has gone.
  bool holds_slot = false;
  /// The client's cancel flag (null: none). With one, the transport watches
  /// the connection while it waits and sets the flag if the client leaves.
  std::shared_ptr<cancel_flag> cancel;
  /// The outcome is counted by whoever produces the answer (a prediction's
  /// callback), also when the transport has to end the exchange itself.
  bool reported = false;
};

/// The client had already gone: the transport closes without an answer.
struct client_left {};

/// What handle() did with a request: an answer now, one that comes later,
/// or nothing because the client has gone.
struct handled {
  std::variant<response, pending, client_left> what;

  static handled answer(response r) {
    return {std::move(r)};
  }

  static handled later(pending p) {
    return {std::move(p)};
  }

  static handled gone() {
    return {client_left{}};
  }

  /// The answer, if it is ready now.
  response* now() noexcept {
    return std::get_if<response>(&what);
  }

  const response* now() const noexcept {
    return std::get_if<response>(&what);
  }

  /// What to keep while the answer comes later (null otherwise).
  const pending* waiting() const noexcept {
    return std::get_if<pending>(&what);
  }

  bool client_gone() const noexcept {
    return std::holds_alternative<client_left>(what);
  }
};

/// Answers requests. Implementations are thread-safe: the transport calls
/// them from all its I/O threads at once.
class handler {
public:
  virtual ~handler() = default;

  /// Handles one request: the answer now, or later through `r.later()`.
  virtual handled handle(const request_view& req, responder& r) = 0;

  /// An exchange ended (its answer written, or the client gone).
  virtual void finished(const finished_exchange& e) = 0;

  /// Gives back an in-flight slot a request took (handled::holds_slot).
  virtual void release_slot() {
  }

  /// The server is shutting down: readiness turns false.
  virtual void set_draining() {
  }
};

} // namespace sil::http_api
