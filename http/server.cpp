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

#include "actors/hit_path.hpp"
#include "actors/service_handles.hpp"
#include "http/api_rules.hpp"
#include "http/codec.hpp"
#include "http/framing.hpp"
#include "http/request_rules.hpp"
#include "http/routes.hpp"
#include "logging/log.hpp"

namespace sil {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

/// A connection waiting for an answer that comes later, which the drain
/// may have to answer itself (503) when its deadline passes.
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
         "X-Request-Id: "
         + http_api::new_request_id() + "\r\nContent-Length: " + std::to_string(body.size())
         + "\r\n\r\n" + body;
}

std::string_view sv(beast::string_view s) {
  return {s.data(), s.size()};
}

} // namespace

struct http_server::impl {
  impl(const http_config& c, std::shared_ptr<http_api::handler> h, std::shared_ptr<service_board> b,
       std::shared_ptr<read_paths> rp)
    : cfg(c)
    , handler(std::move(h))
    , board(std::move(b))
    , hits(std::move(rp))
    , cors(c.cors_origins)
    , acceptor(ioc)
    , signals(ioc, SIGINT, SIGTERM) {
    // nop
  }

  ~impl() {
    if (spare_fd >= 0)
      ::close(spare_fd);
  }

  http_config cfg;
  /// What requests mean (the routes).
  std::shared_ptr<http_api::handler> handler;
  /// The connection counters' home (null: not counted).
  std::shared_ptr<service_board> board;
  /// The read paths of every lane, whose batches the flush timer sends
  /// (null: none).
  std::shared_ptr<read_paths> hits;
  http_api::cors_policy cors;
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
  asio::signal_set signals;
  /// Sends the read path's batches at most `flush_delay` after its first
  /// unsent event (armed on demand: an idle server never wakes for it).
  asio::strand<asio::io_context::executor_type> flush_strand{ioc.get_executor()};
  asio::steady_timer flush_timer{flush_strand};
  static constexpr std::chrono::milliseconds flush_delay{5};
  std::vector<std::thread> threads;
  /// Any request being handled, for draining on shutdown.
  std::atomic<std::size_t> active{0};
  /// Open connections (sessions alive).
  std::atomic<std::size_t> connections{0};
  /// Set at shutdown: answers carry "Connection: close".
  std::atomic<bool> draining{false};
  /// Sessions waiting for an answer that comes later (for the drain
  /// deadline).
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
        if (!ec && hits)
          hits->flush();
      });
    });
  }

  void count(std::atomic<std::uint64_t> service_board::*field) {
    if (board)
      ((*board).*field).fetch_add(1, std::memory_order_relaxed);
  }
};

namespace {

/// One connection: read a request, answer it, repeat while keep-alive.
///
/// A request is read header first: its framing is checked before any body
/// byte is trusted, `Expect: 100-continue` is answered, and a body already
/// in the buffer is parsed without another trip through the reactor. Every
/// error that ends the connection is answered, then the send side is shut
/// and what the client still sends is read and discarded for a bounded
/// time (a lingering close), so that the client reads the answer rather
/// than a reset.
///
/// What a request means is the handler's business (http/routes.*): the
/// session hands it a parsed request and writes the answer it gives, now
/// or later (then the session waits, registered for the drain deadline,
/// watching for a client that leaves).
class session : public drainable,
                public http_api::responder,
                public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, http_server::impl& srv)
    : stream_(std::move(socket))
    , srv_(srv)
    , timer_(stream_.get_executor()) {
    ++srv_.connections;
    if (srv_.board)
      srv_.board->connections_open.fetch_add(1, std::memory_order_relaxed);
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec)
      remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  ~session() override {
    --srv_.connections;
    if (srv_.board)
      srv_.board->connections_open.fetch_sub(1, std::memory_order_relaxed);
  }

  void run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&session::do_read, shared_from_this()));
  }

  void expire_soon() override {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->expire(); });
  }

  // -- http_api::responder ---------------------------------------------------

  std::function<void(http_api::deferred_response)> later() override {
    // Posted to this connection's strand: it runs after the handler that
    // asked has returned (and the wait has begun), whatever thread answers.
    return [self = shared_from_this(), ex = stream_.get_executor(),
            seq = seq_](http_api::deferred_response make) {
      asio::post(ex, [self, seq, make = std::move(make)] {
        if (!self->end_wait(seq))
          return;
        self->send(make());
      });
    };
  }

  bool client_gone() override {
    return peer_state() == peer::gone;
  }

private:
  void expire() {
    if (phase_ != phase::waiting)
      return;
    ++srv_.expired;
    keep_alive_ = false;
    cancel_watch();
    send_error({errc::unavailable, "the server is shutting down and its drain deadline passed "
                                   "before this request was answered; retry elsewhere"});
  }

  enum class phase : std::uint8_t {
    reading,
    /// Waiting for an answer that comes later.
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
    header_at_ = clock_type::now();
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
    route_ = route_label::other;
    start_ = clock_type::now();
    if (parser_ && parser_->is_header_done()) {
      version_ = parser_->get().version();
      // Keep what the header said, for the request id and the access log.
      req_ = parser_->release();
      request_id_ = http_api::request_id_for(sv((*req_)["X-Request-Id"]));
      origin_ = std::string{sv((*req_)[bhttp::field::origin])};
    } else {
      version_ = 11;
      request_id_ = http_api::new_request_id();
    }
    send_error(e);
  }

  // -- handle ----------------------------------------------------------------

  void handle(bhttp::request<bhttp::string_body>&& req) {
    start_ = clock_type::now();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == bhttp::verb::head;
    ++srv_.active;
    counted_active_ = true;
    req_ = std::move(req);
    const auto& m = *req_;
    auto target = sv(m.target());
    if (auto q = target.find('?'); q != std::string_view::npos)
      target = target.substr(0, q);
    request_id_ = http_api::request_id_for(sv(m["X-Request-Id"]));
    origin_ = std::string{sv(m[bhttp::field::origin])};
    http_api::request_view v;
    v.method = sv(m.method_string());
    v.target = target;
    auto ct = m.find(bhttp::field::content_type);
    v.has_content_type = ct != m.end();
    if (v.has_content_type)
      v.content_type = sv(ct->value());
    v.authorization = sv(m[bhttp::field::authorization]);
    v.origin = origin_;
    v.preflight_method = sv(m[bhttp::field::access_control_request_method]);
    v.binary_tensors = m.find("Inference-Header-Content-Length") != m.end();
    v.request_id = request_id_;
    v.body = m.body();
    v.remote = remote_;
    v.start = start_;
    auto h = srv_.handler->handle(v, *this);
    if (auto* now = h.now())
      return send(std::move(*now));
    if (h.client_gone())
      return client_gone_now();
    // The answer comes later.
    const auto& p = *h.waiting();
    holds_slot_ = p.holds_slot;
    cancel_ = p.cancel;
    reported_ = p.reported;
    route_ = p.route;
    begin_wait();
    if (cancel_)
      watch_client();
  }

  // -- waiting for an answer -------------------------------------------------

  /// Registers this request for the drain deadline.
  void begin_wait() {
    phase_ = phase::waiting;
    std::lock_guard<std::mutex> guard{srv_.waiting_mu};
    srv_.waiting.emplace(this, weak_from_this());
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
        return client_gone_now();
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
  void client_gone_now() {
    if (cancel_)
      cancel_->cancel();
    srv_.count(&service_board::clients_gone);
    // The exchange ends without an answer (nginx's 499); its outcome, if
    // any, is the work's own to report.
    status_ = 499;
    outcome_ = "client_gone";
    reported_ = true;
    finish(0);
    close_now();
  }

  void cancel_watch() {
    watching_ = false;
  }

  // -- write -----------------------------------------------------------------

  void send_error(const error& e) {
    auto r = http_api::error_response(e, route_);
    r.reported = reported_;
    send(std::move(r));
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

  void send(http_api::response r) {
    status_ = r.status;
    route_ = r.route;
    error_ = r.error;
    reported_ = reported_ || r.reported;
    outcome_ = r.outcome;
    phase_ = phase::writing;
    // The prediction is done: free its in-flight slot now, not after the
    // write, so a client that has read its answer can never see 503 for it.
    release_slot();
    if (srv_.draining.load())
      keep_alive_ = false;
    srv_.cors.decorate(r, origin_);
    res_.emplace(static_cast<bhttp::status>(r.status), version_);
    res_->set(bhttp::field::server, "sil-server");
    if (r.content_type != nullptr)
      res_->set(bhttp::field::content_type, r.content_type);
    if (!r.allow.empty())
      res_->set(bhttp::field::allow, r.allow);
    if (r.retry_after)
      res_->set(bhttp::field::retry_after, "1");
    if (r.www_authenticate)
      res_->set(bhttp::field::www_authenticate, "Bearer");
    res_->set("X-Request-Id", request_id_);
    for (const auto& [name, value] : r.headers)
      res_->set(name, value);
    res_->keep_alive(keep_alive_);
    if (r.status == 204) {
      // No content, and no Content-Length either (RFC 9110 section 8.6).
      bytes_out_ = 0;
    } else if (head_) {
      // HEAD: the header a GET would get, Content-Length included, and no
      // body (RFC 9110 section 9.3.2).
      res_->content_length(r.body.size());
      bytes_out_ = 0;
    } else {
      bytes_out_ = r.body.size();
      res_->body() = std::move(r.body);
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
    finish(bytes_out_);
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

  /// The exchange is over: the handler reports it (metrics, access log),
  /// once.
  void finish(std::uint64_t bytes_out) {
    if (finished_)
      return;
    finished_ = true;
    auto now = clock_type::now();
    http_api::finished_exchange e;
    e.request_id = request_id_;
    e.remote = remote_;
    if (req_) {
      e.method = sv(req_->method_string());
      e.target = sv(req_->target());
      e.bytes_in = req_->body().size();
    }
    e.status = status_;
    e.bytes_out = bytes_out;
    auto from
      = header_at_.time_since_epoch().count() != 0 && header_at_ <= start_ ? header_at_ : start_;
    e.latency = std::chrono::duration_cast<std::chrono::nanoseconds>(now - from);
    e.service_latency = std::chrono::duration_cast<std::chrono::nanoseconds>(now - start_);
    e.route = route_;
    e.error = error_;
    e.reported = reported_;
    e.outcome = outcome_;
    srv_.handler->finished(e);
  }

  void reset_request_state() {
    reported_ = false;
    finished_ = false;
    head_ = false;
    error_ = errc{};
    route_ = route_label::other;
    outcome_ = {};
    cancel_.reset();
    req_.reset();
    origin_.clear();
    request_id_.clear();
  }

  void release_slot() {
    if (holds_slot_) {
      srv_.handler->release_slot();
      holds_slot_ = false;
    }
  }

  /// Gives back this request's in-flight slot and its place in the drain
  /// count, each at most once.
  void release_counters() {
    release_slot();
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

  static constexpr std::size_t header_limit = std::size_t{16} * 1024;

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
  std::array<char, std::size_t{16} * 1024> scratch_{};
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  /// The request being answered (the handler's views point into it).
  std::optional<bhttp::request<bhttp::string_body>> req_;
  std::optional<bhttp::response<bhttp::string_body>> res_;
  std::optional<bhttp::response_serializer<bhttp::string_body>> serializer_;
  /// "IP:PORT" of the client.
  std::string remote_;
  std::string request_id_;
  std::string origin_;
  /// When the request's header arrived, and when it was parsed whole.
  clock_type::time_point header_at_{};
  clock_type::time_point start_ = clock_type::now();
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool head_ = false;
  bool holds_slot_ = false;
  bool counted_active_ = false;
  route_label route_ = route_label::other;
  unsigned status_ = 200;
  errc error_{};
  std::string_view outcome_;
  std::uint64_t bytes_out_ = 0;
  /// The outcome is counted elsewhere (the read path, a prediction's
  /// callback).
  bool reported_ = false;
  /// The handler has been told that this exchange ended.
  bool finished_ = false;
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
  auto refusal = make_refusal();
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

namespace {

result<std::unique_ptr<http_server::impl>> bind_and_run(std::unique_ptr<http_server::impl> p) {
  const auto& cfg = p->cfg;
  beast::error_code ec;
  auto addr = asio::ip::make_address(cfg.host, ec);
  if (ec)
    return error{errc::invalid_config, "host: '" + cfg.host + "' is not an IP address"};
  tcp::endpoint ep{addr, cfg.port};
  auto fail = [&](const char* what) -> result<std::unique_ptr<http_server::impl>> {
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
  if (p->hits)
    p->hits->on_pending([raw] { raw->schedule_flush(); });
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
  return p;
}

} // namespace

result<std::unique_ptr<http_server>>
http_server::start(caf::actor_system& sys, const http_config& cfg, const service_handles& service) {
  auto routes = std::make_shared<http_api::service_routes>(sys, cfg, service);
  auto p
    = bind_and_run(std::make_unique<impl>(cfg, std::move(routes), service.board, service.reads));
  if (!p)
    return p.error();
  return std::unique_ptr<http_server>{new http_server{std::move(*p)}};
}

result<std::unique_ptr<http_server>> http_server::start(const http_config& cfg,
                                                        std::shared_ptr<http_api::handler> routes) {
  auto p = bind_and_run(std::make_unique<impl>(cfg, std::move(routes), nullptr, nullptr));
  if (!p)
    return p.error();
  return std::unique_ptr<http_server>{new http_server{std::move(*p)}};
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
  p.handler->set_draining();
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
  if (p.hits) {
    p.hits->on_pending({});
    p.hits->flush();
  }
  return left;
}

} // namespace sil
