#!/usr/bin/env bash
# opencode-lsp's benchmarks, side by side with their baselines (bench/README.md
# explains each figure and keeps the latest ones).
#
#   bash bench/run.sh [core|chat|lsp|packages|all] [lspbench flags...]
#
#   core      (default) bench/lspbench over stdio: opencode-lsp against gopls and
#             @github/copilot-language-server (start, RSS, codeAction, codeAction
#             under a concurrent ~1 s command), printed as a table with ratios
#   chat      lspbench chat: the real binary's chat path against a direct SSE
#             reader (chunk latency), 50 concurrent chats + codeAction p99
#   lsp       go test -bench ./lsp: chat delta latency against a direct SSE reader,
#             50 concurrent chats + codeAction p99, generate's apply path (200 files)
#   packages  the other packages' benchmarks: sandbox/local, lsp/outputdiag,
#             agent/openrouter, agent/opencode
#   all       all of them
#
# Baselines are installed into bench/.cache (git-ignored): gopls with
# `go install` (about 2 minutes cold), the Copilot server with npm. Output goes
# to the terminal and to bench/out/<what>-<UTC time>.{txt,json} (git-ignored).
# SKIP_GOPLS=1 or SKIP_COPILOT=1 leaves a baseline out; GOPLS_VERSION and
# COPILOT_VERSION override the pins. Nothing here runs in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

GOPLS_VERSION=${GOPLS_VERSION:-v0.23.0}
COPILOT_VERSION=${COPILOT_VERSION:-1.539.0}
CACHE=$PWD/bench/.cache
OUT=$PWD/bench/out
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$CACHE/bin" "$OUT"

what=core
case "${1:-}" in
core | chat | lsp | packages | all) what=$1; shift ;;
esac

say() { printf '== %s (load average %s)\n' "$*" "$(cut -d' ' -f1-3 /proc/loadavg)"; }

install_gopls() {
	if [ -x "$CACHE/bin/gopls" ] && "$CACHE/bin/gopls" version 2>/dev/null | grep -q "gopls $GOPLS_VERSION\$"; then
		return
	fi
	say "installing gopls $GOPLS_VERSION into bench/.cache/bin"
	(cd "$CACHE" && GOBIN="$CACHE/bin" GOFLAGS= go install "golang.org/x/tools/gopls@$GOPLS_VERSION")
}

copilot_binary() {
	local arch
	case "$(uname -m)" in
	x86_64) arch=x64 ;;
	aarch64 | arm64) arch=arm64 ;;
	*) arch=$(uname -m) ;;
	esac
	echo "$CACHE/npm/node_modules/@github/copilot-language-server-$(uname -s | tr A-Z a-z)-$arch/copilot-language-server"
}

install_copilot() {
	local pkg=$CACHE/npm/node_modules/@github/copilot-language-server/package.json
	if [ -f "$pkg" ] && grep -q "\"version\": \"$COPILOT_VERSION\"" "$pkg" && [ -x "$(copilot_binary)" ]; then
		return
	fi
	say "installing @github/copilot-language-server@$COPILOT_VERSION into bench/.cache/npm"
	mkdir -p "$CACHE/npm"
	[ -f "$CACHE/npm/package.json" ] || echo '{"private": true}' >"$CACHE/npm/package.json"
	npm install --prefix "$CACHE/npm" --no-audit --no-fund --save-exact "@github/copilot-language-server@$COPILOT_VERSION"
}

build() {
	say "building opencode-lsp and lspbench"
	go build -o "$CACHE/bin/opencode-lsp" ./cmd/opencode-lsp
	go build -o "$CACHE/bin/lspbench" ./bench/lspbench
}

run_core() {
	local args=()
	if [ -z "${SKIP_GOPLS:-}" ]; then
		install_gopls
		args+=(-gopls "$CACHE/bin/gopls")
	fi
	if [ -z "${SKIP_COPILOT:-}" ]; then
		install_copilot
		args+=(-copilot "$(copilot_binary)")
	fi
	build
	say "lspbench"
	"$CACHE/bin/lspbench" -opencode "$CACHE/bin/opencode-lsp" "${args[@]}" \
		-json "$OUT/core-$STAMP.json" "$@" | tee "$OUT/core-$STAMP.txt"
}

run_chat() {
	build
	say "lspbench chat"
	"$CACHE/bin/lspbench" chat -opencode "$CACHE/bin/opencode-lsp" \
		-json "$OUT/chat-$STAMP.json" "$@" | tee "$OUT/chat-$STAMP.txt"
}

# gobench PKG BENCH-REGEXP ARGS...: one go test -bench run, teed to the log.
gobench() {
	local pkg=$1 re=$2
	shift 2
	say "go test -run '^\$' -bench '$re' $* $pkg" | tee -a "$LOG"
	go test "$pkg" -run '^$' -bench "$re" "$@" 2>&1 | tee -a "$LOG"
}

run_lsp() {
	LOG=$OUT/lsp-$STAMP.txt
	gobench ./lsp 'ChatDeltaLatency|GenerateApplyEdit200' -count 3
	gobench ./lsp 'Chat50CodeAction' -benchtime 3x -count 1
}

run_packages() {
	LOG=$OUT/packages-$STAMP.txt
	gobench ./sandbox/local 'Exec' -benchtime 20x -count 3
	gobench ./sandbox/local 'Sync|Manifest' -benchtime 5x -count 3
	gobench ./lsp/outputdiag . -count 3
	gobench ./agent/openrouter . -count 3
	gobench ./agent/opencode RunOverhead -benchtime 40x -count 1
}

case $what in
core) run_core "$@" ;;
chat) run_chat "$@" ;;
lsp) run_lsp ;;
packages) run_packages ;;
all)
	run_core "$@"
	run_chat
	run_lsp
	run_packages
	;;
esac
