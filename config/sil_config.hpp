// sil-server's configuration: one actor_system_config subclass.
//
// Owns: the declaration of every option, once, with opt_group (that one
// declaration gives the CLI flag, the config-file key and the --help text),
// and the environment overrides of the original Python service.
//
// Precedence, lowest first: built-in defaults < config file (CAF's INI
// syntax, --config-file=PATH, default ./caf-application.ini) < environment
// (CACHE_MAX_SIZE, CACHE_TTL_SECONDS, CACHE_ENABLED, PREFIX_K) < CLI flags.
#pragma once

#include <caf/actor_system_config.hpp>

#include <string>
#include <vector>

#include "config/settings.hpp"
#include "core/error.hpp"

namespace sil {

/// The actor system configuration of every sil binary.
class sil_config : public caf::actor_system_config {
public:
  sil_config();

  /// Parses the command line and the config file (CAF's parse), then the
  /// environment. Also accepts `--cache.enabled=false` (and =true/1/0/yes/no),
  /// which CAF 0.17's parser rejects for boolean flags. Fails with
  /// invalid_config; `cli_helptext_printed` tells whether --help ran.
  status parse_all(int argc, char** argv, const char* (*getenv_fn)(const char*) = nullptr);

  /// Applies the environment overrides for keys not given on the command
  /// line. `getenv` is injectable for tests. Fails with invalid_config
  /// naming the variable if a value does not parse.
  status apply_environment(int argc, char** argv, const char* (*getenv_fn)(const char*) = nullptr);

  /// The "category.name" of every option sil declares (not CAF's own).
  std::vector<std::string> sil_option_keys() const;

  /// The values after parse() and apply_environment().
  service_settings settings;
};

} // namespace sil
