// Helpers of the end-to-end tests: request bodies, a fixture that starts
// sil-server with the small model, and JSON and admin requests.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace sil::test {

using json = nlohmann::json;

/// One row of 32 values: `first`, three ones, zeros, and `last`.
inline std::string row(float first, float last = 0.0f) {
  std::string s = "[";
  for (int i = 0; i < 32; ++i) {
    float v = i == 0 ? first : (i == 31 ? last : (i < 4 ? 1.0f : 0.0f));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%g", i ? "," : "", static_cast<double>(v));
    s += buf;
  }
  return s + "]";
}

inline std::string features(const std::vector<std::string>& rows) {
  std::string s = "{\"features\":[";
  for (std::size_t i = 0; i < rows.size(); ++i)
    s += (i ? "," : "") + rows[i];
  return s + "]";
}

inline std::string body(float first, float last = 0.0f) {
  return features({row(first, last)}) + "}";
}

/// A server with the small model, started once per test.
class E2E : public ::testing::Test {
protected:
  void start(std::vector<std::string> extra = {}) {
    // No audits unless a test asks for them (a later flag wins): an audit of
    // a hit whose suffix moved far evicts the entry, so a test expecting the
    // next request to hit would fail at random.
    std::vector<std::string> args{"--port=0", "--model.preset=seed", "--workers=2",
                                  "--audit.rate=0"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = server_process::start(SIL_SERVER_BINARY, args);
    ASSERT_TRUE(server_) << "sil-server did not print its listening line";
  }

  int port() const {
    return server_->port();
  }

  std::optional<server_process> server_;
};

/// GET target (with a bearer token if given), as JSON (discarded if not).
inline json get_json(http_client& c, const std::string& target, const std::string& token = "") {
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!token.empty())
    req += "Authorization: Bearer " + token + "\r\n";
  auto r = c.raw(req + "\r\n");
  return json::parse(r.body, nullptr, false);
}

inline http_response admin(http_client& c, const std::string& method, const std::string& target,
                           const std::string& token, const std::string& body = "") {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!token.empty())
    req += "Authorization: Bearer " + token + "\r\n";
  req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size())
         + "\r\n\r\n" + body;
  return c.raw(req);
}

} // namespace sil::test
