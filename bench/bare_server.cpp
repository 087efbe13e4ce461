// The baseline of the HTTP benchmark: a bare Boost.Beast
// keep-alive server that reads each request (body included) and answers with
// a fixed JSON body. sil-server's hit path is measured against it.
//
//   build/bench/sil_bare_server PORT [THREADS]
#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

const std::string fixed_body
  = R"({"prediction":0.678815186,"cache_hit":true,"latency_ms":0.0100,"source":"cache"})";

class session : public std::enable_shared_from_this<session> {
public:
  explicit session(tcp::socket&& s)
    : stream_(std::move(s)) {
    // nop
  }

  void run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&session::do_read, shared_from_this()));
  }

private:
  // Read one request.
  void do_read() {
    req_ = {};
    bhttp::async_read(stream_, buffer_, req_,
                      beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  // Answer it with the fixed body.
  void on_read(beast::error_code ec, std::size_t) {
    if (ec)
      return;
    res_ = {bhttp::status::ok, req_.version()};
    res_.set(bhttp::field::content_type, "application/json");
    res_.keep_alive(req_.keep_alive());
    res_.body() = fixed_body;
    res_.prepare_payload();
    bhttp::async_write(stream_, res_,
                       beast::bind_front_handler(&session::on_write, shared_from_this()));
  }

  // Loop while keep-alive.
  void on_write(beast::error_code ec, std::size_t) {
    if (ec || !res_.keep_alive())
      return;
    do_read();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> req_;
  bhttp::response<bhttp::string_body> res_;
};

void do_accept(tcp::acceptor& acc, asio::io_context& ioc) {
  acc.async_accept(asio::make_strand(ioc), [&acc, &ioc](beast::error_code ec, tcp::socket s) {
    if (!ec) {
      s.set_option(tcp::no_delay{true});
      std::make_shared<session>(std::move(s))->run();
    }
    if (acc.is_open())
      do_accept(acc, ioc);
  });
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: sil_bare_server PORT [THREADS]\n");
    return 2;
  }
  auto port = static_cast<unsigned short>(std::atoi(argv[1]));
  int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  asio::io_context ioc;
  tcp::acceptor acc{ioc, {asio::ip::make_address("127.0.0.1"), port}};
  asio::signal_set signals{ioc, SIGINT, SIGTERM};
  signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
  do_accept(acc, ioc);
  std::printf("listening on 127.0.0.1:%u\n", acc.local_endpoint().port());
  std::fflush(stdout);
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i)
    pool.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : pool)
    t.join();
  return 0;
}
