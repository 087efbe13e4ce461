#!/usr/bin/env bash
# Installs every Debian 12 package Stateful Inference Lab needs to build, test,
# benchmark and run its experiments. Idempotent: it installs only what is
# missing, so a second run costs a dpkg query and nothing else.
#
# Usage: bash scripts/setup.sh        (as root, or as a user with sudo)
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # lint (scripts/lint.sh)
  clang-format clang-tidy
  # the fuzz preset: clang with libFuzzer (scripts/fuzz.sh)
  clang-14 libclang-rt-14-dev
  # libraries
  libcaf-dev libeigen3-dev libboost-dev nlohmann-json3-dev prometheus-cpp-dev libspdlog-dev
  libcli11-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # independent reference model (tools/reference_model.py), plots, load tools
  python3 python3-numpy python3-matplotlib python3-yaml python3-jsonschema wrk prometheus curl
  # deployment files: compose syntax check (no Docker engine needed)
  docker-compose
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
