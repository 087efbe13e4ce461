// The version and commit this binary was built from.
//
// Owns: two accessors. The definitions are generated at build time by
// cmake/build_info.cmake into the build tree (target sil_build_info), so
// that a new commit does not recompile anything that includes this header.
#pragma once

namespace sil {

/// The project version from CMake's project(VERSION), e.g. "0.1.0".
const char* build_version() noexcept;

/// The git commit (12 hex digits, "-dirty" when the tree had changes), the
/// value of SIL_GIT_COMMIT when the build set it, or "unknown".
const char* build_commit() noexcept;

} // namespace sil
