package changeset

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// symlinkScript lists the working copy's symlinks (outside any .git
// directory) as NUL-terminated records: first the real path of the working
// copy, then for each symlink its path, its target as written, and its fully
// resolved path (realpath -m: missing components allowed). Only POSIX sh,
// find and coreutils' readlink/realpath are needed, so it runs in cloud
// sandboxes too.
const symlinkScript = `set -e
printf '%s\0' "$(realpath -- .)"
find . -iname .git -prune -o -type l -exec sh -c 'for l do printf "%s\0%s\0%s\0" "$l" "$(readlink -- "$l")" "$(realpath -m -- "$l")"; done' sh {} +
`

// symlinkOutputLimit bounds the scan's output; a working copy with more
// symlinks than fit is refused as a whole rather than half checked.
const symlinkOutputLimit = 64 << 20

type symlink struct {
	path    string // workspace-relative
	target  string // as written (readlink)
	escapes bool   // resolves outside the working copy
}

type symlinks struct {
	byPath map[string]symlink
	list   []symlink // in scan order
}

// through returns the symlink that p is or goes through (its nearest
// symlinked element, from the root down).
func (s symlinks) through(p string) (symlink, bool) {
	if len(s.byPath) == 0 {
		return symlink{}, false
	}
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			if l, ok := s.byPath[p[:i]]; ok {
				return l, true
			}
		}
	}
	return symlink{}, false
}

// scanSymlinks runs [symlinkScript] in the sandbox.
func scanSymlinks(ctx context.Context, sb sandbox.Sandbox) (symlinks, error) {
	var out, errOut bytes.Buffer
	st, err := sb.Exec(ctx, sandbox.Cmd{
		Shell:       symlinkScript,
		Stdout:      &out,
		Stderr:      &errOut,
		Timeout:     2 * time.Minute,
		OutputLimit: symlinkOutputLimit,
	})
	if err != nil {
		return symlinks{}, fmt.Errorf("harvest: check symlinks: %w", err)
	}
	if st.Code != 0 || st.DroppedBytes > 0 {
		msg := strings.TrimSpace(lastLine(errOut.String()))
		if st.DroppedBytes > 0 {
			msg = "too many symlinks to check"
		}
		return symlinks{}, fmt.Errorf("harvest: check symlinks: exit code %d: %s", st.Code, msg)
	}
	return parseSymlinks(out.Bytes())
}

// parseSymlinks decodes the records of [symlinkScript].
func parseSymlinks(b []byte) (symlinks, error) {
	fields := strings.Split(string(b), "\x00")
	if len(fields) < 2 || fields[len(fields)-1] != "" || (len(fields)-2)%3 != 0 {
		return symlinks{}, fmt.Errorf("harvest: check symlinks: malformed output (%d bytes)", len(b))
	}
	root := strings.TrimSuffix(fields[0], "/")
	if root == "" || !strings.HasPrefix(root, "/") {
		return symlinks{}, fmt.Errorf("harvest: check symlinks: bad root %q", fields[0])
	}
	s := symlinks{byPath: map[string]symlink{}}
	for i := 1; i+2 < len(fields); i += 3 {
		p := strings.TrimPrefix(fields[i], "./")
		resolved := fields[i+2]
		l := symlink{
			path:    p,
			target:  fields[i+1],
			escapes: resolved != root && !strings.HasPrefix(resolved, root+"/"),
		}
		s.byPath[p] = l
		s.list = append(s.list, l)
	}
	return s, nil
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
