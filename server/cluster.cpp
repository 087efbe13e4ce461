#include "server/cluster.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <thread>
#include <vector>

#include "actors/encoder_worker.hpp"
#include "actors/service.hpp"
#include "core/node_identity.hpp"
#include "logging/log.hpp"

namespace sil {

using namespace std::chrono_literals;

void prepare_cluster_config(sil_config& cfg) {
  cfg.load<caf::io::middleman>();
  // CAF 0.17 ships with heartbeats off: a frozen peer (SIGSTOP, a dead
  // link) would never produce a down_msg. Defaults that detect one in ~2 s.
  auto hb = caf::get_or(cfg, "middleman.heartbeat-interval", caf::timespan{0});
  if (hb.count() == 0) {
    cfg.set("middleman.heartbeat-interval", caf::timespan{500ms});
    cfg.set("middleman.connection-timeout", caf::timespan{2s});
  }
}

std::string default_node_name(const service_settings& s) {
  if (!s.node_name.empty())
    return s.node_name;
  // No process id: a restarted node keeps its name, and with it its
  // metric series. Two nodes on one host differ by role or by HTTP port
  // (they cannot share a port on one network namespace).
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  return s.role + "@" + host + ":" + std::to_string(s.port);
}

result<std::uint16_t> publish_registry(caf::actor_system& sys, const service_handles& h,
                                       const service_settings& s) {
  auto registry = caf::actor_cast<registry_actor>(h.pool);
  auto port = sys.middleman().publish(registry, static_cast<std::uint16_t>(s.cluster_port),
                                      s.cluster_host.c_str(), true);
  if (!port)
    return error{errc::io_error, "cannot publish the registry on " + s.cluster_host + ":"
                                   + std::to_string(s.cluster_port) + ": "
                                   + sys.render(port.error())};
  return *port;
}

namespace {

/// An encoder worker that also counts its work on the node's board (for
/// the worker's /metrics).
encoder_worker_actor::behavior_type counting_encoder(encoder_worker_actor::pointer, const model& m,
                                                     const std::shared_ptr<worker_board>& board) {
  return {
    [m, board](encode_atom, const encode_batch& batch) -> caf::result<encoded_batch> {
      auto out = encode_with(m, batch);
      if (!out) {
        board->failures.fetch_add(1, std::memory_order_relaxed);
        return std::move(out.error());
      }
      std::uint64_t items = 0;
      std::uint64_t rows = 0;
      for (std::size_t i = 0; i < out->embeddings.size() && i < batch.items.size(); ++i)
        if (out->embeddings[i]) {
          ++items;
          rows += batch.items[i].rows;
        }
      board->batches.fetch_add(1, std::memory_order_relaxed);
      board->encodes.fetch_add(items, std::memory_order_relaxed);
      board->rows.fetch_add(rows, std::memory_order_relaxed);
      board->busy_ns.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(out->busy_ns, 0)),
                               std::memory_order_relaxed);
      return std::move(*out);
    },
  };
}

struct worker_node {
  caf::actor_system& sys;
  const service_settings& s;
  const model& m;
  const std::atomic<bool>& stop;
  std::shared_ptr<worker_board> board;
  std::string name;
  std::string host;
  std::uint16_t port = 0;
  std::vector<encoder_worker_actor> workers;
  /// Set when the node must give up: its node id clashes with the gateway's
  /// or another node's, and retrying cannot help.
  bool fatal = false;

  encoder_worker_actor spawn_worker() {
    return sys.spawn<caf::detached>(counting_encoder, m, board);
  }

  /// The node id of the peer at host:port, from the middleman's handshake
  /// with it (cached by the middleman after the first connect).
  caf::expected<caf::node_id> peer_node() {
    caf::scoped_actor self{sys};
    caf::expected<caf::node_id> out{caf::make_error(caf::sec::runtime_error, "no answer")};
    self->request(sys.middleman().actor_handle(), 2s, caf::connect_atom::value, host, port)
      .receive([&](caf::node_id& nid, caf::strong_actor_ptr&,
                   std::set<std::string>&) { out = std::move(nid); },
               [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  /// The gateway has this node's own id: CAF treats the connection as one
  /// to itself and hands back a local actor, or none.
  void identity_clash() {
    logging::error("cluster", "this node has the gateway's node id; giving up",
                   {{"node", name},
                    {"gateway", host + ":" + std::to_string(port)},
                    {"node_id", caf::to_string(sys.node())},
                    {"remedy", node_identity_remedy}});
    fatal = true;
  }

  /// Connects to the registry, retrying with exponential backoff (100 ms up
  /// to 2 s) until it answers or `stop` is set. Gives up (sets `fatal`) if
  /// the gateway turns out to have this node's own id.
  caf::expected<registry_actor> connect() {
    auto backoff = 100ms;
    bool reported = false;
    while (!stop) {
      auto r = sys.middleman().remote_actor<registry_actor>(host, port);
      if (r && r->node() == sys.node()) {
        identity_clash();
        break;
      }
      if (r)
        return r;
      if (r.error() == caf::sec::no_actor_published_at_port) {
        // What a connection to a node with our own id looks like when no
        // local actor happens to have the registry's actor id.
        if (auto nid = peer_node(); nid && *nid == sys.node()) {
          identity_clash();
          break;
        }
      }
      if (!reported) {
        logging::warn(
          "cluster", "gateway not reachable; retrying",
          {{"gateway", host + ":" + std::to_string(port)}, {"error", sys.render(r.error())}});
        reported = true;
      }
      for (auto waited = 0ms; waited < backoff && !stop; waited += 50ms)
        std::this_thread::sleep_for(50ms);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 2s);
    }
    return caf::make_error(caf::sec::runtime_error, "stopped");
  }

  /// Asks the registry to take worker `w`. The request has its own
  /// short-lived scoped actor, on purpose: a blocking actor in CAF 0.17 does
  /// not cancel a request's timeout when the answer arrives, so 2 s later the
  /// clock still delivers a request_timeout message, sent in the actor's own
  /// name. A long-lived actor that is in another receive() then skips that
  /// stale response into its mailbox cache, which cleanup does not drain (a
  /// TODO in CAF's blocking_actor::cleanup): the message's strong reference
  /// to its sender, the actor itself, keeps the actor alive forever, and
  /// LeakSanitizer reports it at exit. A scoped actor that makes one request
  /// and goes away has no other receive() to skip it in; a late timeout
  /// finds its mailbox closed and is dropped.
  bool join(const registry_actor& reg, const encoder_worker_actor& w) {
    caf::scoped_actor self{sys};
    bool ok = false;
    self->request(reg, 2s, join_atom::value, name, m.version(), w)
      .receive([&](std::uint64_t) { ok = true; },
               [&](caf::error& e) {
                 auto why = from_caf_error(e);
                 // A node id clash cannot go away by retrying: give up.
                 if (e.category() == error_category && why.code == errc::forbidden) {
                   fatal = true;
                   logging::error("cluster", "the gateway refused this node; giving up",
                                  {{"node", name}, {"reason", why.message}});
                   return;
                 }
                 logging::warn("cluster", "the gateway refused a worker",
                               {{"node", name}, {"reason", sys.render(e)}});
               });
    return ok;
  }

  int run() {
    auto hp = split_host_port(s.gateway);
    host = hp->first;
    port = hp->second;
    auto n = worker_count(s);
    for (std::size_t i = 0; i < n; ++i)
      workers.push_back(spawn_worker());
    board->workers_configured = static_cast<std::uint32_t>(n);
    board->workers_alive = static_cast<std::uint32_t>(n);
    // Only monitors and receives down messages; it never makes a request
    // (see join()).
    caf::scoped_actor self{sys};
    for (auto& w : workers)
      self->monitor(w);
    while (!stop) {
      auto reg = connect();
      if (!reg)
        break;
      std::size_t joined = 0;
      for (auto& w : workers)
        joined += join(*reg, w) ? 1 : 0;
      if (fatal)
        break;
      if (joined == 0) {
        std::this_thread::sleep_for(1s); // refused (e.g. another model): retry later
        continue;
      }
      board->connected = true;
      board->joins.fetch_add(1, std::memory_order_relaxed);
      std::printf("joined %s:%u as %s with %zu encoder workers\n", host.c_str(),
                  static_cast<unsigned>(port), name.c_str(), joined);
      std::fflush(stdout);
      self->monitor(*reg);
      bool gateway_up = true;
      while (gateway_up && !stop && !fatal) {
        self->receive(
          [&](caf::down_msg& dm) {
            if (dm.source == reg->address()) {
              logging::warn("cluster", "lost the gateway; reconnecting",
                            {{"node", name}, {"reason", sys.render(dm.reason)}});
              board->connected = false;
              board->gateway_losses.fetch_add(1, std::memory_order_relaxed);
              gateway_up = false;
              return;
            }
            // One of our workers died (the gateway kills a hung one):
            // replace it and join the new one.
            for (auto& w : workers)
              if (w.address() == dm.source) {
                board->workers_alive.fetch_sub(1);
                w = spawn_worker();
                board->workers_alive.fetch_add(1);
                board->restarts.fetch_add(1, std::memory_order_relaxed);
                self->monitor(w);
                join(*reg, w);
              }
          },
          caf::after(200ms) >> [] {});
      }
    }
    board->connected = false;
    for (auto& w : workers)
      caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
    board->workers_alive = 0;
    return fatal ? 1 : 0;
  }
};

} // namespace

int run_worker_node(caf::actor_system& sys, const service_settings& s, const model& m,
                    const std::atomic<bool>& stop, std::shared_ptr<worker_board> board) {
  if (!board)
    board = std::make_shared<worker_board>();
  worker_node node{sys, s, m, stop, std::move(board), default_node_name(s), {}, 0, {}, false};
  return node.run();
}

} // namespace sil
