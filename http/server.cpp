#include "http/server.hpp"

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <caf/all.hpp>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "http/codec.hpp"

namespace sil {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

struct http_server::impl {
  impl(caf::actor_system& s, const http_config& c, const service_handles& h)
    : sys(s)
    , cfg(c)
    , svc(h)
    , acceptor(ioc)
    , signals(ioc, SIGINT, SIGTERM) {
    // nop
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
  /// Set at shutdown: answers carry "Connection: close".
  std::atomic<bool> draining{false};
  std::mutex mu;
  std::condition_variable cv;
  bool signalled = false; // guarded by mu

  void do_accept();

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

bool is_json(beast::string_view ct) {
  // "application/json", optionally with parameters such as "; charset=utf-8".
  auto semi = ct.find(';');
  auto type = ct.substr(0, semi);
  while (!type.empty() && type.back() == ' ')
    type.remove_suffix(1);
  return beast::iequals(type, "application/json");
}

/// One connection: read a request, answer it, repeat while keep-alive.
class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, http_server::impl& srv)
    : stream_(std::move(socket))
    , srv_(srv) {
    // nop
  }

  void run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&session::do_read, shared_from_this()));
  }

private:
  // -- read ------------------------------------------------------------------

  void do_read() {
    parser_.emplace();
    parser_->body_limit(srv_.cfg.body_limit);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(srv_.cfg.read_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    // A clean close by the client, or an idle keep-alive connection.
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout
        || ec == asio::error::operation_aborted)
      return close();
    if (ec == bhttp::error::body_limit) {
      keep_alive_ = false;
      route_ = "other";
      return send_error(
        {errc::payload_too_large,
         "request body exceeds the limit of " + std::to_string(srv_.cfg.body_limit) + " bytes"});
    }
    if (ec) {
      // Malformed HTTP gets a 400; a broken connection just closes.
      if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
        keep_alive_ = false;
        route_ = "other";
        return send_error({errc::bad_request, "malformed HTTP request: " + ec.message()});
      }
      return close();
    }
    // The read deadline stays armed while the request is handled: no socket
    // operation waits on it, and the next read or a blocked write re-arms
    // it (a timer change costs a reactor lock; a hit makes none).
    handle(parser_->release());
  }

  // -- route -----------------------------------------------------------------

  void handle(bhttp::request<bhttp::string_body>&& req) {
    start_ = clock_type::now();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    ++srv_.active;
    counted_active_ = true;
    auto target = req.target();
    if (auto q = target.find('?'); q != beast::string_view::npos)
      target = target.substr(0, q);
    auto get_only = [&](const char* name) {
      route_ = name;
      if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
        allow_ = "GET";
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

  /// GET /agent, or an admin command (which answers with the agent's state).
  void ask_agent(std::optional<admin_command> cmd, double value) {
    auto self = shared_from_this();
    auto ex = stream_.get_executor();
    auto done = [self, ex](caf::expected<agent_snapshot> r) {
      asio::post(ex, [self, r = std::move(r)]() mutable {
        if (!r)
          return self->send_error(from_caf_error(r.error()));
        self->send(200, http_api::encode_agent(*r));
      });
    };
    if (cmd)
      ask<agent_snapshot>(srv_.sys, srv_.svc.supervisor, std::chrono::seconds{3}, done,
                          admin_atom::value, *cmd, value);
    else
      ask<agent_snapshot>(srv_.sys, srv_.svc.supervisor, std::chrono::seconds{3}, done,
                          agent_atom::value);
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
    if (srv_.inflight.fetch_add(1) >= srv_.cfg.max_inflight) {
      --srv_.inflight;
      retry_after_ = true;
      return send_error({errc::overloaded, "server is at its limit of "
                                             + std::to_string(srv_.cfg.max_inflight)
                                             + " requests in flight; retry later"});
    }
    holds_slot_ = true;
    auto decoded = http_api::decode_predict(req.body(), {srv_.cfg.input_dim, srv_.cfg.max_rows});
    if (!decoded)
      return send_error(decoded.error());
    if (srv_.svc.hits) {
      // A hit is answered here, on this I/O thread; the read path records
      // its outcome in batches.
      if (auto hit = srv_.svc.hits->serve(*decoded, start_)) {
        reported_ = true;
        source_ = hit->source;
        cache_hit_ = true;
        return send(200, http_api::encode_predict(*hit, elapsed_ms()));
      }
    }
    auto self = shared_from_this();
    auto ex = stream_.get_executor();
    caf::anon_send(
      srv_.svc.ingress, predict_atom::value, std::move(*decoded),
      predict_callback{
        [self, ex, metrics = srv_.svc.metrics, start = start_](caf::expected<predict_reply> r) {
          // This runs on the actor thread that answered: report
          // the outcome from here, where sending wakes no thread,
          // and touch nothing of the session but by posting.
          caf::anon_send(metrics, outcome_atom::value, predict_outcome(r, start));
          asio::post(ex, [self, r = std::move(r)]() mutable { self->on_predict(std::move(r)); });
        }});
    reported_ = true;
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

  void on_predict(caf::expected<predict_reply> r) {
    if (!r) {
      auto e = from_caf_error(r.error());
      retry_after_ = e.code == errc::unavailable || e.code == errc::overloaded;
      return send_error(e);
    }
    source_ = r->source;
    cache_hit_ = r->cache_hit;
    send(200, http_api::encode_predict(*r, elapsed_ms()));
  }

  void ask_stats() {
    srv_.flush_hits();
    auto self = shared_from_this();
    auto ex = stream_.get_executor();
    ask<service_snapshot>(
      srv_.sys, srv_.svc.metrics, std::chrono::seconds{3},
      [self, ex](caf::expected<service_snapshot> r) {
        asio::post(ex, [self, r = std::move(r)]() mutable {
          if (!r)
            return self->send_error(from_caf_error(r.error()));
          self->send(200, http_api::encode_stats(*r));
        });
      },
      stats_atom::value);
  }

  void ask_metrics() {
    srv_.flush_hits();
    auto self = shared_from_this();
    auto ex = stream_.get_executor();
    ask<std::string>(
      srv_.sys, srv_.svc.metrics, std::chrono::seconds{3},
      [self, ex](caf::expected<std::string> r) {
        asio::post(ex, [self, r = std::move(r)]() mutable {
          if (!r)
            return self->send_error(from_caf_error(r.error()));
          self->send(200, std::move(*r), "text/plain; version=0.0.4; charset=utf-8");
        });
      },
      metrics_atom::value);
  }

  // -- write -----------------------------------------------------------------

  double elapsed_ms() const {
    return std::chrono::duration<double, std::milli>(clock_type::now() - start_).count();
  }

  void send_error(const error& e) {
    error_ = e.code;
    send(http_api::status_for(e.code), http_api::encode_error(e));
  }

  void send(unsigned status, std::string body, const char* content_type = "application/json") {
    status_ = status;
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
    res_->body() = std::move(body);
    res_->prepare_payload();
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
      stream_.expires_after(srv_.cfg.read_timeout);
      return bhttp::async_write(stream_, *serializer_,
                                beast::bind_front_handler(&session::on_write, shared_from_this()));
    }
    on_write(ec, 0);
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (!reported_)
      report();
    release_counters();
    serializer_.reset();
    res_.reset();
    if (ec || !keep_alive_)
      return close();
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
    error_ = errc{};
    source_ = embedding_source::encoder;
    cache_hit_ = false;
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

  void close() {
    release_counters();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  http_server::impl& srv_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::string_body>> res_;
  std::optional<bhttp::response_serializer<bhttp::string_body>> serializer_;
  clock_type::time_point start_ = clock_type::now();
  unsigned version_ = 11;
  bool keep_alive_ = true;
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
};

} // namespace

void http_server::impl::do_accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open())
      return; // shutting down
    if (!ec) {
      beast::error_code ignored;
      s.set_option(tcp::no_delay{true}, ignored);
      std::make_shared<session>(std::move(s), *this)->run();
    }
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

void http_server::wait_for_signal() {
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
  auto left = p.active.load();
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
