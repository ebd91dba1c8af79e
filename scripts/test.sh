#!/usr/bin/env bash
# Runs every test: sets the machine up (scripts/setup.sh), then the Go tests
# of every package, the end-to-end suite with real editors included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/test/tools/node_modules/.bin:$PATH"
go vet ./...
go test -count=1 -timeout 20m ./...
