package local

import (
	"path/filepath"
	"slices"
	"strings"
)

// ToolBinds returns the host directories to pass as Options.ReadOnlyBinds
// so that the given executables run inside the sandbox even when they live
// where bubblewrap hides things (/tmp, HOME): each one's directory, or for
// a program inside a node_modules tree (an npm-installed tool whose launcher
// finds its platform binary there) that whole node_modules directory — for
// the path as given and for its symlink-resolved target. Relative paths are
// ignored.
func ToolBinds(paths ...string) []string {
	var binds []string
	add := func(p string) {
		if p == "" || !filepath.IsAbs(p) {
			return
		}
		dir := filepath.Dir(p)
		sep := string(filepath.Separator)
		if i := strings.Index(p, sep+"node_modules"+sep); i >= 0 {
			dir = p[:i+len(sep+"node_modules")]
		}
		if !slices.Contains(binds, dir) {
			binds = append(binds, dir)
		}
	}
	for _, p := range paths {
		add(p)
		if r, err := filepath.EvalSymlinks(p); err == nil {
			add(r)
		}
	}
	return binds
}
