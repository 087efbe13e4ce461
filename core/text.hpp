// Small text helpers shared by the parsers of settings and model specs.
//
// Owns: nothing but pure functions on string views.
#pragma once

#include <string_view>

namespace sil {

/// `s` without leading and trailing spaces and tabs.
inline std::string_view trim_blanks(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

} // namespace sil
