// Starts sil-server as a child process on a free loopback port, for the
// experiments that target their own server. Stopped (SIGTERM, then SIGKILL)
// when destroyed; a server that then does not exit 0 is reported on stderr
// and counted (failures()), and sil-lab exits non-zero.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace sil::lab {

/// A running sil-server child.
class server_process {
public:
  /// Runs `binary --port=0 args...` and waits (up to 30 s) for its
  /// "listening on HOST:PORT" line. Its stderr goes to `log_path`.
  static result<server_process> start(const std::string& binary,
                                      const std::vector<std::string>& args,
                                      const std::string& log_path);

  server_process(server_process&& other) noexcept;
  server_process& operator=(server_process&& other) noexcept;
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;
  ~server_process();

  std::uint16_t port() const noexcept {
    return port_;
  }

  /// How many servers started by this process ended with anything but exit
  /// 0 after SIGTERM (or had to be killed).
  static int failures() noexcept;

private:
  server_process() = default;
  int pid_ = -1;
  std::uint16_t port_ = 0;
};

} // namespace sil::lab
