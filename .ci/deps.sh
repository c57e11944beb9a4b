#!/usr/bin/env bash
# Installs the Debian packages tickwire needs, and only when one is missing,
# so a second run costs a few dpkg queries; then the JS tests' npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(build-essential cmake pkg-config liburing-dev libwolfssl-dev libjemalloc-dev
      libcriterion-dev libjsmn-dev python3 python3-websockets openssl gnuplot-nox
      clang libclang-rt-14-dev clang-format # libclang-rt-14-dev: libFuzzer and the sanitizer runtimes
      chromium                              # the browser tests (driven by playwright-core)
      redis-server libhiredis-dev)          # the cluster broker (issue 12) and its tests
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm, for the JS client tests: by command, since a machine may carry a
# nodejs package of its own that bundles npm (and conflicts with Debian's npm package).
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The JS tests' npm packages (each suite's package-lock.json), reinstalled only when the
# lock file changed since the last install.
for suite in tests/js tests/browser; do
  [ -f "$suite/package-lock.json" ] || continue
  if ! cmp -s "$suite/package-lock.json" "$suite/node_modules/.tickwire-lock" 2>/dev/null; then
    echo "installing npm packages for $suite" >&2
    (cd "$suite" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$suite/package-lock.json" "$suite/node_modules/.tickwire-lock"
  fi
done
