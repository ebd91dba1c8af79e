#!/bin/bash
# Installs the LSP clients that the end-to-end suite (test/e2e) drives opencode-lsp with.
# Idempotent; run as root (or with sudo for the apt packages) on Debian 12 (bookworm) x86_64. Reaches only Debian's
# apt mirror and the npm registry.
#
# usage: test/e2e/install.sh [section...]     (no section = all)
#   apt     Neovim 0.7.2, Emacs 28 + elpa-eglot 1.9 (bookworm packages)
#   node    vscode-languageserver-protocol, pinned in test/tools/package.json (npm ci there when missing)
#   nvim    Neovim 0.12 (Debian sid .debs) unpacked under the cache dir: the client that offers utf-8 first
#   emacs   Emacs 30 with its built-in eglot 1.17 (Debian trixie .debs) under the cache dir: offers utf-32 first
#
# The newer Neovim and Emacs need a newer glibc than bookworm's, so their .debs (glibc included) are fetched with a
# private apt state (the system's apt and dpkg state are never touched), unpacked with dpkg -x, and started through
# the unpacked ld.so by the wrappers $E2E_CACHE/nvim012/nvim and $E2E_CACHE/emacs30/emacs.
#
# Environment: E2E_CACHE (default test/e2e/.cache, git-ignored), DEBIAN_MIRROR (default: the first URI of the
# machine's own apt sources).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${E2E_CACHE:-$HERE/.cache}"
SECTIONS="$*"
for s in $SECTIONS; do
  case $s in apt | node | nvim | emacs) ;; *) echo "install.sh: unknown section '$s' (apt node nvim emacs)" >&2; exit 2 ;; esac
done
want() { [ -z "$SECTIONS" ] || [[ " $SECTIONS " == *" $1 "* ]]; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
T0=$(date +%s)
step() { echo "== e2e install: $* (+$(($(date +%s) - T0))s)"; }
run() { echo "+ $*"; "$@"; }

mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit} $1 == "deb" && $2 ~ /^\[/ {print $3; exit}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# apt_install PKG... : install bookworm packages that are not installed yet (serialised with other installers).
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then echo "already installed: $*"; return; fi
  # an apt index that is missing or older than a day is refreshed once
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    run $SUDO flock /tmp/apt.lock apt-get update -qq
  fi
  run $SUDO env DEBIAN_FRONTEND=noninteractive flock /tmp/apt.lock apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# altapt DIR SUITE... : prints apt-get options for a private apt state (own sources, lists, cache and an empty dpkg
# status, so that apt resolves the full closure of a package from the given suites).
altapt() {
  local d=$1; shift
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/state"
  : > "$d/state/status"
  local m; m=$(mirror)
  : > "$d/sources.list"
  for s in "$@"; do echo "deb $m $s main" >> "$d/sources.list"; done
  echo "-o Dir::Etc::SourceList=$d/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$d/lists" \
    "-o Dir::Cache=$d/cache -o Dir::State::Status=$d/state/status -o APT::Install-Recommends=false" \
    "-o Debug::NoLocking=1 -o Acquire::Retries=3 -o APT::Sandbox::User=root"
}

if want apt; then
  step "apt: neovim (0.7.2), emacs-nox (28.2), elpa-eglot (1.9)"
  apt_install neovim emacs-nox elpa-eglot
  nvim --version | sed -n 1p
  emacs --version | sed -n 1p
fi

if want node; then
  step "node: vscode-languageserver-protocol from test/tools"
  command -v node >/dev/null || { echo "node is not installed (the suite needs node >= 18)" >&2; exit 1; }
  if [ -f "$REPO/test/tools/node_modules/vscode-languageserver-protocol/package.json" ] &&
    [ -f "$REPO/test/tools/node_modules/vscode-jsonrpc/package.json" ]; then
    echo "already installed: vscode-languageserver-protocol $(node -p "JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).version" \
      "$REPO/test/tools/node_modules/vscode-languageserver-protocol/package.json")"
  else
    (cd "$REPO/test/tools" && run npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

if want nvim; then
  step "nvim: Neovim 0.12 from Debian sid .debs into $CACHE/nvim012"
  W="$CACHE/nvim012"
  have=$([ -x "$W/nvim" ] && "$W/nvim" --version 2>/dev/null | sed -n 1p || true)
  if [[ "$have" =~ ^NVIM\ v0\.1[2-9] ]]; then
    echo "already installed: $have"
  else
    A=$(altapt "$CACHE/apt-sid" sid)
    # shellcheck disable=SC2086
    run apt-get $A update -qq
    # the full closure of neovim in sid (14 debs, ~11 MB; glibc included for its ld.so), resolved by apt so that
    # library renames in sid (libtree-sitter0.xx, ...) need no change here
    # shellcheck disable=SC2086
    run apt-get $A install --download-only -y -qq neovim
    rm -rf "$W"; mkdir -p "$W/root"
    for d in "$CACHE"/apt-sid/cache/archives/*.deb; do dpkg -x "$d" "$W/root"; done
    rm -f "$CACHE"/apt-sid/cache/archives/*.deb
    cat > "$W/nvim" <<'EOF'
#!/bin/sh
# Neovim from Debian sid .debs, started on bookworm through its own ld.so and glibc (nothing installed system-wide).
# --library-path (not LD_LIBRARY_PATH) so that the language servers nvim starts do not inherit the foreign glibc.
R="$(dirname "$(readlink -f "$0")")/root"
export VIMRUNTIME="$R/usr/share/nvim/runtime"
exec "$R/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$R/usr/lib/x86_64-linux-gnu" "$R/usr/bin/nvim" "$@"
EOF
    chmod +x "$W/nvim"
    "$W/nvim" --version | sed -n 1p
  fi
fi

if want emacs; then
  step "emacs: Emacs 30 (built-in eglot) from Debian trixie .debs into $CACHE/emacs30"
  W="$CACHE/emacs30"
  have=$([ -x "$W/emacs" ] && "$W/emacs" --batch -Q --eval '(princ emacs-version)' 2>/dev/null || true)
  if [[ "$have" =~ ^3[0-9]\. ]]; then
    echo "already installed: Emacs $have"
  else
    A=$(altapt "$CACHE/apt-trixie" trixie)
    # shellcheck disable=SC2086
    run apt-get $A update -qq
    # shellcheck disable=SC2086
    run apt-get $A install --download-only -y -qq emacs-nox
    rm -rf "$W"; mkdir -p "$W/root"
    for d in "$CACHE"/apt-trixie/cache/archives/*.deb; do dpkg -x "$d" "$W/root"; done
    rm -f "$CACHE"/apt-trixie/cache/archives/*.deb
    ver=$(basename "$(ls -d "$W"/root/usr/share/emacs/[0-9]*.[0-9]* | head -1)")
    cat > "$W/emacs" <<EOF
#!/bin/sh
# Emacs $ver from Debian trixie .debs, started on bookworm through its own ld.so and glibc (nothing installed
# system-wide). Native compilation would spawn an emacs without this wrapper: drivers must keep it off.
R="\$(dirname "\$(readlink -f "\$0")")/root"
L="\$R/usr/share/emacs/$ver/lisp"
export EMACSLOADPATH="\$(find "\$L" -type d | tr '\n' ':')"
export EMACSDATA="\$R/usr/share/emacs/$ver/etc" EMACSDOC="\$R/usr/share/emacs/$ver/etc"
export EMACSPATH="\$R/usr/libexec/emacs/$ver/x86_64-linux-gnu"
exec "\$R/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "\$R/usr/lib/x86_64-linux-gnu:\$R/lib/x86_64-linux-gnu" \\
  "\$R/usr/bin/emacs-nox" --dump-file="\$(ls "\$R"/usr/libexec/emacs/$ver/x86_64-linux-gnu/emacs-*.pdmp | head -1)" "\$@"
EOF
    chmod +x "$W/emacs"
    echo "Emacs $("$W/emacs" --batch -Q --eval '(princ emacs-version)' 2>/dev/null)"
  fi
fi

step "done"
