// Where sil-lab finds its companions at run time, so that no path of the
// source tree is compiled into it and it works installed as well as in the
// build tree.
//
// Owns: the directory of the running executable and the search order for
// the plot script:
//   1. the environment variable SIL_PLOT_SCRIPT, when set (no fallback:
//      an explicit choice that is wrong should say so, not be ignored);
//   2. EXE_DIR/../share/sil/plot.py (the installed layout: bin/sil-lab);
//   3. EXE_DIR/../experiments/plot.py (the build tree: build/sil-lab
//      inside the source tree).
// sil-server is looked for next to sil-lab (EXE_DIR/sil-server).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace sil::lab {

/// The directory of the running executable (from /proc/self/exe), else
/// that of `argv0` (made absolute), else the current directory.
std::filesystem::path executable_dir(const char* argv0);

/// The places searched for plot.py, in order. `env_value` is
/// SIL_PLOT_SCRIPT's value (nullptr or "" when unset).
std::vector<std::filesystem::path> plot_script_candidates(const char* env_value,
                                                          const std::filesystem::path& exe_dir);

/// The first candidate that is a regular file, or an error listing every
/// place searched.
result<std::filesystem::path> find_plot_script(const char* env_value,
                                               const std::filesystem::path& exe_dir);

} // namespace sil::lab
