#!/bin/bash
# Installs what the VS Code extension's build and end-to-end test need. Idempotent; run as root on Debian 12
# (bookworm) x86_64 with node 20. Reaches only Debian's apt mirror and the npm registry.
#
# usage: editors/vscode/test/install.sh [section...]     (no section = all)
#   ext      the extension's npm dependencies (npm ci from package-lock.json), compile, package the .vsix
#   vscode   real VS Code for the end-to-end test: code-server 4.99.4 (= VS Code 1.99.3, runs on node 20) and
#            playwright-core (drives Debian's chromium; no browser download) under editors/vscode/.cache,
#            plus the Debian packages chromium, libkrb5-dev (code-server's kerberos module) and ripgrep
#
# code-server's postinstall builds native modules and would download ripgrep from GitHub: its download cache is
# pre-seeded with Debian's rg, node-gyp uses node's own headers (npm_config_nodedir=/usr) and npx runs without a
# TTY (npm_config_yes=true).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXT="$(cd "$HERE/.." && pwd)"
CACHE="${VSCODE_E2E_CACHE:-$EXT/.cache}"
CODE_SERVER_VERSION=4.99.4
PLAYWRIGHT_VERSION=1.65.1
SECTIONS="$*"
for s in $SECTIONS; do
  case $s in ext | vscode) ;; *) echo "install.sh: unknown section '$s' (ext vscode)" >&2; exit 2 ;; esac
done
want() { [ -z "$SECTIONS" ] || [[ " $SECTIONS " == *" $1 "* ]]; }
T0=$(date +%s)
step() { echo "== vscode install: $* (+$(($(date +%s) - T0))s)"; }
run() { echo "+ $*"; "$@"; }

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then echo "already installed: $*"; return; fi
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    run flock /tmp/apt.lock apt-get update -qq
  fi
  run flock /tmp/apt.lock apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

pkgver() { # DIR NAME: version of an installed npm package, or nothing
  [ -f "$1/node_modules/$2/package.json" ] &&
    node -p "JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).version" "$1/node_modules/$2/package.json" || true
}

if want ext; then
  step "ext: npm ci, compile, package"
  command -v node >/dev/null || { echo "node is not installed (the extension needs node >= 20)" >&2; exit 1; }
  cd "$EXT"
  if [ -f node_modules/.package-lock.json ] && cmp -s <(node -p "require('./package-lock.json').packages['node_modules/vscode-languageclient'].version") \
    <(node -p "require('./node_modules/vscode-languageclient/package.json').version" 2>/dev/null); then
    echo "already installed: node_modules"
  else
    run npm ci --no-audit --no-fund --loglevel=error
  fi
  run npm run --silent package
fi

if want vscode; then
  step "vscode: chromium, libkrb5-dev, ripgrep (apt)"
  apt_install chromium libkrb5-dev ripgrep
  step "vscode: code-server $CODE_SERVER_VERSION and playwright-core $PLAYWRIGHT_VERSION into $CACHE/cs"
  mkdir -p "$CACHE/cs" "$CACHE/tmp"
  if [ "$(pkgver "$CACHE/cs" code-server)" = "$CODE_SERVER_VERSION" ] && [ "$(pkgver "$CACHE/cs" playwright-core)" = "$PLAYWRIGHT_VERSION" ] &&
    [ -x "$CACHE/cs/node_modules/.bin/code-server" ]; then
    echo "already installed: code-server $CODE_SERVER_VERSION, playwright-core $PLAYWRIGHT_VERSION"
  else
    rg_cache="$CACHE/tmp/vscode-ripgrep-cache-1.15.11"
    mkdir -p "$rg_cache"
    tar czf "$rg_cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C /usr/bin rg
    [ -f "$CACHE/cs/package.json" ] || echo '{"name":"vscode-e2e-tools","private":true}' > "$CACHE/cs/package.json"
    (cd "$CACHE/cs" && TMPDIR="$CACHE/tmp" npm_config_yes=true npm_config_nodedir=/usr \
      run npm install --no-audit --no-fund --loglevel=error --unsafe-perm \
      "code-server@$CODE_SERVER_VERSION" "playwright-core@$PLAYWRIGHT_VERSION")
  fi
  # (its first start writes a config with a password under $XDG_CONFIG_HOME: keep that in the cache too)
  HOME="$CACHE/home" XDG_CONFIG_HOME="$CACHE/home/.config" XDG_DATA_HOME="$CACHE/home/.local/share" \
    "$CACHE/cs/node_modules/.bin/code-server" --version | head -1
fi

step "done"
