#include "tests/support/process.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <thread>

namespace sil::test {

namespace {

using clock_type = std::chrono::steady_clock;

int spawn(const std::string& binary, const std::vector<std::string>& args,
          const std::map<std::string, std::string>& env, int* out_fd, int* err_fd) {
  int out[2];
  int err[2];
  if (pipe(out) != 0 || pipe(err) != 0)
    return -1;
  const pid_t parent = getpid();
  int pid = fork();
  if (pid == 0) {
    // The server must not outlive us, even if we are killed (SIGKILL by a
    // test timeout, Ctrl-C): the kernel sends it SIGTERM when we die.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
      _exit(1); // we already died between fork() and prctl()
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    for (const auto& [k, v] : env)
      setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  *out_fd = out[0];
  *err_fd = err[0];
  return pid;
}

/// Reads what is available from `fd` within `ms`; false on EOF.
bool read_some(int fd, std::string& into, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0)
    return true;
  char buf[4096];
  auto n = ::read(fd, buf, sizeof buf);
  if (n <= 0)
    return false;
  into.append(buf, static_cast<std::size_t>(n));
  return true;
}

std::string describe_status(int status) {
  if (status < 0)
    return "did not exit";
  if (status >= 128)
    return "died of signal " + std::to_string(status - 128) + " (" + ::strsignal(status - 128)
           + ")";
  return "exited with code " + std::to_string(status);
}

/// Signals after which a process is expected to end gracefully (or not to
/// end at all): they do not excuse a death by signal.
bool is_graceful_or_control(int sig) {
  return sig == SIGTERM || sig == SIGINT || sig == SIGSTOP || sig == SIGCONT || sig == 0;
}

} // namespace

std::optional<server_process> server_process::start(const std::string& binary,
                                                    const std::vector<std::string>& args,
                                                    const std::map<std::string, std::string>& env,
                                                    std::chrono::seconds timeout,
                                                    const std::string& ready) {
  server_process p;
  p.command_ = binary.substr(binary.rfind('/') + 1);
  for (const auto& a : args)
    p.command_ += " " + a;
  int err_fd = -1;
  p.pid_ = spawn(binary, args, env, &p.stdout_fd_, &err_fd);
  if (p.pid_ < 0)
    return std::nullopt;
  // Forward the child's stderr to the test's, so that a failing test shows
  // the server's log (and any sanitizer report).
  std::thread([err_fd] {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(err_fd, buf, sizeof buf)) > 0) {
      if (::write(2, buf, static_cast<std::size_t>(n)) < 0)
        break;
    }
    close(err_fd);
  }).detach();
  if (ready.empty())
    return p;
  auto deadline = clock_type::now() + timeout;
  std::size_t scanned = 0;
  while (clock_type::now() < deadline) {
    if (!read_some(p.stdout_fd_, p.out_, 100))
      break;
    std::size_t nl;
    while ((nl = p.out_.find('\n', scanned)) != std::string::npos) {
      auto line = p.out_.substr(scanned, nl - scanned);
      scanned = nl + 1;
      if (line.rfind(ready, 0) != 0)
        continue;
      auto colon = line.rfind(':');
      if (colon != std::string::npos)
        p.port_ = std::atoi(line.c_str() + colon + 1);
      return p;
    }
  }
  return std::nullopt; // p's destructor kills the child
}

bool server_process::wait_for_output(const std::string& needle, std::chrono::milliseconds timeout,
                                     int times) {
  auto count = [&] {
    int n = 0;
    for (auto at = out_.find(needle); at != std::string::npos; at = out_.find(needle, at + 1))
      ++n;
    return n;
  };
  auto deadline = clock_type::now() + timeout;
  while (count() < times) {
    if (clock_type::now() >= deadline || !read_some(stdout_fd_, out_, 50))
      return false;
  }
  return true;
}

int server_process::port_after(const std::string& prefix) const {
  auto at = out_.find(prefix);
  if (at == std::string::npos)
    return 0;
  auto nl = out_.find('\n', at);
  auto line = out_.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
  auto colon = line.rfind(':');
  return colon == std::string::npos ? 0 : std::atoi(line.c_str() + colon + 1);
}

server_process::server_process(server_process&& other) noexcept
  : pid_(other.pid_)
  , stdout_fd_(other.stdout_fd_)
  , port_(other.port_)
  , out_(std::move(other.out_))
  , command_(std::move(other.command_))
  , status_(other.status_)
  , checked_(other.checked_)
  , expected_exit_(other.expected_exit_)
  , fatal_signal_sent_(other.fatal_signal_sent_) {
  other.pid_ = -1;
  other.stdout_fd_ = -1;
  other.status_ = -1;
  other.checked_ = true;
}

server_process& server_process::operator=(server_process&& other) noexcept {
  // `other` takes over our child and stops and checks it when it goes.
  std::swap(pid_, other.pid_);
  std::swap(stdout_fd_, other.stdout_fd_);
  std::swap(port_, other.port_);
  std::swap(out_, other.out_);
  std::swap(command_, other.command_);
  std::swap(status_, other.status_);
  std::swap(checked_, other.checked_);
  std::swap(expected_exit_, other.expected_exit_);
  std::swap(fatal_signal_sent_, other.fatal_signal_sent_);
  return *this;
}

server_process::~server_process() {
  if (pid_ > 0 || !checked_)
    stop();
  if (stdout_fd_ >= 0)
    close(stdout_fd_);
}

int server_process::stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::kill(pid_, SIGCONT); // a stopped child would never act on SIGTERM
    if (wait(stop_timeout) < 0 && pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      checked_ = true;
      status_ = 128 + SIGKILL;
      ADD_FAILURE() << "child '" << command_ << "' did not exit within " << stop_timeout.count()
                    << " s of SIGTERM (killed)";
      return status_;
    }
  }
  check_status();
  return status_;
}

void server_process::check_status() {
  if (checked_ || status_ < 0)
    return;
  checked_ = true;
  if (status_ == expected_exit_)
    return;
  if (fatal_signal_sent_ != 0 && status_ == 128 + fatal_signal_sent_)
    return;
  ADD_FAILURE() << "child '" << command_ << "' " << describe_status(status_) << ", expected "
                << (expected_exit_ >= 128 ? describe_status(expected_exit_)
                                          : "exit code " + std::to_string(expected_exit_))
                << (fatal_signal_sent_ ? " or death by the signal the test sent ("
                                           + std::to_string(fatal_signal_sent_) + ")"
                                       : std::string{})
                << " (its stderr, forwarded above, has the details)";
}

void server_process::signal(int sig) {
  if (pid_ <= 0)
    return;
  if (!is_graceful_or_control(sig))
    fatal_signal_sent_ = sig;
  ::kill(pid_, sig);
}

int server_process::wait(std::chrono::milliseconds timeout) {
  auto deadline = clock_type::now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    auto r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      checked_ = false;
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return status_;
    }
    if (clock_type::now() >= deadline)
      return -1;
    // Keep reading stdout: a child blocked on a full pipe would never exit.
    if (stdout_fd_ < 0 || !read_some(stdout_fd_, out_, 10))
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return status_;
}

std::pair<int, std::string> run_to_exit(const std::string& binary,
                                        const std::vector<std::string>& args,
                                        const std::map<std::string, std::string>& env,
                                        int timeout_seconds) {
  int out_fd = -1;
  int err_fd = -1;
  int pid = spawn(binary, args, env, &out_fd, &err_fd);
  std::string err;
  std::string out;
  auto deadline = clock_type::now() + std::chrono::seconds{timeout_seconds};
  bool err_open = true;
  bool out_open = true;
  while ((err_open || out_open) && clock_type::now() < deadline) {
    if (err_open)
      err_open = read_some(err_fd, err, 20);
    if (out_open)
      out_open = read_some(out_fd, out, 20);
  }
  close(out_fd);
  close(err_fd);
  int status = 0;
  if (clock_type::now() >= deadline)
    kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), err};
}

http_client::http_client(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

http_client::~http_client() {
  if (fd_ >= 0)
    close(fd_);
}

std::string http_client::format(const std::string& method, const std::string& target,
                                const std::string& body, const std::string& content_type) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!body.empty() || method == "POST") {
    if (!content_type.empty())
      req += "Content-Type: " + content_type + "\r\n";
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return req + "\r\n" + body;
}

http_response http_client::request(const std::string& method, const std::string& target,
                                   const std::string& body, const std::string& content_type) {
  return raw(format(method, target, body, content_type));
}

void http_client::send_request(const std::string& method, const std::string& target,
                               const std::string& body, const std::string& content_type) {
  send_bytes(format(method, target, body, content_type));
}

void http_client::send_bytes(const std::string& bytes) {
  std::size_t sent = 0;
  while (fd_ >= 0 && sent < bytes.size()) {
    auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0)
      break; // the server may answer (413) before reading everything
    sent += static_cast<std::size_t>(n);
  }
}

bool http_client::has_data() const {
  if (!buffer_.empty())
    return true;
  pollfd p{fd_, POLLIN, 0};
  return fd_ >= 0 && poll(&p, 1, 0) > 0;
}

http_response http_client::raw(const std::string& bytes) {
  if (fd_ < 0)
    return {};
  send_bytes(bytes);
  return read_response();
}

http_response http_client::read_response() {
  http_response res;
  auto deadline = clock_type::now() + std::chrono::seconds{30};
  std::size_t header_end = std::string::npos;
  while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (clock_type::now() > deadline || !read_some(fd_, buffer_, 100))
      return res;
  }
  auto head = buffer_.substr(0, header_end);
  res.status = std::atoi(head.c_str() + head.find(' ') + 1);
  std::size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos < head.size()) {
    auto next = head.find("\r\n", pos + 2);
    auto line
      = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      auto name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      res.headers[name] = value;
    }
    pos = next;
  }
  std::size_t length = 0;
  if (auto i = res.headers.find("content-length"); i != res.headers.end())
    length = static_cast<std::size_t>(std::stoul(i->second));
  auto body_start = header_end + 4;
  while (buffer_.size() < body_start + length) {
    if (clock_type::now() > deadline || !read_some(fd_, buffer_, 100)) {
      res.status = 0;
      return res;
    }
  }
  res.body = buffer_.substr(body_start, length);
  buffer_.erase(0, body_start + length);
  return res;
}

} // namespace sil::test
