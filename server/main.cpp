// sil-server: the Stateful Inference Lab service.
//
// Parses the configuration (see config/sil_config.hpp for the precedence),
// builds the model, spawns the actors, serves HTTP, and on SIGINT/SIGTERM
// drains the requests in flight and exits 0; SIGHUP reopens the log files.
// Invalid configuration exits 2 with one plain line on stderr that names the
// key (the log is not set up yet); from then on diagnostics go through
// sil::logging. The stdout lines "listening on HOST:PORT" and "registry on
// HOST:PORT" are read by tests and tools and stay plain. `--probe URL`
// (first) is a health check instead: exit 0 if the URL answers 2xx
// (server/probe.hpp).
#include <caf/all.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "actors/service.hpp"
#include "actors/worker_board.hpp"
#include "config/sil_config.hpp"
#include "core/build_info.hpp"
#include "http/server.hpp"
#include "http/worker_routes.hpp"
#include "logging/log.hpp"
#include "messages/messages.hpp"
#include "server/cluster.hpp"
#include "server/probe.hpp"

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
    sil::logging::warn("server", "cannot raise the open-file limit",
                       {{"limit", static_cast<unsigned long long>(rl.rlim_max)}});
}

bool g_logging_ready = false;

std::string fmt_seconds(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

/// Startup failed: one plain line on stderr before the log is set up (the
/// command line's answer, e.g. a bad option); an error event afterwards,
/// repeated on stderr when the log goes to a file, so that whoever started
/// the server sees why it stopped.
int fail(const std::string& msg, int code = 2) {
  if (!g_logging_ready || !sil::logging::current().file.empty())
    std::fprintf(stderr, "sil-server: %s\n", msg.c_str());
  if (g_logging_ready)
    sil::logging::error("server", msg, {{"exit_code", code}});
  return code;
}

/// Sets up the log from the settings (validated: level and format parse).
std::string configure_logging(const sil::service_settings& s) {
  sil::logging::options o;
  o.threshold = sil::logging::parse_level(s.log_level).value_or(sil::logging::level::info);
  o.fmt = sil::logging::parse_format(s.log_format).value_or(sil::logging::format::text);
  o.file = s.log_file;
  o.access = s.log_access;
  o.access_file = s.log_access_file;
  if (auto err = sil::logging::configure(o); !err.empty())
    return (!o.file.empty() && err.find("\"" + o.file + "\"") != std::string::npos
              ? "log.file: "
              : "log.access-file: ")
           + err;
  g_logging_ready = true;
  return {};
}

/// The effective configuration, one event per section, keyed like the
/// config file's keys (cache.max-size; the admin token redacted).
void log_configuration(const sil::sil_config& cfg) {
  auto entries = cfg.effective(true);
  std::size_t i = 0;
  while (i < entries.size()) {
    const auto& section = entries[i].section;
    std::vector<std::string> keys; // the fields hold views: keep the keys alive
    std::vector<sil::logging::field> fields;
    auto j = i;
    for (; j < entries.size() && entries[j].section == section; ++j)
      keys.push_back(section == "global" ? entries[j].name : section + "." + entries[j].name);
    for (auto k = i; k < j; ++k) {
      const auto& e = entries[k];
      const auto& key = keys[k - i];
      switch (e.k) {
        case sil::sil_config::entry::kind::integer:
          fields.emplace_back(key, static_cast<long long>(e.i));
          break;
        case sil::sil_config::entry::kind::real:
          fields.emplace_back(key, e.d);
          break;
        case sil::sil_config::entry::kind::boolean:
          fields.emplace_back(key, e.b);
          break;
        case sil::sil_config::entry::kind::text:
          fields.emplace_back(key, e.s);
          break;
      }
    }
    sil::logging::write(sil::logging::level::info, "config", "effective configuration", fields);
    i = j;
  }
}

/// The worker role: encoders, and a small HTTP listener on host:port for
/// health probes and the node's /metrics, until SIGINT/SIGTERM.
int worker_main(sil::sil_config& cfg, const sil::model& m) {
  // Block the signals before any thread starts, then wait for them here.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGHUP, SIG_DFL); // blocked now: sigwait below takes it
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
  auto name = sil::default_node_name(s);
  auto routes = std::make_shared<sil::http_api::worker_routes>(
    board, sil::http_api::worker_identity{name, s.gateway, m.version()}, hc.cors_origins);
  auto listener = sil::http_server::start(hc, routes);
  if (!listener)
    return fail(listener.error().message, 1);
  std::printf("listening on %s:%u\n", s.host.c_str(), static_cast<unsigned>((*listener)->port()));
  std::fflush(stdout);
  caf::actor_system sys{cfg};
  sil::logging::info("server", "worker node started",
                     {{"node", name},
                      {"model", m.name()},
                      {"version", m.version()},
                      {"workers", sil::worker_count(s)},
                      {"gateway", s.gateway}});
  int rc = 0;
  std::atomic<bool> gave_up{false};
  std::thread node{[&] {
    rc = sil::run_worker_node(sys, s, m, stop, board);
    if (rc != 0) {
      // The node cannot work (its reason is logged): wake the wait below.
      gave_up = true;
      ::kill(::getpid(), SIGTERM);
    }
  }};
  int sig = 0;
  while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
    sil::logging::reopen_and_log("SIGHUP");
  if (!gave_up)
    sil::logging::info("server", "signal received, leaving the cluster",
                       {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  routes->set_draining(); // readiness fails from now on
  stop = true;
  node.join();
  (*listener)->shutdown(std::chrono::milliseconds{0});
  sil::logging::info("server", "stopped");
  // The actor system's destructor then waits for every detached actor's
  // thread. Under heavy load we saw CAF 0.17 wait there forever: a finished
  // encoder worker's thread waits for its last reference to go, and that
  // reference outlives the middleman's shutdown. The node has left the
  // cluster and has nothing left to do, so the wait is bounded.
  std::thread{[rc] {
    std::this_thread::sleep_for(std::chrono::seconds{10});
    sil::logging::warn("server", "the actor system did not shut down within 10 s after leaving "
                                 "the cluster; exiting anyway");
    std::_Exit(rc);
  }}.detach();
  return rc;
}

} // namespace

int main(int argc, char** argv) {
  // A health probe (container HEALTHCHECK) before anything else: no
  // configuration, no actor system.
  if (auto rc = sil::probe::main_if_probe(argc, argv))
    return *rc;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--version") == 0) {
      std::printf("sil-server %s (commit %s)\n", sil::build_version(), sil::build_commit());
      return 0;
    }
  // Until the server waits for signals (and reopens the logs on SIGHUP), a
  // SIGHUP must not end the process.
  std::signal(SIGHUP, SIG_IGN);
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
  if (cfg.dump_requested) {
    auto text = cfg.dump_config();
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  if (auto err = configure_logging(s); !err.empty())
    return fail(err);
  sil::logging::info(
    "server", "starting",
    {{"version", sil::build_version()}, {"commit", sil::build_commit()}, {"role", s.role}});
  log_configuration(cfg);
  // Every node announces the message types before its actor system starts:
  // a worker node and its gateway exchange them.
  sil::register_message_types(cfg);
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
  // /health already says "ok" (the encoder pool spawns them asynchronously).
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
  sil::logging::info("server", "serving",
                     {{"address", s.host + ":" + std::to_string(server->port())},
                      {"model", m->name()},
                      {"version", m->version()},
                      {"workers", sil::worker_count(s)},
                      {"cache", s.cache_enabled}});

  server->wait_for_signal();
  sil::logging::info("server", "signal received, draining requests in flight");
  auto left = server->shutdown(
    std::chrono::milliseconds{static_cast<std::int64_t>(s.http_drain_timeout_seconds * 1000.0)});
  sil::stop_service(*svc);
  if (left > 0) {
    // Work was dropped: say how much, and let supervisors see it.
    sil::logging::warn("server",
                       "stopped; the drain deadline (" + fmt_seconds(s.http_drain_timeout_seconds)
                         + " s) passed and " + std::to_string(left)
                         + " requests were dropped (answered 503 instead of computed)",
                       {{"dropped", static_cast<unsigned long long>(left)}, {"exit_code", 3}});
    return 3;
  }
  sil::logging::info("server", "stopped");
  return 0;
}
