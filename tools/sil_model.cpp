// sil-model: inspect, export and run models from the command line.
//
//   sil-model export --out FILE [--preset NAME] [--seed N]
//   sil-model info FILE
//   sil-model predict [--preset NAME] [--seed N] [--weights FILE]  < input
//   sil-model --version | --help
//
// Options take their value as the next argument or after '=' (--seed=7).
// An unknown option or a bad value is one line on stderr and exit code 2.
//
// `predict` reads "T" and then T x D floats (whitespace separated) per input
// from stdin, until end of input, and prints for each input one line:
//   prediction e0 e1 ... e_{d-1}
// with 9 significant digits. tools/reference_model.py uses it to compare the
// C++ model with an independent NumPy implementation.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "core/build_info.hpp"
#include "core/model.hpp"

namespace {

int fail(const std::string& msg) {
  std::fprintf(stderr, "sil-model: %s\n", msg.c_str());
  return 2;
}

void usage(FILE* out) {
  std::fprintf(
    out,
    "Usage:\n"
    "  sil-model export --out FILE [--preset NAME] [--seed N]\n"
    "  sil-model info FILE\n"
    "  sil-model predict [--preset NAME] [--seed N] [--weights FILE] < input\n"
    "  sil-model --version | --help\n"
    "\n"
    "Commands:\n"
    "  export   write the weights of a preset and seed to FILE (docs/weights-format.md)\n"
    "  info     print a weights file's model name, version, shape and parameter count\n"
    "  predict  read \"T\" then T x D numbers per input from stdin; print the\n"
    "           prediction and the embedding, one line per input\n"
    "\n"
    "Options (a value follows as the next argument or after '='):\n"
    "  --preset NAME   model architecture: base or seed [default: %s]\n"
    "  --seed N        seed of the deterministic weights, >= 0 [default: 42]\n"
    "  --weights FILE  predict with the weights in FILE instead of the seed\n"
    "  --out FILE      export: where to write\n"
    "  -h, --help      print this help and exit\n"
    "  --version       print the version and commit and exit\n",
    std::string{sil::default_preset()}.c_str());
}

/// One line for a bad command line, pointing at --help.
int usage_error(const std::string& msg) {
  return fail(msg + "; see --help");
}

struct args {
  std::string preset{sil::default_preset()};
  std::string weights;
  std::string out;
  std::uint64_t seed = 42;
  std::vector<std::string> positional;
};

bool parse(int argc, char** argv, args& a, std::string& err) {
  for (int i = 2; i < argc; ++i) {
    std::string s = argv[i];
    std::optional<std::string> inline_value;
    if (auto eq = s.find('='); s.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = s.substr(eq + 1);
      s.erase(eq);
    }
    auto take = [&](std::string& dst) {
      if (inline_value) {
        dst = *inline_value;
        return true;
      }
      if (i + 1 >= argc) {
        err = s + " needs a value";
        return false;
      }
      dst = argv[++i];
      return true;
    };
    std::string v;
    if (s == "--preset") {
      if (!take(a.preset))
        return false;
    } else if (s == "--weights") {
      if (!take(a.weights))
        return false;
    } else if (s == "--out") {
      if (!take(a.out))
        return false;
    } else if (s == "--seed") {
      if (!take(v))
        return false;
      char* end = nullptr;
      errno = 0;
      a.seed = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || v[0] == '-' || errno != 0 || *end != '\0') {
        err = "--seed: expected a non-negative integer, got \"" + v + "\"";
        return false;
      }
    } else if (!s.empty() && s[0] == '-') {
      err = "unknown option " + s;
      return false;
    } else {
      a.positional.push_back(s);
    }
  }
  return true;
}

sil::result<sil::model> make_model(const args& a) {
  auto cfg = sil::preset(a.preset);
  if (!cfg)
    return cfg.error();
  if (!a.weights.empty())
    return sil::model::load(a.weights, *cfg);
  return sil::model::from_seed(*cfg, a.seed);
}

void print_info(const sil::model& m) {
  const auto& c = m.config();
  std::printf("name %s\nversion %s\ndeclared_version %s\nfingerprint %016llx\n"
              "input_dim %zu\nd_model %zu\nheads %zu\nlayers %zu\nff_dim %zu\nparameters %zu\n",
              m.name().c_str(), m.version().c_str(), m.declared_version().c_str(),
              static_cast<unsigned long long>(m.fingerprint()), c.input_dim, c.d_model, c.heads,
              c.layers, c.ff_dim, sil::parameter_count(c));
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--version") {
      std::printf("sil-model %s (commit %s)\n", sil::build_version(), sil::build_commit());
      return 0;
    }
    if (s == "-h" || s == "--help") {
      usage(stdout);
      return 0;
    }
  }
  std::string cmd = argv[1];
  if (cmd != "info" && cmd != "export" && cmd != "predict")
    return usage_error(cmd.rfind('-', 0) == 0 ? "unknown option " + cmd.substr(0, cmd.find('='))
                                              : "unknown command \"" + cmd + "\"");
  args a;
  std::string err;
  if (!parse(argc, argv, a, err))
    return usage_error(err);

  if (cmd != "info" && !a.positional.empty())
    return usage_error(cmd + " takes no file argument, got \"" + a.positional[0] + "\"");
  if (cmd == "info") {
    if (a.positional.size() != 1)
      return usage_error("info takes exactly one weights file");
    auto m = sil::model::load(a.positional[0]);
    if (!m)
      return fail(m.error().message);
    print_info(*m);
    return 0;
  }
  if (cmd == "export") {
    if (a.out.empty())
      return usage_error("export needs --out FILE");
    auto m = make_model(a);
    if (!m)
      return fail(m.error().message);
    if (auto st = m->save(a.out); !st)
      return fail(st.error().message);
    print_info(*m);
    return 0;
  }
  if (cmd == "predict") {
    auto m = make_model(a);
    if (!m)
      return fail(m.error().message);
    std::size_t rows = 0;
    int n = 0;
    while (std::cin >> rows) {
      ++n;
      if (rows == 0)
        return fail("input " + std::to_string(n) + ": T must be at least 1");
      std::vector<float> x(rows * m->input_dim());
      for (auto& v : x)
        if (!(std::cin >> v))
          return fail("input " + std::to_string(n) + ": expected " + std::to_string(x.size())
                      + " floats");
      auto e = m->encode({x.data(), rows});
      if (!e)
        return fail(e.error().message);
      std::printf("%.9g", static_cast<double>(m->head(*e)));
      for (float v : e->values())
        std::printf(" %.9g", static_cast<double>(v));
      std::printf("\n");
    }
    return 0;
  }
  return usage_error("unknown command \"" + cmd + "\"");
}
