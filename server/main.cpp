// sil-server: the Stateful Inference Lab service.
//
// Parses the configuration (defaults < config file < environment < CLI),
// builds the model, spawns the actors, serves HTTP, and on SIGINT/SIGTERM
// drains the requests in flight and exits 0. Invalid configuration exits 2
// with one line that names the key.
#include <caf/all.hpp>

#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "actors/service.hpp"
#include "actors/worker_board.hpp"
#include "config/sil_config.hpp"
#include "http/server.hpp"
#include "http/worker_routes.hpp"
#include "server/cluster.hpp"

namespace {

/// Raises the soft limit on open files to the hard one: every connection
/// holds a descriptor, and the default soft limit (often 1024) would cap
/// the server far below what the machine allows.
void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
    return;
  rl.rlim_cur = rl.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0)
    std::fprintf(stderr, "sil-server: cannot raise the open-file limit to %llu\n",
                 static_cast<unsigned long long>(rl.rlim_max));
}

int fail(const std::string& msg, int code = 2) {
  std::fprintf(stderr, "sil-server: %s\n", msg.c_str());
  return code;
}

/// The worker role: encoders, and a small HTTP listener on host:port for
/// health probes and the node's /metrics, until SIGINT/SIGTERM.
int worker_main(sil::sil_config& cfg, const sil::model& m) {
  // Block the signals before any thread starts, then wait for them here.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::atomic<bool> stop{false};
  const auto& s = cfg.settings;
  auto board = std::make_shared<sil::worker_board>();
  sil::http_config hc;
  hc.host = s.host;
  hc.port = static_cast<std::uint16_t>(s.port);
  hc.threads = 1;
  hc.read_timeout
    = std::chrono::milliseconds{static_cast<std::int64_t>(s.http_read_timeout_seconds * 1000.0)};
  hc.max_connections = static_cast<std::size_t>(s.http_max_connections);
  hc.linger = std::chrono::milliseconds{static_cast<std::int64_t>(s.http_linger_seconds * 1000.0)};
  hc.cors_origins = *sil::parse_cors_origins(s.http_cors_origins);
  auto routes = std::make_shared<sil::http_api::worker_routes>(
    board, sil::http_api::worker_identity{sil::default_node_name(s), s.gateway, m.version()},
    hc.cors_origins);
  auto listener = sil::http_server::start(hc, routes);
  if (!listener)
    return fail(listener.error().message, 1);
  std::printf("listening on %s:%u\n", s.host.c_str(), static_cast<unsigned>((*listener)->port()));
  std::fflush(stdout);
  caf::actor_system sys{cfg};
  std::fprintf(stderr,
               "sil-server: worker node %s, model %s version %s, %zu encoder workers, "
               "gateway %s\n",
               sil::default_node_name(s).c_str(), m.name().c_str(), m.version().c_str(),
               sil::worker_count(s), s.gateway.c_str());
  int rc = 0;
  std::thread node{[&] { rc = sil::run_worker_node(sys, s, m, stop, board); }};
  int sig = 0;
  sigwait(&set, &sig);
  std::fprintf(stderr, "sil-server: signal received, leaving the cluster\n");
  routes->set_draining(); // readiness fails from now on
  stop = true;
  node.join();
  (*listener)->shutdown(std::chrono::milliseconds{0});
  std::fprintf(stderr, "sil-server: stopped\n");
  // The actor system's destructor then waits for every detached actor's
  // thread. Under heavy load we saw CAF 0.17 wait there forever: a finished
  // encoder worker's thread waits for its last reference to go, and that
  // reference outlives the middleman's shutdown. The node has left the
  // cluster and has nothing left to do, so the wait is bounded.
  std::thread{[rc] {
    std::this_thread::sleep_for(std::chrono::seconds{10});
    std::fprintf(stderr, "sil-server: the actor system did not shut down within 10 s after "
                         "leaving the cluster; exiting anyway\n");
    std::_Exit(rc);
  }}.detach();
  return rc;
}

} // namespace

int main(int argc, char** argv) {
  sil::sil_config cfg;
  if (auto st = cfg.parse_all(argc, argv); !st)
    return fail(st.error().message);
  if (cfg.cli_helptext_printed)
    return 0;
  const auto& s = cfg.settings;
  auto m = sil::make_model(s);
  if (!m)
    return fail(m.error().message);
  if (auto st = sil::validate(s, m->input_dim()); !st)
    return fail(st.error().message);
  if (s.role != "standalone")
    sil::prepare_cluster_config(cfg);
  raise_fd_limit();
  if (s.role == "worker")
    return worker_main(cfg, *m);

  // The HTTP server outlives the actor system: a late callback from an actor
  // may still post to its (stopped) I/O context.
  std::unique_ptr<sil::http_server> server;
  caf::actor_system sys{cfg};
  auto settings = s;
  settings.node_name = sil::default_node_name(s);
  auto svc = sil::start_service(sys, settings, *m);
  if (!svc)
    return fail("cannot start the service: " + sys.render(svc.error()), 1);
  // Listen only once the local encoder workers are up, so that the first
  // /health already says "ok" (the supervisor spawns them asynchronously).
  // A gateway without local workers is degraded until a node joins.
  for (int i = 0; i < 1000 && sil::worker_count(s) > 0 && svc->board->workers_alive.load() == 0;
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  if (s.role == "gateway") {
    auto port = sil::publish_registry(sys, *svc, s);
    if (!port) {
      sil::stop_service(*svc);
      return fail(port.error().message, 1);
    }
    std::printf("registry on %s:%u\n", s.cluster_host.c_str(), static_cast<unsigned>(*port));
    std::fflush(stdout);
  }
  sil::http_config hc;
  hc.host = s.host;
  hc.port = static_cast<std::uint16_t>(s.port);
  hc.threads = static_cast<std::size_t>(s.http_threads);
  hc.body_limit = static_cast<std::size_t>(s.http_body_limit);
  hc.read_timeout
    = std::chrono::milliseconds{static_cast<std::int64_t>(s.http_read_timeout_seconds * 1000.0)};
  hc.max_inflight = static_cast<std::size_t>(s.http_max_inflight);
  hc.max_connections = static_cast<std::size_t>(s.http_max_connections);
  hc.max_queue_delay
    = std::chrono::milliseconds{static_cast<std::int64_t>(s.http_max_queue_delay_seconds * 1000.0)};
  hc.linger = std::chrono::milliseconds{static_cast<std::int64_t>(s.http_linger_seconds * 1000.0)};
  hc.max_rows = static_cast<std::size_t>(s.http_max_rows);
  hc.input_dim = m->input_dim();
  hc.model_version = m->version();
  hc.admin_token = s.admin_token;
  hc.model_name = m->name();
  hc.cors_origins = *sil::parse_cors_origins(s.http_cors_origins);
  hc.local_workers = sil::worker_count(s) > 0;
  hc.fallback_local = s.cluster_fallback == "local";
  auto started = sil::http_server::start(sys, hc, *svc);
  if (!started) {
    sil::stop_service(*svc);
    return fail(started.error().message, 1);
  }
  server = std::move(*started);
  std::printf("listening on %s:%u\n", s.host.c_str(), static_cast<unsigned>(server->port()));
  std::fflush(stdout);
  std::fprintf(stderr, "sil-server: model %s version %s, %zu encoder workers, cache %s\n",
               m->name().c_str(), m->version().c_str(), sil::worker_count(s),
               s.cache_enabled ? "on" : "off");

  server->wait_for_signal();
  std::fprintf(stderr, "sil-server: signal received, draining requests in flight\n");
  auto left = server->shutdown(
    std::chrono::milliseconds{static_cast<std::int64_t>(s.http_drain_timeout_seconds * 1000.0)});
  sil::stop_service(*svc);
  if (left > 0) {
    // Work was dropped: say how much, and let supervisors see it.
    std::fprintf(stderr,
                 "sil-server: stopped; the drain deadline (%g s) passed and %zu requests were "
                 "dropped (answered 503 instead of computed)\n",
                 s.http_drain_timeout_seconds, left);
    return 3;
  }
  std::fprintf(stderr, "sil-server: stopped\n");
  return 0;
}
