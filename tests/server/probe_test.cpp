// sil-server --probe: URL and status-line parsing, and the verdict against
// fake servers on loopback (one answer each, or none at all).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "server/probe.hpp"

namespace sil::probe {
namespace {

using namespace std::chrono_literals;

TEST(ProbeUrl, ParsesHostPortAndTarget) {
  auto u = parse_url("http://127.0.0.1:8000/health/ready");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8000);
  EXPECT_EQ(u->target, "/health/ready");
  auto plain = parse_url("http://gateway");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->host, "gateway");
  EXPECT_EQ(plain->port, 80);
  EXPECT_EQ(plain->target, "/");
  auto q = parse_url("http://h:1?x=1");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->target, "/?x=1");
  auto v6 = parse_url("http://[::1]:9000/health");
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 9000);
  EXPECT_EQ(v6->target, "/health");
}

TEST(ProbeUrl, RefusesWhatItCannotProbeAndSaysWhy) {
  for (const char* bad : {"https://127.0.0.1/", "127.0.0.1:8000", "http://", "http://:80/",
                          "http://h:/", "http://h:0/", "http://h:65536/", "http://h:8x/",
                          "http://[::1/", "http://[::1]x/", "http://user@h/", "http://h/a b"}) {
    auto u = parse_url(bad);
    EXPECT_FALSE(u) << bad;
    if (!u) {
      EXPECT_EQ(u.error().code, errc::invalid_argument) << bad;
      EXPECT_FALSE(u.error().message.empty());
    }
  }
}

TEST(ProbeStatusLine, ReadsTheCode) {
  EXPECT_EQ(*parse_status_line("HTTP/1.1 200 OK"), 200);
  EXPECT_EQ(*parse_status_line("HTTP/1.0 503 Service Unavailable"), 503);
  EXPECT_EQ(*parse_status_line("HTTP/1.1 204"), 204);
  for (const char* bad : {"", "HTTP/2 200 OK", "HTTP/1.1 20 OK", "HTTP/1.1 2000", "hello",
                          "HTTP/1.1  200 OK", "SSH-2.0-OpenSSH_9.2"})
    EXPECT_FALSE(parse_status_line(bad)) << bad;
}

/// A loopback listener that answers each connection with `reply` (after
/// reading the request's head), or holds it open without a word if `reply`
/// is empty and `close_silently` is false.
struct fake_server {
  int fd = -1;
  int port = 0;
  std::string reply;
  bool close_silently = false;
  std::atomic<bool> saw_get{false};
  std::string request;
  std::thread thread;

  explicit fake_server(std::string r, bool silent_close = false)
    : reply(std::move(r))
    , close_silently(silent_close) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0
        || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      ADD_FAILURE() << "no loopback listener for the fake server";
    port = ntohs(a.sin_port);
    thread = std::thread{[this] {
      int c = ::accept(fd, nullptr, nullptr);
      if (c < 0)
        return;
      char buf[2048];
      while (request.find("\r\n\r\n") == std::string::npos) {
        auto n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0)
          break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      saw_get = request.rfind("GET ", 0) == 0;
      if (!reply.empty())
        ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
      else if (!close_silently)
        std::this_thread::sleep_for(1s); // the probe gives up first
      ::close(c);
    }};
  }

  ~fake_server() {
    ::shutdown(fd, SHUT_RDWR);
    thread.join();
    ::close(fd);
  }

  std::string url(const std::string& path = "/health/ready") const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }
};

TEST(ProbeRun, A2xxAnswerIsSuccess) {
  fake_server s{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"};
  auto o = run(s.url(), 2s);
  EXPECT_EQ(o.exit_code, 0) << o.line;
  EXPECT_NE(o.line.find("200 OK"), std::string::npos) << o.line;
  EXPECT_TRUE(s.saw_get);
  EXPECT_EQ(s.request.rfind("GET /health/ready HTTP/1.1\r\n", 0), 0u) << s.request;
  EXPECT_NE(s.request.find("\r\nHost: 127.0.0.1:" + std::to_string(s.port) + "\r\n"),
            std::string::npos)
    << s.request;
  fake_server nc{"HTTP/1.1 204 No Content\r\n\r\n"};
  EXPECT_EQ(run(nc.url(), 2s).exit_code, 0);
}

TEST(ProbeRun, AnotherStatusIsFailureAndNamesIt) {
  fake_server s{"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"};
  auto o = run(s.url(), 2s);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.line.find("503"), std::string::npos) << o.line;
  EXPECT_NE(o.line.find("not 2xx"), std::string::npos) << o.line;
  fake_server moved{"HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\n\r\n"};
  EXPECT_EQ(run(moved.url(), 2s).exit_code, 1);
}

TEST(ProbeRun, GarbageOrSilenceIsFailure) {
  fake_server garbage{"SSH-2.0-OpenSSH_9.2\r\n"};
  auto g = run(garbage.url(), 2s);
  EXPECT_EQ(g.exit_code, 1);
  EXPECT_NE(g.line.find("status line"), std::string::npos) << g.line;
  fake_server closes{"", true};
  auto c = run(closes.url(), 2s);
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_NE(c.line.find("closed without an answer"), std::string::npos) << c.line;
}

TEST(ProbeRun, ASilentServerTimesOut) {
  fake_server silent{""};
  auto start = std::chrono::steady_clock::now();
  auto o = run(silent.url(), 200ms);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.line.find("no answer within 0.2 s"), std::string::npos) << o.line;
  EXPECT_LT(took, 900ms); // bounded by the timeout, not by the server (1 s)
}

TEST(ProbeRun, AClosedPortIsFailure) {
  // A port that was free a moment ago: nothing listens there.
  int port = 0;
  {
    fake_server s{"HTTP/1.1 200 OK\r\n\r\n"};
    port = s.port;
    run(s.url(), 2s);
  }
  auto o = run("http://127.0.0.1:" + std::to_string(port) + "/", 2s);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.line.find("cannot connect"), std::string::npos) << o.line;
  EXPECT_NE(o.line.find("refused"), std::string::npos) << o.line;
}

TEST(ProbeRun, ABadUrlIsFailureWithoutANetworkCall) {
  auto o = run("https://127.0.0.1/", 2s);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.line.find("not an http:// URL"), std::string::npos) << o.line;
}

TEST(ProbeMain, OnlyAFirstProbeArgumentIsAProbe) {
  char prog[] = "sil-server";
  char port[] = "--port=0";
  char probe[] = "--probe";
  char* none[] = {prog, port};
  EXPECT_FALSE(main_if_probe(2, none));
  char* alone[] = {prog, probe};
  EXPECT_EQ(main_if_probe(2, alone), 2); // usage
  char url[] = "http://127.0.0.1:1/";
  char extra[] = "--verbose";
  char* trailing[] = {prog, probe, url, extra};
  EXPECT_EQ(main_if_probe(4, trailing), 2);
  char empty[] = "--probe=";
  char* empty_url[] = {prog, empty};
  EXPECT_EQ(main_if_probe(2, empty_url), 2);
}

} // namespace
} // namespace sil::probe
