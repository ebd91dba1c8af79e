#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root, or with sudo).
#
#   scripts/setup.sh           what running opencode-lsp needs: bubblewrap (the
#                              local sandbox's isolation) and the Go modules
#   scripts/setup.sh --tests   also everything the test suites drive: the
#                              toolchains whose output becomes diagnostics, the
#                              pinned npm tools (OpenCode, TypeScript, the node
#                              LSP client library), the real editors of the
#                              end-to-end suites (Neovim, Emacs, VS Code)
#
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

TESTS=0
case "${1:-}" in
  "") ;;
  --tests) TESTS=1 ;;
  *) echo "usage: scripts/setup.sh [--tests]" >&2; exit 2 ;;
esac

say() { printf '== %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

APT_PACKAGES=(bubblewrap git ca-certificates)
if [ "$TESTS" = 1 ]; then
  # Toolchains the diagnostics tests run for real (python3-pytest for
  # pytest's output; go, node and cargo come with the machine).
  APT_PACKAGES+=(gcc make python3 python3-pytest)
fi
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

say "go: module download"
go mod download

if [ "$TESTS" = 1 ]; then
  # npm ci only when the lock file changed since the last install.
  stamp=test/tools/node_modules/.installed-lock.sha256
  if [ -f "$stamp" ] && [ "$(sha256sum < test/tools/package-lock.json)" = "$(cat "$stamp")" ]; then
    say "npm: test/tools already installed"
  else
    say "npm: pinned test tools (test/tools)"
    # npm install, not npm ci: npm 11 leaves other platforms' optional OpenCode
    # binaries out of the lock file, and npm ci then rejects it.
    (cd test/tools && npm install --no-audit --no-fund --loglevel=error)
    sha256sum < test/tools/package-lock.json > "$stamp"
  fi
  for installer in test/e2e/install.sh editors/nvim/test/install.sh editors/vscode/test/install.sh; do
    if [ -x "$installer" ]; then
      say "$installer"
      "$installer"
    fi
  done
fi
say "setup done"
