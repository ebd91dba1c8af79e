#!/usr/bin/env bash
# Installs everything the test suites drive, on a fresh Debian 12 machine
# (as root, or with sudo): bubblewrap for the local sandbox, the real editors
# of the end-to-end suite, the pinned npm tools (OpenCode, TypeScript, the
# node LSP client library) and the Go modules. Idempotent: a second run only
# checks.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# bubblewrap: the local sandbox's isolation; the rest: toolchains the
# diagnostics tests run for real (python3-pytest for pytest's output).
APT_PACKAGES=(bubblewrap git ca-certificates gcc make python3 python3-pytest)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "apt: installing ${missing[*]}"
  $SUDO flock /tmp/apt.lock apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO flock /tmp/apt.lock apt-get install -y --no-install-recommends "${missing[@]}"
else
  say "apt: ${APT_PACKAGES[*]} already installed"
fi

say "npm: pinned test tools (test/tools)"
(cd test/tools && npm ci --no-audit --no-fund --loglevel=error)

if [ -x test/e2e/install.sh ]; then
  say "editors for the end-to-end suite"
  test/e2e/install.sh
fi
if [ -x editors/nvim/test/install.sh ]; then
  say "Neovim 0.10 for the Neovim plugin's tests"
  editors/nvim/test/install.sh
fi
if [ -x editors/vscode/test/install.sh ]; then
  say "VS Code (code-server + chromium) for the extension's tests"
  editors/vscode/test/install.sh
fi

say "go: module download"
go mod download
say "setup done"
