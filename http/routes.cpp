#include "http/routes.hpp"

#include <caf/all.hpp>

#include <algorithm>

#include "actors/hit_path.hpp"
#include "core/build_info.hpp"
#include "core/tsan.hpp"
#include "http/openapi.hpp"
#include "logging/log.hpp"

namespace sil::http_api {

namespace {

using namespace std::chrono_literals;

enum route_id : int {
  r_predict,
  r_health,
  r_health_live,
  r_health_ready,
  r_stats,
  r_metrics,
  r_agent,
  r_admin_disable,
  r_admin_enable,
  r_admin_clear,
  r_admin_ttl,
  r_admin_resume,
  r_openapi,
  r_v2_server,
  r_v2_live,
  r_v2_ready,
  r_v2_model,
  r_v2_model_ready,
  r_v2_model_version,
  r_v2_model_version_ready,
  r_v2_infer,
  r_v2_infer_version,
  r_admin_models,
  r_admin_models_load,
  r_admin_model_default,
  r_admin_model_unload,
  r_admin_model_warm,
  r_admin_canary_start,
  r_admin_canary_promote,
  r_admin_canary_abort,
};

/// The one bridge from a route to an actor: asks `dst` with `xs...` from a
/// one-shot actor (3 s timeout), so no I/O thread ever blocks on an actor,
/// and answers later with `answer(expected<R>&)`, which runs on the
/// connection's own thread.
template <class R, class Handle, class Answer, class... Ts>
handled ask_actor_within(caf::timespan timeout, caf::actor_system& sys, responder& rsp,
                         const Handle& dst, route_label route, Answer answer, Ts... xs) {
  auto done = rsp.later();
  auto reply = [done, answer](caf::expected<R> r) {
    done([r = std::move(r), answer]() mutable { return answer(r); });
  };
  // The unused int works around CAF 0.17 dereferencing a null pointer to an
  // empty argument tuple when a function actor has no arguments (UBSan).
  sys.spawn(
    [=](caf::event_based_actor* self, int) {
      self->request(dst, timeout, xs...)
        .then([=](R& r) { reply(caf::expected<R>{std::move(r)}); },
              [=](caf::error& e) { reply(caf::expected<R>{std::move(e)}); });
    },
    0);
  pending p;
  p.route = route;
  return handled::later(std::move(p));
}

/// ask_actor_within with the usual 3 s timeout.
template <class R, class Handle, class Answer, class... Ts>
handled ask_actor(caf::actor_system& sys, responder& rsp, const Handle& dst, route_label route,
                  Answer answer, Ts... xs) {
  return ask_actor_within<R>(caf::timespan{3s}, sys, rsp, dst, route, std::move(answer),
                             std::move(xs)...);
}

/// An answer from `encode(R&)`, or the error the actor gave.
template <class R, class Encode>
auto or_error(route_label route, Encode encode) {
  return [route, encode](caf::expected<R>& r) {
    return r ? encode(*r) : error_response(from_caf_error(r.error()), route);
  };
}

/// The outcome of a prediction the actors answered, for the metrics
/// aggregator (sent from the actor's thread, where sending wakes no one).
request_outcome predict_outcome(const caf::expected<predict_reply>& r,
                                clock_type::time_point start) {
  request_outcome o;
  o.route = route_label::predict;
  if (r) {
    o.source = r->source;
    o.cache_hit = r->cache_hit;
  } else {
    auto code = from_caf_error(r.error()).code;
    o.error_code = static_cast<std::uint8_t>(code);
    o.status = static_cast<std::uint16_t>(status_for(code));
  }
  o.latency_ns
    = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - start).count();
  return o;
}

std::string_view outcome_of(embedding_source s) {
  switch (s) {
    case embedding_source::cache:
      return "hit";
    case embedding_source::single_flight:
      return "joined";
    case embedding_source::encoder:
      break;
  }
  return "miss";
}

double ms_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

response json_ok(std::string body, route_label route) {
  response r;
  r.body = std::move(body);
  r.route = route;
  return r;
}

/// A prediction's answer in the API `kind` asked for.
struct answer_format {
  bool v2 = false;
  std::string model_name;
  std::optional<std::string> id;

  response ok(const predict_reply& r, clock_type::time_point start) const {
    response out;
    out.route = route_label::predict;
    out.outcome = outcome_of(r.source);
    out.body = v2 ? encode_infer(r, ms_since(start), model_name, id)
                  : encode_predict(r, ms_since(start), id, model_name);
    return out;
  }

  response fail(const error& e) const {
    return v2 ? v2_error_response(e, route_label::predict)
              : error_response(e, route_label::predict);
  }
};

} // namespace

const std::vector<route_spec>& service_routes::table() {
  static const std::vector<route_spec> routes{
    {"POST", "/predict", route_label::predict, r_predict},
    {"GET", "/health", route_label::health, r_health},
    {"GET", "/health/live", route_label::health, r_health_live},
    {"GET", "/health/ready", route_label::health, r_health_ready},
    {"GET", "/stats", route_label::stats, r_stats},
    {"GET", "/metrics", route_label::metrics, r_metrics},
    {"GET", "/agent", route_label::agent, r_agent},
    {"POST", "/admin/cache/disable", route_label::admin, r_admin_disable},
    {"POST", "/admin/cache/enable", route_label::admin, r_admin_enable},
    {"POST", "/admin/cache/clear", route_label::admin, r_admin_clear},
    {"PUT", "/admin/cache/ttl", route_label::admin, r_admin_ttl},
    {"POST", "/admin/agent/resume", route_label::admin, r_admin_resume},
    {"GET", "/openapi.json", route_label::openapi, r_openapi},
    {"GET", "/v2", route_label::metadata, r_v2_server},
    {"GET", "/v2/health/live", route_label::health, r_v2_live},
    {"GET", "/v2/health/ready", route_label::health, r_v2_ready},
    {"GET", "/v2/models/{model_name}", route_label::metadata, r_v2_model},
    {"GET", "/v2/models/{model_name}/ready", route_label::metadata, r_v2_model_ready},
    {"GET", "/v2/models/{model_name}/versions/{model_version}", route_label::metadata,
     r_v2_model_version},
    {"GET", "/v2/models/{model_name}/versions/{model_version}/ready", route_label::metadata,
     r_v2_model_version_ready},
    {"POST", "/v2/models/{model_name}/infer", route_label::predict, r_v2_infer},
    {"POST", "/v2/models/{model_name}/versions/{model_version}/infer", route_label::predict,
     r_v2_infer_version},
    {"GET", "/admin/models", route_label::admin, r_admin_models},
    {"POST", "/admin/models", route_label::admin, r_admin_models_load},
    {"PUT", "/admin/models/{model_name}/default", route_label::admin, r_admin_model_default},
    {"DELETE", "/admin/models/{model_name}/versions/{model_version}", route_label::admin,
     r_admin_model_unload},
    {"POST", "/admin/models/{model_name}/versions/{model_version}/warm", route_label::admin,
     r_admin_model_warm},
    {"POST", "/admin/models/{model_name}/versions/{model_version}/canary", route_label::admin,
     r_admin_canary_start},
    {"DELETE", "/admin/models/{model_name}/versions/{model_version}/canary", route_label::admin,
     r_admin_canary_abort},
    {"POST", "/admin/models/{model_name}/versions/{model_version}/canary/promote",
     route_label::admin, r_admin_canary_promote},
  };
  return routes;
}

service_routes::service_routes(caf::actor_system& sys, const http_config& cfg,
                               const service_handles& svc)
  : sys_(sys)
  , cfg_(cfg)
  , svc_(svc)
  , cors_(cfg.cors_origins) {
  server_metadata_ = encode_server_metadata("sil-server", build_version());
  if (!svc_.models) {
    // Handles assembled by hand (tests): the one lane they name.
    svc_.models = std::make_shared<published_catalog>();
    auto only = std::make_shared<lane>();
    only->model_name = cfg.model_name;
    only->ingress = svc_.ingress;
    only->cache = svc_.cache;
    only->agent = svc_.agent;
    only->hits = svc_.hits;
    auto dir = std::make_shared<model_catalog>();
    model_catalog::version_entry v;
    v.version = cfg.model_version;
    v.state = version_state::ready;
    v.lane = std::move(only);
    (void)dir->add(cfg.model_name, std::move(v));
    svc_.models->store(std::move(dir));
  }
  if (svc_.board && svc_.board->workers_alive.load() > 0)
    seen_workers_ = true;
}

// -- readiness ---------------------------------------------------------------------

readiness service_routes::ready() const {
  readiness_input in;
  in.draining = draining_.load();
  in.local_workers = cfg_.local_workers;
  in.fallback_local = cfg_.fallback_local;
  in.workers_alive = svc_.board ? svc_.board->workers_alive.load() : 0;
  if (in.workers_alive > 0)
    seen_workers_ = true;
  in.seen_workers = seen_workers_.load();
  return serving_readiness(in);
}

response service_routes::health() const {
  // The first version's body, unchanged; the status follows readiness.
  auto& b = *svc_.board;
  response r;
  auto catalog = svc_.models->load(); // keeps `primary`'s pointers alive
  auto primary = catalog->resolve("", "");
  r.body = encode_health(b.cache_enabled.load(), b.workers_alive.load(), inflight_.load(),
                         primary ? primary->version->version : cfg_.model_version);
  r.route = route_label::health;
  auto rd = ready();
  if (!rd.ready) {
    r.status = 503;
    r.retry_after = true;
    r.outcome = rd.status;
  }
  return r;
}

void service_routes::set_draining() {
  draining_ = true;
}

void service_routes::release_slot() {
  --inflight_;
}

// -- dispatch ----------------------------------------------------------------------

handled service_routes::handle(const request_view& req, responder& r) {
  if (auto opt = answer_options(table(), req, cors_))
    return handled::answer(std::move(*opt));
  // The admin API and /agent check the token before anything else, so
  // that nothing about them is revealed without it.
  bool agent = req.target == "/agent";
  if (agent || req.target.substr(0, 7) == "/admin/") {
    auto st = check_admin(req.authorization, cfg_.admin_token);
    if (!st) {
      logging::warn("admin", "refused",
                    {{"action", req.target.substr(0, 128)},
                     {"token_id", token_id(req.authorization)},
                     {"remote", req.remote},
                     {"request_id", req.request_id},
                     {"result", to_string(st.error().code)}});
      return handled::answer(
        error_response(st.error(), agent ? route_label::agent : route_label::admin));
    }
  }
  auto found = find_route(table(), req);
  if (auto* resp = std::get_if<response>(&found))
    return handled::answer(std::move(*resp));
  const auto& m = std::get<route_match>(found);
  switch (m.spec->id) {
    case r_predict:
      return predict(req, r, api::house);
    case r_health:
      return handled::answer(health());
    case r_health_live:
    case r_v2_live:
      return handled::answer(json_ok(encode_liveness(), route_label::health));
    case r_health_ready:
    case r_v2_ready:
      return handled::answer(readiness_response(ready()));
    case r_stats:
      return ask_stats(r);
    case r_metrics:
      return ask_metrics(r);
    case r_agent:
      return ask_agent(req, r, std::nullopt, 0.0);
    case r_admin_disable:
    case r_admin_enable:
    case r_admin_clear:
    case r_admin_ttl:
    case r_admin_resume:
      return admin(req, r, m.spec->id);
    case r_admin_models:
    case r_admin_models_load:
    case r_admin_model_default:
    case r_admin_model_unload:
    case r_admin_model_warm:
    case r_admin_canary_start:
    case r_admin_canary_promote:
    case r_admin_canary_abort:
      return admin_models(req, r, m);
    case r_openapi:
      return handled::answer(json_ok(openapi_document(), route_label::openapi));
    case r_v2_server:
      return handled::answer(json_ok(server_metadata_, route_label::metadata));
    case r_v2_infer:
    case r_v2_infer_version:
      return predict(req, r, api::v2, &m);
    default:
      return model_route(req, m, m.spec->id);
  }
}

std::optional<service_routes::lane_ref>
service_routes::resolve_v2(const route_match& m, std::optional<response>& miss) const {
  auto catalog = svc_.models->load();
  std::string_view name = m.params.empty() ? std::string_view{} : m.params[0];
  std::string_view version = m.params.size() > 1 ? m.params[1] : std::string_view{};
  auto r = catalog->resolve(name, version);
  if (!r) {
    miss = v2_error_response(r.error(), m.spec->label);
    return std::nullopt;
  }
  return lane_ref{catalog, r->model, r->version};
}

handled service_routes::model_route(const request_view&, const route_match& m, int id) {
  std::optional<response> miss;
  auto found = resolve_v2(m, miss);
  if (!found)
    return handled::answer(std::move(*miss));
  if (id == r_v2_model || id == r_v2_model_version) {
    model_description d;
    d.name = found->model->name;
    d.version = found->version->version;
    d.input_dim = cfg_.input_dim;
    if (id == r_v2_model)
      for (const auto& v : found->model->versions)
        d.versions.push_back(v.version);
    return handled::answer(json_ok(encode_model_metadata(d), route_label::metadata));
  }
  // .../ready: a loaded version is ready when the server is and its warm-up
  // is done.
  auto rd = ready();
  if (rd.ready && found->version->state != version_state::ready)
    rd = readiness{false, "warming", "the version's warm-up encodes are still running"};
  response r;
  r.status = rd.ready ? 200 : 503;
  r.retry_after = !rd.ready;
  r.body = encode_model_ready(found->model->name, rd.ready, rd.reason);
  r.route = route_label::metadata;
  return handled::answer(std::move(r));
}

// -- predictions -------------------------------------------------------------------

std::chrono::milliseconds service_routes::expected_encoder_wait(std::uint32_t rows) const {
  if (!svc_.board)
    return 0ms;
  const auto& b = *svc_.board;
  auto ns_per_row = b.encoder_ns_per_row.load(std::memory_order_relaxed);
  auto workers = b.encoder_workers.load(std::memory_order_relaxed);
  if (ns_per_row == 0 || workers == 0)
    return 0ms;
  auto rows_ahead = b.encoder_rows_ahead.load(std::memory_order_relaxed) + rows;
  auto ms = static_cast<double>(rows_ahead) * static_cast<double>(ns_per_row)
            / static_cast<double>(workers) / 1e6;
  return std::chrono::milliseconds{static_cast<std::int64_t>(std::min(ms, 3.6e6))};
}

handled service_routes::predict(const request_view& req, responder& rsp, api kind,
                                const route_match* m) {
  answer_format fmt;
  fmt.v2 = kind == api::v2;
  // The v2 routes name the model in the path: an unknown one is 404 before
  // the body is read.
  std::optional<lane_ref> target;
  if (fmt.v2) {
    std::optional<response> miss;
    target = resolve_v2(*m, miss);
    if (!target)
      return handled::answer(std::move(*miss));
  }
  // The same media-type rule for both, except that an inference request
  // may come without Content-Type (Triton's HTTP client sends none).
  if ((kind == api::house || req.has_content_type) && !is_json_media_type(req.content_type))
    return handled::answer(
      fmt.fail({errc::unsupported_media_type, "content type must be application/json, got '"
                                                + std::string{req.content_type} + "'"}));
  decode_limits limits{cfg_.input_dim, cfg_.max_rows};
  std::optional<predict_request> decoded;
  if (fmt.v2) {
    if (req.binary_tensors)
      return handled::answer(
        fmt.fail({errc::bad_request, "binary tensor data (Inference-Header-Content-Length) is not "
                                     "supported: send the tensor as JSON \"data\""}));
    auto d = decode_infer(req.body, limits);
    if (!d)
      return handled::answer(fmt.fail(d.error()));
    decoded = std::move(d->req);
    fmt.id = std::move(d->id);
  } else {
    auto d = decode_predict(req.body, limits, fmt.id);
    if (!d)
      return handled::answer(fmt.fail(d.error()));
    decoded = std::move(*d);
  }
  if (!target) {
    // /predict names them in the body (absent: the defaults). One catalog
    // snapshot answers: a default switch is atomic for this request.
    auto catalog = svc_.models->load();
    auto r = catalog->resolve(decoded->model, decoded->version);
    if (!r)
      return handled::answer(fmt.fail(r.error()));
    target = lane_ref{catalog, r->model, r->version};
  }
  // The request holds its lane until answered: a version unloaded meanwhile
  // drains instead of failing it.
  // A canary takes its share of the prefixes: a prefix stays on one policy.
  const auto& entry = *target->version;
  std::shared_ptr<const lane> serving
    = entry.canary
          && takes_canary(
            split_hash(decoded->features.data(), decoded->features.size(), entry.split_values),
            entry.canary_share)
        ? entry.canary
        : entry.lane;
  fmt.model_name = serving->model_name;
  target.reset(); // the snapshot itself is not needed any more
  if (serving->hits) {
    // A hit is answered here, on this I/O thread, before any admission
    // limit: a cheap answer is never refused to make room for expensive
    // ones. The read path records its outcome in batches.
    if (auto hit = serving->hits->serve(*decoded, req.start)) {
      auto r = fmt.ok(*hit, req.start);
      r.reported = true;
      return handled::answer(std::move(r));
    }
  }
  // A client that sent its request and left at once (a reset flood)
  // costs nothing more than the parse.
  if (rsp.client_gone())
    return handled::gone();
  // The deadline: the client's own, else the server's queue delay. The
  // encoder pool refuses at once (503) what it cannot finish by then.
  auto budget = decoded->timeout_ms > 0 ? std::chrono::milliseconds{decoded->timeout_ms}
                                        : cfg_.max_queue_delay;
  if (budget.count() > 0) {
    decoded->deadline = req.start + budget;
    // The pool's own rule, applied here first from the load it publishes:
    // a miss it would refuse costs no actor message (under a flood those
    // would keep the actors from the hits' bookkeeping).
    if (auto wait = expected_encoder_wait(decoded->rows); wait > budget)
      return handled::answer(fmt.fail(
        {errc::overloaded, "the encoders are busy: the expected wait of "
                             + std::to_string(wait.count()) + " ms exceeds this request's "
                             + std::to_string(budget.count()) + " ms deadline; retry later"}));
  }
  if (inflight_.fetch_add(1) >= cfg_.max_inflight) {
    --inflight_;
    return handled::answer(
      fmt.fail({errc::overloaded, "server is at its limit of " + std::to_string(cfg_.max_inflight)
                                    + " requests in flight; retry later"}));
  }
  pending p;
  p.route = route_label::predict;
  p.holds_slot = true;
  p.reported = true; // by the callback below
  p.cancel = std::make_shared<cancel_flag>();
  decoded->cancel = p.cancel;
  auto done = rsp.later();
  auto metrics = svc_.metrics;
  auto start = req.start;
  auto ingress = serving->ingress;
  caf::anon_send(ingress, predict_atom::value, std::move(*decoded),
                 predict_callback{[metrics, start, done, fmt = std::move(fmt),
                                   serving = std::move(serving)](caf::expected<predict_reply> r) {
                   // This runs on the actor thread that answered: report the
                   // outcome from here, where sending wakes no thread. The
                   // JSON is written on the connection's thread.
                   auto o = predict_outcome(r, start);
                   o.lane = serving->id;
                   caf::anon_send(metrics, outcome_atom::value, std::move(o));
                   done([r = std::move(r), fmt, start]() {
                     auto out = r ? fmt.ok(*r, start) : fmt.fail(from_caf_error(r.error()));
                     out.reported = true;
                     return out;
                   });
                 }});
  tsan::handoff_release(&tsan::predict_requests); // the decoded request; see core/tsan.hpp
  return handled::later(std::move(p));
}

// -- reads of the actors' state ----------------------------------------------------

handled service_routes::ask_stats(responder& rsp) {
  // The read path's last batches first, so that every answered hit counts.
  if (svc_.reads)
    svc_.reads->flush();
  else if (svc_.hits)
    svc_.hits->flush();
  return ask_actor<service_snapshot>(
    sys_, rsp, svc_.metrics, route_label::stats,
    or_error<service_snapshot>(
      route_label::stats,
      [](service_snapshot& s) { return json_ok(encode_stats(s), route_label::stats); }),
    stats_atom::value);
}

handled service_routes::ask_metrics(responder& rsp) {
  if (svc_.reads)
    svc_.reads->flush();
  else if (svc_.hits)
    svc_.hits->flush();
  auto encode = [](std::string& text) {
    auto out = json_ok(std::move(text), route_label::metrics);
    out.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return out;
  };
  return ask_actor<std::string>(sys_, rsp, svc_.metrics, route_label::metrics,
                                or_error<std::string>(route_label::metrics, encode),
                                metrics_atom::value);
}

handled service_routes::ask_agent(const request_view& req, responder& rsp,
                                  std::optional<admin_command> cmd, double value) {
  // The default model's default version: the one /predict serves.
  auto catalog = svc_.models->load(); // keeps `primary`'s pointers alive
  auto primary = catalog->resolve("", "");
  auto agent = primary ? primary->version->lane->agent : svc_.agent;
  if (!cmd) {
    // The agent's state, and the canaries beside it (from the model
    // manager): one answer from two actors, asked one after the other.
    auto done = rsp.later();
    auto manager = svc_.manager;
    sys_.spawn(
      [=](caf::event_based_actor* self, int) {
        self->request(agent, caf::timespan{3s}, agent_atom::value)
          .then(
            [=](agent_snapshot& a) {
              if (!manager) {
                done([a] { return json_ok(encode_agent(a), route_label::agent); });
                return;
              }
              self->request(manager, caf::timespan{3s}, models_atom::value)
                .then(
                  [=](model_listing& l) {
                    done([a, l] {
                      return json_ok(encode_agent_with_canaries(a, l), route_label::agent);
                    });
                  },
                  [=](caf::error&) {
                    done([a] { return json_ok(encode_agent(a), route_label::agent); });
                  });
            },
            [=](caf::error& e) {
              done([e] { return error_response(from_caf_error(e), route_label::agent); });
            });
      },
      0);
    pending p;
    p.route = route_label::agent;
    return handled::later(std::move(p));
  }
  // An admin command answers with the agent's state, and is logged once
  // its result is known.
  struct audit {
    admin_command cmd;
    std::string token, remote, request_id;
    double value;
  };
  audit log{*cmd, token_id(req.authorization), std::string{req.remote}, std::string{req.request_id},
            value};
  auto answer = [log](caf::expected<agent_snapshot>& r) {
    auto out = r ? json_ok(encode_agent(*r), route_label::admin)
                 : error_response(from_caf_error(r.error()), route_label::admin);
    auto result = r ? std::string{"ok"} : std::string{to_string(out.error)};
    if (log.cmd == admin_command::set_ttl)
      logging::info("admin", "action",
                    {{"action", to_string(log.cmd)},
                     {"ttl_seconds", log.value},
                     {"token_id", log.token},
                     {"remote", log.remote},
                     {"request_id", log.request_id},
                     {"result", result},
                     {"status", out.status}});
    else
      logging::info("admin", "action",
                    {{"action", to_string(log.cmd)},
                     {"token_id", log.token},
                     {"remote", log.remote},
                     {"request_id", log.request_id},
                     {"result", result},
                     {"status", out.status}});
    return out;
  };
  return ask_actor<agent_snapshot>(sys_, rsp, agent, route_label::admin, answer, admin_atom::value,
                                   *cmd, value);
}

handled service_routes::admin_models(const request_view& req, responder& rsp,
                                     const route_match& m) {
  auto id = m.spec->id;
  model_command cmd;
  std::string action = "models";
  if (id != r_admin_models) {
    // Every change has a JSON body (or none), like PUT /admin/cache/ttl.
    bool empty_body = req.body.find_first_not_of(" \t\r\n") == std::string_view::npos;
    bool bodiless = id == r_admin_model_unload || id == r_admin_canary_abort
                    || ((id == r_admin_model_warm || id == r_admin_canary_promote) && empty_body);
    if (!bodiless && !is_json_media_type(req.content_type))
      return handled::answer(
        error_response({errc::unsupported_media_type, "content type must be application/json, got '"
                                                        + std::string{req.content_type} + "'"},
                       route_label::admin));
    result<unit> decoded = ok();
    switch (id) {
      case r_admin_models_load: {
        auto d = decode_model_load(req.body);
        if (d)
          cmd = std::move(*d);
        else
          decoded = d.error();
        break;
      }
      case r_admin_model_default: {
        cmd.op = model_op::set_default;
        cmd.name = std::string{m.params[0]};
        auto d = decode_default_version(req.body);
        if (d)
          cmd.version = std::move(*d);
        else
          decoded = d.error();
        break;
      }
      case r_admin_model_warm: {
        cmd.op = model_op::warm;
        cmd.name = std::string{m.params[0]};
        cmd.version = std::string{m.params[1]};
        auto d = decode_warm(req.body);
        if (d)
          cmd.warm = *d;
        else
          decoded = d.error();
        break;
      }
      case r_admin_canary_start: {
        // Fields the candidate leaves out keep the incumbent's.
        auto catalog = svc_.models->load(); // keeps `found`'s pointers alive
        auto found = catalog->resolve(m.params[0], m.params[1]);
        if (!found) {
          decoded = found.error();
          break;
        }
        auto d = decode_canary_start(req.body, found->version->lane->policy);
        if (d)
          cmd = std::move(*d);
        else
          decoded = d.error();
        cmd.name = std::string{m.params[0]};
        cmd.version = std::string{m.params[1]};
        break;
      }
      case r_admin_canary_promote:
      case r_admin_canary_abort:
        cmd.op = id == r_admin_canary_promote ? model_op::canary_promote : model_op::canary_abort;
        cmd.name = std::string{m.params[0]};
        cmd.version = std::string{m.params[1]};
        if (id == r_admin_canary_promote && !empty_body)
          decoded = error{errc::bad_request, "promote takes no body"};
        break;
      default: // unload
        cmd.op = model_op::unload;
        cmd.name = std::string{m.params[0]};
        cmd.version = std::string{m.params[1]};
        break;
    }
    action = std::string{"models."} + to_string(cmd.op);
    if (!decoded) {
      logging::info("admin", "action",
                    {{"action", action},
                     {"model", cmd.name},
                     {"token_id", token_id(req.authorization)},
                     {"remote", req.remote},
                     {"request_id", req.request_id},
                     {"result", to_string(decoded.error().code)},
                     {"status", status_for(decoded.error().code)}});
      return handled::answer(error_response(decoded.error(), route_label::admin));
    }
  }
  struct audit {
    std::string action, model, version, token, remote, request_id;
    bool created;
  };
  audit log{action,
            cmd.name,
            cmd.version,
            token_id(req.authorization),
            std::string{req.remote},
            std::string{req.request_id},
            id == r_admin_models_load};
  auto answer = [log](caf::expected<model_listing>& r) {
    auto out = r ? json_ok(encode_model_listing(*r), route_label::admin)
                 : error_response(from_caf_error(r.error()), route_label::admin);
    if (r && log.created)
      out.status = 201;
    if (log.action != "models")
      logging::info("admin", "action",
                    {{"action", log.action},
                     {"model", log.model},
                     {"version", r ? r->version : log.version},
                     {"token_id", log.token},
                     {"remote", log.remote},
                     {"request_id", log.request_id},
                     {"result", r ? std::string{"ok"} : std::string{to_string(out.error)}},
                     {"status", out.status}});
    return out;
  };
  if (id == r_admin_models)
    return ask_actor<model_listing>(sys_, rsp, svc_.manager, route_label::admin, answer,
                                    models_atom::value);
  // A load reads a file, builds the model and warms it: give it time.
  return ask_actor_within<model_listing>(caf::timespan{120s}, sys_, rsp, svc_.manager,
                                         route_label::admin, answer, models_atom::value, cmd);
}

handled service_routes::admin(const request_view& req, responder& rsp, int id) {
  switch (id) {
    case r_admin_disable:
      return ask_agent(req, rsp, admin_command::disable_cache, 0.0);
    case r_admin_enable:
      return ask_agent(req, rsp, admin_command::enable_cache, 0.0);
    case r_admin_clear:
      return ask_agent(req, rsp, admin_command::clear_cache, 0.0);
    case r_admin_resume:
      return ask_agent(req, rsp, admin_command::resume_agent, 0.0);
    default:
      break;
  }
  // PUT /admin/cache/ttl: the same media-type rule as /predict.
  auto refuse = [&](const error& e) {
    logging::info("admin", "action",
                  {{"action", to_string(admin_command::set_ttl)},
                   {"token_id", token_id(req.authorization)},
                   {"remote", req.remote},
                   {"request_id", req.request_id},
                   {"result", to_string(e.code)},
                   {"status", status_for(e.code)}});
    return handled::answer(error_response(e, route_label::admin));
  };
  if (!is_json_media_type(req.content_type))
    return refuse({errc::unsupported_media_type, "content type must be application/json, got '"
                                                   + std::string{req.content_type} + "'"});
  auto ttl = decode_ttl(req.body);
  if (!ttl)
    return refuse(ttl.error());
  return ask_agent(req, rsp, admin_command::set_ttl, *ttl);
}

// -- the end of an exchange --------------------------------------------------------

void service_routes::finished(const finished_exchange& e) {
  if (!e.reported) {
    request_outcome o;
    o.error_code = static_cast<std::uint8_t>(e.error);
    o.status = static_cast<std::uint16_t>(e.status);
    o.route = e.route;
    o.latency_ns = e.service_latency.count();
    caf::anon_send(svc_.metrics, outcome_atom::value, std::move(o));
  }
  log_access(e);
}

} // namespace sil::http_api
