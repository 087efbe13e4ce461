#include "experiments/locate.hpp"

namespace sil::lab {

namespace fs = std::filesystem;

fs::path executable_dir(const char* argv0) {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && !self.empty())
    return self.parent_path();
  if (argv0 != nullptr && *argv0 != '\0') {
    auto p = fs::absolute(fs::path{argv0}, ec);
    if (!ec)
      return p.parent_path();
  }
  return fs::current_path(ec);
}

std::vector<fs::path> plot_script_candidates(const char* env_value, const fs::path& exe_dir) {
  if (env_value != nullptr && *env_value != '\0')
    return {fs::path{env_value}};
  return {exe_dir / ".." / "share" / "sil" / "plot.py", exe_dir / ".." / "experiments" / "plot.py"};
}

result<fs::path> find_plot_script(const char* env_value, const fs::path& exe_dir) {
  std::string tried;
  for (const auto& p : plot_script_candidates(env_value, exe_dir)) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec))
      return p.lexically_normal();
    tried += (tried.empty() ? "" : ", ") + p.lexically_normal().string();
  }
  bool from_env = env_value != nullptr && *env_value != '\0';
  return error{errc::io_error, std::string{"plot.py not found"}
                                 + (from_env ? " at SIL_PLOT_SCRIPT=" : " (searched ") + tried
                                 + (from_env ? "" : "; set SIL_PLOT_SCRIPT)")};
}

} // namespace sil::lab
