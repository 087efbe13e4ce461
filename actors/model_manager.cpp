#include "actors/model_manager.hpp"

#include <cmath>
#include <map>

#include "core/reuse_guard.hpp"
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

/// A running canary, as the judge follows it.
struct canary_run {
  std::string model;
  std::string version;
  cache_policy candidate;
  std::string incumbent;
  double share = 0.0;
  std::chrono::steady_clock::time_point started;
  /// Counters at the first observation (the evidence starts there), and
  /// the evidence since.
  bool have_base = false;
  arm_counts base_a;
  arm_counts base_b;
  arm_counts a;
  arm_counts b;
  canary_judgement last;
  /// An observation is under way (the next tick skips this canary).
  bool observing = false;
};

struct manager_state {
  model_manager_config cfg;
  /// Running canaries by "model\nversion" (full version).
  std::map<std::string, canary_run> canaries;
  /// The last canary decisions, oldest first.
  std::vector<canary_decision> decisions;
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
  auto now = std::chrono::steady_clock::now();
  for (const auto& [key, run] : st.canaries) {
    canary_view v;
    v.model = run.model;
    v.version = run.version;
    v.share = run.share;
    v.elapsed_seconds = std::chrono::duration<double>(now - run.started).count();
    auto arm = [&](const arm_counts& c, const std::string& policy) {
      arm_view a;
      a.policy = policy;
      a.requests = c.requests;
      a.encodes = c.encodes;
      a.hits = c.hits;
      a.lookups = c.lookups;
      a.labels = c.labels;
      a.wrong = c.wrong;
      a.wrong_lower = binomial_lower_bound(c.wrong, c.labels, st.cfg.rule.confidence);
      a.wrong_upper = binomial_upper_bound(c.wrong, c.labels, st.cfg.rule.confidence);
      return a;
    };
    v.a = arm(run.a, run.incumbent);
    v.b = arm(run.b, run.candidate.name);
    v.candidate = run.candidate;
    v.verdict = run.last.verdict;
    v.reason = run.last.reason;
    v.diff_lower = run.last.diff_lower;
    v.diff_upper = run.last.diff_upper;
    out.canaries.push_back(std::move(v));
  }
  out.decisions = st.decisions;
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
      r.id = v.lane->id;
      r.policy = v.lane->policy.name;
      bool primary = r.is_default && m.name == dir->default_model();
      if (v.canary) {
        lane_refs c = r;
        c.cache = v.canary->cache;
        c.agent = v.canary->agent;
        c.ingress = v.canary->ingress;
        c.id = v.canary->id;
        c.policy = v.canary->policy.name;
        c.canary = true;
        lanes.push_back(std::move(c));
      }
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
    logging::warn("models", "load refused",
                  {{"model", cmd.name}, {"reason", built.error().message}});
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
  auto spawned = st.cfg.spawn(cmd.name, m, st.cfg.default_policy);
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
      rp.deliver(
        make_caf_error(errc::unavailable, "model '" + name + "' version '" + version
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
  // The unused int works around CAF 0.17 dereferencing a null pointer to an
  // empty argument tuple when a function actor has no arguments (UBSan).
  auto build = [spec, dim](caf::event_based_actor* b, int) -> caf::behavior {
    return {[=](build_atom) {
      b->quit();
      return built_model{std::make_shared<const result<model>>(build_model(spec, dim))};
    }};
  };
  auto builder = self->spawn<caf::detached>(build, 0);
  auto rp = self->make_response_promise<model_listing>();
  self->request(builder, caf::infinite, build_atom::value)
    .then([=](built_model& b) mutable { add(self, cmd, spec, *b.out, rp); },
          [=](caf::error& e) mutable { rp.deliver(std::move(e)); });
  return rp;
}

caf::result<model_listing> rewarm(self_ptr self, const model_command& cmd) {
  auto dir = current(self); // keeps `found`'s pointers alive
  auto found = dir->resolve(cmd.name, cmd.version);
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

std::string canary_key(const std::string& model, const std::string& version) {
  return model + '\n' + version;
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Logs a canary decision (the decision log and the service log).
void record_decision(self_ptr self, const canary_run& run, const std::string& action, bool manual,
                     const std::string& reason) {
  auto& st = self->state;
  canary_decision d;
  d.unix_ms = unix_ms_now();
  d.model = run.model;
  d.version = run.version;
  d.policy_a = run.incumbent;
  d.policy_b = run.candidate.name;
  d.action = action;
  d.manual = manual;
  d.reason = reason;
  d.labels_a = run.a.labels;
  d.wrong_a = run.a.wrong;
  d.labels_b = run.b.labels;
  d.wrong_b = run.b.wrong;
  d.diff_lower = run.last.diff_lower;
  d.diff_upper = run.last.diff_upper;
  d.b_lower = run.last.b_lower;
  d.cost_a = run.last.cost_a;
  d.cost_b = run.last.cost_b;
  st.decisions.push_back(d);
  if (st.decisions.size() > 100)
    st.decisions.erase(st.decisions.begin());
  logging::info("canary", "decision",
                {{"model", run.model},
                 {"version", run.version},
                 {"action", action},
                 {"manual", manual},
                 {"incumbent", run.incumbent},
                 {"candidate", run.candidate.name},
                 {"labels_a", run.a.labels},
                 {"wrong_a", run.a.wrong},
                 {"labels_b", run.b.labels},
                 {"wrong_b", run.b.wrong},
                 {"cost_a", run.last.cost_a},
                 {"cost_b", run.last.cost_b},
                 {"reason", reason}});
}

/// Ends a canary: the candidate becomes the version's policy (promote) or
/// leaves (rollback). The lane that goes drains like an unloaded version.
status end_canary(self_ptr self, std::string key, bool promote, bool manual, std::string reason) {
  // key and reason by value: callers pass parts of the run this erases.
  auto& st = self->state;
  auto i = st.canaries.find(key);
  if (i == st.canaries.end())
    return error{errc::not_found, "no canary runs there"};
  auto run = i->second;
  auto done = change(self, [&](model_catalog& d) -> status {
    auto r
      = promote ? d.promote_canary(run.model, run.version) : d.end_canary(run.model, run.version);
    if (!r)
      return r.error();
    return ok();
  });
  if (!done)
    return done;
  st.canaries.erase(i);
  record_decision(self, run, promote ? "promote" : "rollback", manual, reason);
  announce(self);
  return ok();
}

/// Pulls one lane's counters into `out`, then calls `k`.
template <class K>
void pull_arm(self_ptr self, const lane& l, std::shared_ptr<arm_counts> out, K k) {
  auto timeout = std::chrono::seconds{1};
  auto ingress = l.ingress;
  self->request(l.cache, timeout, stats_atom::value)
    .then(
      [=](cache_snapshot& c) mutable {
        out->hits = c.stats.hits;
        out->lookups = c.stats.hits + c.stats.misses;
        self->request(ingress, timeout, stats_atom::value)
          .then(
            [=](audit_snapshot& a) mutable {
              out->requests = a.requests;
              out->encodes = a.encodes;
              out->labels = a.served_labels;
              out->wrong = a.served_wrong;
              k(true);
            },
            [=](caf::error&) mutable { k(false); });
      },
      [=](caf::error&) mutable { k(false); });
}

arm_counts since(const arm_counts& now, const arm_counts& base) {
  auto d = [](std::uint64_t x, std::uint64_t y) { return x >= y ? x - y : 0; };
  arm_counts out;
  out.requests = d(now.requests, base.requests);
  out.encodes = d(now.encodes, base.encodes);
  out.hits = d(now.hits, base.hits);
  out.lookups = d(now.lookups, base.lookups);
  out.labels = d(now.labels, base.labels);
  out.wrong = d(now.wrong, base.wrong);
  return out;
}

/// Observe -> decide -> act for one canary.
void observe_canary(self_ptr self, const std::string& key) {
  auto& st = self->state;
  auto i = st.canaries.find(key);
  if (i == st.canaries.end() || i->second.observing)
    return;
  auto dir = current(self); // keeps `found`'s pointers alive
  auto found = dir->resolve(i->second.model, i->second.version);
  if (!found || !found->version->canary) {
    st.canaries.erase(i); // the version or its canary went another way
    return;
  }
  i->second.observing = true;
  std::shared_ptr<const lane> a = found->version->lane;
  std::shared_ptr<const lane> b = found->version->canary;
  auto ca = std::make_shared<arm_counts>();
  auto cb = std::make_shared<arm_counts>();
  pull_arm(self, *a, ca, [=](bool ok_a) {
    pull_arm(self, *b, cb, [=](bool ok_b) {
      auto& s = self->state;
      auto j = s.canaries.find(key);
      if (j == s.canaries.end())
        return; // ended meanwhile
      auto& run = j->second;
      run.observing = false;
      if (!ok_a || !ok_b)
        return; // a lane did not answer in time: the next tick tries again
      if (!run.have_base) {
        run.have_base = true;
        run.base_a = *ca;
        run.base_b = *cb;
        return;
      }
      run.a = since(*ca, run.base_a);
      run.b = since(*cb, run.base_b);
      auto elapsed
        = std::chrono::duration<double>(std::chrono::steady_clock::now() - run.started).count();
      run.last = judge_canary(s.cfg.rule, run.a, run.b, elapsed);
      if (run.last.verdict == canary_verdict::keep)
        return;
      auto promote = run.last.verdict == canary_verdict::promote;
      (void)end_canary(self, key, promote, false, run.last.reason);
    });
  });
}

caf::result<model_listing> start_canary(self_ptr self, const model_command& cmd) {
  auto& st = self->state;
  auto dir = current(self); // keeps `found`'s pointers alive
  auto found = dir->resolve(cmd.name, cmd.version);
  if (!found)
    return to_error(found.error());
  if (auto ok = validate(cmd.policy, st.cfg.input_dim, st.cfg.max_rows); !ok)
    return to_error(ok.error());
  if (!(cmd.share > 0.0 && cmd.share < 1.0))
    return make_caf_error(errc::bad_request, "share must be in (0, 1)");
  auto name = found->model->name;
  auto version = found->version->version;
  if (found->version->canary)
    return make_caf_error(errc::conflict, "model '" + name + "' version '" + version
                                            + "' already runs a canary; promote or abort it "
                                              "first");
  const auto& incumbent = found->version->lane->policy;
  if (cmd.policy.name == incumbent.name)
    return make_caf_error(errc::bad_request, "the candidate policy needs a name other than the "
                                             "incumbent's ('"
                                               + incumbent.name + "')");
  auto m = found->version->lane->m;
  auto split = split_values(incumbent, cmd.policy, st.cfg.input_dim);
  auto spawned = st.cfg.spawn(name, m, cmd.policy);
  if (!spawned)
    return std::move(spawned.error());
  std::shared_ptr<const lane> canary = std::move(*spawned);
  auto incumbent_name = incumbent.name;
  auto started = change(self, [&](model_catalog& d) {
    return d.start_canary(name, version, canary, cmd.share, split);
  });
  if (!started)
    return to_error(started.error());
  canary_run run;
  run.model = name;
  run.version = version;
  run.candidate = cmd.policy;
  run.incumbent = incumbent_name;
  run.share = cmd.share;
  run.started = std::chrono::steady_clock::now();
  auto key = canary_key(name, version);
  st.canaries[key] = run;
  record_decision(self, run, "start", true,
                  "operator: policy '" + cmd.policy.name + "' takes "
                    + std::to_string(static_cast<int>(cmd.share * 100.0 + 0.5))
                    + "% of the prefixes");
  announce(self);
  // The first observation sets the baseline at once.
  observe_canary(self, key);
  auto out = listing(self);
  out.version = version;
  return out;
}

caf::result<model_listing> finish_canary(self_ptr self, const model_command& cmd, bool promote) {
  auto dir = current(self); // keeps `found`'s pointers alive
  auto found = dir->resolve(cmd.name, cmd.version);
  if (!found)
    return to_error(found.error());
  auto key = canary_key(found->model->name, found->version->version);
  if (self->state.canaries.count(key) == 0)
    return make_caf_error(errc::not_found, "model '" + found->model->name + "' version '"
                                             + found->version->version + "' runs no canary");
  const auto& last = self->state.canaries[key].last;
  auto reason = std::string{promote ? "operator: promote" : "operator: abort"}
                + (last.reason.empty() ? std::string{} : "; last observation: " + last.reason);
  if (auto ok = end_canary(self, key, promote, true, reason); !ok)
    return to_error(ok.error());
  auto out = listing(self);
  out.version = found->version->version;
  return out;
}

model_manager_actor::behavior_type manager_behavior(self_ptr self, model_manager_config cfg,
                                                    std::map<std::string, std::string> arch) {
  self->state.cfg = std::move(cfg);
  self->state.architecture = std::move(arch);
  announce(self);
  self->delayed_send(self, self->state.cfg.canary_interval, observe_atom::value);
  return {
    [=](models_atom) -> model_listing { return listing(self); },
    [=](observe_atom) {
      auto& st = self->state;
      std::vector<std::string> keys;
      for (const auto& [key, run] : st.canaries)
        keys.push_back(key);
      for (const auto& key : keys)
        observe_canary(self, key);
      self->delayed_send(self, st.cfg.canary_interval, observe_atom::value);
    },
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
        case model_op::canary_start:
          return start_canary(self, cmd);
        case model_op::canary_promote:
          return finish_canary(self, cmd, true);
        case model_op::canary_abort:
          return finish_canary(self, cmd, false);
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
