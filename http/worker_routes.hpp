// The routes of a worker node's small HTTP listener: liveness, readiness
// (joined to the gateway, with encoder workers alive) and the node's own
// /metrics, so that an orchestrator can probe encoder nodes like gateways.
//
// Owns: those answers, from the worker board's atomics (never an actor).
// No Beast, no CAF.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "actors/worker_board.hpp"
#include "http/api_rules.hpp"
#include "http/exchange.hpp"

namespace sil::http_api {

/// Who this worker node is, for its answers and metrics.
struct worker_identity {
  std::string node_name;
  /// The gateway's registry, HOST:PORT.
  std::string gateway;
  std::string model_version;
};

class worker_routes final : public handler {
public:
  worker_routes(std::shared_ptr<const worker_board> board, worker_identity who,
                std::vector<std::string> cors_origins = {});

  handled handle(const request_view& req, responder& r) override;
  void finished(const finished_exchange& e) override;
  void set_draining() override;

  /// The readiness the routes report now.
  readiness ready() const;

  /// The Prometheus text of /metrics.
  std::string metrics_text() const;

  /// Every route this listener answers.
  static const std::vector<route_spec>& table();

private:
  std::shared_ptr<const worker_board> board_;
  worker_identity who_;
  cors_policy cors_;
  std::atomic<bool> draining_{false};
};

} // namespace sil::http_api
