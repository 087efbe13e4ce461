#include "experiments/progress.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

namespace sil::lab {

std::optional<double> eta_seconds(double elapsed, std::size_t done, std::size_t planned) {
  if (done == 0 || elapsed < 0)
    return std::nullopt;
  if (done >= planned)
    return 0.0;
  return elapsed / static_cast<double>(done) * static_cast<double>(planned - done);
}

std::string format_eta(std::optional<double> seconds) {
  if (!seconds || !std::isfinite(*seconds))
    return "?";
  auto s = static_cast<long long>(std::llround(std::max(0.0, *seconds)));
  char buf[48];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%lld s", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  return buf;
}

progress_meter::progress_meter(std::string label, std::string unit, bool tty, sink out,
                               double start, double lab_start, double plain_interval)
  : label_(std::move(label))
  , unit_(std::move(unit))
  , tty_(tty)
  , out_(std::move(out))
  , start_(start)
  , lab_start_(lab_start)
  , plain_interval_(plain_interval) {
  // nop
}

std::string progress_meter::line(double now, std::size_t done, std::size_t planned,
                                 bool finished) const {
  char buf[128];
  std::snprintf(buf, sizeof buf, " %7.1f s  %zu / %zu ", now - lab_start_, done, planned);
  std::string text = label_;
  if (text.size() < 36)
    text.append(36 - text.size(), ' ');
  text += buf;
  text += unit_;
  if (finished) {
    char took[48];
    std::snprintf(took, sizeof took, "  took %.1f s", now - start_);
    text += took;
  } else {
    text += "  ETA " + format_eta(eta_seconds(now - start_, done, planned));
  }
  return text;
}

void progress_meter::update(double now, std::size_t done, std::size_t planned) {
  if (tty_) {
    auto text = line(now, done, planned, false);
    // Blank what is left of a longer previous line.
    auto width = text.size();
    if (width < last_width_)
      text.append(last_width_ - width, ' ');
    last_width_ = width;
    out_("\r" + text);
    return;
  }
  if (last_plain_ && now - *last_plain_ < plain_interval_)
    return;
  last_plain_ = now;
  out_(line(now, done, planned, false) + "\n");
}

void progress_meter::finish(double now, std::size_t done, std::size_t planned) {
  auto text = line(now, done, planned, true);
  if (tty_) {
    auto width = text.size();
    if (width < last_width_)
      text.append(last_width_ - width, ' ');
    out_("\r" + text + "\n");
  } else {
    out_(text + "\n");
  }
}

} // namespace sil::lab
