package e2b

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"mime/multipart"
	"net/http"
	"strconv"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// insideRoot exits 0 when "$1" resolves (symlinks followed, missing parts
// allowed) inside the working copy "$0", 86 when it does not.
const insideRoot = `r=$(realpath -m -- "$0") && p=$(realpath -m -- "$1") || exit 2; case "$p" in "$r"|"$r"/*) exit 0;; esac; exit 86`

// ReadFile downloads a workspace-relative file (GET /files). A file that
// does not exist gives an error matching [sandbox.ErrNotFound]; a path that
// leaves the working copy, also through a symlink, [sandbox.ErrPathEscape].
func (s *Sandbox) ReadFile(ctx context.Context, name string) ([]byte, error) {
	const op = "read file"
	if err := s.checkOpen(op); err != nil {
		return nil, err
	}
	p, err := s.remotePath(op, name)
	if err != nil {
		return nil, err
	}
	if err := s.checkInside(ctx, op, name, p); err != nil {
		return nil, err
	}
	data, err := s.envd.download(ctx, p)
	var he *httpError
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		return nil, fmt.Errorf("e2b: %s %q in sandbox %s: %w", op, name, s.id, sandbox.ErrNotFound)
	}
	if err != nil {
		return nil, s.errorf(fmt.Sprintf("%s %q", op, name), err)
	}
	return data, nil
}

// WriteFile uploads a workspace-relative file (POST /files, parent
// directories created) and sets its permission bits to mode.Perm() (0644
// when mode is 0).
func (s *Sandbox) WriteFile(ctx context.Context, name string, data []byte, mode fs.FileMode) error {
	const op = "write file"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	p, err := s.remotePath(op, name)
	if err != nil {
		return err
	}
	if p == s.root {
		return fmt.Errorf("e2b: %s %q in sandbox %s: the working copy's root is a directory", op, name, s.id)
	}
	if err := s.checkInside(ctx, op, name, p); err != nil {
		return err
	}
	err = s.envd.upload(ctx, func(mw *multipart.Writer) error {
		w, err := mw.CreateFormFile("file", p)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	})
	if err != nil {
		return s.errorf(fmt.Sprintf("%s %q", op, name), err)
	}
	perm := mode.Perm()
	if perm == 0 {
		perm = 0o644
	}
	res, err := s.run(ctx, "", []string{"chmod", strconv.FormatUint(uint64(perm), 8), "--", p}, 4<<10)
	if err == nil && res.code != 0 {
		err = fmt.Errorf("chmod: %s", bytes.TrimSpace(res.stderr))
	}
	if err != nil {
		return s.errorf(fmt.Sprintf("%s %q", op, name), err)
	}
	return nil
}

// checkInside refuses a path that resolves outside the working copy through
// a symlink. Paths the last sync or manifest saw as regular files are
// trusted (find(1) does not descend symlinks); others are resolved in the
// sandbox.
func (s *Sandbox) checkInside(ctx context.Context, op, name, p string) error {
	if p == s.root || s.knownFile(name) {
		return nil
	}
	res, err := s.run(ctx, "", []string{"/bin/sh", "-c", insideRoot, s.root, p}, 4<<10)
	if err != nil {
		return s.errorf(fmt.Sprintf("%s %q", op, name), err)
	}
	switch res.code {
	case 0:
		return nil
	case 86:
		return fmt.Errorf("e2b: %s %q in sandbox %s: %w", op, name, s.id, sandbox.ErrPathEscape)
	}
	return fmt.Errorf("e2b: %s %q in sandbox %s: resolving the path failed: %s", op, name, s.id, bytes.TrimSpace(res.stderr))
}
