#include "server/probe.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sil::probe {

namespace {

using clock_type = std::chrono::steady_clock;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/// Milliseconds left until `deadline` (at least 0), for poll().
int ms_left(clock_type::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

/// A socket that closes itself.
struct socket_fd {
  int fd = -1;
  explicit socket_fd(int f)
    : fd(f) {
  }
  socket_fd(const socket_fd&) = delete;
  socket_fd& operator=(const socket_fd&) = delete;
  ~socket_fd() {
    if (fd >= 0)
      ::close(fd);
  }
};

/// Waits until `fd` is ready for `events`; false on timeout.
bool wait_for(int fd, short events, clock_type::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, ms_left(deadline));
    if (n > 0)
      return true;
    if (n == 0)
      return false;
    if (errno != EINTR)
      return false;
  }
}

std::string timeout_text(std::chrono::milliseconds timeout) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "no answer within %.1f s",
                static_cast<double>(timeout.count()) / 1000.0);
  return buf;
}

/// Connects to one address of `u` before `deadline`; the socket, or why not.
result<int> connect_to(const url& u, clock_type::time_point deadline,
                       std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto port = std::to_string(u.port);
  if (int rc = ::getaddrinfo(u.host.c_str(), port.c_str(), &hints, &found); rc != 0)
    return error{errc::io_error, "cannot resolve " + u.host + ": " + ::gai_strerror(rc)};
  std::string why = "no address for " + u.host;
  int out = -1;
  for (auto* a = found; a != nullptr && out < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      why = std::string{"socket: "} + std::strerror(errno);
      continue;
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      why = std::string{"cannot connect to "} + u.host + ":" + port + ": " + std::strerror(errno);
      ::close(fd);
      continue;
    }
    if (!wait_for(fd, POLLOUT, deadline)) {
      why = timeout_text(timeout) + " (connecting to " + u.host + ":" + port + ")";
      ::close(fd);
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      why = std::string{"cannot connect to "} + u.host + ":" + port + ": "
            + std::strerror(err != 0 ? err : errno);
      ::close(fd);
      continue;
    }
    out = fd;
  }
  ::freeaddrinfo(found);
  if (out < 0)
    return error{errc::io_error, why};
  return out;
}

/// Sends the request and reads up to the end of the status line.
result<std::string> exchange(int fd, const url& u, clock_type::time_point deadline,
                             std::chrono::milliseconds timeout) {
  bool v6 = u.host.find(':') != std::string::npos;
  std::string req
    = "GET " + u.target + " HTTP/1.1\r\nHost: " + (v6 ? "[" + u.host + "]" : u.host) + ":"
      + std::to_string(u.port)
      + "\r\nUser-Agent: sil-server-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  std::size_t sent = 0;
  while (sent < req.size()) {
    if (!wait_for(fd, POLLOUT, deadline))
      return error{errc::io_error, timeout_text(timeout) + " (sending the request)"};
    auto n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
        continue;
      return error{errc::io_error, std::string{"cannot send the request: "} + std::strerror(errno)};
    }
    sent += static_cast<std::size_t>(n);
  }
  std::string got;
  while (got.find('\n') == std::string::npos && got.size() < 4096) {
    if (!wait_for(fd, POLLIN, deadline))
      return error{errc::io_error, timeout_text(timeout)};
    char buf[1024];
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
        continue;
      return error{errc::io_error, std::string{"cannot read the answer: "} + std::strerror(errno)};
    }
    if (n == 0)
      break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  auto eol = got.find('\n');
  if (eol == std::string::npos) {
    if (got.empty())
      return error{errc::io_error, "the connection closed without an answer"};
    return error{errc::bad_format, "no status line in the answer"};
  }
  auto line = got.substr(0, eol);
  if (!line.empty() && line.back() == '\r')
    line.pop_back();
  return line;
}

} // namespace

result<url> parse_url(std::string_view text) {
  constexpr std::string_view scheme = "http://";
  if (text.substr(0, scheme.size()) != scheme)
    return error{errc::invalid_argument,
                 "'" + std::string{text} + "' is not an http:// URL (https is not supported)"};
  auto rest = text.substr(scheme.size());
  auto slash = rest.find_first_of("/?");
  auto authority = rest.substr(0, slash);
  url u;
  if (slash != std::string_view::npos) {
    u.target = std::string{rest.substr(slash)};
    if (u.target.front() == '?')
      u.target.insert(0, "/");
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return error{errc::invalid_argument, "unclosed '[' in the URL's host"};
    u.host = std::string{authority.substr(1, close - 1)};
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return error{errc::invalid_argument, "unexpected text after ']' in the URL's host"};
      port_text = after.substr(1);
      if (port_text.empty())
        return error{errc::invalid_argument, "empty port in the URL"};
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string{authority.substr(0, colon)};
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty())
        return error{errc::invalid_argument, "empty port in the URL"};
    }
  }
  if (u.host.empty())
    return error{errc::invalid_argument, "no host in the URL"};
  if (u.host.find('@') != std::string::npos)
    return error{errc::invalid_argument, "user information in the URL is not supported"};
  if (!port_text.empty()) {
    unsigned long port = 0;
    for (char c : port_text) {
      if (!is_digit(c) || port > 65535)
        return error{errc::invalid_argument,
                     "port '" + std::string{port_text} + "' is not a number in 1..65535"};
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535)
      return error{errc::invalid_argument,
                   "port '" + std::string{port_text} + "' is not a number in 1..65535"};
    u.port = static_cast<std::uint16_t>(port);
  }
  for (char c : u.target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return error{errc::invalid_argument, "the URL's path holds a space or a control character"};
  return u;
}

result<int> parse_status_line(std::string_view line) {
  // HTTP/1.x SP 3DIGIT [SP reason]
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || !is_digit(line[7]) || line[8] != ' '
      || !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11])
      || (line.size() > 12 && line[12] != ' '))
    return error{errc::bad_format,
                 "not an HTTP/1.x status line: '" + std::string{line.substr(0, 80)} + "'"};
  return (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
}

outcome run(std::string_view text, std::chrono::milliseconds timeout) {
  auto prefix = "probe " + std::string{text} + ": ";
  auto u = parse_url(text);
  if (!u)
    return {1, prefix + u.error().message};
  auto deadline = clock_type::now() + timeout;
  auto fd = connect_to(*u, deadline, timeout);
  if (!fd)
    return {1, prefix + fd.error().message};
  socket_fd guard{*fd};
  auto line = exchange(*fd, *u, deadline, timeout);
  if (!line)
    return {1, prefix + line.error().message};
  auto status = parse_status_line(*line);
  if (!status)
    return {1, prefix + status.error().message};
  auto shown = line->substr(9);
  if (*status >= 200 && *status < 300)
    return {0, prefix + shown};
  return {1, prefix + shown + " (not 2xx)"};
}

std::optional<int> main_if_probe(int argc, char** argv) {
  if (argc < 2)
    return std::nullopt;
  std::string_view first = argv[1];
  std::string target;
  int used = 0;
  if (first == "--probe") {
    if (argc < 3) {
      std::fprintf(stderr, "sil-server: --probe needs a URL, e.g. --probe "
                           "http://127.0.0.1:8000/health/ready\n");
      return 2;
    }
    target = argv[2];
    used = 3;
  } else if (first.substr(0, 8) == "--probe=") {
    target = std::string{first.substr(8)};
    used = 2;
  } else {
    return std::nullopt;
  }
  if (target.empty()) {
    std::fprintf(stderr, "sil-server: --probe needs a URL, e.g. --probe "
                         "http://127.0.0.1:8000/health/ready\n");
    return 2;
  }
  if (argc > used) {
    std::fprintf(stderr, "sil-server: --probe takes one URL and nothing else (got '%s')\n",
                 argv[used]);
    return 2;
  }
  auto o = run(target, default_timeout);
  std::fprintf(o.exit_code == 0 ? stdout : stderr, "sil-server: %s\n", o.line.c_str());
  return o.exit_code;
}

} // namespace sil::probe
