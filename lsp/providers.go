package lsp

import (
	"fmt"
	"log/slog"
	"os/exec"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/daytona"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b"
	"github.com/opencode-lsp/opencode-lsp/sandbox/local"
)

// DefaultProviders builds the real providers from settings, with the
// services' own environment variables as the fallback (design: endpoint
// overrides and secrets).
func DefaultProviders(log *slog.Logger, getenv func(string) string) ProviderFactory {
	return func(name string, st Settings) (sandbox.Provider, error) {
		switch name {
		case "local":
			iso := local.IsolationAuto
			switch st.Local.Bubblewrap {
			case "on":
				iso = local.IsolationBwrap
			case "off":
				iso = local.IsolationNone
			}
			return local.New(local.Options{Isolation: iso, Logger: log.With("sandbox", "local"),
				ReadOnlyBinds: opencodeBinds(st.Generate.OpenCodePath)})
		case "e2b":
			cfg := e2b.ConfigFromEnv(getenv)
			override(&cfg.APIKey, st.E2B.APIKey)
			override(&cfg.Domain, st.E2B.Domain)
			override(&cfg.APIURL, st.E2B.APIURL)
			override(&cfg.SandboxURL, st.E2B.SandboxURL)
			override(&cfg.Template, st.E2B.Template)
			if cfg.APIKey == "" {
				return nil, fmt.Errorf("E2B_API_KEY is required for the e2b sandbox: set the environment variable or the opencode.e2b.apiKey setting")
			}
			return e2b.NewProvider(cfg)
		case "daytona":
			o := daytona.OptionsFromEnv(getenv)
			o.Logger = log.With("sandbox", "daytona")
			override(&o.APIKey, st.Daytona.APIKey)
			override(&o.APIURL, st.Daytona.APIURL)
			override(&o.ToolboxURL, st.Daytona.ToolboxURL)
			override(&o.Target, st.Daytona.Target)
			override(&o.Snapshot, st.Daytona.Snapshot)
			if o.APIKey == "" {
				return nil, fmt.Errorf("DAYTONA_API_KEY is required for the daytona sandbox: set the environment variable or the opencode.daytona.apiKey setting")
			}
			return daytona.New(o)
		}
		return nil, fmt.Errorf("unknown sandbox %q: want local, e2b or daytona", name)
	}
}

// opencodeBinds are the host directories the local sandbox must show so
// that the OpenCode binary (the setting, else the daemon's PATH) runs in it.
func opencodeBinds(opencodePath string) []string {
	if opencodePath == "" {
		found, err := exec.LookPath("opencode")
		if err != nil {
			return nil
		}
		opencodePath = found
	}
	return local.ToolBinds(opencodePath)
}

// override sets *dst to v when v is not empty (settings win over the
// environment).
func override(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}
