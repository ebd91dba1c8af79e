#!/usr/bin/env bash
# Runs every test: sets the machine up (scripts/setup.sh), then the Go tests
# of every package, the end-to-end suite with real editors included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
export PATH="$PWD/test/tools/node_modules/.bin:$PATH"
# Every real client must run: one that failed to install fails the suite
# instead of being skipped.
export E2E_REQUIRE="${E2E_REQUIRE:-all}"
go vet ./...
go test -count=1 -timeout 20m ./...
