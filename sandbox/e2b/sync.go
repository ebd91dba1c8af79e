package e2b

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"mime/multipart"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// syncState is what the provider knows about the working copy.
type syncState struct {
	// pushed is what earlier syncs put in the sandbox; Hash "" means the
	// upload's outcome is unknown, so the file is sent again.
	pushed sandbox.Manifest
	// known holds paths last seen as regular files (sync or manifest).
	known map[string]bool
	// cache remembers hashes of unchanged local files by size, mtime and
	// mode.
	cache map[string]localFile
	// ex is the exclude matcher of the last sync (Manifest applies it).
	ex *sandbox.Excluder
}

type localFile struct {
	size  int64
	mtime time.Time
	mode  fs.FileMode
	hash  string
}

// Upload batching: one POST /files carries at most this many files or
// bytes.
const (
	batchFiles = 500
	batchBytes = 8 << 20
	// argBudget bounds the bytes of arguments given to one helper process.
	argBudget = 96 << 10
)

// Sync brings the working copy up to date with src; see
// [sandbox.Sandbox.Sync]. Changed and new files are uploaded in multipart
// batches; removed files are deleted and permission bits set by one helper
// process per batch of paths.
func (s *Sandbox) Sync(ctx context.Context, src sandbox.Source) (sandbox.Manifest, sandbox.SyncStats, error) {
	started := time.Now()
	const op = "sync"
	if err := s.checkOpen(op); err != nil {
		return nil, sandbox.SyncStats{}, err
	}
	if !filepath.IsAbs(src.Root) {
		return nil, sandbox.SyncStats{}, fmt.Errorf("e2b: %s in sandbox %s: source root %q is not absolute", op, s.id, src.Root)
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if err := s.touch(ctx, time.Minute); err != nil {
		return nil, sandbox.SyncStats{}, s.errorf(op, err)
	}
	ex, err := sandbox.NewExcluder(src.Excludes, src.IncludeGit)
	if err != nil {
		return sandbox.Manifest{}, sandbox.SyncStats{}, s.errorf(op, err)
	}
	next, contents, skipped, err := s.scan(src, ex)
	if err != nil {
		return nil, sandbox.SyncStats{}, fmt.Errorf("e2b: %s in sandbox %s: %w", op, s.id, err)
	}
	// The working copy is compared with the source, not with what earlier
	// syncs sent: a command may have changed a synced file, and the source
	// wins.
	remote, err := s.remoteManifest(ctx, ex)
	if err != nil {
		return nil, sandbox.SyncStats{}, s.errorf(op, err)
	}
	st := &s.state
	if st.pushed == nil {
		st.pushed = sandbox.Manifest{}
	}
	// A rewritten file keeps its mode (the upload truncates it in place), so
	// only new files and files whose mode differs are chmod-ed.
	var write, chmod, remove []string
	for p, fsNew := range next {
		have, ok := remote[p]
		if !ok || have.Hash != fsNew.Hash {
			write = append(write, p)
		}
		if !ok || have.Mode != fsNew.Mode {
			chmod = append(chmod, p)
		}
	}
	// Files an earlier sync put there and the source no longer has go,
	// whether or not they are still there (rm -f); nothing else is removed.
	for p := range st.pushed {
		if _, ok := next[p]; !ok {
			remove = append(remove, p)
		}
	}
	stats := sandbox.SyncStats{Files: len(next), Skipped: skipped}
	mu := &s.mu

	// Upload in batches; a batch's files are "unknown" until it succeeds.
	for len(write) > 0 {
		n, size := 0, int64(0)
		for n < len(write) && n < batchFiles && (n == 0 || size+next[write[n]].Size <= batchBytes) {
			size += next[write[n]].Size
			n++
		}
		batch := write[:n]
		write = write[n:]
		mu.Lock()
		for _, p := range batch {
			st.pushed[p] = sandbox.FileState{} // outcome unknown until it succeeds
		}
		mu.Unlock()
		sent, err := s.uploadBatch(ctx, src.Root, batch, contents)
		if err != nil {
			return nil, stats, s.errorf(op, err)
		}
		mu.Lock()
		for _, p := range batch {
			fsNew := next[p]
			// The content sent is what the sandbox holds, even if the
			// file changed after the scan.
			fsNew.Hash, fsNew.Size = sent[p].Hash, sent[p].Size
			next[p] = fsNew
			st.pushed[p] = fsNew
			stats.Bytes += fsNew.Size
		}
		mu.Unlock()
		stats.Written += len(batch)
	}
	if err := s.fixup(ctx, remove, chmod, next); err != nil {
		return nil, stats, s.errorf(op, err)
	}
	mu.Lock()
	for _, p := range remove {
		delete(st.pushed, p)
	}
	for p, f := range next {
		st.pushed[p] = f
	}
	st.known = make(map[string]bool, len(next))
	for p := range next {
		st.known[p] = true
	}
	st.ex = ex
	mu.Unlock()
	stats.Removed = len(remove)
	stats.Elapsed = time.Since(started)
	return maps.Clone(next), stats, nil
}

// scan lists the source's regular files (excludes applied, overlays
// winning) with their hashes; contents holds the overlays' bytes.
func (s *Sandbox) scan(src sandbox.Source, ex *sandbox.Excluder) (sandbox.Manifest, map[string][]byte, int, error) {
	out := sandbox.Manifest{}
	skipped := 0
	cache := s.state.cache
	newCache := map[string]localFile{}
	err := filepath.WalkDir(src.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == src.Root {
				return err
			}
			return nil // unreadable entries are skipped like vanished ones
		}
		if p == src.Root {
			return nil
		}
		rel := filepath.ToSlash(p[len(src.Root)+1:])
		if d.IsDir() {
			if ex.Match(rel, true) {
				return filepath.SkipDir
			}
			return nil
		}
		if ex.Match(rel, false) {
			return nil
		}
		if !d.Type().IsRegular() {
			skipped++ // symlinks, sockets, devices, fifos
			return nil
		}
		info, err := d.Info()
		if err != nil {
			skipped++
			return nil
		}
		lf := localFile{size: info.Size(), mtime: info.ModTime(), mode: info.Mode().Perm()}
		if c, ok := cache[rel]; ok && c.size == lf.size && c.mtime.Equal(lf.mtime) && c.mode == lf.mode {
			lf.hash = c.hash
		} else {
			h, n, err := hashFile(p)
			if err != nil {
				skipped++
				return nil
			}
			lf.hash, lf.size = h, n
		}
		newCache[rel] = lf
		out[rel] = sandbox.FileState{Size: lf.size, Mode: lf.mode, Hash: lf.hash}
		return nil
	})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("reading the workspace: %w", err)
	}
	s.state.cache = newCache
	contents := map[string][]byte{}
	for name, data := range src.Overlays {
		rel, err := cleanRel(name)
		if err != nil || rel == "." {
			return nil, nil, 0, fmt.Errorf("overlay %q: %w", name, sandbox.ErrPathEscape)
		}
		if ex.Excluded(rel) {
			continue
		}
		mode := fs.FileMode(0o644)
		if f, ok := out[rel]; ok {
			mode = f.Mode
		}
		sum := sha256.Sum256(data)
		out[rel] = sandbox.FileState{Size: int64(len(data)), Mode: mode, Hash: hex.EncodeToString(sum[:])}
		contents[rel] = data
	}
	return out, contents, skipped, nil
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// uploadBatch sends files in one multipart POST /files and returns what was
// actually sent for each (hash and size of the bytes read).
func (s *Sandbox) uploadBatch(ctx context.Context, root string, batch []string, contents map[string][]byte) (map[string]sandbox.FileState, error) {
	var sent map[string]sandbox.FileState
	err := s.envd.upload(ctx, func(mw *multipart.Writer) error {
		sent = make(map[string]sandbox.FileState, len(batch))
		for _, rel := range batch {
			w, err := mw.CreateFormFile("file", s.root+"/"+rel)
			if err != nil {
				return err
			}
			h := sha256.New()
			var n int64
			if data, ok := contents[rel]; ok {
				n, err = io.Copy(io.MultiWriter(w, h), bytes.NewReader(data))
			} else {
				n, err = copyFile(io.MultiWriter(w, h), filepath.Join(root, filepath.FromSlash(rel)))
			}
			if err != nil {
				return fmt.Errorf("sending %s: %w", rel, err)
			}
			sent[rel] = sandbox.FileState{Size: n, Hash: hexSum(h)}
		}
		return nil
	})
	return sent, err
}

func copyFile(w io.Writer, name string) (int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(w, f)
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// fixupScript deletes and chmods files in the working copy "$1". The rest
// of the arguments are groups "<op> path... :" where op is "rm" or an octal
// mode; paths start with "./".
const fixupScript = `cd "$1" || exit 3; shift
op=; files=(); st=0
flush() { if [ ${#files[@]} -gt 0 ]; then if [ "$op" = rm ]; then rm -f -- "${files[@]}" || st=1; else chmod "$op" -- "${files[@]}" || st=1; fi; fi; files=(); }
for a; do if [ "$a" = : ]; then flush; op=; elif [ -z "$op" ]; then op=$a; else files+=("$a"); fi; done
flush; exit $st`

// fixup removes files and sets permission bits, packing the work into as
// few helper processes as the argument budget allows.
func (s *Sandbox) fixup(ctx context.Context, remove, chmod []string, next sandbox.Manifest) error {
	groups := map[string][]string{}
	if len(remove) > 0 {
		groups["rm"] = remove
	}
	for _, p := range chmod {
		m := strconv.FormatUint(uint64(next[p].Mode.Perm()), 8)
		groups[m] = append(groups[m], p)
	}
	ops := make([]string, 0, len(groups))
	for op := range groups {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	base := []string{"bash", "-c", fixupScript, "fixup", s.root}
	args, size := slices.Clone(base), 0
	flush := func() error {
		if len(args) == len(base) {
			return nil
		}
		res, err := s.run(ctx, "", args, 16<<10)
		if err == nil && res.code != 0 {
			err = fmt.Errorf("removing and chmod-ing synced files failed (exit %d): %s", res.code, bytes.TrimSpace(res.stderr))
		}
		args, size = slices.Clone(base), 0
		return err
	}
	for _, op := range ops {
		args = append(args, op)
		for _, p := range groups[op] {
			if size+len(p) > argBudget {
				args = append(args, ":")
				if err := flush(); err != nil {
					return err
				}
				args = append(args, op)
			}
			args = append(args, "./"+p)
			size += len(p) + 3
		}
		args = append(args, ":")
	}
	return flush()
}

// manifestScript lists the regular files under "$1" twice: "<mode> <size>
// <path>\0" records, an empty record, then sha256sum lines. The remaining
// arguments are find(1) predicates pruning excluded directories.
const manifestScript = `cd "$1" || exit 3; shift
find . "$@" -type f -printf '%m %s %P\0' || exit 4
printf '\0'
find . "$@" -type f -print0 | xargs -0 -r sha256sum -- || exit 5`

// manifestLimit bounds the helper's output (about 150 bytes a file).
const manifestLimit = 256 << 20

// Manifest lists the regular files now in the working copy with their
// SHA-256, computed in the sandbox by one process (no file is downloaded);
// the excludes of the last Sync apply.
func (s *Sandbox) Manifest(ctx context.Context) (sandbox.Manifest, error) {
	const op = "manifest"
	if err := s.checkOpen(op); err != nil {
		return nil, err
	}
	s.mu.Lock()
	ex := s.state.ex
	s.mu.Unlock()
	if ex == nil {
		ex, _ = sandbox.NewExcluder(nil, false)
	}
	m, err := s.remoteManifest(ctx, ex)
	if err != nil {
		return nil, s.errorf(op, err)
	}
	known := make(map[string]bool, len(m))
	for p := range m {
		known[p] = true
	}
	s.mu.Lock()
	s.state.known = known
	s.mu.Unlock()
	return m, nil
}

// remoteManifest lists the working copy's regular files with their hashes
// by one helper process, ex applied.
func (s *Sandbox) remoteManifest(ctx context.Context, ex *sandbox.Excluder) (sandbox.Manifest, error) {
	argv := append([]string{"/bin/sh", "-c", manifestScript, "manifest", s.root}, ex.FindPrune(nil)...)
	res, err := s.run(ctx, "", argv, manifestLimit)
	if err == nil && res.code != 0 {
		err = fmt.Errorf("listing files failed (exit %d): %s", res.code, bytes.TrimSpace(res.stderr))
	}
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(res.stdout)
	if err != nil {
		return nil, err
	}
	for p := range m {
		if ex.Excluded(p) {
			delete(m, p)
		}
	}
	return m, nil
}

// parseManifest reads manifestScript's output.
func parseManifest(out []byte) (sandbox.Manifest, error) {
	stats, hashes, ok := bytes.Cut(out, []byte("\x00\x00"))
	if !ok {
		if !bytes.HasPrefix(out, []byte("\x00")) {
			return nil, errors.New("malformed file listing")
		}
		stats, hashes = nil, out[1:]
	} else {
		stats = append(stats, 0)
	}
	m := sandbox.Manifest{}
	for rec := range bytes.SplitSeq(stats, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		f := strings.SplitN(string(rec), " ", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("malformed file record %q", rec)
		}
		mode, err1 := strconv.ParseUint(f[0], 8, 32)
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("malformed file record %q", rec)
		}
		m[f[2]] = sandbox.FileState{Size: size, Mode: fs.FileMode(mode).Perm()}
	}
	sc := bufio.NewScanner(bytes.NewReader(hashes))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		escaped := strings.HasPrefix(line, `\`)
		if escaped {
			line = line[1:]
		}
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 {
			return nil, fmt.Errorf("malformed sha256sum line %q", line)
		}
		if escaped {
			name = unescapeSum(name)
		}
		name = strings.TrimPrefix(name, "./")
		if f, ok := m[name]; ok {
			f.Hash = sum
			m[name] = f
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for p, f := range m {
		if f.Hash == "" { // vanished between the two listings
			delete(m, p)
		}
	}
	return m, nil
}

// unescapeSum undoes sha256sum's escaping of names holding "\\", "\n" or
// "\r".
func unescapeSum(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
				continue
			case 'r':
				b.WriteByte('\r')
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// knownFile reports whether the last sync or manifest saw rel as a regular
// file of the working copy.
func (s *Sandbox) knownFile(rel string) bool {
	c, err := cleanRel(rel)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.known[c]
}
