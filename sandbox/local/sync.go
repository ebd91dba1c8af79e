package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// statKey is what a file's stat says about its content: a file whose key is
// unchanged is taken as unchanged. ctime is part of it because no tool can
// set it, so a rewrite that preserves mtime (cp -p, touch -r) is still seen.
type statKey struct {
	Size  int64
	Mtime int64 // ns
	Ctime int64 // ns
	Ino   uint64
	Mode  fs.FileMode
}

func keyOf(fi fs.FileInfo) statKey {
	k := statKey{Size: fi.Size(), Mtime: fi.ModTime().UnixNano(), Mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.Ctime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
		k.Ino = st.Ino
	}
	return k
}

// fileRec is what the last sync put at one path of the working copy.
type fileRec struct {
	Link    string      // symlink target; "" for a regular file
	Overlay bool        // content came from an editor buffer
	Perm    fs.FileMode // permission bits of a regular file
	Src     statKey     // the source file when it was read (zero for overlays)
	Size    int64
	Hash    string  // hex SHA-256 of the content written
	WC      statKey // the working-copy file after writing
}

// hashRec caches a working-copy file's hash by its stat.
type hashRec struct {
	Key  statKey
	Hash string
}

// stateVersion changes when syncState's encoding does.
const stateVersion = 1

// syncState is persisted in sync.state.
type syncState struct {
	Version    int
	Excludes   []string
	IncludeGit bool
	Files      map[string]*fileRec
	Hashes     map[string]hashRec // Manifest's cache, by path
}

func newState() *syncState {
	return &syncState{Version: stateVersion, Files: map[string]*fileRec{}, Hashes: map[string]hashRec{}}
}

// loadState reads the state file; a missing or unreadable one yields an empty
// state (the next sync then checks every file by content).
func loadState(file string) *syncState {
	b, err := os.ReadFile(file)
	if err != nil {
		return newState()
	}
	st := newState()
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(st); err != nil || st.Version != stateVersion {
		return newState()
	}
	if st.Files == nil {
		st.Files = map[string]*fileRec{}
	}
	if st.Hashes == nil {
		st.Hashes = map[string]hashRec{}
	}
	return st
}

func saveState(file string, st *syncState) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// excluder matches gitignore-style patterns against slash paths.
type excluder struct {
	m gitignore.Matcher
}

func newExcluder(patterns []string, includeGit bool) (*excluder, error) {
	var ps []gitignore.Pattern
	if !includeGit {
		ps = append(ps, gitignore.ParsePattern(".git", nil))
	}
	for _, p := range patterns {
		if strings.IndexByte(p, 0) >= 0 {
			return nil, fmt.Errorf("exclude pattern %q contains NUL", p)
		}
		t := strings.TrimRight(p, " \t\r\n")
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(t, nil))
	}
	return &excluder{gitignore.NewMatcher(ps)}, nil
}

func (e *excluder) match(rel string, isDir bool) bool {
	return e.m.Match(strings.Split(rel, "/"), isDir)
}

// copyBufs holds the buffers of file copies.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// syncRun is the work of one Sync.
type syncRun struct {
	s       *Sandbox
	ctx     context.Context
	src     sandbox.Source
	ex      *excluder
	old     map[string]*fileRec
	files   map[string]*fileRec
	srcDirs map[string]bool
	made    map[string]bool // working-copy dirs known to exist
	stats   sandbox.SyncStats
	h       hash.Hash
	n       int
	dirty   bool // the state changed and must be saved
}

// Sync brings the working copy up to date with src (see [sandbox.Sandbox]).
// An unchanged tree costs two lstat calls per file. A file is written when
// its source changed (by stat, then by content) or its working-copy copy
// was modified since the last sync; files an earlier sync wrote and src no
// longer has are removed; files created in the working copy by commands are
// left alone. Overlays win over disk. Symlinks are copied when they stay
// inside the workspace (absolute ones pointing inside are made relative) and
// skipped otherwise, as are sockets, devices, fifos and unreadable entries;
// SyncStats.Skipped counts them. Empty directories are not copied.
func (s *Sandbox) Sync(ctx context.Context, src sandbox.Source) (sandbox.Manifest, sandbox.SyncStats, error) {
	start := time.Now()
	if err := s.enter(); err != nil {
		return nil, sandbox.SyncStats{}, s.errorf("sync", err)
	}
	defer s.wg.Done()
	if !filepath.IsAbs(src.Root) {
		return nil, sandbox.SyncStats{}, s.errorf("sync", fmt.Errorf("source root %q is not absolute", src.Root))
	}
	root := filepath.Clean(src.Root)
	if fi, err := os.Stat(root); err != nil {
		return nil, sandbox.SyncStats{}, s.errorf("sync", err)
	} else if !fi.IsDir() {
		return nil, sandbox.SyncStats{}, s.errorf("sync", fmt.Errorf("source root %q is not a directory", src.Root))
	}
	if within(s.root, root) || within(root, s.root) {
		return nil, sandbox.SyncStats{}, s.errorf("sync", fmt.Errorf("source root %q overlaps the working copy", src.Root))
	}
	ex, err := newExcluder(src.Excludes, src.IncludeGit)
	if err != nil {
		return nil, sandbox.SyncStats{}, s.errorf("sync", err)
	}
	overlays := make(map[string][]byte, len(src.Overlays))
	for p, b := range src.Overlays {
		rel, err := relPath(p)
		if err != nil || rel == "." {
			if err == nil {
				err = errors.New("overlay for the workspace root")
			}
			return nil, sandbox.SyncStats{}, s.errorf("sync", fmt.Errorf("overlay %q: %w", p, err))
		}
		overlays[rel] = b
	}
	src.Root = root

	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	r := &syncRun{s: s, ctx: ctx, src: src, ex: ex, old: s.st.Files,
		files: make(map[string]*fileRec, len(s.st.Files)), srcDirs: map[string]bool{".": true},
		made: map[string]bool{".": true}, h: sha256.New()}
	werr := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if p == root {
			return err
		}
		rel := filepath.ToSlash(p[len(root)+1:])
		if err != nil {
			r.stats.Skipped++
			s.p.log.Debug("Sync skipped an unreadable entry", "path", rel, "err", err)
			return nil
		}
		if r.n++; r.n%256 == 0 {
			if err := r.interrupted(); err != nil {
				return err
			}
		}
		isDir := d.IsDir()
		if ex.match(rel, isDir) {
			if isDir {
				return filepath.SkipDir
			}
			return nil
		}
		if isDir {
			r.srcDirs[rel] = true
			return nil
		}
		if b, ok := overlays[rel]; ok {
			delete(overlays, rel)
			perm := fs.FileMode(0o644)
			if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
				perm = fi.Mode().Perm()
			}
			return r.overlay(rel, b, perm)
		}
		switch t := d.Type(); {
		case t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				r.stats.Skipped++
				return nil
			}
			return r.regular(rel, p, fi)
		case t&fs.ModeSymlink != 0:
			return r.symlink(rel, p)
		default:
			r.stats.Skipped++
			return nil
		}
	})
	if werr == nil {
		// Overlays of files that are not on disk (new, unsaved buffers).
		rels := make([]string, 0, len(overlays))
		for rel := range overlays {
			rels = append(rels, rel)
		}
		sort.Strings(rels)
		for _, rel := range rels {
			if ex.match(rel, false) || r.excludedParent(rel) {
				continue
			}
			if r.srcDirs[rel] || r.fileAbove(rel) {
				r.stats.Skipped++ // a directory on disk, or under a file
				continue
			}
			if werr = r.overlay(rel, overlays[rel], 0o644); werr != nil {
				break
			}
		}
	}
	if werr == nil {
		werr = r.removeGone()
	}
	// Keep what was done even when interrupted: the records are accurate.
	if werr != nil {
		for rel, rec := range r.old {
			if _, ok := r.files[rel]; !ok {
				r.files[rel] = rec
			}
		}
	}
	if !slices.Equal(s.st.Excludes, src.Excludes) || s.st.IncludeGit != src.IncludeGit {
		r.dirty = true
	}
	s.st.Files = r.files
	s.st.Excludes = append([]string(nil), src.Excludes...)
	s.st.IncludeGit = src.IncludeGit
	if r.dirty {
		for rel, rec := range r.files {
			if rec.Link == "" {
				s.st.Hashes[rel] = hashRec{Key: rec.WC, Hash: rec.Hash}
			}
		}
		if err := saveState(s.path("sync.state"), s.st); err != nil && werr == nil {
			werr = err
		}
	}
	r.stats.Elapsed = time.Since(start)
	if werr != nil {
		return nil, r.stats, s.errorf("sync", werr)
	}
	m := make(sandbox.Manifest, len(r.files))
	for rel, rec := range r.files {
		if rec.Link == "" {
			m[rel] = sandbox.FileState{Size: rec.Size, Mode: rec.Perm, Hash: rec.Hash}
		}
	}
	r.stats.Files = len(r.files)
	return m, r.stats, nil
}

func (r *syncRun) interrupted() error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	select {
	case <-r.s.closeCh:
		return sandbox.ErrClosed
	default:
		return nil
	}
}

// fileAbove reports whether a file or symlink of this sync sits at a
// directory above rel.
func (r *syncRun) fileAbove(rel string) bool {
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		if _, ok := r.files[d]; ok {
			return true
		}
	}
	return false
}

// excludedParent reports whether a directory above rel is excluded.
func (r *syncRun) excludedParent(rel string) bool {
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		if r.ex.match(d, true) {
			return true
		}
	}
	return false
}

// wcUnchanged reports whether the working copy still holds what rec says
// the last sync wrote. It only reads metadata, so a plain lstat is safe even
// if a command replaced a parent directory with a symlink.
func (r *syncRun) wcUnchanged(rel string, rec *fileRec) bool {
	fi, err := os.Lstat(filepath.Join(r.s.root, filepath.FromSlash(rel)))
	return err == nil && keyOf(fi) == rec.WC
}

func (r *syncRun) regular(rel, abs string, fi fs.FileInfo) error {
	key := keyOf(fi)
	perm := fi.Mode().Perm()
	old := r.old[rel]
	if old != nil && old.Link == "" && !old.Overlay && old.Perm == perm {
		if old.Src == key && r.wcUnchanged(rel, old) {
			r.files[rel] = old
			return nil
		}
		if old.Size == key.Size && r.wcUnchanged(rel, old) {
			// Touched but maybe not changed: compare content first.
			if h, err := r.hashFile(abs); err == nil && h == old.Hash {
				rec := *old
				rec.Src = key
				r.files[rel] = &rec
				r.dirty = true
				return nil
			}
		}
	}
	f, err := os.OpenFile(abs, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		r.stats.Skipped++
		r.s.p.log.Debug("Sync skipped an unreadable file", "path", rel, "err", err)
		return nil
	}
	defer f.Close()
	if fi2, err := f.Stat(); err == nil && fi2.Mode().IsRegular() {
		key = keyOf(fi2)
	}
	rec := &fileRec{Perm: perm, Src: key}
	if err := r.write(rel, f, rec); err != nil {
		return err
	}
	r.files[rel] = rec
	return nil
}

func (r *syncRun) overlay(rel string, b []byte, perm fs.FileMode) error {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	if old := r.old[rel]; old != nil && old.Overlay && old.Hash == h && old.Perm == perm && r.wcUnchanged(rel, old) {
		r.files[rel] = old
		return nil
	}
	rec := &fileRec{Overlay: true, Perm: perm}
	if err := r.write(rel, bytes.NewReader(b), rec); err != nil {
		return err
	}
	r.files[rel] = rec
	return nil
}

func (r *syncRun) symlink(rel, abs string) error {
	target, err := os.Readlink(abs)
	if err != nil {
		r.stats.Skipped++
		return nil
	}
	if filepath.IsAbs(target) {
		t := filepath.Clean(target)
		if !within(t, r.src.Root) {
			r.stats.Skipped++
			return nil
		}
		if target, err = filepath.Rel(filepath.Dir(abs), t); err != nil {
			r.stats.Skipped++
			return nil
		}
	}
	target = filepath.ToSlash(target)
	if j := path.Join(path.Dir(rel), target); j == ".." || strings.HasPrefix(j, "../") {
		r.stats.Skipped++
		return nil
	}
	if old := r.old[rel]; old != nil && old.Link == target && r.wcUnchanged(rel, old) {
		r.files[rel] = old
		return nil
	}
	if err := r.ensureParent(rel); err != nil {
		return err
	}
	if err := r.clear(rel); err != nil {
		return err
	}
	if err := r.s.wc.Symlink(target, rel); err != nil {
		return rootErr(rel, err)
	}
	fi, err := r.s.wc.Lstat(rel)
	if err != nil {
		return err
	}
	r.files[rel] = &fileRec{Link: target, WC: keyOf(fi)}
	r.stats.Written++
	r.dirty = true
	return nil
}

// hashFile returns the hex SHA-256 of a host file.
func (r *syncRun) hashFile(abs string) (string, error) {
	f, err := os.OpenFile(abs, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return hashReader(r.h, f)
}

func hashReader(h hash.Hash, rd io.Reader) (string, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	h.Reset()
	if _, err := io.CopyBuffer(h, rd, *bp); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// write copies rd to rel in the working copy, replacing whatever is there,
// and fills rec's Size, Hash and WC.
func (r *syncRun) write(rel string, rd io.Reader, rec *fileRec) error {
	if err := r.ensureParent(rel); err != nil {
		return err
	}
	if fi, err := r.s.wc.Lstat(rel); err == nil && !fi.Mode().IsRegular() {
		if err := r.clear(rel); err != nil {
			return err
		}
	}
	f, err := r.s.wc.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, rec.Perm)
	if err != nil {
		return rootErr(rel, err)
	}
	bp := copyBufs.Get().(*[]byte)
	r.h.Reset()
	n, err := io.CopyBuffer(io.MultiWriter(f, r.h), rd, *bp)
	copyBufs.Put(bp)
	if err != nil {
		f.Close()
		return fmt.Errorf("copy %s: %w", rel, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Mode().Perm() != rec.Perm {
		if err = f.Chmod(rec.Perm); err == nil {
			fi, err = f.Stat()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	rec.Size = n
	rec.Hash = hex.EncodeToString(r.h.Sum(nil))
	rec.WC = keyOf(fi)
	r.stats.Written++
	r.stats.Bytes += n
	r.dirty = true
	return nil
}

// clear removes whatever is at rel in the working copy.
func (r *syncRun) clear(rel string) error {
	if err := r.s.wc.RemoveAll(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rootErr(rel, err)
	}
	return nil
}

// ensureParent creates the directories above rel in the working copy,
// replacing non-directories that are in the way.
func (r *syncRun) ensureParent(rel string) error {
	dir := path.Dir(rel)
	if r.made[dir] {
		return nil
	}
	if err := r.s.wc.MkdirAll(dir, 0o755); err != nil {
		// Something that is not a directory is in the way: replace it.
		parts := strings.Split(dir, "/")
		for i := range parts {
			d := strings.Join(parts[:i+1], "/")
			fi, err := r.s.wc.Lstat(d)
			if err == nil && fi.IsDir() {
				continue
			}
			if err == nil {
				if err := r.s.wc.Remove(d); err != nil {
					return rootErr(d, err)
				}
			}
			if err := r.s.wc.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return rootErr(d, err)
			}
		}
	}
	for d := dir; d != "." && !r.made[d]; d = path.Dir(d) {
		r.made[d] = true
	}
	return nil
}

// removeGone removes the files an earlier sync wrote that are no longer in
// the source, then the directories this leaves empty that the source does
// not have.
func (r *syncRun) removeGone() error {
	var gone []string
	for rel := range r.old {
		if _, ok := r.files[rel]; !ok {
			gone = append(gone, rel)
		}
	}
	sort.Strings(gone)
	if len(gone) > 0 {
		r.dirty = true
	}
	dirs := map[string]bool{}
	for _, rel := range gone {
		if err := r.interrupted(); err != nil {
			return err
		}
		fi, err := r.s.wc.Lstat(rel)
		if err == nil && !fi.IsDir() {
			if err := r.s.wc.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return rootErr(rel, err)
			}
			r.stats.Removed++
		}
		delete(r.s.st.Hashes, rel)
		for d := path.Dir(rel); d != "." && !r.srcDirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	// Deepest first, so a parent is tried after its children.
	ds := make([]string, 0, len(dirs))
	for d := range dirs {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return strings.Count(ds[i], "/") > strings.Count(ds[j], "/") })
	for _, d := range ds {
		if fi, err := r.s.wc.Lstat(d); err == nil && fi.IsDir() {
			_ = r.s.wc.Remove(d) // fails when not empty: commands' files stay
		}
	}
	return nil
}

// Manifest lists the regular files of the working copy, minus the last
// sync's excludes (and .git unless it included it), with their SHA-256.
// Hashes are cached by stat (size, mtime, ctime, inode), so a repeated
// manifest of an unchanged tree only reads metadata.
func (s *Sandbox) Manifest(ctx context.Context) (sandbox.Manifest, error) {
	if err := s.enter(); err != nil {
		return nil, s.errorf("manifest", err)
	}
	defer s.wg.Done()
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	ex, err := newExcluder(s.st.Excludes, s.st.IncludeGit)
	if err != nil {
		return nil, s.errorf("manifest", err)
	}
	m := sandbox.Manifest{}
	seen := make(map[string]bool, len(s.st.Hashes))
	changed := false
	h := sha256.New()
	n := 0
	werr := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if p == s.root {
			return err
		}
		if err != nil {
			return nil // vanished or unreadable: not listed
		}
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rel := filepath.ToSlash(p[len(s.root)+1:])
		if ex.match(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		key := keyOf(fi)
		seen[rel] = true
		hr, ok := s.st.Hashes[rel]
		if !ok || hr.Key != key {
			f, err := s.wc.Open(rel)
			if err != nil {
				return nil
			}
			sum, err := hashReader(h, f)
			fi2, serr := f.Stat()
			f.Close()
			if err != nil || serr != nil {
				return nil
			}
			// Key by the stat taken after reading, so a file written while
			// it was hashed is hashed again next time.
			hr = hashRec{Key: keyOf(fi2), Hash: sum}
			s.st.Hashes[rel] = hr
			changed = true
		}
		m[rel] = sandbox.FileState{Size: fi.Size(), Mode: fi.Mode().Perm(), Hash: hr.Hash}
		return nil
	})
	if werr != nil {
		return nil, s.errorf("manifest", werr)
	}
	for rel := range s.st.Hashes {
		if !seen[rel] {
			delete(s.st.Hashes, rel)
			changed = true
		}
	}
	if changed {
		if err := saveState(s.path("sync.state"), s.st); err != nil {
			s.p.log.Warn("Could not save the sandbox state", "sandbox", s.id, "err", err)
		}
	}
	return m, nil
}
