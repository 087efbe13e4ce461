#include "http/server.hpp"

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <caf/all.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/codec.hpp"
#include "http/framing.hpp"
#include "http/request_rules.hpp"
#include "logging/log.hpp"

namespace sil {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

/// A connection waiting for an actor's answer, which the drain may have to
/// answer itself (503) when its deadline passes.
class drainable {
public:
  virtual ~drainable() = default;
  /// At the drain deadline: answers 503 (on the connection's strand) if
  /// the request is still waiting.
  virtual void expire_soon() = 0;
};

/// What a refused connection gets, written at once without reading its
/// request: the connection cap is reached, or the process has no file
/// descriptor left for it.
std::string make_refusal() {
  std::string body = "{\"error\":{\"code\":\"overloaded\",\"message\":\"the server is at "
                     "its connection limit; retry later\"}}\n";
  return "HTTP/1.1 503 Service Unavailable\r\nServer: sil-server\r\n"
         "Content-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
         "Content-Length: "
         + std::to_string(body.size()) + "\r\n\r\n" + body;
}

} // namespace

struct http_server::impl {
  impl(caf::actor_system& s, const http_config& c, const service_handles& h)
    : sys(s)
    , cfg(c)
    , svc(h)
    , acceptor(ioc)
    , signals(ioc, SIGINT, SIGTERM) {
    // nop
  }

  ~impl() {
    if (spare_fd >= 0)
      ::close(spare_fd);
  }

  caf::actor_system& sys;
  http_config cfg;
  service_handles svc;
  asio::io_context ioc;
  /// Keeps the I/O threads running while a session waits for an actor's
  /// answer: that wait is no asio operation, so without this guard the
  /// threads would return once the acceptor closes at shutdown.
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  tcp::acceptor acceptor;
  /// Waits before accepting again after accept() failed for lack of file
  /// descriptors (retrying at once would spin a core).
  asio::steady_timer accept_timer{ioc};
  /// A descriptor held in reserve: at the descriptor limit it is closed for
  /// a moment so that one pending connection can be accepted and refused
  /// with 503, instead of waiting unanswered in the backlog.
  int spare_fd = -1;
  std::size_t max_connections = 0;
  const std::string refusal = make_refusal();
  asio::signal_set signals;
  /// Sends the read path's batches at most `flush_delay` after its first
  /// unsent event (armed on demand: an idle server never wakes for it).
  asio::strand<asio::io_context::executor_type> flush_strand{ioc.get_executor()};
  asio::steady_timer flush_timer{flush_strand};
  static constexpr std::chrono::milliseconds flush_delay{5};
  std::vector<std::thread> threads;
  /// Predictions accepted and not yet written back (the in-flight cap).
  std::atomic<std::size_t> inflight{0};
  /// Any request being handled, for draining on shutdown.
  std::atomic<std::size_t> active{0};
  /// Open connections (sessions alive).
  std::atomic<std::size_t> connections{0};
  /// Set at shutdown: answers carry "Connection: close".
  std::atomic<bool> draining{false};
  /// Sessions waiting for an actor's answer (for the drain deadline).
  std::mutex waiting_mu;
  std::unordered_map<drainable*, std::weak_ptr<drainable>> waiting;
  /// Requests answered 503 by the drain deadline.
  std::atomic<std::size_t> expired{0};
  std::mutex mu;
  std::condition_variable cv;
  bool signalled = false; // guarded by mu

  void do_accept();
  void on_accept_error(const beast::error_code& ec);
  void refuse(int fd);

  /// Arms the flush timer (the read path asks when events wait).
  void schedule_flush() {
    asio::post(flush_strand, [this] {
      flush_timer.expires_after(flush_delay);
      flush_timer.async_wait([this](beast::error_code ec) {
        if (!ec)
          svc.hits->flush();
      });
    });
  }

  /// Hands what the read path holds to the actors now (before a snapshot,
  /// so that /stats and /metrics count every answered hit).
  void flush_hits() {
    if (svc.hits)
      svc.hits->flush();
  }

  void count(std::atomic<std::uint64_t> service_board::*field) {
    if (svc.board)
      ((*svc.board).*field).fetch_add(1, std::memory_order_relaxed);
  }
};

namespace {

/// Asks a typed actor from outside the actor system without blocking: a
/// one-shot actor sends the request and hands the answer to `done`.
template <class R, class Handle, class Done, class... Ts>
void ask(caf::actor_system& sys, const Handle& dst, caf::timespan timeout, Done done, Ts... xs) {
  // The unused int works around CAF 0.17 dereferencing a null pointer to an
  // empty argument tuple when a function actor has no arguments (UBSan).
  sys.spawn(
    [=](caf::event_based_actor* self, int) {
      self->request(dst, timeout, xs...)
        .then([=](R& r) { done(caf::expected<R>{std::move(r)}); },
              [=](caf::error& e) { done(caf::expected<R>{std::move(e)}); });
    },
    0);
}

using http_rules::is_json;

/// One connection: read a request, answer it, repeat while keep-alive.
///
/// A request is read header first: its framing is checked before any body
/// byte is trusted, `Expect: 100-continue` is answered, and a body already
/// in the buffer is parsed without another trip through the reactor. Every
/// error that ends the connection is answered, then the send side is shut
/// and what the client still sends is read and discarded for a bounded
/// time (a lingering close), so that the client reads the answer rather
/// than a reset.
class session : public drainable, public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, http_server::impl& srv)
    : stream_(std::move(socket))
    , srv_(srv)
    , timer_(stream_.get_executor()) {
    ++srv_.connections;
    if (srv_.svc.board)
      srv_.svc.board->connections_open.fetch_add(1, std::memory_order_relaxed);
  }

  ~session() override {
    --srv_.connections;
    if (srv_.svc.board)
      srv_.svc.board->connections_open.fetch_sub(1, std::memory_order_relaxed);
  }

  void run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&session::do_read, shared_from_this()));
  }

  void expire_soon() override {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->expire(); });
  }

private:
  void expire() {
    if (phase_ != phase::waiting)
      return;
    ++srv_.expired;
    keep_alive_ = false;
    retry_after_ = true;
    cancel_watch();
    send_error({errc::unavailable, "the server is shutting down and its drain deadline passed "
                                   "before this request was answered; retry elsewhere"});
  }

  enum class phase : std::uint8_t {
    reading,
    /// Waiting for an actor's answer.
    waiting,
    writing,
    /// The answer is out; discarding what the client still sends.
    lingering,
    closed,
  };

  // -- deadlines -------------------------------------------------------------

  /// The read deadline is a plain time point checked by one timer that
  /// wakes at most once per deadline: a request changes no timer (a timer
  /// change costs a lock in the reactor; a hit makes none).
  void arm_timer() {
    // An armed timer that wakes no later than the deadline re-arms itself
    // then; one that would wake too late is moved.
    if (timer_armed_ && armed_for_ <= deadline_)
      return;
    timer_armed_ = true;
    armed_for_ = deadline_;
    timer_.expires_at(deadline_);
    timer_.async_wait([self = shared_from_this(), gen = ++timer_gen_](beast::error_code ec) {
      self->on_timer(ec, gen);
    });
  }

  void on_timer(beast::error_code ec, std::uint64_t gen) {
    if (gen != timer_gen_)
      return; // moved meanwhile
    timer_armed_ = false;
    if (ec || phase_ == phase::closed)
      return;
    if (phase_ != phase::reading && phase_ != phase::lingering)
      return; // the next read re-arms it
    if (clock_type::now() < deadline_)
      return arm_timer();
    timed_out_ = true;
    beast::error_code ignored;
    stream_.socket().cancel(ignored);
  }

  // -- read ------------------------------------------------------------------

  void do_read() {
    phase_ = phase::reading;
    ++seq_;
    timed_out_ = false;
    parser_.emplace();
    parser_->body_limit(srv_.cfg.body_limit);
    parser_->header_limit(header_limit);
    deadline_ = clock_type::now() + srv_.cfg.read_timeout;
    arm_timer();
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec)
      return on_read_error(ec);
    if (auto st = http_api::check_framing(http_rules::framing_of(parser_->get())); !st)
      return reject(st.error());
    // Parse the part of the body that came with the header now.
    while (!parser_->is_done() && buffer_.size() > 0) {
      auto n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec == bhttp::error::need_more) {
        ec = {};
        break;
      }
      if (ec)
        return on_read_error(ec);
      if (n == 0)
        break;
    }
    if (parser_->is_done())
      return handle(parser_->release());
    if (http_rules::expects_continue(parser_->get())) {
      // The body is within the limit (a larger Content-Length already
      // failed with body_limit): ask for it.
      static constexpr char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      beast::error_code wec;
      write_now(asio::buffer(cont, sizeof(cont) - 1), wec);
      if (wec)
        return close_now();
    }
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec)
      return on_read_error(ec);
    handle(parser_->release());
  }

  void on_read_error(beast::error_code ec) {
    if (timed_out_) {
      // Only a request that had begun gets 408; an idle keep-alive
      // connection is simply closed.
      if (parser_ && parser_->got_some()) {
        srv_.count(&service_board::read_timeouts);
        return reject({errc::request_timeout, "the request did not arrive complete within "
                                                + std::to_string(srv_.cfg.read_timeout.count())
                                                + " ms"});
      }
      return close_now();
    }
    // A clean close by the client, or a broken connection.
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted
        || ec.category() != bhttp::make_error_code(bhttp::error::bad_method).category())
      return close_now();
    if (ec == bhttp::error::body_limit)
      return reject({errc::payload_too_large, "request body exceeds the limit of "
                                                + std::to_string(srv_.cfg.body_limit) + " bytes"});
    if (ec == bhttp::error::header_limit) {
      // Beast counts the request line in the header limit: if no line has
      // ended yet, the target itself is too long.
      auto d = buffer_.cdata();
      std::string_view seen{static_cast<const char*>(d.data()), d.size()};
      if (seen.find('\n') == std::string_view::npos)
        return reject({errc::uri_too_long,
                       "the request line exceeds " + std::to_string(header_limit) + " bytes"});
      return reject({errc::header_too_large, "the request's header section exceeds "
                                               + std::to_string(header_limit) + " bytes"});
    }
    reject({errc::bad_request, "malformed HTTP request: " + ec.message()});
  }

  /// Answers a request the connection cannot go on from, then closes it.
  void reject(const error& e) {
    if (e.code != errc::request_timeout)
      srv_.count(&service_board::framing_errors);
    keep_alive_ = false;
    route_ = "other";
    version_ = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    start_ = clock_type::now();
    send_error(e);
  }

  // -- route -----------------------------------------------------------------

  void handle(bhttp::request<bhttp::string_body>&& req) {
    start_ = clock_type::now();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == bhttp::verb::head;
    ++srv_.active;
    counted_active_ = true;
    auto target = req.target();
    if (auto q = target.find('?'); q != beast::string_view::npos)
      target = target.substr(0, q);
    auto get_only = [&](const char* name) {
      route_ = name;
      if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
        allow_ = "GET, HEAD";
        send_error({errc::method_not_allowed, std::string{"use GET for /"} + name + ", not "
                                                + std::string{req.method_string()}});
        return false;
      }
      return true;
    };
    if (target == "/predict") {
      route_ = "predict";
      handle_predict(req);
    } else if (target == "/health") {
      if (get_only("health")) {
        auto& b = *srv_.svc.board;
        send(200, http_api::encode_health(b.cache_enabled.load(), b.workers_alive.load(),
                                          srv_.inflight.load(), srv_.cfg.model_version));
      }
    } else if (target == "/stats") {
      if (get_only("stats"))
        ask_stats();
    } else if (target == "/metrics") {
      if (get_only("metrics"))
        ask_metrics();
    } else if (target == "/agent") {
      route_ = "agent";
      if (authorized(req) && get_only("agent"))
        ask_agent(std::nullopt, 0.0);
    } else if (target.starts_with("/admin/")) {
      route_ = "admin";
      if (authorized(req))
        handle_admin(req, target);
    } else {
      route_ = "other";
      send_error({errc::not_found, "no route " + std::string{target}
                                     + " (routes: POST /predict, GET /health, GET /stats, "
                                       "GET /metrics)"});
    }
  }

  /// Checks the bearer token; answers 401/403 itself when it fails.
  bool authorized(const bhttp::request<bhttp::string_body>& req) {
    auto auth = req[bhttp::field::authorization];
    auto st = http_api::check_admin({auth.data(), auth.size()}, srv_.cfg.admin_token);
    if (st)
      return true;
    www_authenticate_ = st.error().code == errc::unauthorized;
    send_error(st.error());
    return false;
  }

  void handle_admin(bhttp::request<bhttp::string_body>& req, beast::string_view target) {
    struct route {
      const char* path;
      bhttp::verb method;
      admin_command cmd;
    };
    static constexpr route routes[] = {
      {"/admin/cache/disable", bhttp::verb::post, admin_command::disable_cache},
      {"/admin/cache/enable", bhttp::verb::post, admin_command::enable_cache},
      {"/admin/cache/clear", bhttp::verb::post, admin_command::clear_cache},
      {"/admin/cache/ttl", bhttp::verb::put, admin_command::set_ttl},
      {"/admin/agent/resume", bhttp::verb::post, admin_command::resume_agent},
    };
    for (const auto& r : routes) {
      if (target != r.path)
        continue;
      if (req.method() != r.method) {
        allow_ = std::string{bhttp::to_string(r.method)};
        return send_error({errc::method_not_allowed, "use " + allow_ + " for " + r.path});
      }
      double value = 0.0;
      if (r.cmd == admin_command::set_ttl) {
        auto ttl = http_api::decode_ttl(req.body());
        if (!ttl)
          return send_error(ttl.error());
        value = *ttl;
      }
      return ask_agent(r.cmd, value);
    }
    send_error({errc::not_found, "no admin route " + std::string{target}
                                   + " (POST /admin/cache/disable, /admin/cache/enable, "
                                     "/admin/cache/clear, /admin/agent/resume; PUT "
                                     "/admin/cache/ttl)"});
  }

  /// Runs `k(done)` to ask an actor, where `done(expected<R>)` comes back
  /// on any thread: the answer is posted to this connection, which turns it
  /// into a response with `reply` unless the drain answered meanwhile.
  template <class R, class Reply, class Ask>
  void await(Ask k, Reply reply) {
    auto self = shared_from_this();
    auto ex = stream_.get_executor();
    auto seq = begin_wait();
    k([self, ex, seq, reply](caf::expected<R> r) {
      asio::post(ex, [self, seq, reply, r = std::move(r)]() mutable {
        if (!self->end_wait(seq))
          return;
        if (!r)
          return self->send_error(from_caf_error(r.error()));
        reply(*self, *r);
      });
    });
  }

  /// GET /agent, or an admin command (which answers with the agent's state).
  void ask_agent(std::optional<admin_command> cmd, double value) {
    auto& sys = srv_.sys;
    auto dst = srv_.svc.supervisor;
    await<agent_snapshot>(
      [&sys, dst, cmd, value](auto done) {
        if (cmd)
          ask<agent_snapshot>(sys, dst, std::chrono::seconds{3}, done, admin_atom::value, *cmd,
                              value);
        else
          ask<agent_snapshot>(sys, dst, std::chrono::seconds{3}, done, agent_atom::value);
      },
      [](session& s, agent_snapshot& a) { s.send(200, http_api::encode_agent(a)); });
  }

  void handle_predict(bhttp::request<bhttp::string_body>& req) {
    if (req.method() != bhttp::verb::post) {
      allow_ = "POST";
      return send_error({errc::method_not_allowed,
                         "use POST for /predict, not " + std::string{req.method_string()}});
    }
    auto ct = req[bhttp::field::content_type];
    if (!is_json(ct))
      return send_error({errc::unsupported_media_type,
                         "content type must be application/json, got '" + std::string{ct} + "'"});
    auto decoded = http_api::decode_predict(req.body(), {srv_.cfg.input_dim, srv_.cfg.max_rows});
    if (!decoded)
      return send_error(decoded.error());
    if (srv_.svc.hits) {
      // A hit is answered here, on this I/O thread, before any admission
      // limit: a cheap answer is never refused to make room for expensive
      // ones. The read path records its outcome in batches.
      if (auto hit = srv_.svc.hits->serve(*decoded, start_)) {
        reported_ = true;
        source_ = hit->source;
        cache_hit_ = true;
        return send(200, http_api::encode_predict(*hit, elapsed_ms()));
      }
    }
    // A client that sent its request and left at once (a reset flood)
    // costs nothing more than the parse.
    if (peer_state() == peer::gone)
      return client_gone();
    // The deadline: the client's own, else the server's queue delay. The
    // encoder pool refuses at once (503) what it cannot finish by then.
    auto budget = decoded->timeout_ms > 0 ? std::chrono::milliseconds{decoded->timeout_ms}
                                          : srv_.cfg.max_queue_delay;
    if (budget.count() > 0) {
      decoded->deadline = start_ + budget;
      // The pool's own rule, applied here first from the load it
      // publishes: a miss it would refuse costs no actor message (under a
      // flood those would keep the actors from the hits' bookkeeping).
      if (auto wait = expected_encoder_wait(decoded->rows); wait > budget) {
        retry_after_ = true;
        return send_error(
          {errc::overloaded, "the encoders are busy: the expected wait of "
                               + std::to_string(wait.count()) + " ms exceeds this request's "
                               + std::to_string(budget.count()) + " ms deadline; retry later"});
      }
    }
    if (srv_.inflight.fetch_add(1) >= srv_.cfg.max_inflight) {
      --srv_.inflight;
      retry_after_ = true;
      return send_error({errc::overloaded, "server is at its limit of "
                                             + std::to_string(srv_.cfg.max_inflight)
                                             + " requests in flight; retry later"});
    }
    holds_slot_ = true;
    cancel_ = std::make_shared<cancel_flag>();
    decoded->cancel = cancel_;
    auto metrics = srv_.svc.metrics;
    auto start = start_;
    auto& ingress = srv_.svc.ingress;
    await<predict_reply>(
      [&ingress, metrics, start, req = std::move(*decoded)](auto done) mutable {
        caf::anon_send(ingress, predict_atom::value, std::move(req),
                       predict_callback{[metrics, start, done](caf::expected<predict_reply> r) {
                         // This runs on the actor thread that answered:
                         // report the outcome from here, where sending
                         // wakes no thread.
                         caf::anon_send(metrics, outcome_atom::value, predict_outcome(r, start));
                         done(std::move(r));
                       }});
      },
      [](session& s, predict_reply& r) {
        s.source_ = r.source;
        s.cache_hit_ = r.cache_hit;
        s.send(200, http_api::encode_predict(r, s.elapsed_ms()));
      });
    reported_ = true;
    watch_client();
  }

  /// The wait the encoder pool expects for `rows` more rows now (0 while
  /// it has measured nothing), from the load it publishes.
  std::chrono::milliseconds expected_encoder_wait(std::uint32_t rows) const {
    if (!srv_.svc.board)
      return std::chrono::milliseconds{0};
    const auto& b = *srv_.svc.board;
    auto ns_per_row = b.encoder_ns_per_row.load(std::memory_order_relaxed);
    auto workers = b.encoder_workers.load(std::memory_order_relaxed);
    if (ns_per_row == 0 || workers == 0)
      return std::chrono::milliseconds{0};
    auto rows_ahead = b.encoder_rows_ahead.load(std::memory_order_relaxed) + rows;
    auto ms = static_cast<double>(rows_ahead) * static_cast<double>(ns_per_row)
              / static_cast<double>(workers) / 1e6;
    return std::chrono::milliseconds{static_cast<std::int64_t>(std::min(ms, 3.6e6))};
  }

  static request_outcome predict_outcome(const caf::expected<predict_reply>& r,
                                         clock_type::time_point start) {
    request_outcome o;
    o.route = "predict";
    if (r) {
      o.source = r->source;
      o.cache_hit = r->cache_hit;
    } else {
      auto code = from_caf_error(r.error()).code;
      o.error_code = static_cast<std::uint8_t>(code);
      o.status = static_cast<std::uint16_t>(http_api::status_for(code));
    }
    o.latency_ns
      = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - start).count();
    return o;
  }

  void ask_stats() {
    srv_.flush_hits();
    auto& sys = srv_.sys;
    auto dst = srv_.svc.metrics;
    await<service_snapshot>(
      [&sys, dst](auto done) {
        ask<service_snapshot>(sys, dst, std::chrono::seconds{3}, done, stats_atom::value);
      },
      [](session& s, service_snapshot& r) { s.send(200, http_api::encode_stats(r)); });
  }

  void ask_metrics() {
    srv_.flush_hits();
    auto& sys = srv_.sys;
    auto dst = srv_.svc.metrics;
    await<std::string>(
      [&sys, dst](auto done) {
        ask<std::string>(sys, dst, std::chrono::seconds{3}, done, metrics_atom::value);
      },
      [](session& s, std::string& r) {
        s.send(200, std::move(r), "text/plain; version=0.0.4; charset=utf-8");
      });
  }

  // -- waiting for an actor ----------------------------------------------------

  /// Registers this request for the drain deadline; returns its number.
  std::uint64_t begin_wait() {
    phase_ = phase::waiting;
    std::lock_guard<std::mutex> guard{srv_.waiting_mu};
    srv_.waiting.emplace(this, weak_from_this());
    return seq_;
  }

  /// The answer for request `seq` arrived: true if it is still wanted.
  bool end_wait(std::uint64_t seq) {
    if (seq != seq_ || phase_ != phase::waiting)
      return false; // the drain answered it, or the client went away
    unregister();
    cancel_watch();
    return true;
  }

  void unregister() {
    std::lock_guard<std::mutex> guard{srv_.waiting_mu};
    srv_.waiting.erase(this);
  }

  /// While a prediction is computed, notices when its client goes away
  /// (end of stream or reset), so that work nobody waits for is dropped.
  /// Data instead means a pipelined request: then the watch stops (the
  /// client is evidently still there).
  void watch_client() {
    if (phase_ != phase::waiting)
      return;
    watching_ = true;
    stream_.socket().async_wait(tcp::socket::wait_read,
                                [self = shared_from_this(), seq = seq_](beast::error_code ec) {
                                  self->on_readable(ec, seq);
                                });
  }

  void on_readable(beast::error_code ec, std::uint64_t seq) {
    if (seq != seq_ || phase_ != phase::waiting || !watching_)
      return;
    watching_ = false;
    if (ec)
      return;
    switch (peer_state()) {
      case peer::sending:
        return; // a pipelined request: the client is there
      case peer::quiet:
        return watch_client();
      case peer::gone:
        return client_gone();
    }
  }

  enum class peer : std::uint8_t { quiet, sending, gone };

  /// Peeks at the socket without consuming anything: more data (a
  /// pipelined request), nothing yet, or the end of the stream / a reset.
  peer peer_state() {
    char c = 0;
    auto n = ::recv(stream_.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
      return peer::sending;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return peer::quiet;
    return peer::gone;
  }

  /// Nobody will read the answer: cancel the work and close.
  void client_gone() {
    if (cancel_)
      cancel_->cancel();
    srv_.count(&service_board::clients_gone);
    close_now();
  }

  void cancel_watch() {
    watching_ = false;
  }

  // -- write -----------------------------------------------------------------

  double elapsed_ms() const {
    return std::chrono::duration<double, std::milli>(clock_type::now() - start_).count();
  }

  void send_error(const error& e) {
    error_ = e.code;
    if (e.code == errc::overloaded || e.code == errc::unavailable)
      retry_after_ = true;
    send(http_api::status_for(e.code), http_api::encode_error(e));
  }

  /// Writes what the socket takes now, on this thread.
  template <class Buffers>
  void write_now(const Buffers& b, beast::error_code& ec) {
    auto& sock = stream_.socket();
    if (!sock.non_blocking())
      sock.non_blocking(true, ec);
    std::size_t left = asio::buffer_size(b);
    auto data = asio::buffer(b);
    while (!ec && left > 0) {
      auto n = sock.write_some(data, ec);
      data += n;
      left -= n;
    }
  }

  void send(unsigned status, std::string body, const char* content_type = "application/json") {
    status_ = status;
    phase_ = phase::writing;
    // The prediction is done: free its in-flight slot now, not after the
    // write, so a client that has read its answer can never see 503 for it.
    if (holds_slot_) {
      --srv_.inflight;
      holds_slot_ = false;
    }
    if (srv_.draining.load())
      keep_alive_ = false;
    res_.emplace(static_cast<bhttp::status>(status), version_);
    res_->set(bhttp::field::server, "sil-server");
    res_->set(bhttp::field::content_type, content_type);
    if (!allow_.empty())
      res_->set(bhttp::field::allow, allow_);
    if (retry_after_)
      res_->set(bhttp::field::retry_after, "1");
    if (www_authenticate_)
      res_->set(bhttp::field::www_authenticate, "Bearer");
    res_->keep_alive(keep_alive_);
    if (head_) {
      // HEAD: the header a GET would get, Content-Length included, and no
      // body (RFC 9110 section 9.3.2).
      res_->content_length(body.size());
    } else {
      res_->body() = std::move(body);
      res_->prepare_payload();
    }
    // Write at once, on this thread: a small answer almost always fits the
    // socket's buffer, and then it costs one send() and no reactor round
    // trip. Only what the socket does not take now is written
    // asynchronously, under the timeout that bounds a stalled reader.
    serializer_.emplace(*res_);
    beast::error_code ec;
    auto& sock = stream_.socket();
    if (!sock.non_blocking())
      sock.non_blocking(true, ec);
    while (!ec && !serializer_->is_done())
      bhttp::write_some(sock, *serializer_, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      wrote_async_ = true;
      stream_.expires_after(srv_.cfg.read_timeout);
      return bhttp::async_write(stream_, *serializer_,
                                beast::bind_front_handler(&session::on_write, shared_from_this()));
    }
    on_write(ec, 0);
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (wrote_async_) {
      wrote_async_ = false;
      stream_.expires_never();
    }
    if (!reported_)
      report();
    release_counters();
    serializer_.reset();
    res_.reset();
    if (ec)
      return close_now();
    if (!keep_alive_)
      return linger();
    reset_request_state();
    do_read();
  }

  void report() {
    request_outcome o;
    o.error_code = static_cast<std::uint8_t>(error_);
    o.status = static_cast<std::uint16_t>(status_);
    o.route = route_;
    o.source = source_;
    o.cache_hit = cache_hit_;
    o.latency_ns
      = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - start_).count();
    caf::anon_send(srv_.svc.metrics, outcome_atom::value, std::move(o));
  }

  void reset_request_state() {
    reported_ = false;
    allow_.clear();
    retry_after_ = false;
    www_authenticate_ = false;
    head_ = false;
    error_ = errc{};
    source_ = embedding_source::encoder;
    cache_hit_ = false;
    cancel_.reset();
  }

  /// Gives back this request's in-flight slot and its place in the drain
  /// count, each at most once.
  void release_counters() {
    if (holds_slot_) {
      --srv_.inflight;
      holds_slot_ = false;
    }
    if (counted_active_) {
      --srv_.active;
      counted_active_ = false;
    }
  }

  // -- close -----------------------------------------------------------------

  /// The answer is out and the connection ends: shut the send side (the
  /// client sees the end of the answer) and discard what the client still
  /// sends until it closes too, for at most `linger`. Closing with unread
  /// data would send a reset, which can destroy the answer in flight.
  void linger() {
    release_counters();
    phase_ = phase::lingering;
    ++seq_;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec)
      return close_now();
    buffer_.consume(buffer_.size());
    deadline_ = clock_type::now() + srv_.cfg.linger;
    timed_out_ = false;
    arm_timer();
    discard();
  }

  void discard() {
    stream_.socket().async_read_some(
      asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec || self->timed_out_ || self->phase_ != phase::lingering)
          return self->close_now();
        self->discard();
      });
  }

  void close_now() {
    release_counters();
    if (phase_ == phase::waiting)
      unregister();
    phase_ = phase::closed;
    ++seq_;
    beast::error_code ec;
    timer_.cancel(ec);
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  static constexpr std::size_t header_limit = 16 * 1024;

  beast::tcp_stream stream_;
  http_server::impl& srv_;
  asio::steady_timer timer_;
  clock_type::time_point deadline_{};
  clock_type::time_point armed_for_{};
  std::uint64_t timer_gen_ = 0;
  bool timer_armed_ = false;
  bool timed_out_ = false;
  phase phase_ = phase::reading;
  /// Numbers the requests on this connection: a late answer or wake-up for
  /// an earlier one is recognised and dropped.
  std::uint64_t seq_ = 0;
  bool watching_ = false;
  bool wrote_async_ = false;
  beast::flat_buffer buffer_;
  std::array<char, 16 * 1024> scratch_{};
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::string_body>> res_;
  std::optional<bhttp::response_serializer<bhttp::string_body>> serializer_;
  clock_type::time_point start_ = clock_type::now();
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool head_ = false;
  bool holds_slot_ = false;
  bool counted_active_ = false;
  std::string allow_;
  bool retry_after_ = false;
  bool www_authenticate_ = false;
  const char* route_ = "other";
  unsigned status_ = 200;
  errc error_{};
  embedding_source source_ = embedding_source::encoder;
  bool cache_hit_ = false;
  /// The outcome was already sent to the metrics aggregator.
  bool reported_ = false;
  /// Set when the client of the prediction in flight goes away.
  std::shared_ptr<cancel_flag> cancel_;
};

bool out_of_descriptors(const beast::error_code& ec) {
  return ec == asio::error::no_descriptors || ec.value() == ENFILE || ec.value() == ENOBUFS
         || ec.value() == ENOMEM;
}

std::size_t derived_connection_cap() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return 65536;
  auto n = static_cast<std::size_t>(rl.rlim_cur);
  // Leave room for the actor system, the cluster's connections and logs.
  return n > 256 ? n - 128 : std::max<std::size_t>(4, n / 2);
}

} // namespace

void http_server::impl::refuse(int fd) {
  // Best effort, never blocking: the answer fits any socket buffer.
  ::send(fd, refusal.data(), refusal.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
  count(&service_board::connections_refused);
}

void http_server::impl::on_accept_error(const beast::error_code& ec) {
  if (out_of_descriptors(ec)) {
    count(&service_board::accept_backoffs);
    // Free the spare descriptor for a moment to refuse one waiting
    // connection with an answer, then wait before accepting again: the
    // backlog stays full until connections close, and retrying at once
    // would spin.
    if (spare_fd >= 0) {
      ::close(spare_fd);
      spare_fd = -1;
      int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0)
        refuse(fd);
      spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    accept_timer.expires_after(std::chrono::milliseconds{50});
    accept_timer.async_wait([this](beast::error_code e) {
      if (!e && acceptor.is_open())
        do_accept();
    });
    return;
  }
  do_accept(); // an aborted handshake (ECONNABORTED) and the like
}

void http_server::impl::do_accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open())
      return; // shutting down
    if (ec)
      return on_accept_error(ec);
    if (connections.load() >= max_connections) {
      refuse(s.release());
      return do_accept();
    }
    beast::error_code ignored;
    s.set_option(tcp::no_delay{true}, ignored);
    std::make_shared<session>(std::move(s), *this)->run();
    do_accept();
  });
}

result<std::unique_ptr<http_server>>
http_server::start(caf::actor_system& sys, const http_config& cfg, const service_handles& service) {
  auto p = std::make_unique<impl>(sys, cfg, service);
  beast::error_code ec;
  auto addr = asio::ip::make_address(cfg.host, ec);
  if (ec)
    return error{errc::invalid_config, "host: '" + cfg.host + "' is not an IP address"};
  tcp::endpoint ep{addr, cfg.port};
  auto fail = [&](const char* what) -> result<std::unique_ptr<http_server>> {
    return error{errc::io_error, std::string{what} + " " + cfg.host + ":" + std::to_string(cfg.port)
                                   + ": " + ec.message()};
  };
  p->acceptor.open(ep.protocol(), ec);
  if (ec)
    return fail("cannot open a socket for");
  p->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  p->acceptor.bind(ep, ec);
  if (ec)
    return fail("cannot bind");
  p->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return fail("cannot listen on");
  p->max_connections = cfg.max_connections > 0 ? cfg.max_connections : derived_connection_cap();
  p->spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto* raw = p.get();
  if (p->svc.hits)
    p->svc.hits->on_pending([raw] { raw->schedule_flush(); });
  p->signals.async_wait([raw](beast::error_code e, int) {
    if (e)
      return;
    std::lock_guard<std::mutex> guard{raw->mu};
    raw->signalled = true;
    raw->cv.notify_all();
  });
  p->do_accept();
  for (std::size_t i = 0; i < cfg.threads; ++i)
    p->threads.emplace_back([raw] { raw->ioc.run(); });
  return std::unique_ptr<http_server>{new http_server{std::move(p)}};
}

http_server::http_server(std::unique_ptr<impl> p)
  : impl_(std::move(p)) {
  // nop
}

http_server::~http_server() {
  shutdown(std::chrono::milliseconds{0});
}

std::uint16_t http_server::port() const noexcept {
  beast::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

std::size_t http_server::max_connections() const noexcept {
  return impl_->max_connections;
}

void http_server::wait_for_signal() {
  // SIGHUP reopens the log files (log rotation) and the wait goes on. The
  // set is owned by its pending wait, so a SIGHUP during the drain still
  // reopens; it goes away with the I/O context.
  struct hangup {
    std::shared_ptr<asio::signal_set> set;
    void operator()(const beast::error_code& e, int) const {
      if (e)
        return;
      sil::logging::reopen_and_log("SIGHUP");
      set->async_wait(*this);
    }
  };
  auto hup = std::make_shared<asio::signal_set>(impl_->ioc, SIGHUP);
  hup->async_wait(hangup{hup});
  std::unique_lock<std::mutex> guard{impl_->mu};
  impl_->cv.wait(guard, [this] { return impl_->signalled; });
}

std::size_t http_server::shutdown(std::chrono::milliseconds drain) {
  auto& p = *impl_;
  if (p.threads.empty())
    return 0;
  // Stop accepting; requests already read keep going.
  asio::post(p.ioc, [&p] {
    beast::error_code ec;
    p.acceptor.close(ec);
    p.accept_timer.cancel(ec);
    p.signals.cancel(ec);
  });
  p.draining = true;
  // Wait until nothing has been active for a short quiet period, so that
  // requests already sent on open connections (not yet parsed when the
  // signal came) are served too; the drain timeout bounds the wait.
  auto deadline = clock_type::now() + drain;
  auto quiet_since = clock_type::now();
  constexpr auto quiet = std::chrono::milliseconds{200};
  while (clock_type::now() < deadline) {
    auto now = clock_type::now();
    if (p.active.load() > 0)
      quiet_since = now;
    else if (now - quiet_since >= quiet || drain.count() == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  // The deadline passed: whoever still waits for an actor gets 503 now,
  // rather than no answer at all.
  {
    std::lock_guard<std::mutex> guard{p.waiting_mu};
    for (auto& [raw, weak] : p.waiting)
      if (auto s = weak.lock())
        s->expire_soon();
  }
  // Give those answers a moment to be written.
  auto flush_until = clock_type::now() + std::chrono::milliseconds{500};
  while (p.active.load() > 0 && clock_type::now() < flush_until)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  auto left = p.active.load() + p.expired.load();
  p.work.reset();
  p.ioc.stop();
  for (auto& t : p.threads)
    t.join();
  p.threads.clear();
  if (p.svc.hits) {
    p.svc.hits->on_pending({});
    p.svc.hits->flush();
  }
  return left;
}

} // namespace sil
