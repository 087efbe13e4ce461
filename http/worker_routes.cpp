#include "http/worker_routes.hpp"

#include <cstdio>

namespace sil::http_api {

namespace {

enum route_id : int { w_live, w_ready, w_v2_live, w_v2_ready, w_metrics };

/// A Prometheus label value: backslash, double quote and newline escaped.
std::string label_value(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void metric(std::string& out, const char* name, const char* type, const char* help, double v) {
  char num[64];
  std::snprintf(num, sizeof num, "%.17g", v);
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += ' ';
  out += num;
  out += '\n';
}

} // namespace

const std::vector<route_spec>& worker_routes::table() {
  static const std::vector<route_spec> routes{
    {"GET", "/health/live", route_label::health, w_live},
    {"GET", "/health/ready", route_label::health, w_ready},
    {"GET", "/v2/health/live", route_label::health, w_v2_live},
    {"GET", "/v2/health/ready", route_label::health, w_v2_ready},
    {"GET", "/metrics", route_label::metrics, w_metrics},
  };
  return routes;
}

worker_routes::worker_routes(std::shared_ptr<const worker_board> board, worker_identity who,
                             std::vector<std::string> cors_origins)
  : board_(std::move(board))
  , who_(std::move(who))
  , cors_(std::move(cors_origins)) {
  // nop
}

readiness worker_routes::ready() const {
  if (draining_.load())
    return {false, "draining", "the worker node is shutting down and leaving the cluster"};
  if (!board_->connected.load())
    return {false, "disconnected",
            "not joined to the gateway at " + who_.gateway + " (connecting, retrying)"};
  auto alive = board_->workers_alive.load();
  if (alive == 0)
    return {false, "unavailable", "no encoder worker is alive on this node"};
  return {true, "ok",
          "joined the gateway at " + who_.gateway + " with " + std::to_string(alive)
            + (alive == 1 ? " encoder worker" : " encoder workers")};
}

std::string worker_routes::metrics_text() const {
  const auto& b = *board_;
  std::string out;
  out.reserve(2048);
  metric(out, "sil_worker_gateway_connected", "gauge",
         "1 while this worker node is joined to the gateway.", b.connected.load() ? 1.0 : 0.0);
  metric(out, "sil_worker_ready", "gauge",
         "1 while this worker node is ready (joined, with encoder workers alive).",
         ready().ready ? 1.0 : 0.0);
  metric(out, "sil_worker_encoder_workers", "gauge", "Encoder workers alive on this node.",
         static_cast<double>(b.workers_alive.load()));
  metric(out, "sil_worker_encoder_workers_configured", "gauge",
         "Encoder workers this node runs when all are alive.",
         static_cast<double>(b.workers_configured.load()));
  metric(out, "sil_worker_encodes_total", "counter", "Inputs encoded on this node.",
         static_cast<double>(b.encodes.load()));
  metric(out, "sil_worker_encode_batches_total", "counter", "Batches encoded on this node.",
         static_cast<double>(b.batches.load()));
  metric(out, "sil_worker_encode_rows_total", "counter", "Input rows encoded on this node.",
         static_cast<double>(b.rows.load()));
  metric(out, "sil_worker_encode_seconds_total", "counter",
         "Seconds this node's encoder workers spent encoding.",
         static_cast<double>(b.busy_ns.load()) / 1e9);
  metric(out, "sil_worker_encode_failures_total", "counter", "Batches that failed to encode.",
         static_cast<double>(b.failures.load()));
  metric(out, "sil_worker_gateway_joins_total", "counter",
         "Times this node joined the gateway (its first join and every re-join).",
         static_cast<double>(b.joins.load()));
  metric(out, "sil_worker_gateway_losses_total", "counter",
         "Times this node lost its connection to the gateway.",
         static_cast<double>(b.gateway_losses.load()));
  metric(out, "sil_worker_restarts_total", "counter", "Encoder workers replaced after they died.",
         static_cast<double>(b.restarts.load()));
  out += "# HELP sil_worker_info This worker node: its name, gateway and model version.\n"
         "# TYPE sil_worker_info gauge\n"
         "sil_worker_info{node=\"";
  out += label_value(who_.node_name);
  out += "\",gateway=\"";
  out += label_value(who_.gateway);
  out += "\",model_version=\"";
  out += label_value(who_.model_version);
  out += "\"} 1\n";
  return out;
}

handled worker_routes::handle(const request_view& req, responder&) {
  if (auto r = answer_options(table(), req, cors_))
    return handled::answer(std::move(*r));
  auto found = find_route(table(), req);
  if (auto* r = std::get_if<response>(&found))
    return handled::answer(std::move(*r));
  const auto& m = std::get<route_match>(found);
  switch (m.spec->id) {
    case w_live:
    case w_v2_live: {
      response r;
      r.body = encode_liveness();
      r.route = m.spec->label;
      return handled::answer(std::move(r));
    }
    case w_ready:
    case w_v2_ready:
      return handled::answer(readiness_response(this->ready(), m.spec->label));
    default: {
      response r;
      r.body = metrics_text();
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.route = m.spec->label;
      return handled::answer(std::move(r));
    }
  }
}

void worker_routes::finished(const finished_exchange& e) {
  log_access(e);
}

void worker_routes::set_draining() {
  draining_ = true;
}

} // namespace sil::http_api
