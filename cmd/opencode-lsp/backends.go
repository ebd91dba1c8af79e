package main

import (
	"log/slog"

	"github.com/opencode-lsp/opencode-lsp/lsp"
)

// newBackends wires the domain packages into one LSP session.
func newBackends(logger *slog.Logger) lsp.Backends {
	return lsp.Backends{}
}
