#include "experiments/load_generator.hpp"

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>

namespace sil::lab {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

/// Reads a number after `"key":` in a small JSON body (the server's answer
/// has a fixed, flat shape; a full parse per answer would cost more).
double number_after(const std::string& body, const char* key) {
  auto at = body.find(key);
  if (at == std::string::npos)
    return -1.0;
  return std::strtod(body.c_str() + at + std::char_traits<char>::length(key), nullptr);
}

class generator {
public:
  explicit generator(const load_config& cfg)
    : cfg_(cfg)
    , timer_(ioc_) {
    result_.requests.resize(cfg.schedule.size());
    for (std::size_t i = 0; i < cfg.schedule.size(); ++i)
      result_.requests[i].intended = cfg.schedule[i];
  }

  status run() {
    beast::error_code ec;
    tcp::resolver resolver{ioc_};
    endpoints_ = resolver.resolve(cfg_.host, std::to_string(cfg_.port), ec);
    if (ec)
      return {errc::io_error, "cannot resolve " + cfg_.host + ": " + ec.message()};
    // Open every connection before the clock starts.
    for (std::size_t i = 0; i < cfg_.connections; ++i) {
      auto c = std::make_unique<conn>(ioc_);
      c->stream.connect(endpoints_, ec);
      if (ec)
        return {errc::io_error, "cannot connect to " + cfg_.host + ":" + std::to_string(cfg_.port)
                                  + ": " + ec.message()};
      c->stream.socket().set_option(tcp::no_delay{true}, ec);
      conns_.push_back(std::move(c));
    }
    start_ = clock_type::now();
    deadline_ = start_ + to_duration(cfg_.schedule.back() + cfg_.drain_seconds);
    arm_timer();
    ioc_.run();
    finish();
    return ok();
  }

  load_result take() {
    return std::move(result_);
  }

private:
  struct conn {
    explicit conn(asio::io_context& ioc)
      : stream(ioc) {
      // nop
    }
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    bhttp::request<bhttp::string_body> req;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser;
    bool busy = false;
    bool broken = false;
    std::size_t index = 0;
  };

  static clock_type::duration to_duration(double seconds) {
    return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
  }

  double now() const {
    return std::chrono::duration<double>(clock_type::now() - start_).count();
  }

  // Wakes at the next intended send time (the schedule is fixed in advance).
  void arm_timer() {
    if (next_ >= cfg_.schedule.size()) {
      timer_.expires_at(deadline_);
      timer_.async_wait([this](beast::error_code ec) {
        if (!ec)
          ioc_.stop(); // drain time is over: whatever is in flight failed
      });
      return;
    }
    timer_.expires_at(start_ + to_duration(cfg_.schedule[next_]));
    timer_.async_wait([this](beast::error_code ec) {
      if (ec)
        return;
      // Everything due is pending now, even if no connection is free.
      auto t = now();
      while (next_ < cfg_.schedule.size() && cfg_.schedule[next_] <= t) {
        if (pending_.size() >= cfg_.max_pending) {
          result_.requests[next_].dropped = true;
          ++result_.dropped;
        } else {
          pending_.push_back(next_);
        }
        ++next_;
      }
      dispatch();
      arm_timer();
    });
  }

  void dispatch() {
    for (auto& c : conns_) {
      if (pending_.empty())
        return;
      if (c->busy || c->broken)
        continue;
      send(*c, pending_.front());
      pending_.pop_front();
    }
  }

  void send(conn& c, std::size_t i) {
    c.busy = true;
    c.index = i;
    c.req = {bhttp::verb::post, cfg_.target, 11};
    c.req.set(bhttp::field::host, cfg_.host);
    c.req.set(bhttp::field::content_type, "application/json");
    c.req.keep_alive(true);
    c.req.body() = cfg_.body(i);
    c.req.prepare_payload();
    auto& r = result_.requests[i];
    r.sent = now();
    result_.max_lag = std::max(result_.max_lag, r.sent - r.intended);
    bhttp::async_write(c.stream, c.req, [this, &c](beast::error_code ec, std::size_t) {
      if (ec)
        return fail(c);
      c.parser.emplace();
      c.parser->body_limit(1 << 20);
      bhttp::async_read(c.stream, c.buffer, *c.parser,
                        [this, &c](beast::error_code ec2, std::size_t) {
                          if (ec2)
                            return fail(c);
                          auto& r = result_.requests[c.index];
                          r.done = now();
                          const auto& res = c.parser->get();
                          r.status = static_cast<int>(res.result_int());
                          const auto& body = res.body();
                          r.cache_hit = body.find("\"cache_hit\":true") != std::string::npos;
                          r.prediction = number_after(body, "\"prediction\":");
                          if (auto at = body.find("\"source\":\""); at != std::string::npos)
                            r.source = body[at + 10];
                          r.cache_age_ms = number_after(body, "\"cache_age_ms\":");
                          if (auto at = body.find("\"basis\":\""); at != std::string::npos)
                            r.basis = body[at + 9];
                          r.risk_distance = number_after(body, "\"distance\":");
                          r.p_wrong_upper = number_after(body, "\"p_wrong_upper\":");
                          if (!res.keep_alive())
                            reconnect(c);
                          complete(c);
                        });
    });
  }

  void fail(conn& c) {
    ++result_.failed;
    result_.requests[c.index].failed = true;
    reconnect(c);
    complete(c);
  }

  // A broken (or server-closed) stream is replaced by a new connection; the
  // connection is unusable until that succeeds. The request that hit the
  // error is not retried: it counts as failed.
  void reconnect(conn& c) {
    c.broken = true;
    beast::error_code ignored;
    c.stream.socket().close(ignored);
    c.buffer.clear();
    c.stream.async_connect(endpoints_, [this, &c](beast::error_code ec, const tcp::endpoint&) {
      if (ec)
        return; // stays broken; the others carry on
      beast::error_code ignored2;
      c.stream.socket().set_option(tcp::no_delay{true}, ignored2);
      c.broken = false;
      ++result_.reconnects;
      dispatch();
    });
  }

  void complete(conn& c) {
    c.busy = false;
    if (++done_ % 256 == 0 && cfg_.progress)
      cfg_.progress(done_, cfg_.schedule.size());
    if (done_ + result_.dropped == cfg_.schedule.size()) {
      ioc_.stop();
      return;
    }
    dispatch();
  }

  void finish() {
    for (auto& r : result_.requests)
      if (r.done > result_.elapsed)
        result_.elapsed = r.done;
    // Requests still waiting at the deadline were dropped; those sent but
    // unanswered failed.
    for (auto i : pending_)
      result_.requests[i].dropped = true;
    result_.dropped += pending_.size();
    for (auto& r : result_.requests)
      if (r.sent >= 0 && r.done < 0 && !r.failed) {
        r.failed = true;
        ++result_.failed;
      }
    if (cfg_.progress)
      cfg_.progress(done_, cfg_.schedule.size());
  }

  const load_config& cfg_;
  asio::io_context ioc_;
  asio::steady_timer timer_;
  tcp::resolver::results_type endpoints_;
  std::vector<std::unique_ptr<conn>> conns_;
  std::deque<std::size_t> pending_;
  std::size_t next_ = 0;
  std::size_t done_ = 0;
  clock_type::time_point start_;
  clock_type::time_point deadline_;
  load_result result_;
};

} // namespace

result<http_answer> http_call(const std::string& host, std::uint16_t port,
                              const std::string& method, const std::string& target,
                              const std::string& body, const std::string& bearer,
                              double timeout_seconds) {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::error_code ec;
  auto where = host + ":" + std::to_string(port) + target;
  auto endpoints = tcp::resolver{ioc}.resolve(host, std::to_string(port), ec);
  if (ec)
    return error{errc::io_error, "cannot resolve " + host + ": " + ec.message()};
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  if (req.method() == bhttp::verb::unknown)
    return error{errc::invalid_config, "unknown HTTP method " + method};
  req.set(bhttp::field::host, host);
  if (!bearer.empty())
    req.set(bhttp::field::authorization, "Bearer " + bearer);
  if (!body.empty())
    req.set(bhttp::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  beast::error_code result_ec;
  stream.expires_after(std::chrono::duration_cast<clock_type::duration>(
    std::chrono::duration<double>(timeout_seconds)));
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
    if (e) {
      result_ec = e;
      return;
    }
    bhttp::async_write(stream, req, [&](beast::error_code e2, std::size_t) {
      if (e2) {
        result_ec = e2;
        return;
      }
      bhttp::async_read(stream, buffer, res,
                        [&](beast::error_code e3, std::size_t) { result_ec = e3; });
    });
  });
  ioc.run();
  if (result_ec)
    return error{errc::io_error, method + " " + where + " failed: " + result_ec.message()};
  return http_answer{static_cast<int>(res.result_int()), std::move(res.body())};
}

result<load_result> run_load(const load_config& cfg) {
  if (cfg.schedule.empty())
    return error{errc::invalid_config, "the schedule is empty"};
  if (cfg.connections == 0)
    return error{errc::invalid_config, "at least one connection is needed"};
  if (!cfg.body)
    return error{errc::invalid_config, "no body function"};
  generator g{cfg};
  if (auto st = g.run(); !st)
    return st.error();
  return g.take();
}

} // namespace sil::lab
