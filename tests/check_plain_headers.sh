#!/usr/bin/env bash
# Fails if one of the given headers pulls in a CAF, Beast or Asio header,
# directly or through the headers it includes: the preprocessor's line
# markers name every file a translation unit reads.
#   check_plain_headers.sh COMPILER SOURCE_DIR HEADER...
set -euo pipefail
cxx=${1:?usage: check_plain_headers.sh COMPILER SOURCE_DIR HEADER...}
src=${2:?usage: check_plain_headers.sh COMPILER SOURCE_DIR HEADER...}
shift 2
[[ $# -gt 0 ]] || { echo "no headers given" >&2; exit 1; }
status=0
for h in "$@"; do
  [[ -f "$src/$h" ]] || { echo "$h: no such header" >&2; status=1; continue; }
  files=$(echo "#include \"$h\"" | "$cxx" -std=c++17 -I "$src" -x c++ -E - | sed -n 's/^# [0-9]* "\([^"]*\)".*/\1/p' | sort -u)
  if heavy=$(grep -E '/(caf|boost/beast|boost/asio)/' <<<"$files"); then
    echo "$h pulls in $(wc -l <<<"$heavy") CAF/Beast/Asio headers, first: $(head -1 <<<"$heavy")" >&2
    status=1
  else
    echo "ok: $h ($(wc -l <<<"$files") files, no CAF/Beast/Asio)"
  fi
done
exit $status
