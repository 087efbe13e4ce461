// The routes of a serving node (standalone or gateway): the HTTP API on top
// of the actors.
//
// Owns: the route table, what each route does (the read path first for
// predictions, edge admission, the in-flight cap, the bridge to the
// actors), the health and metadata answers, the KServe v2 adapter's
// routing, admin authentication and its log, and the per-exchange report
// (metrics outcome, access log). It takes a parsed request as plain views
// and produces a response value, now or later: no socket, no Beast, so it
// is tested without a network (tests/actors/routes_test.cpp).
// Does not own: JSON rules (http/codec), shared conventions
// (http/api_rules), sockets, limits and draining (http/server.cpp).
#pragma once

#include <caf/fwd.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/service_handles.hpp"
#include "http/api_rules.hpp"
#include "http/codec.hpp"
#include "http/exchange.hpp"
#include "http/server.hpp"

namespace sil::http_api {

class service_routes final : public handler {
public:
  service_routes(caf::actor_system& sys, const http_config& cfg, const service_handles& svc);

  handled handle(const request_view& req, responder& r) override;
  void finished(const finished_exchange& e) override;
  void release_slot() override;
  void set_draining() override;

  /// Whether this node can answer predictions now, and why (not).
  readiness ready() const;

  /// Predictions holding an in-flight slot now.
  std::size_t inflight() const noexcept {
    return inflight_.load();
  }

  /// Every route a serving node answers.
  static const std::vector<route_spec>& table();

private:
  enum class api : std::uint8_t { house, v2 };

  /// What a request resolved to: the catalog snapshot it used (kept alive
  /// while the pointers into it are used), the model and the version.
  struct lane_ref {
    std::shared_ptr<const model_catalog> catalog;
    const model_catalog::model_entry* model = nullptr;
    const model_catalog::version_entry* version = nullptr;
  };

  handled predict(const request_view& req, responder& r, api kind, const route_match* m = nullptr);
  handled admin_models(const request_view& req, responder& r, const route_match& m);
  handled ask_stats(responder& r);
  handled ask_metrics(responder& r);
  handled ask_agent(const request_view& req, responder& r, std::optional<admin_command> cmd,
                    double value);
  handled admin(const request_view& req, responder& r, int id);
  handled model_route(const request_view& req, const route_match& m, int id);
  response health() const;
  std::chrono::milliseconds expected_encoder_wait(std::uint32_t rows) const;
  /// The model named by a /v2/models/{name}[/versions/{v}] route, or none
  /// and the 404 answer in `miss`.
  std::optional<lane_ref> resolve_v2(const route_match& m, std::optional<response>& miss) const;

  caf::actor_system& sys_;
  http_config cfg_;
  service_handles svc_;
  cors_policy cors_;
  std::string server_metadata_;
  /// Predictions accepted and not yet answered (the in-flight cap).
  std::atomic<std::size_t> inflight_{0};
  std::atomic<bool> draining_{false};
  /// Some encoder worker was alive at some point (readiness: "starting"
  /// until then).
  mutable std::atomic<bool> seen_workers_{false};
};

} // namespace sil::http_api
