#!/usr/bin/env bash
# Fails if any file under core/ includes a CAF, Beast or Asio header: the
# pure core must compile and be testable without the actor or HTTP layers.
set -euo pipefail
dir=${1:?usage: check_core_includes.sh CORE_DIR}
if hits=$(grep -rnE '^\s*#\s*include\s*[<"](caf/|boost/beast|boost/asio|asio)' "$dir"); then
  echo "core/ must not include CAF, Beast or Asio headers:" >&2
  echo "$hits" >&2
  exit 1
fi
n=$(find "$dir" -name '*.hpp' -o -name '*.cpp' | wc -l)
[[ $n -gt 0 ]] || { echo "no sources found in $dir" >&2; exit 1; }
echo "ok: $n core files, no CAF/Beast/Asio include"
