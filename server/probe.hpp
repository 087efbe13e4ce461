// `sil-server --probe URL`: a health check for container runtimes and
// orchestrators, so that images need no curl.
//
// Owns: one blocking HTTP/1.1 GET over a plain socket, bounded by a
// timeout, and the verdict: exit 0 when the answer is 2xx, 1 otherwise
// (refused, timed out, another status, garbage), with one line that says
// why. Only http:// URLs. No CAF, no Beast: it runs before the
// configuration is parsed and before any actor system exists.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace sil::probe {

/// The parts of an http:// URL the probe needs.
struct url {
  std::string host; // without brackets for IPv6 literals
  std::uint16_t port = 80;
  std::string target = "/"; // path and query
};

/// Parses `http://HOST[:PORT][/PATH[?QUERY]]` (HOST may be `[IPv6]`).
result<url> parse_url(std::string_view text);

/// The status code of an HTTP/1.x status line ("HTTP/1.1 200 OK").
result<int> parse_status_line(std::string_view line);

/// The verdict of one probe: the process's exit code and the line to print.
struct outcome {
  int exit_code = 1;
  std::string line;
};

/// GETs `text` with `timeout` for the whole exchange (connect, send, and the
/// status line). 2xx: exit code 0.
outcome run(std::string_view text, std::chrono::milliseconds timeout);

/// How long a probe may take in all.
inline constexpr std::chrono::milliseconds default_timeout{2000};

/// If the command line asks for a probe (`--probe URL` or `--probe=URL` as
/// its first argument), runs it, prints its line (stdout on success, stderr
/// otherwise) and returns the exit code; otherwise returns nothing. A probe
/// without a URL, or with other arguments after it, is a usage error: 2.
std::optional<int> main_if_probe(int argc, char** argv);

} // namespace sil::probe
