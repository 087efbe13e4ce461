// sil-server: for now a one-shot demo of the core (model + prefix cache),
// until the actor service and its HTTP API land (issue #3).
//
// It builds the configured model, serves the seed README's example request
// twice (a miss, then a hit on the same prefix with a different suffix), and
// prints one JSON line per request in the /predict response shape.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/lru_ttl_cache.hpp"
#include "core/model.hpp"
#include "core/prefix_key.hpp"

namespace {

struct options {
  std::string preset{sil::default_preset()};
  std::string weights;
  std::uint64_t seed = 42;
  std::size_t prefix_k = 4;
};

void usage(FILE* out) {
  std::fprintf(out, "usage: sil-server [--preset NAME] [--weights FILE] [--seed N] [--prefix-k K]\n"
                    "\n"
                    "One-shot demo of the Stateful Inference Lab core: encodes the example\n"
                    "request, caches its embedding by the first K features, then serves a\n"
                    "second request with the same prefix from the cache.\n"
                    "\n"
                    "  --preset NAME   model preset: base (default) or seed\n"
                    "  --weights FILE  load weights from FILE (docs/weights-format.md)\n"
                    "  --seed N        weight seed when no file is given (default 42)\n"
                    "  --prefix-k K    prefix length of the cache key (default 4)\n"
                    "  -h, --help      show this help\n");
}

/// Parses a non-negative integer; false on junk or overflow.
bool parse_uint(const char* s, std::uint64_t& out) {
  if (*s == '\0' || *s == '-')
    return false;
  char* end = nullptr;
  errno = 0;
  auto v = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  out = v;
  return true;
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "sil-server: %s\n", msg.c_str());
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      auto prefix = std::string{name} + "=";
      if (arg.rfind(prefix, 0) == 0)
        return argv[i] + prefix.size();
      if (arg == name && i + 1 < argc)
        return argv[++i];
      return nullptr;
    };
    std::uint64_t n = 0;
    if (arg == "-h" || arg == "--help") {
      usage(stdout);
      return 0;
    } else if (auto v = value("--preset")) {
      opt.preset = v;
    } else if (auto v = value("--weights")) {
      opt.weights = v;
    } else if (auto v = value("--seed")) {
      if (!parse_uint(v, n))
        return fail("--seed: expected a non-negative integer, got '" + std::string{v} + "'");
      opt.seed = n;
    } else if (auto v = value("--prefix-k")) {
      if (!parse_uint(v, n))
        return fail("--prefix-k: expected a positive integer, got '" + std::string{v} + "'");
      opt.prefix_k = n;
    } else {
      usage(stderr);
      return fail("unknown argument '" + arg + "'");
    }
  }

  auto cfg = sil::preset(opt.preset);
  if (!cfg)
    return fail("--preset: " + cfg.error().message);
  auto m = opt.weights.empty() ? sil::model::from_seed(*cfg, opt.seed)
                               : sil::model::load(opt.weights, *cfg);
  if (!m)
    return fail(m.error().message);
  if (auto st = sil::check_prefix_k(opt.prefix_k, m->input_dim()); !st)
    return fail("--prefix-k: " + st.error().message);
  auto cache = sil::lru_ttl_cache::make(sil::cache_config{});
  if (!cache)
    return fail(cache.error().message);

  std::printf("model %s version %s (D=%zu d_model=%zu), prefix K=%zu\n", m->name().c_str(),
              m->version().c_str(), m->input_dim(), m->embedding_dim(), opt.prefix_k);
  // The seed README's example: [1,1,1,1,0,...,0]; the second request keeps
  // the prefix and changes the suffix.
  std::vector<float> first(m->input_dim(), 0.0f);
  std::fill(first.begin(), first.begin() + 4, 1.0f);
  auto second = first;
  second.back() = 0.5f;
  for (const auto* row : {&first, &second}) {
    auto start = std::chrono::steady_clock::now();
    sil::model_identity id{m->name(), m->version()};
    auto key = sil::make_prefix_key(id, opt.prefix_k, row->data(), row->size());
    auto hit = cache->get(*key);
    sil::embedding e = hit.value;
    if (!hit.hit()) {
      auto fresh = m->encode({row->data(), 1});
      if (!fresh)
        return fail(fresh.error().message);
      e = *fresh;
      cache->put(*key, e);
    }
    float p = m->head(e);
    std::chrono::duration<double, std::milli> ms = std::chrono::steady_clock::now() - start;
    std::printf("{\"prediction\": %.4f, \"cache_hit\": %s, \"latency_ms\": %.3f}\n", p,
                hit.hit() ? "true" : "false", ms.count());
  }
  return 0;
}
