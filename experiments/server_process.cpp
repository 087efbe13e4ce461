#include "experiments/server_process.hpp"

#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

namespace sil::lab {

result<server_process> server_process::start(const std::string& binary,
                                             const std::vector<std::string>& args,
                                             const std::string& log_path) {
  int out[2];
  if (pipe(out) != 0)
    return error{errc::io_error, "pipe failed"};
  const pid_t parent = getpid();
  int pid = fork();
  if (pid < 0)
    return error{errc::io_error, "fork failed"};
  if (pid == 0) {
    // The server must not outlive us, even if we are killed (SIGKILL by a
    // test timeout, Ctrl-C): the kernel sends it SIGTERM when we die.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
      _exit(1); // we already died between fork() and prctl()
    dup2(out[1], 1);
    close(out[0]);
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log >= 0)
      dup2(log, 2);
    std::vector<std::string> all{binary, "--port=0"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    argv.reserve(all.size() + 1);
    for (auto& a : all)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  server_process p;
  p.pid_ = pid;
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  char buf[256];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pf{out[0], POLLIN, 0};
    if (poll(&pf, 1, 100) <= 0)
      continue;
    auto n = read(out[0], buf, sizeof buf);
    if (n <= 0)
      break;
    line.append(buf, static_cast<std::size_t>(n));
    auto nl = line.find('\n');
    if (nl == std::string::npos)
      continue;
    auto colon = line.rfind(':', nl);
    if (line.rfind("listening on ", 0) == 0 && colon != std::string::npos) {
      p.port_ = static_cast<std::uint16_t>(std::atoi(line.c_str() + colon + 1));
      close(out[0]); // the server writes nothing more to stdout
      return p;
    }
    break;
  }
  close(out[0]);
  return error{errc::io_error, binary + " did not start; see " + log_path};
}

server_process::server_process(server_process&& other) noexcept
  : pid_(std::exchange(other.pid_, -1))
  , port_(other.port_) {
  // nop
}

server_process& server_process::operator=(server_process&& other) noexcept {
  std::swap(pid_, other.pid_);
  std::swap(port_, other.port_);
  return *this;
}

namespace {

std::atomic<int> failed_servers{0};

} // namespace

int server_process::failures() noexcept {
  return failed_servers.load();
}

server_process::~server_process() {
  if (pid_ <= 0)
    return;
  kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 400; ++i) { // 10 s (a sanitizer build stops slower)
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return;
      ++failed_servers;
      if (WIFEXITED(status))
        std::fprintf(stderr, "sil-lab: sil-server (pid %d) exited with code %d after SIGTERM\n",
                     pid_, WEXITSTATUS(status));
      else
        std::fprintf(stderr, "sil-lab: sil-server (pid %d) died of signal %d after SIGTERM\n", pid_,
                     WTERMSIG(status));
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{25});
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  ++failed_servers;
  std::fprintf(stderr, "sil-lab: sil-server (pid %d) did not stop within 10 s of SIGTERM\n", pid_);
}

} // namespace sil::lab
