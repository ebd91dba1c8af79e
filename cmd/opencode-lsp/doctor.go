package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/opencode-lsp/opencode-lsp/agent/opencode"
	"github.com/opencode-lsp/opencode-lsp/agent/openrouter"
	"github.com/opencode-lsp/opencode-lsp/lsp"
	"github.com/opencode-lsp/opencode-lsp/lsp/redact"
	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/fleet"
	"github.com/opencode-lsp/opencode-lsp/sandbox/local"
)

// Check outcomes.
const (
	statusOK   = "ok"
	statusWarn = "warn"
	statusFail = "fail"
	statusSkip = "skip"
)

// checkResult is one row of doctor's table.
type checkResult struct {
	Check  string `json:"check"`
	Status string `json:"status"` // ok, warn, fail or skip
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// doctor checks an installation: every configured sandbox provider (key
// present and accepted, sandbox created, command round trip, OpenCode
// reached through the preview URL, cleanup), OpenRouter's key and the
// OpenCode binary. Configuration comes from the environment, as the daemon's
// fallback does (OPENROUTER_API_KEY, E2B_API_KEY, DAYTONA_API_KEY and the
// endpoint variables).
type doctor struct {
	getenv   func(string) string
	red      *redact.Redactor
	log      *slog.Logger
	tmp      string
	opencode string // --opencode
	model    string
	install  bool
	inst     fleet.Instance
	results  []checkResult
}

func (d *doctor) add(check, status, detail, fix string) {
	d.results = append(d.results, checkResult{Check: check, Status: status, Detail: d.red.String(detail), Fix: d.red.String(fix)})
}

// doctorCLI implements `opencode-lsp doctor [--json] [--providers LIST]
// [--opencode PATH] [--install]`. The exit code is 1 when a check failed, 0
// otherwise (warnings do not fail).
func doctorCLI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("opencode-lsp doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	providers := fs.String("providers", "", "sandbox providers to check, comma-separated: local,e2b,daytona (default: local, plus every cloud provider whose key is set)")
	bin := fs.String("opencode", "", "the opencode `binary` (default: opencode on PATH)")
	model := fs.String("model", lsp.DefaultSettings().OpenRouter.Model, "the model OpenCode is configured with for its start check")
	install := fs.Bool("install", false, "install OpenCode (npm, pinned version) in a cloud sandbox that lacks it")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: opencode-lsp doctor [--json] [--providers local,e2b,daytona] [--opencode PATH]\n\n"+
			"Checks the sandbox providers (key, create, command, OpenCode through the preview URL, cleanup),\n"+
			"OpenRouter's key, bubblewrap and the OpenCode binary, and says how to fix what fails.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "opencode-lsp doctor: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	d := &doctor{getenv: os.Getenv, red: &redact.Redactor{}, opencode: *bin, model: *model, install: *install, inst: fleet.NewInstance()}
	for _, k := range []string{"OPENROUTER_API_KEY", "E2B_API_KEY", "DAYTONA_API_KEY"} {
		d.red.Add(d.getenv(k))
	}
	d.log = slog.New(d.red.Handler(slog.NewTextHandler(io.Discard, nil)))
	var names []string
	if *providers == "" {
		names = []string{"local"}
		for _, p := range []string{"e2b", "daytona"} {
			if d.getenv(keyEnv(p)) != "" {
				names = append(names, p)
			}
		}
	} else {
		for _, p := range strings.Split(*providers, ",") {
			p = strings.TrimSpace(p)
			switch p {
			case "local", "e2b", "daytona":
				names = append(names, p)
			case "":
			default:
				fmt.Fprintf(stderr, "opencode-lsp doctor: --providers: unknown provider %q (want local, e2b or daytona)\n", p)
				return 2
			}
		}
	}
	tmp, err := os.MkdirTemp("", "opencode-lsp-doctor-")
	if err != nil {
		fmt.Fprintf(stderr, "opencode-lsp doctor: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	d.tmp = tmp

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	orKey := d.checkOpenRouter(ctx)
	bin2 := d.checkOpenCodeBinary(ctx)
	for _, p := range names {
		if p == "local" {
			d.checkLocal(ctx)
		} else {
			d.checkCloud(ctx, p, orKey, bin2)
		}
	}
	return d.report(stdout, *asJSON)
}

// report prints the table (or JSON) and returns the exit code.
func (d *doctor) report(w io.Writer, asJSON bool) int {
	failed := 0
	for _, r := range d.results {
		if r.Status == statusFail {
			failed++
		}
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"ok": failed == 0, "checks": d.results})
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CHECK\tSTATUS\tDETAIL\tFIX")
		for _, r := range d.results {
			fix := r.Fix
			if fix == "" {
				fix = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Check, r.Status, oneLine(r.Detail), oneLine(fix))
		}
		tw.Flush()
		if failed > 0 {
			fmt.Fprintf(w, "\n%d check(s) failed.\n", failed)
		} else {
			fmt.Fprintln(w, "\nAll checks passed.")
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

func keyEnv(provider string) string {
	switch provider {
	case "e2b":
		return "E2B_API_KEY"
	case "daytona":
		return "DAYTONA_API_KEY"
	}
	return ""
}

// keyFix says where a provider's key comes from.
func keyFix(provider string) string {
	switch provider {
	case "e2b":
		return "export E2B_API_KEY=<a key from https://e2b.dev/dashboard?tab=keys> (or set opencode.e2b.apiKey in the editor)"
	case "daytona":
		return "export DAYTONA_API_KEY=<a key from https://app.daytona.io/dashboard/keys> (or set opencode.daytona.apiKey in the editor)"
	}
	return ""
}

func endpointFix(provider string) string {
	switch provider {
	case "e2b":
		return "check E2B_API_URL / E2B_DOMAIN (unset them for E2B's own service) and the network"
	case "daytona":
		return "check DAYTONA_API_URL (unset it for https://app.daytona.io/api) and the network"
	}
	return ""
}

// checkOpenRouter checks the key with GET /key; it returns the key when it
// was accepted.
func (d *doctor) checkOpenRouter(ctx context.Context) string {
	cfg := openrouter.ConfigFromEnv(openrouter.Config{}, d.getenv)
	if cfg.APIKey == "" {
		d.add("openrouter: API key", statusFail, "OPENROUTER_API_KEY is not set: chat, explain and generate need it",
			"export OPENROUTER_API_KEY=<a key from https://openrouter.ai/settings/keys> (or set opencode.openrouter.apiKey in the editor)")
		return ""
	}
	d.add("openrouter: API key", statusOK, "set ("+openrouter.KeySourceEnv+")", "")
	c, err := openrouter.New(cfg)
	if err != nil {
		d.add("openrouter: key accepted", statusFail, err.Error(), "check OPENROUTER_BASE_URL (unset it for https://openrouter.ai/api/v1)")
		return ""
	}
	info, err := c.CheckKey(ctx)
	if err != nil {
		fix := "check OPENROUTER_BASE_URL and the network"
		var oe *openrouter.Error
		if errors.As(err, &oe) {
			switch oe.Kind {
			case openrouter.KindAuth:
				fix = "the key is wrong, disabled or deleted: create a new one at https://openrouter.ai/settings/keys and export OPENROUTER_API_KEY"
			case openrouter.KindCredits:
				fix = "add credits at https://openrouter.ai/settings/credits or raise the key's limit"
			}
		}
		d.add("openrouter: key accepted", statusFail, err.Error(), fix)
		return ""
	}
	detail := "accepted"
	if info.Label != "" {
		detail += " (" + info.Label + ")"
	}
	detail += fmt.Sprintf("; usage $%.2f", info.Usage)
	if info.Limit != nil {
		detail += fmt.Sprintf(" of a $%.2f limit", *info.Limit)
	}
	if info.LimitRemaining != nil && *info.LimitRemaining <= 0 {
		d.add("openrouter: key accepted", statusWarn, detail+"; no credit left on the key", "raise the key's limit at https://openrouter.ai/settings/keys")
		return cfg.APIKey
	}
	d.add("openrouter: key accepted", statusOK, detail, "")
	return cfg.APIKey
}

// checkOpenCodeBinary finds the opencode binary of this machine and its
// version; it returns its path, or "".
func (d *doctor) checkOpenCodeBinary(ctx context.Context) string {
	bin := d.opencode
	if bin == "" {
		p, err := exec.LookPath("opencode")
		if err != nil {
			d.add("opencode: binary", statusFail, "opencode is not on PATH: opencode.generate needs it", opencode.InstallHint)
			return ""
		}
		bin = p
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, bin, "--version").Output()
	if err != nil {
		d.add("opencode: binary", statusFail, fmt.Sprintf("%s --version: %v", bin, err), opencode.InstallHint)
		return ""
	}
	v := strings.TrimSpace(string(out))
	if v != opencode.TestedVersion {
		d.add("opencode: binary", statusWarn, fmt.Sprintf("%s is version %s; opencode-lsp is tested with %s", bin, v, opencode.TestedVersion),
			"npm install -g opencode-ai@"+opencode.TestedVersion)
		return bin
	}
	d.add("opencode: binary", statusOK, fmt.Sprintf("%s (version %s)", bin, v), "")
	return bin
}

// checkLocal checks bubblewrap and a command round trip in the embedded
// sandbox (state in a temporary directory).
func (d *doctor) checkLocal(ctx context.Context) {
	p, err := local.New(local.Options{StateDir: d.tmp + "/local", Logger: d.log})
	if err != nil {
		d.add("local: sandbox", statusFail, err.Error(), "install bubblewrap (Debian/Ubuntu: apt install bubblewrap)")
		return
	}
	st := p.Status()
	if st.Isolated {
		d.add("local: bubblewrap", statusOK, "commands run isolated by "+st.Bwrap, "")
	} else {
		d.add("local: bubblewrap", statusWarn, "commands run without isolation: "+st.Reason,
			"install bubblewrap (Debian/Ubuntu: apt install bubblewrap) and allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)")
	}
	ws := d.tmp + "/workspace"
	_ = os.MkdirAll(ws, 0o755)
	sb, err := p.Open(ctx, sandbox.Spec{Key: "doctor", WorkspaceRoot: ws})
	if err != nil {
		d.add("local: command round trip", statusFail, err.Error(), "check that the cache directory is writable")
		return
	}
	defer sb.Close(context.WithoutCancel(ctx))
	d.roundTrip(ctx, "local", sb)
}

// roundTrip runs `echo` in sb and checks its output.
func (d *doctor) roundTrip(ctx context.Context, provider string, sb sandbox.Sandbox) bool {
	var out bytes.Buffer
	start := time.Now()
	st, err := sb.Exec(ctx, sandbox.Cmd{Shell: "echo opencode-lsp-doctor-ok", Stdout: &out, Stderr: &out, Timeout: time.Minute})
	switch {
	case err != nil:
		d.add(provider+": command round trip", statusFail, err.Error(), "the sandbox does not run commands: run doctor again; if it persists, check the provider's status page")
		return false
	case st.Code != 0 || strings.TrimSpace(out.String()) != "opencode-lsp-doctor-ok":
		d.add(provider+": command round trip", statusFail, fmt.Sprintf("`echo` exited %d and printed %q", st.Code, out.String()), "the sandbox image lacks /bin/sh or a working echo")
		return false
	}
	d.add(provider+": command round trip", statusOK, fmt.Sprintf("echo answered in %s", time.Since(start).Round(time.Millisecond)), "")
	return true
}

// checkCloud checks one cloud provider end to end: key, list, create, exec,
// OpenCode through the preview URL, kill, gone.
func (d *doctor) checkCloud(ctx context.Context, provider, orKey, bin string) {
	name := provider + ": "
	factory := lsp.DefaultProviders(d.log, d.getenv)
	pr, err := factory(provider, lsp.DefaultSettings())
	if err != nil {
		d.add(name+"API key", statusFail, err.Error(), keyFix(provider))
		return
	}
	d.add(name+"API key", statusOK, "set ("+keyEnv(provider)+")", "")
	inv := fleet.InventoryOf(pr)
	items, err := inv.List(ctx, map[string]string{fleet.LabelApp: "1", fleet.LabelOwner: d.inst.Owner})
	if err != nil {
		if fleet.IsUnauthorized(err) {
			d.add(name+"key accepted", statusFail, "the key was rejected: "+err.Error(),
				"the key is wrong, expired or revoked: "+keyFix(provider))
		} else {
			d.add(name+"key accepted", statusFail, err.Error(), endpointFix(provider))
		}
		return
	}
	orphans := 0
	for _, it := range items {
		if dm := it.Labels[fleet.LabelDaemon]; dm != "" && !fleet.Alive(dm) {
			orphans++
		}
	}
	detail := fmt.Sprintf("accepted; %d sandbox(es) of opencode-lsp for %s running", len(items), d.inst.Owner)
	if orphans > 0 {
		d.add(name+"key accepted", statusWarn, fmt.Sprintf("%s, %d of them left by daemons that are gone", detail, orphans),
			"start opencode-lsp (it kills them in the background) or kill them in the provider's dashboard")
	} else {
		d.add(name+"key accepted", statusOK, detail, "")
	}

	ws := d.tmp + "/" + provider
	_ = os.MkdirAll(ws, 0o755)
	labels := d.inst.Labels()
	labels["opencode-lsp-doctor"] = "1"
	start := time.Now()
	sb, err := pr.Open(ctx, sandbox.Spec{Key: "doctor-" + d.inst.ID, WorkspaceRoot: ws, Labels: labels, Timeout: 10 * time.Minute})
	if err != nil {
		fix := "check the account's sandbox quota and concurrency limit"
		if provider == "e2b" {
			fix += ", and the template (opencode.e2b.template, default \"base\")"
		} else {
			fix += ", and opencode.daytona.snapshot / target"
		}
		d.add(name+"create sandbox", statusFail, err.Error(), fix)
		return
	}
	id := sb.ID()
	d.add(name+"create sandbox", statusOK, fmt.Sprintf("sandbox %s in %s", id, time.Since(start).Round(time.Millisecond)), "")
	killed := false
	defer func() {
		if !killed {
			_ = sb.Close(context.WithoutCancel(ctx))
		}
	}()

	if d.roundTrip(ctx, provider, sb) {
		d.checkCloudOpenCode(ctx, provider, sb, orKey, bin)
	}

	if err := sb.Close(ctx); err != nil {
		d.add(name+"kill sandbox", statusFail, err.Error(), "kill sandbox "+id+" in the provider's dashboard (it keeps billing until its timeout)")
		return
	}
	killed = true
	d.add(name+"kill sandbox", statusOK, "sandbox "+id+" killed", "")
	exists, err := inv.Exists(ctx, id)
	switch {
	case err != nil:
		d.add(name+"cleanup verified", statusFail, err.Error(), "check in the provider's dashboard that sandbox "+id+" is gone")
	case exists:
		d.add(name+"cleanup verified", statusFail, "sandbox "+id+" still exists after the kill", "kill sandbox "+id+" in the provider's dashboard")
	default:
		d.add(name+"cleanup verified", statusOK, "sandbox "+id+" is gone", "")
	}
}

// checkCloudOpenCode finds OpenCode in the sandbox, then starts `opencode
// serve` there and reaches it through the sandbox's preview URL, as
// opencode.generate does.
func (d *doctor) checkCloudOpenCode(ctx context.Context, provider string, sb sandbox.Sandbox, orKey, bin string) {
	name := provider + ": "
	in := fleet.OpenCodeInstall{Candidates: []string{bin, "opencode"}}
	if d.install {
		in.Version = opencode.TestedVersion
	}
	found, err := fleet.FindOrInstallOpenCode(ctx, sb, in)
	if err != nil {
		if errors.Is(err, fleet.ErrOpenCodeMissing) && !d.install {
			d.add(name+"OpenCode", statusWarn, "not installed in the sandbox; the first opencode.generate installs opencode-ai@"+opencode.TestedVersion+" with npm",
				"use a template/snapshot with opencode on its PATH, or run doctor --install to check the install")
		} else {
			d.add(name+"OpenCode", statusFail, err.Error(), "use a sandbox image with Node.js and npm, or with opencode on its PATH")
		}
		d.add(name+"OpenCode API", statusSkip, "no OpenCode in the sandbox", "")
		return
	}
	d.add(name+"OpenCode", statusOK, fmt.Sprintf("%s (version %s)%s", found.Path, found.Version, map[bool]string{true: ", installed now"}[found.Installed]), "")

	pv, err := sb.PreviewURL(ctx, 4096)
	if err == nil && pv.URL == "" {
		err = errors.New("the provider answered an empty URL")
	}
	if err != nil {
		d.add(name+"preview URL", statusFail, "no sandbox URL returned: "+err.Error(), fleet.PreviewFix(provider))
		return
	}
	d.add(name+"preview URL", statusOK, "ports are reached at "+pv.URL, "")
	if orKey == "" {
		d.add(name+"OpenCode API", statusSkip, "OpenCode needs a valid OpenRouter key to start", "fix the openrouter checks first")
		return
	}
	cfg := opencode.Config{
		Binary: found.Path, APIKey: orKey, BaseURL: d.getenv("OPENROUTER_BASE_URL"), Model: d.model,
		Hostname: "0.0.0.0", Logger: d.log,
	}
	start := time.Now()
	srv, err := opencode.Start(ctx, sb, cfg)
	if err != nil {
		var pe *fleet.PreviewError
		if errors.As(err, &pe) || strings.Contains(err.Error(), "reach port") {
			d.add(name+"OpenCode API", statusFail, "no sandbox URL returned: "+err.Error(), fleet.PreviewFix(provider))
			return
		}
		d.add(name+"OpenCode API", statusFail, "OpenCode API failed: "+err.Error(),
			"OpenCode must listen on 0.0.0.0 and the provider's preview proxy must forward its port; the output quoted above says why OpenCode stopped")
		return
	}
	defer srv.Close()
	d.add(name+"OpenCode API", statusOK, fmt.Sprintf("OpenCode %s answered through the preview URL in %s", srv.Version(), time.Since(start).Round(time.Millisecond)), "")
}
