package vscodetest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencode-lsp/opencode-lsp/lsp"
)

// clientOnly are the extension's own settings (mirrors CLIENT_ONLY_KEYS in src/settings.ts): never sent to the
// server.
var clientOnly = []string{"path", "serverArgs", "serverEnv", "trace"}

// TestContributedSettings checks the extension's package.json against the server: every contributed setting has
// a description, and every one the server receives is a key of the server's `opencode` section (lsp.Settings) that
// takes the contributed default — a typo or a renamed server key fails here instead of becoming a warning the
// user sees.
func TestContributedSettings(t *testing.T) {
	here, _ := os.Getwd()
	bs, err := os.ReadFile(filepath.Join(filepath.Dir(here), "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Contributes struct {
			Commands []struct {
				Command, Title, Category string
			} `json:"commands"`
			Configuration struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"configuration"`
		} `json:"contributes"`
	}
	if err := json.Unmarshal(bs, &pkg); err != nil {
		t.Fatal(err)
	}
	section := map[string]any{}
	for full, prop := range pkg.Contributes.Configuration.Properties {
		if prop["description"] == nil && prop["markdownDescription"] == nil {
			t.Errorf("setting %s has no description", full)
		}
		key, ok := strings.CutPrefix(full, "opencode.")
		if !ok {
			t.Errorf("setting %s is outside the opencode section", full)
			continue
		}
		if client := strings.Split(key, ".")[0]; slices.Contains(clientOnly, client) {
			continue
		}
		if strings.HasSuffix(key, "apiKey") {
			t.Errorf("setting %s: API keys belong in secret storage, not settings.json", full)
		}
		// nest the default under its dotted key, as serverSection() does
		node := section
		parts := strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			if _, ok := node[p].(map[string]any); !ok {
				node[p] = map[string]any{}
			}
			node = node[p].(map[string]any)
		}
		node[parts[len(parts)-1]] = prop["default"]
	}
	section["answers"] = "none"
	raw, _ := json.Marshal(section)
	if _, problems := lsp.ParseSettings(lsp.DefaultSettings(), raw); len(problems) > 0 {
		t.Errorf("the server does not take the contributed settings with their defaults: %v\n%s", problems, raw)
	}
	for _, c := range pkg.Contributes.Commands {
		if !strings.HasPrefix(c.Command, "opencode-lsp.") || c.Title == "" || c.Category != "OpenCode" {
			t.Errorf("command %+v: want an opencode-lsp.* id (server ids are opencode.*), a title and the OpenCode category", c)
		}
	}
}
