#!/bin/bash
# Installs Neovim 0.10 (Debian trixie's .debs) for the plugin's tests, next to the 0.7.2 of bookworm (apt) and the
# 0.12 that test/e2e/install.sh provides. Idempotent; run as root on Debian 12 (bookworm) x86_64. Reaches only
# Debian's apt mirror.
#
# Neovim 0.10 needs a newer glibc than bookworm's, so its .debs (glibc included) are fetched with a private apt
# state (the system's apt and dpkg state are never touched), unpacked with dpkg -x, and started through the unpacked
# ld.so by the wrapper $NVIM_TEST_CACHE/nvim010/nvim.
#
# Environment: NVIM_TEST_CACHE (default editors/nvim/.cache, git-ignored), DEBIAN_MIRROR (default: the first URI
# of the machine's own apt sources).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${NVIM_TEST_CACHE:-$HERE/../.cache}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
run() { echo "+ $*"; "$@"; }

mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local m=""
  [ -f /etc/apt/sources.list.d/debian.sources ] && m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit} $1 == "deb" && $2 ~ /^\[/ {print $3; exit}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

W="$CACHE/nvim010"
have=$([ -x "$W/nvim" ] && "$W/nvim" --version 2>/dev/null | sed -n 1p || true)
if [[ "$have" =~ ^NVIM\ v0\.10\. ]]; then
  echo "already installed: $have"
  exit 0
fi
D="$CACHE/apt-trixie"
mkdir -p "$D/lists/partial" "$D/cache/archives/partial" "$D/state"
: > "$D/state/status"
echo "deb $(mirror) trixie main" > "$D/sources.list"
A="-o Dir::Etc::SourceList=$D/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$D/lists \
-o Dir::Cache=$D/cache -o Dir::State::Status=$D/state/status -o APT::Install-Recommends=false \
-o Debug::NoLocking=1 -o Acquire::Retries=3 -o APT::Sandbox::User=root"
# shellcheck disable=SC2086
run apt-get $A update -qq
# the full closure of neovim in trixie (glibc included, for its ld.so), resolved by apt
# shellcheck disable=SC2086
run apt-get $A install --download-only -y -qq neovim
rm -rf "$W"; mkdir -p "$W/root"
for d in "$D"/cache/archives/*.deb; do dpkg -x "$d" "$W/root"; done
rm -f "$D"/cache/archives/*.deb
cat > "$W/nvim" <<'WRAP'
#!/bin/sh
# Neovim from Debian trixie .debs, started on bookworm through its own ld.so and glibc (nothing installed
# system-wide). --library-path (not LD_LIBRARY_PATH) so that the language servers nvim starts do not inherit it.
R="$(dirname "$(readlink -f "$0")")/root"
export VIMRUNTIME="$R/usr/share/nvim/runtime"
exec "$R/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$R/usr/lib/x86_64-linux-gnu" "$R/usr/bin/nvim" "$@"
WRAP
chmod +x "$W/nvim"
"$W/nvim" --version | sed -n 1p
