// Test support: run sil-server as a child process and talk HTTP/1.1 to it
// over a plain socket (no Beast, so that tests can also send broken bytes).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sil::test {

/// A child process with its stdout piped; killed (SIGKILL) when destroyed.
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

  /// Sends `sig` to the child.
  void signal(int sig) const;

  /// Waits up to `timeout` for the child to exit; returns its exit code, or
  /// -1 on timeout (or a signal number + 128 if it died of a signal).
  int wait(std::chrono::milliseconds timeout);

  /// Everything the child wrote to stdout so far.
  const std::string& output() const {
    return out_;
  }

private:
  server_process() = default;
  int pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
  std::string out_;
};

/// Runs `binary args...` to completion; returns its exit code and stderr.
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
