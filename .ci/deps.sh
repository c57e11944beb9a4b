#!/usr/bin/env bash
# Installs the Debian packages tickwire needs, and only when one is missing,
# so a second run costs a few dpkg queries.
set -euo pipefail
pkgs=(build-essential cmake pkg-config liburing-dev libwolfssl-dev libjemalloc-dev
      libcriterion-dev libjsmn-dev python3 python3-websockets openssl gnuplot-nox
      clang libclang-rt-14-dev clang-format) # libclang-rt-14-dev: libFuzzer and the sanitizer runtimes
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
