package lsp

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Settings is the `opencode` configuration section, as editors send it in
// initializationOptions, workspace/configuration (section "opencode") and
// workspace/didChangeConfiguration. Keys are camelCase; nested objects use
// the names below (for example `opencode.openrouter.model`). A key the server
// does not know, or a value of the wrong type, is reported to the user
// (naming the key) and the default is kept.
type Settings struct {
	// Sandbox is the default sandbox: "local" (default), "e2b" or "daytona".
	Sandbox string `json:"sandbox" enum:"local,e2b,daytona"`
	// PositionEncoding forces "utf-8", "utf-16" or "utf-32" instead of the
	// negotiated encoding (applies to the next initialize); "" negotiates.
	PositionEncoding string `json:"positionEncoding" enum:",utf-8,utf-16,utf-32"`

	OpenRouter OpenRouterSettings `json:"openrouter"`
	Run        RunSettings        `json:"run"`
	Generate   GenerateSettings   `json:"generate"`
	Local      LocalSettings      `json:"local"`
	E2B        E2BSettings        `json:"e2b"`
	Daytona    DaytonaSettings    `json:"daytona"`
	Budget     BudgetSettings     `json:"budget"`
	Routing    RoutingSettings    `json:"routing"`

	// Sync configures how the workspace is copied into sandboxes.
	Sync SyncSettings `json:"sync"`
	// Answers says how chat answers reach editors that do not render
	// opencode/chatDelta: "auto" (default: a message, or a Markdown document
	// for a long answer) or "none" (an editor plugin shows them).
	Answers string `json:"answers" enum:"auto,none"`
	// RequestTimeoutSec bounds how long the server waits for an editor's
	// answer to window/showMessageRequest (default 120; showDocument and
	// workspace/configuration use shorter fixed bounds).
	RequestTimeoutSec int `json:"requestTimeoutSec" min:"1"`
}

// OpenRouterSettings configure chat through OpenRouter (specs/openrouter.md).
type OpenRouterSettings struct {
	// APIKey is the OpenRouter key; OPENROUTER_API_KEY is the fallback.
	APIKey string `json:"apiKey" secret:"true"`
	// BaseURL overrides https://openrouter.ai/api/v1 (OPENROUTER_BASE_URL).
	BaseURL string `json:"baseUrl"`
	// Model is the default model for chat and for the OpenCode agent.
	Model string `json:"model"`
	// MaxContextTokens bounds the context sent with a question (default 12000).
	MaxContextTokens int `json:"maxContextTokens" min:"256"`
}

// RunSettings configure opencode.run.
type RunSettings struct {
	// Command overrides the detected check command.
	Command string `json:"command"`
	// TimeoutSec bounds one run (default 600).
	TimeoutSec int `json:"timeoutSec" min:"1"`
	// Network lets run commands reach the network (default false).
	Network bool `json:"network"`
	// Errorformat overrides the output format with errorformat lines.
	Errorformat []string `json:"errorformat"`
	// OutputLimitBytes caps the output kept per run (default 16 MiB).
	OutputLimitBytes int64 `json:"outputLimitBytes" min:"4096"`
}

// GenerateSettings configure opencode.generate.
type GenerateSettings struct {
	// OpenCodePath is the `opencode` binary; PATH is searched when empty.
	OpenCodePath string `json:"opencodePath"`
	// Permissions: "ask" (default), "allow" or "deny" per kind.
	EditPermission string `json:"editPermission" enum:"ask,allow,deny"`
	BashPermission string `json:"bashPermission" enum:"ask,allow,deny"`
	// NeedsConfirmation marks the edit's change annotation so that editors
	// show a preview before applying it (default true).
	NeedsConfirmation *bool `json:"needsConfirmation"`
	// MaxFileBytes refuses a generated file over this size (default 10 MiB).
	MaxFileBytes int64 `json:"maxFileBytes" min:"1"`
}

// LocalSettings configure the embedded local sandbox.
type LocalSettings struct {
	// Bubblewrap is "auto" (default: use bwrap when it works), "on" or "off".
	Bubblewrap string `json:"bubblewrap" enum:"auto,on,off"`
}

// E2BSettings configure the E2B provider (specs/e2b.md).
type E2BSettings struct {
	APIKey     string `json:"apiKey" secret:"true"` // fallback E2B_API_KEY
	Domain     string `json:"domain"`               // E2B_DOMAIN
	APIURL     string `json:"apiUrl"`               // E2B_API_URL
	SandboxURL string `json:"sandboxUrl"`           // E2B_SANDBOX_URL
	Template   string `json:"template"`
}

// DaytonaSettings configure the Daytona provider (specs/daytona.md).
type DaytonaSettings struct {
	APIKey     string `json:"apiKey" secret:"true"` // fallback DAYTONA_API_KEY
	APIURL     string `json:"apiUrl"`               // DAYTONA_API_URL
	ToolboxURL string `json:"toolboxUrl"`           // DAYTONA_TOOLBOX_URL
	Target     string `json:"target"`
	Snapshot   string `json:"snapshot"`
}

// BudgetSettings bound cloud sandbox use.
type BudgetSettings struct {
	// MaxConcurrent cloud sandboxes (default 2).
	MaxConcurrent int `json:"maxConcurrent" min:"0"`
	// MaxHoursPerMonth of cloud sandbox time (default 20).
	MaxHoursPerMonth float64 `json:"maxHoursPerMonth" min:"0"`
	// IdleTimeoutSec kills an unused sandbox after this long (default 600).
	IdleTimeoutSec int `json:"idleTimeoutSec" min:"1"`
}

// RoutingSettings configure opencode.ask's smart routing.
type RoutingSettings struct {
	// BuildKeywords route a prompt to generate (defaults in routing docs).
	BuildKeywords []string `json:"buildKeywords"`
}

// SyncSettings configure the workspace copy.
type SyncSettings struct {
	// Excludes are gitignore-style patterns never copied (".git" always
	// excluded for runs).
	Excludes []string `json:"excludes"`
}

// DefaultSettings returns the settings used where the editor sets nothing.
func DefaultSettings() Settings {
	return Settings{
		Sandbox:           "local",
		Answers:           "auto",
		RequestTimeoutSec: 120,
		OpenRouter:        OpenRouterSettings{Model: "openai/gpt-4o-mini", MaxContextTokens: 12000},
		Run:               RunSettings{TimeoutSec: 600, OutputLimitBytes: 16 << 20},
		Generate:          GenerateSettings{EditPermission: "allow", BashPermission: "ask", MaxFileBytes: 10 << 20},
		Local:             LocalSettings{Bubblewrap: "auto"},
		E2B:               E2BSettings{Template: "base"},
		Budget:            BudgetSettings{MaxConcurrent: 2, MaxHoursPerMonth: 20, IdleTimeoutSec: 600},
	}
}

// SettingProblem is one key the server could not use.
type SettingProblem struct {
	Key    string // dotted, e.g. "opencode.run.timeoutSec"
	Reason string
}

func (p SettingProblem) String() string { return p.Key + ": " + p.Reason }

// ParseSettings applies the JSON object raw (the `opencode` section, or an
// object holding it under "opencode") on top of base. It never fails: every
// unknown key or badly typed value is returned as a problem and the value
// from base is kept for it.
func ParseSettings(base Settings, raw json.RawMessage) (Settings, []SettingProblem) {
	if len(raw) == 0 || string(raw) == "null" {
		return base, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return base, []SettingProblem{{Key: "opencode", Reason: "settings must be a JSON object"}}
	}
	// Accept {"opencode": {...}} as well as the bare section; keys beside
	// the nested section are applied too.
	if inner, ok := obj["opencode"]; ok {
		var nested map[string]json.RawMessage
		if err := json.Unmarshal(inner, &nested); err != nil || nested == nil {
			return base, []SettingProblem{{Key: "opencode", Reason: "settings must be a JSON object"}}
		}
		delete(obj, "opencode")
		for k, v := range nested {
			obj[k] = v
		}
	}
	out := base
	var problems []SettingProblem
	applyObject(reflect.ValueOf(&out).Elem(), obj, "opencode", &problems)
	sort.Slice(problems, func(i, j int) bool { return problems[i].Key < problems[j].Key })
	return out, problems
}

func applyObject(dst reflect.Value, obj map[string]json.RawMessage, prefix string, problems *[]SettingProblem) {
	fields := map[string]int{}
	t := dst.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		fields[name] = i
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		raw := obj[k]
		key := prefix + "." + k
		i, ok := fields[k]
		if !ok {
			reason := "unknown setting"
			if s := suggest(k, fields); s != "" {
				reason += fmt.Sprintf(" (did you mean %q?)", prefix+"."+s)
			} else if path := findElsewhere(k); path != "" {
				reason += fmt.Sprintf(" (it belongs at %q)", path)
			}
			*problems = append(*problems, SettingProblem{Key: key, Reason: reason})
			continue
		}
		f := t.Field(i)
		fv := dst.Field(i)
		if f.Type.Kind() == reflect.Struct {
			var sub map[string]json.RawMessage
			if err := json.Unmarshal(raw, &sub); err != nil || sub == nil {
				*problems = append(*problems, SettingProblem{Key: key, Reason: "must be an object"})
				continue
			}
			applyObject(fv, sub, key, problems)
			continue
		}
		if string(raw) == "null" {
			continue // null means "default"
		}
		nv := reflect.New(f.Type)
		if err := json.Unmarshal(raw, nv.Interface()); err != nil {
			*problems = append(*problems, SettingProblem{Key: key, Reason: "must be " + describeType(f.Type)})
			continue
		}
		if reason := validate(f, nv.Elem()); reason != "" {
			*problems = append(*problems, SettingProblem{Key: key, Reason: reason})
			continue
		}
		fv.Set(nv.Elem())
	}
}

func validate(f reflect.StructField, v reflect.Value) string {
	if enum, ok := f.Tag.Lookup("enum"); ok && v.Kind() == reflect.String {
		allowed := strings.Split(enum, ",")
		for _, a := range allowed {
			if v.String() == a {
				return ""
			}
		}
		var shown []string
		for _, a := range allowed {
			shown = append(shown, fmt.Sprintf("%q", a))
		}
		return "must be one of " + strings.Join(shown, ", ")
	}
	if min, ok := f.Tag.Lookup("min"); ok {
		var lo float64
		fmt.Sscan(min, &lo)
		var x float64
		switch v.Kind() {
		case reflect.Int, reflect.Int64:
			x = float64(v.Int())
		case reflect.Float64:
			x = v.Float()
		default:
			return ""
		}
		if x < lo {
			return "must be at least " + min
		}
	}
	return ""
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(describeType(t.Elem()), "a ") + "s"
	case reflect.Pointer:
		return describeType(t.Elem())
	}
	return t.String()
}

// suggest returns a known key that differs from k only in case or by a
// small edit, or "".
func suggest(k string, fields map[string]int) string {
	best, bestD := "", 3
	for name := range fields {
		if strings.EqualFold(name, k) {
			return name
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD {
			best, bestD = name, d
		}
	}
	return best
}

// findElsewhere finds where a misplaced key belongs (for example "apiKey" at
// the top level belongs in "opencode.openrouter.apiKey").
func findElsewhere(k string) string {
	var found string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if found == "" && name == k && prefix != "opencode" {
				found = prefix + "." + name
			}
			if t.Field(i).Type.Kind() == reflect.Struct {
				walk(t.Field(i).Type, prefix+"."+name)
			}
		}
	}
	walk(reflect.TypeOf(Settings{}), "opencode")
	return found
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Secrets returns every non-empty secret value in s (API keys), for the
// log redactor.
func (s Settings) Secrets() []string {
	var out []string
	for _, v := range []string{s.OpenRouter.APIKey, s.E2B.APIKey, s.Daytona.APIKey} {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
