// The handles of a running service: what the front end needs to reach the
// actors, without the wiring that made them (actors/service.hpp).
//
// Owns: the lane (what serves one model version) and the read paths' flush
// hub; otherwise a plain bundle of handles and shared pointers.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "actors/service_board.hpp"
#include "core/canary.hpp"
#include "core/model_directory.hpp"
#include "core/published.hpp"
#include "messages/messages.hpp"

namespace sil {

class hit_path;

/// What serves one model version: its own ingress (head, audits), cache
/// owner (entries, reuse guard), agent and read path. The encoder pool and
/// the metrics aggregator are shared by every lane. A lane lives while the
/// catalog or any request in flight holds it; the last holder's release
/// flushes its read path and asks its actors to exit (that is how an
/// unloaded version drains).
struct lane {
  /// The model's served name (the catalog's key), and the version.
  std::string model_name;
  model m;
  /// The cache settings this lane runs.
  cache_policy policy;
  /// Unique in the process: request outcomes name the lane that answered.
  std::uint32_t id = 0;
  ingress_actor ingress;
  cache_actor cache;
  agent_actor agent;
  /// Answers hits on the caller's thread (null with cache.read-path=false).
  std::shared_ptr<hit_path> hits;
  /// Called once the lane is gone (the model manager logs the unload).
  std::function<void()> on_drained;

  lane() = default;
  lane(const lane&) = delete;
  lane& operator=(const lane&) = delete;
  ~lane();
};

/// Every served model version, by name; a request resolves against one
/// snapshot, and the model manager publishes a new one per change.
using model_catalog = model_directory<lane>;
using published_catalog = published<model_catalog>;

/// Lets the transport flush the read paths of every lane, including lanes
/// loaded after it started.
class read_paths {
public:
  explicit read_paths(std::shared_ptr<const published_catalog> models)
    : models_(std::move(models)) {
    // nop
  }

  /// The transport's "flush soon" (arms its timer); empty: none.
  void on_pending(std::function<void()> fn) {
    std::lock_guard<std::mutex> guard{mu_};
    pending_ = std::move(fn);
  }

  /// A read path holds unsent events.
  void pending() const {
    std::function<void()> fn;
    {
      std::lock_guard<std::mutex> guard{mu_};
      fn = pending_;
    }
    if (fn)
      fn();
  }

  /// Sends what every lane's read path holds.
  void flush() const;

private:
  std::shared_ptr<const published_catalog> models_;
  mutable std::mutex mu_;
  std::function<void()> pending_;
};

/// Handles of a running service. `ingress`, `cache`, `agent` and `hits`
/// are the lane of the version served first (the default model's default
/// at start); requests resolve their lane through `models`.
struct service_handles {
  ingress_actor ingress;
  cache_actor cache;
  encoder_pool_actor pool;
  agent_actor agent;
  metrics_actor metrics;
  std::shared_ptr<service_board> board;
  /// Answers hits on the caller's thread (null with cache.read-path=false).
  std::shared_ptr<hit_path> hits;
  /// The served models and versions.
  std::shared_ptr<published_catalog> models;
  /// Loads, warms, promotes and unloads versions.
  model_manager_actor manager;
  /// Every lane's read path, for the transport's flush timer.
  std::shared_ptr<read_paths> reads;
};

} // namespace sil
