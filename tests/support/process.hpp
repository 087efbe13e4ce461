// Test support: run sil-server as a child process and talk HTTP/1.1 to it
// over a plain socket (no Beast, so that tests can also send broken bytes).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sil::test {

/// A child process with its stdout piped.
///
/// Its exit status is part of every test that starts one: when destroyed
/// while the child still runs, it stops the child gracefully (SIGTERM) and
/// waits for it; then the child must have exited with the expected code (0
/// unless expect_exit() says otherwise) or died of the fatal signal the test
/// sent it itself (signal(SIGKILL)). Anything else (a non-zero exit, such as
/// a sanitizer's report, or death by another signal, or no exit within
/// stop_timeout after SIGTERM) adds a GoogleTest failure that names the
/// child.
class server_process {
public:
  /// Starts `binary` with `args` and `env` (added to the environment) and
  /// waits up to `timeout` for a stdout line starting with `ready` (by
  /// default "listening on HOST:PORT", whose port port() returns). Earlier
  /// lines are kept (output()). An empty `ready` returns at once.
  static std::optional<server_process>
  start(const std::string& binary, const std::vector<std::string>& args,
        const std::map<std::string, std::string>& env = {},
        std::chrono::seconds timeout = std::chrono::seconds{20},
        const std::string& ready = "listening on ");

  /// Reads stdout until it holds `needle` at least `times` times; false
  /// after `timeout`.
  bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout, int times = 1);

  /// The port in the first stdout line starting with `prefix` ("HOST:PORT"
  /// at its end), 0 if none.
  int port_after(const std::string& prefix) const;

  server_process(server_process&& other) noexcept;
  server_process& operator=(server_process&& other) noexcept;
  ~server_process();

  int port() const {
    return port_;
  }

  int pid() const {
    return pid_;
  }

  /// Sends `sig` to the child. A signal that ends a process without a
  /// graceful stop (SIGKILL, SIGSEGV, ...; not SIGTERM, SIGINT, SIGSTOP,
  /// SIGCONT) becomes an accepted way for the child to end.
  void signal(int sig);

  /// Waits up to `timeout` for the child to exit; returns its exit code, or
  /// -1 on timeout (or a signal number + 128 if it died of a signal). The
  /// status is also checked when the object is destroyed.
  int wait(std::chrono::milliseconds timeout);

  /// The exit code the child must end with (default 0).
  void expect_exit(int code) {
    expected_exit_ = code;
  }

  /// Stops the child as the destructor would (SIGTERM, then wait), checks
  /// its status, and returns it (exit code, or 128 + signal number).
  int stop();

  /// How long stop() and the destructor wait after SIGTERM (sanitizer
  /// builds shut down slower).
  static constexpr std::chrono::seconds stop_timeout{30};

  /// Everything the child wrote to stdout so far.
  const std::string& output() const {
    return out_;
  }

private:
  server_process() = default;
  /// Adds a test failure unless `status_` is an accepted end.
  void check_status();

  int pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
  std::string out_;
  std::string command_;       // for failure messages
  int status_ = -1;           // exit code or 128 + signal, once reaped
  bool checked_ = false;      // status_ already checked
  int expected_exit_ = 0;     // see expect_exit()
  int fatal_signal_sent_ = 0; // see signal()
};

/// Runs `binary args...` to completion; returns its exit code (128 + signal
/// number if a signal ended it, 137 if it ran past the timeout) and stderr.
/// The caller asserts the code it expects.
std::pair<int, std::string> run_to_exit(const std::string& binary,
                                        const std::vector<std::string>& args,
                                        const std::map<std::string, std::string>& env = {},
                                        int timeout_seconds = 20);

/// One HTTP response.
struct http_response {
  int status = 0;
  std::map<std::string, std::string> headers; // lowercase names
  std::string body;
};

/// A keep-alive HTTP/1.1 connection to 127.0.0.1:port.
class http_client {
public:
  explicit http_client(int port);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  bool connected() const {
    return fd_ >= 0;
  }

  /// Sends a request and reads the response. Returns status 0 if the
  /// connection failed or closed before a full response arrived.
  http_response request(const std::string& method, const std::string& target,
                        const std::string& body = "",
                        const std::string& content_type = "application/json");

  /// Sends raw bytes and reads one response.
  http_response raw(const std::string& bytes);

  /// Sends a request without waiting for the answer (see read_response).
  void send_request(const std::string& method, const std::string& target,
                    const std::string& body = "",
                    const std::string& content_type = "application/json");

  /// Whether response bytes are waiting to be read (does not block).
  bool has_data() const;

  /// Reads one response (up to 30 s).
  http_response read_response();

private:
  static std::string format(const std::string& method, const std::string& target,
                            const std::string& body, const std::string& content_type);
  void send_bytes(const std::string& bytes);
  int fd_ = -1;
  std::string buffer_;
};

} // namespace sil::test
