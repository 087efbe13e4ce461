#!/usr/bin/env bash
# Checks formatting (clang-format) and runs the narrow clang-tidy profile on
# every project source. Needs a configured build/ (cmake --preset release).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
clang-format --dry-run --Werror "${files[@]}"
echo "lint: clang-format ok (${#files[@]} files)"
mapfile -t units < <(git ls-files '*.cpp')
clang-tidy -p build --quiet "${units[@]}" 2>&1 | { grep -E "warning:|error:" || true; } | tee /tmp/sil-tidy.log
if [[ -s /tmp/sil-tidy.log ]]; then
  echo "lint: clang-tidy found problems" >&2
  exit 1
fi
echo "lint: clang-tidy ok"
