// sil-server's configuration: one actor_system_config subclass.
//
// Owns: the declaration of every option, once, with opt_group (that one
// declaration gives the CLI flag, the config-file key, the SIL_<KEY>
// environment variable and the --help line); the strict reading of config
// files; the environment overrides; --help, --long-help and --dump-config.
//
// Precedence, one rule for every option, highest first:
//   1. command-line flags (--cache.max-size=512);
//   2. SIL_<KEY> environment variables (SIL_CACHE_MAX_SIZE=512): the key in
//      upper case with '.' and '-' as '_';
//   3. the original service's variables CACHE_MAX_SIZE, CACHE_TTL_SECONDS,
//      CACHE_ENABLED and PREFIX_K (for their four keys only);
//   4. the config file (--config-file=PATH, CAF's INI syntax; without the
//      flag ./caf-application.ini if it exists);
//   5. the built-in defaults (config/settings.hpp).
//
// Nothing is dropped silently. A config file with an unknown section, an
// unknown or repeated key, or a value of the wrong type, and a flag that is
// unknown or has a bad value, fail parse_all() with one line that names the
// file (or flag, or variable), the key and the problem. An integer is
// accepted where a real number is expected (7 means 7.0). CAF's own
// sections ([scheduler], [middleman], [logger], [stream], [work-stealing],
// [openssl]; also written [caf.scheduler], ...) stay allowed and are checked
// against CAF's declared options the same way.
#pragma once

#include <caf/actor_system_config.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "core/error.hpp"

namespace sil {

/// The actor system configuration of every sil binary.
class sil_config : public caf::actor_system_config {
public:
  sil_config();

  /// Reads everything in the order above: the config file, the command line
  /// and SIL_* variables (through CAF's parser, after checking each argument
  /// here), then the original variables. Also accepts `--cache.enabled=false`
  /// (and =true/1/0/yes/no/on/off) for every boolean option, which CAF 0.17's
  /// parser rejects. `--help` / `-h` / `--long-help` print help_text() to
  /// stdout and set `cli_helptext_printed`; `--dump-config` sets
  /// `dump_requested` (the caller prints dump_config() once it validated).
  /// Fails with invalid_config and a one-line message.
  status parse_all(int argc, char** argv, const char* (*getenv_fn)(const char*) = nullptr);

  /// Applies the original service's variables to keys given neither on the
  /// command line nor by their SIL_<KEY> variable. `getenv` is injectable
  /// for tests. Fails with invalid_config naming the variable if a value
  /// does not parse.
  status apply_environment(int argc, char** argv, const char* (*getenv_fn)(const char*) = nullptr);

  /// The "category.name" of every option sil declares (not CAF's own).
  std::vector<std::string> sil_option_keys() const;

  /// --help: usage and every option of sil with its type and default.
  /// --long-help (`long_help`): CAF's framework options too.
  std::string help_text(bool long_help) const;

  /// The effective configuration (every sil option, defaults included, and
  /// CAF's settings that are set) as a config file that --config-file reads
  /// back to the same configuration.
  std::string dump_config() const;

  /// One effective setting of sil's, typed, for the startup log.
  struct entry {
    enum class kind : std::uint8_t { integer, real, boolean, text };
    std::string section; // "global", "cache", ...
    std::string name;    // "max-size"
    kind k = kind::text;
    std::int64_t i = 0;
    double d = 0.0;
    bool b = false;
    std::string s;
  };

  /// Every sil option's effective value, in declaration order, grouped by
  /// section. Secrets (admin.token) read "(set)" or "" when `redact`.
  std::vector<entry> effective(bool redact) const;

  /// The values after parse_all().
  service_settings settings;

  /// --dump-config was given.
  bool dump_requested = false;

private:
  status load_config_file(const std::string& path, bool named_on_command_line);
  status check_arguments(const std::vector<std::string>& args,
                         const std::vector<std::string>& origins) const;
  bool is_sil_category(const std::string& category) const;
  bool is_caf_category(const std::string& category) const;
};

} // namespace sil
