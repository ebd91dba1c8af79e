package changeset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
	"github.com/opencode-lsp/opencode-lsp/sandbox/local"
)

// openSandbox opens a local sandbox (bubblewrap when usable) over a
// workspace filled with files, syncs it (with .git) and returns it with the
// snapshot manifest taken right after the sync.
func openSandbox(t *testing.T, files map[string]string) (sandbox.Sandbox, sandbox.Manifest, string) {
	t.Helper()
	ws := t.TempDir()
	for name, content := range files {
		p := filepath.Join(ws, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := local.New(local.Options{StateDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sb, err := p.Open(ctx, sandbox.Spec{Key: t.Name(), WorkspaceRoot: ws})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	if _, _, err := sb.Sync(ctx, sandbox.Source{Root: ws, IncludeGit: true}); err != nil {
		t.Fatal(err)
	}
	snap, err := sb.Manifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return sb, snap, ws
}

func sh(t *testing.T, sb sandbox.Sandbox, script string) {
	t.Helper()
	var out strings.Builder
	st, err := sb.Exec(context.Background(), sandbox.Cmd{Shell: script, Stdout: &out, Stderr: &out})
	if err != nil || st.Code != 0 {
		t.Fatalf("%s: %v, exit %d: %s", script, err, st.Code, out.String())
	}
}

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestHarvestCreatedModifiedDeleted(t *testing.T) {
	sb, snap, ws := openSandbox(t, map[string]string{
		"keep.txt":        "same\n",
		"edit.txt":        "old\n",
		"gone.txt":        "bye\n",
		"dir/nested.go":   "package dir\n",
		"script.sh":       "echo hi\n",
		".git/HEAD":       "ref: refs/heads/main\n",
		".git/config":     "[core]\n",
		"sub/.git/config": "[core]\n",
	})
	ctx := context.Background()
	if err := sb.WriteFile(ctx, "new/page.html", []byte("<button>Hi</button>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sb.WriteFile(ctx, "edit.txt", []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, sb, `rm gone.txt dir/nested.go && chmod +x script.sh && echo x > .git/opencode && echo y >> .git/config && echo z > .git/hooks-x && echo w > sub/.git/config && printf '' > empty.txt`)

	changes, refused, err := Harvest(ctx, sb, snap, Limits{Ignore: []string{".git/opencode"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Change{}
	var order []string
	for _, c := range changes {
		got[c.Path] = c
		order = append(order, c.Path)
	}
	want := []string{"dir/nested.go", "edit.txt", "empty.txt", "gone.txt", "new/page.html", "script.sh"}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Fatalf("changes %v, want %v", order, want)
	}
	check := func(p string, a Action, content string) {
		t.Helper()
		c := got[p]
		if c.Action != a {
			t.Errorf("%s: action %q, want %q", p, c.Action, a)
		}
		if a != Deleted {
			if string(c.Content) != content || c.Hash != hashOf(content) {
				t.Errorf("%s: content %q hash %s, want %q", p, c.Content, c.Hash, content)
			}
		} else if c.Content != nil || c.Hash != "" {
			t.Errorf("%s: a deletion carries content", p)
		}
	}
	check("new/page.html", Created, "<button>Hi</button>\n")
	check("empty.txt", Created, "")
	check("edit.txt", Modified, "new\n")
	check("gone.txt", Deleted, "")
	check("dir/nested.go", Deleted, "")
	check("script.sh", Modified, "echo hi\n")
	if got["edit.txt"].OldHash != hashOf("old\n") || got["gone.txt"].OldHash != hashOf("bye\n") || got["new/page.html"].OldHash != "" {
		t.Errorf("old hashes: %+v", got)
	}
	if got["script.sh"].Mode&0o100 == 0 {
		t.Errorf("script.sh mode %v, want executable", got["script.sh"].Mode)
	}
	// .git/config, .git/hooks-x and sub/.git/config; .git/opencode ignored.
	if len(refused) != 1 || refused[0].Path != GitSummaryPath || refused[0].Reason != "3 changes under .git/ left out" {
		t.Errorf("refused %+v", refused)
	}
	// The user's workspace is never touched.
	if b, _ := os.ReadFile(filepath.Join(ws, "edit.txt")); string(b) != "old\n" {
		t.Errorf("workspace changed: %q", b)
	}
}

func TestHarvestNothingChanged(t *testing.T) {
	sb, snap, _ := openSandbox(t, map[string]string{"a.txt": "a\n", "link-target/x": "x"})
	sh(t, sb, `ln -s link-target inside-link && ln -s a.txt a-link`) // symlinks inside are not changes
	changes, refused, err := Harvest(context.Background(), sb, snap, Limits{})
	if err != nil || len(changes) != 0 || len(refused) != 0 {
		t.Fatalf("changes %+v refused %+v err %v", changes, refused, err)
	}
}

func TestHarvestSymlinks(t *testing.T) {
	sb, snap, _ := openSandbox(t, map[string]string{"a.txt": "a\n", "real/x.txt": "x\n"})
	outside := t.TempDir()
	sh(t, sb, `ln -s `+outside+` escape && ln -s ../../.. up && ln -s real alias && echo changed > real/x.txt`)
	changes, refused, err := Harvest(context.Background(), sb, snap, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Path != "real/x.txt" {
		t.Errorf("changes %+v, want real/x.txt only", changes)
	}
	reasons := map[string]string{}
	for _, r := range refused {
		reasons[r.Path] = r.Reason
	}
	if !strings.Contains(reasons["escape"], "outside the workspace") || !strings.Contains(reasons["escape"], outside) {
		t.Errorf("escape: %q", reasons["escape"])
	}
	if !strings.Contains(reasons["up"], "outside the workspace") {
		t.Errorf("up: %q", reasons["up"])
	}
	if _, ok := reasons["alias"]; ok || len(refused) != 2 {
		t.Errorf("refused %+v", refused)
	}
}

func TestHarvestThroughSymlink(t *testing.T) {
	// A symlink the manifest does not follow must still refuse a change
	// listed through it (a provider whose listing follows symlinks).
	links, err := parseSymlinks([]byte("/w\x00./lib\x00/etc\x00/etc\x00./in\x00real\x00/w/real\x00"))
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := links.through("lib/passwd"); !ok || !l.escapes || l.path != "lib" {
		t.Errorf("lib/passwd: %+v %v", l, ok)
	}
	if l, ok := links.through("in/x.txt"); !ok || l.escapes {
		t.Errorf("in/x.txt: %+v %v", l, ok)
	}
	if _, ok := links.through("library/x"); ok {
		t.Error("library/x is not under lib")
	}
	if _, ok := links.through("real/x"); ok {
		t.Error("real/x")
	}
	for _, bad := range []string{"", "/w", "/w\x00./a\x00b\x00", "relative\x00"} {
		if _, err := parseSymlinks([]byte(bad)); err == nil {
			t.Errorf("parseSymlinks(%q) accepted", bad)
		}
	}
}

func TestHarvestBadNames(t *testing.T) {
	sb, snap, _ := openSandbox(t, map[string]string{"a.txt": "a\n"})
	sh(t, sb, `printf x > "$(printf 'new\nline.txt')" && printf x > 'back\slash.txt' && printf x > "$(printf 'bad\377.txt')" && printf x > 'ok name é.txt'`)
	changes, refused, err := Harvest(context.Background(), sb, snap, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Path != "ok name é.txt" {
		t.Errorf("changes %+v", changes)
	}
	if len(refused) != 3 {
		t.Fatalf("refused %+v", refused)
	}
	for _, r := range refused {
		if r.Reason == "" {
			t.Errorf("%q: no reason", r.Path)
		}
	}
}

func TestHarvestSizeLimits(t *testing.T) {
	sb, snap, _ := openSandbox(t, map[string]string{"a.txt": "a\n"})
	ctx := context.Background()
	for name, size := range map[string]int{"big.bin": 2000, "m1.txt": 600, "m2.txt": 600, "m3.txt": 600, "small.txt": 10} {
		if err := sb.WriteFile(ctx, name, []byte(strings.Repeat("x", size)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	changes, refused, err := Harvest(ctx, sb, snap, Limits{MaxFileSize: 1024, MaxTotalSize: 1500})
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, c := range changes {
		kept = append(kept, c.Path)
	}
	// Path order: big.bin (too big), m1, m2 (1200 B), m3 (over the total),
	// small.txt (fits).
	if strings.Join(kept, ",") != "m1.txt,m2.txt,small.txt" {
		t.Errorf("kept %v", kept)
	}
	reasons := map[string]string{}
	for _, r := range refused {
		reasons[r.Path] = r.Reason
	}
	if reasons["big.bin"] != "the file is 2 KiB, over the 1 KiB limit per file" {
		t.Errorf("big.bin: %q", reasons["big.bin"])
	}
	if !strings.Contains(reasons["m3.txt"], "together") {
		t.Errorf("m3.txt: %q", reasons["m3.txt"])
	}
}

func TestCheckPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"a.txt":            true,
		"dir/sub/file.go":  true,
		"ünïcode/名前.txt":   true,
		".gitignore":       true,
		".github/ci.yml":   true,
		"a..b":             true,
		"":                 false,
		".":                false,
		"/etc/passwd":      false,
		"../outside.txt":   false,
		"a/../../x":        false,
		"a/./b":            false,
		"a//b":             false,
		"a/":               false,
		".git/hooks/x":     false,
		"sub/.GIT/config":  false,
		"a\x00b":           false,
		"a\nb":             false,
		"a\\..\\x":         false,
		"c:/windows":       false,
		"C:":               false,
		"bad\xffname":      false,
		"x\u0085y":         false,
		"ok/c:/notadrive":  true,
		"dir/.git-file.md": true,
	} {
		if got := CheckPath(p) == ""; got != ok {
			t.Errorf("CheckPath(%q) = %q, want ok=%v", p, CheckPath(p), ok)
		}
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 10 << 20: "10 MiB", 50 << 20: "50 MiB", 3 << 30: "3 GiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCrossCheck(t *testing.T) {
	changes := []Change{{Path: "a.txt"}, {Path: "gen/b.js"}}
	refused := []Refusal{{Path: "big.bin"}}
	unseen, unreported := CrossCheck(changes, refused, []string{"a.txt", "big.bin", "same.txt", "/etc/x", "same.txt"})
	if strings.Join(unseen, ",") != "/etc/x,same.txt" || strings.Join(unreported, ",") != "gen/b.js" {
		t.Errorf("unseen %v, unreported %v", unseen, unreported)
	}
}
