#include "actors/model_manager.hpp"

#include <cmath>
#include <map>

#include "logging/log.hpp"

namespace sil {

/// A model built off the serving threads (see load()).
struct built_model {
  std::shared_ptr<const result<model>> out;
};

} // namespace sil

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sil::built_model)

namespace sil {

namespace {

using build_atom = caf::atom_constant<caf::atom("build")>;

struct retired_version {
  model_version_info info;
  std::weak_ptr<const lane> serving;
};

struct manager_state {
  model_manager_config cfg;
  /// Unloaded versions that requests in flight still hold.
  std::vector<retired_version> retired;
  /// Warm-up encodes done, by version.
  std::map<std::string, std::uint64_t> warmed;
  /// The architecture of each version, by version.
  std::map<std::string, std::string> architecture;
  static inline const char* name = "model_manager";
};

using self_ptr = model_manager_actor::stateful_pointer<manager_state>;

std::shared_ptr<const model_catalog> current(self_ptr self) {
  return self->state.cfg.models->load();
}

model_version_info info_of(const manager_state& st, const model_catalog::model_entry& m,
                           const model_catalog::version_entry& v) {
  model_version_info out;
  out.model = m.name;
  out.version = v.version;
  out.declared = v.declared;
  out.state = v.state;
  out.is_default = v.version == m.default_version;
  out.bytes = v.bytes;
  if (v.lane) {
    out.input_dim = static_cast<std::uint32_t>(v.lane->m.input_dim());
    out.embedding_dim = static_cast<std::uint32_t>(v.lane->m.embedding_dim());
  }
  if (auto i = st.architecture.find(v.version); i != st.architecture.end())
    out.architecture = i->second;
  if (auto i = st.warmed.find(v.version); i != st.warmed.end())
    out.warm_encodes = i->second;
  return out;
}

model_listing listing(self_ptr self) {
  auto& st = self->state;
  auto dir = current(self);
  model_listing out;
  out.default_model = dir->default_model();
  out.bytes = dir->bytes();
  out.max_bytes = dir->max_bytes();
  for (const auto& m : dir->models())
    for (const auto& v : m.versions)
      out.versions.push_back(info_of(st, m, v));
  // Versions still finishing their requests.
  st.retired.erase(std::remove_if(st.retired.begin(), st.retired.end(),
                                  [](const retired_version& r) { return r.serving.expired(); }),
                   st.retired.end());
  for (const auto& r : st.retired)
    out.versions.push_back(r.info);
  return out;
}

/// Tells the pool which versions remote nodes may serve, and the metrics
/// aggregator which lanes to pull (the default model's default first).
void announce(self_ptr self) {
  auto dir = current(self);
  std::vector<std::string> versions;
  std::vector<lane_refs> lanes;
  for (const auto& m : dir->models())
    for (const auto& v : m.versions) {
      versions.push_back(v.version);
      lane_refs r;
      r.model = m.name;
      r.version = v.version;
      r.is_default = v.version == m.default_version;
      r.cache = v.lane->cache;
      r.agent = v.lane->agent;
      r.ingress = v.lane->ingress;
      bool primary = r.is_default && m.name == dir->default_model();
      if (primary)
        lanes.insert(lanes.begin(), std::move(r));
      else
        lanes.push_back(std::move(r));
    }
  self->send(self->state.cfg.pool, models_atom::value, std::move(versions));
  self->send(self->state.cfg.metrics, models_atom::value, std::move(lanes));
}

/// Applies `edit` to a copy of the catalog and publishes the copy.
template <class Edit>
auto change(self_ptr self, Edit edit) {
  auto next = std::make_shared<model_catalog>(*current(self));
  auto out = edit(*next);
  if (out)
    self->state.cfg.models->store(std::move(next));
  return out;
}

/// A deterministic input for warm-up encodes.
std::vector<float> warm_input(std::size_t values, std::uint64_t salt) {
  std::vector<float> xs(values);
  for (std::size_t i = 0; i < values; ++i)
    xs[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i + 1) + 0.11 * salt));
  return xs;
}

/// Runs `n` warm-up encodes of `m` through the encoder pool, then calls
/// `done` with the first error (or none).
void warm(self_ptr self, const model& m, std::uint32_t n,
          std::function<void(std::optional<caf::error>)> done) {
  if (n == 0) {
    done(std::nullopt);
    return;
  }
  struct progress {
    std::uint32_t left;
    std::optional<caf::error> failed;
  };
  auto p = std::make_shared<progress>(progress{n, std::nullopt});
  auto rows = self->state.cfg.warm_rows;
  auto version = m.version();
  for (std::uint32_t i = 0; i < n; ++i) {
    encode_item item;
    item.features = warm_input(std::size_t{rows} * m.input_dim(), i);
    item.rows = rows;
    item.with = m;
    auto finish = [=]() {
      if (--p->left == 0)
        done(p->failed);
    };
    self->request(self->state.cfg.pool, std::chrono::seconds{30}, encode_atom::value, item)
      .then(
        [=](embedding&) {
          ++self->state.warmed[version];
          finish();
        },
        [=](caf::error& e) {
          if (!p->failed)
            p->failed = e;
          finish();
        });
  }
}

caf::error to_error(const error& e) {
  return to_caf_error(e);
}

/// Adds a built version (or answers why not), then warms it.
void add(self_ptr self, const model_command& cmd, const model_spec& spec,
         const result<model>& built, caf::typed_response_promise<model_listing> rp) {
  auto& st = self->state;
  if (!built) {
    // What the operator named cannot be used: the file is missing,
    // truncated or of another shape, or the preset is unknown. The
    // versions being served are untouched.
    auto code = built.error().code == errc::io_error || built.error().code == errc::bad_format
                    || built.error().code == errc::shape_mismatch
                  ? errc::unprocessable
                  : errc::bad_request;
    logging::warn("models", "load refused", {{"model", cmd.name}, {"reason", built.error().message}});
    rp.deliver(make_caf_error(code, built.error().message));
    return;
  }
  auto m = *built;
  auto bytes = model_bytes(m);
  if (auto ok = current(self)->can_add(cmd.name, m.version(), bytes); !ok) {
    logging::warn("models", "load refused", {{"model", cmd.name}, {"reason", ok.error().message}});
    rp.deliver(to_error(ok.error()));
    return;
  }
  auto spawned = st.cfg.spawn(cmd.name, m);
  if (!spawned) {
    rp.deliver(std::move(spawned.error()));
    return;
  }
  auto serving = std::move(*spawned);
  auto version = m.version();
  auto name = cmd.name;
  serving->on_drained = [name, version] {
    logging::info("models", "version unloaded", {{"model", name}, {"version", version}});
  };
  st.architecture[version] = m.config().name;
  st.warmed[version] = 0;
  auto warm_n = cmd.warm >= 0 ? static_cast<std::uint32_t>(cmd.warm) : st.cfg.warm_encodes;
  model_catalog::version_entry entry;
  entry.version = version;
  entry.declared = m.declared_version();
  entry.bytes = bytes;
  entry.state = version_state::warming;
  entry.lane = std::move(serving);
  auto added = change(self, [&](model_catalog& d) { return d.add(name, std::move(entry)); });
  if (!added) {
    rp.deliver(to_error(added.error()));
    return;
  }
  announce(self);
  logging::info("models", "version loaded",
                {{"model", name},
                 {"version", version},
                 {"bytes", bytes},
                 {"source", to_string(spec)},
                 {"warm_encodes", warm_n}});
  bool make_default = cmd.make_default;
  warm(self, m, warm_n, [=](std::optional<caf::error> failed) mutable {
    if (failed) {
      logging::warn("models", "warm-up failed",
                    {{"model", name}, {"version", version}, {"reason", caf::to_string(*failed)}});
      auto e = from_caf_error(*failed);
      rp.deliver(make_caf_error(errc::unavailable,
                                "model '" + name + "' version '" + version
                                  + "' is loaded but its warm-up failed (" + e.message
                                  + "); it stays warming: warm it again or unload it"));
      return;
    }
    std::string previous;
    auto ready = change(self, [&](model_catalog& d) -> status {
      if (auto ok = d.mark_ready(name, version); !ok)
        return ok; // unloaded while it warmed
      if (make_default) {
        auto before = d.set_default(name, version);
        if (!before)
          return before.error();
        previous = *before;
      }
      return ok();
    });
    if (!ready) {
      rp.deliver(to_error(ready.error()));
      return;
    }
    announce(self);
    if (make_default)
      logging::info("models", "default changed",
                    {{"model", name}, {"from", previous}, {"to", version}});
    auto out = listing(self);
    out.version = version;
    out.previous_default = previous;
    rp.deliver(std::move(out));
  });
}

/// Builds what a load asks for, then adds it (add()). Reading a weights
/// file or drawing a large model's weights takes a while: a one-shot actor
/// on its own thread does it, so the scheduler that runs the serving actors
/// (this manager among them) never waits for it.
caf::result<model_listing> load(self_ptr self, const model_command& cmd) {
  if (auto ok = validate_model_name(cmd.name); !ok)
    return to_error(ok.error());
  model_spec spec{cmd.name, cmd.preset, cmd.weights, cmd.seed};
  auto dim = self->state.cfg.input_dim;
  auto builder = self->spawn<caf::detached>([spec, dim](caf::event_based_actor* b) -> caf::behavior {
    return {[=](build_atom) {
      b->quit();
      return built_model{std::make_shared<const result<model>>(build_model(spec, dim))};
    }};
  });
  auto rp = self->make_response_promise<model_listing>();
  self->request(builder, caf::infinite, build_atom::value)
    .then(
      [=](built_model& b) mutable { add(self, cmd, spec, *b.out, rp); },
      [=](caf::error& e) mutable { rp.deliver(std::move(e)); });
  return rp;
}

caf::result<model_listing> rewarm(self_ptr self, const model_command& cmd) {
  auto found = current(self)->resolve(cmd.name, cmd.version);
  if (!found)
    return to_error(found.error());
  auto m = found->version->lane->m;
  auto name = found->model->name;
  auto version = found->version->version;
  auto n = cmd.warm >= 0 ? static_cast<std::uint32_t>(cmd.warm) : self->state.cfg.warm_encodes;
  auto rp = self->make_response_promise<model_listing>();
  warm(self, m, n, [=](std::optional<caf::error> failed) mutable {
    if (failed) {
      rp.deliver(make_caf_error(errc::unavailable, "warm-up of model '" + name + "' version '"
                                                     + version
                                                     + "' failed: " + caf::to_string(*failed)));
      return;
    }
    change(self, [&](model_catalog& d) { return d.mark_ready(name, version); });
    auto out = listing(self);
    out.version = version;
    rp.deliver(std::move(out));
  });
  return rp;
}

caf::result<model_listing> promote(self_ptr self, const model_command& cmd) {
  std::string version;
  auto before = change(self, [&](model_catalog& d) -> result<std::string> {
    auto r = d.resolve(cmd.name, cmd.version);
    if (!r)
      return r.error();
    version = r->version->version;
    return d.set_default(cmd.name, version);
  });
  if (!before)
    return to_error(before.error());
  announce(self);
  logging::info("models", "default changed",
                {{"model", cmd.name}, {"from", *before}, {"to", version}});
  auto out = listing(self);
  out.version = version;
  out.previous_default = *before;
  return out;
}

caf::result<model_listing> unload(self_ptr self, const model_command& cmd) {
  auto& st = self->state;
  model_version_info info;
  std::weak_ptr<const lane> serving;
  auto removed = change(self, [&](model_catalog& d) -> status {
    auto r = d.resolve(cmd.name, cmd.version);
    if (!r)
      return r.error();
    info = info_of(st, *r->model, *r->version);
    auto gone = d.remove(cmd.name, r->version->version);
    if (!gone)
      return gone.error();
    serving = *gone;
    return ok();
  });
  if (!removed)
    return to_error(removed.error());
  info.state = version_state::draining;
  info.is_default = false;
  st.retired.push_back({info, serving});
  st.warmed.erase(info.version);
  announce(self);
  logging::info("models", "version draining", {{"model", info.model}, {"version", info.version}});
  auto out = listing(self);
  out.version = info.version;
  return out;
}

model_manager_actor::behavior_type manager_behavior(self_ptr self, model_manager_config cfg,
                                                    std::map<std::string, std::string> arch) {
  self->state.cfg = std::move(cfg);
  self->state.architecture = std::move(arch);
  announce(self);
  return {
    [=](models_atom) -> model_listing { return listing(self); },
    [=](models_atom, const model_command& cmd) -> caf::result<model_listing> {
      switch (cmd.op) {
        case model_op::load:
          return load(self, cmd);
        case model_op::warm:
          return rewarm(self, cmd);
        case model_op::set_default:
          return promote(self, cmd);
        case model_op::unload:
          return unload(self, cmd);
      }
      return make_caf_error(errc::bad_request, "unknown model command");
    },
  };
}

} // namespace

caf::expected<model_manager_actor> spawn_model_manager(caf::actor_system& sys,
                                                       model_manager_config cfg,
                                                       std::vector<initial_version> initial) {
  auto dir = std::make_shared<model_catalog>(cfg.max_bytes);
  std::map<std::string, std::string> architecture;
  for (auto& v : initial) {
    auto& serving = *v.serving;
    auto name = serving.model_name;
    auto version = serving.m.version();
    serving.on_drained = [name, version] {
      logging::info("models", "version unloaded", {{"model", name}, {"version", version}});
    };
    model_catalog::version_entry e;
    e.version = version;
    e.declared = serving.m.declared_version();
    e.bytes = model_bytes(serving.m);
    e.state = version_state::ready;
    e.lane = std::move(v.serving);
    architecture[version] = v.architecture;
    if (auto ok = dir->add(name, std::move(e)); !ok)
      return to_caf_error(ok.error());
  }
  cfg.models->store(std::move(dir));
  return sys.spawn(manager_behavior, std::move(cfg), std::move(architecture));
}

} // namespace sil
