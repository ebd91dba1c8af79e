package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// copyBufs holds the buffers of file copies.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// syncWorkers is how many files a sync checks and copies at once: stat and
// create calls wait on the kernel, so a few more than the cores help.
var syncWorkers = max(4, 2*runtime.GOMAXPROCS(0))

// syncItem is one source entry a sync processes.
type syncItem struct {
	kind    itemKind
	rel     string
	abs     string // host path in the source ("" for an overlay not on disk)
	overlay []byte
}

type itemKind uint8

const (
	itemRegular itemKind = iota
	itemSymlink
	itemOverlay
)

// syncRun is the work of one Sync. The walk fills items sequentially; the
// workers then process them concurrently, recording under mu.
type syncRun struct {
	s       *Sandbox
	ctx     context.Context
	src     sandbox.Source
	ex      *sandbox.Excluder
	old     map[string]*fileRec // read-only while workers run
	srcDirs map[string]bool
	items   []syncItem

	mu      sync.Mutex
	files   map[string]*fileRec
	made    map[string]bool // working-copy dirs known to exist
	stats   sandbox.SyncStats
	written []string // paths whose Manifest cache entry is stale
	dirty   bool     // the state changed and must be saved
}

// Sync brings the working copy up to date with src (see [sandbox.Sandbox]).
// An unchanged tree costs two lstat calls per file, spread over a few
// workers. A file is written when its source changed (by stat, then by
// content) or its working-copy copy was modified since the last sync; files
// an earlier sync wrote and src no longer has are removed; files created in
// the working copy by commands are left alone. Overlays win over disk.
// Symlinks are copied when they stay inside the workspace (absolute ones
// pointing inside are made relative) and skipped otherwise, as are sockets,
// devices, fifos and unreadable entries; SyncStats.Skipped counts them.
// Empty directories are not copied.
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
	ex, err := sandbox.NewExcluder(src.Excludes, src.IncludeGit)
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
		made: map[string]bool{".": true}}
	werr := r.walk(overlays)
	if werr == nil {
		werr = r.work()
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
	for _, rel := range r.written {
		delete(s.st.Hashes, rel)
	}
	if !slices.Equal(s.st.Excludes, src.Excludes) || s.st.IncludeGit != src.IncludeGit {
		r.dirty = true
	}
	s.st.Files = r.files
	s.st.Excludes = append([]string(nil), src.Excludes...)
	s.st.IncludeGit = src.IncludeGit
	if r.dirty {
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
			m[rel] = sandbox.FileState{Size: rec.Size, Mode: rec.Perm, Hash: rec.Hash.String()}
		}
	}
	r.stats.Files = len(r.files)
	return m, r.stats, nil
}

// walk lists the source (minus excludes) into r.items, overlays included.
func (r *syncRun) walk(overlays map[string][]byte) error {
	root := r.src.Root
	nonDirs := map[string]bool{}
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if p == root {
			return err
		}
		rel := filepath.ToSlash(p[len(root)+1:])
		if err != nil {
			r.stats.Skipped++
			r.s.p.log.Debug("Sync skipped an unreadable entry", "path", rel, "err", err)
			return nil
		}
		if n++; n%1024 == 0 {
			if err := r.interrupted(); err != nil {
				return err
			}
		}
		isDir := d.IsDir()
		if r.ex.Match(rel, isDir) {
			if isDir {
				return filepath.SkipDir
			}
			return nil
		}
		if isDir {
			r.srcDirs[rel] = true
			return nil
		}
		nonDirs[rel] = true
		if b, ok := overlays[rel]; ok {
			delete(overlays, rel)
			r.items = append(r.items, syncItem{kind: itemOverlay, rel: rel, abs: p, overlay: b})
			return nil
		}
		switch t := d.Type(); {
		case t.IsRegular():
			r.items = append(r.items, syncItem{kind: itemRegular, rel: rel, abs: p})
		case t&fs.ModeSymlink != 0:
			r.items = append(r.items, syncItem{kind: itemSymlink, rel: rel, abs: p})
		default:
			r.stats.Skipped++
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Overlays of files that are not on disk (new, unsaved buffers).
	rels := make([]string, 0, len(overlays))
	for rel := range overlays {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		if r.ex.Excluded(rel) {
			continue
		}
		if r.srcDirs[rel] || fileAbove(nonDirs, rel) {
			r.stats.Skipped++ // a directory on disk, or under a file
			continue
		}
		r.items = append(r.items, syncItem{kind: itemOverlay, rel: rel, overlay: overlays[rel]})
	}
	return nil
}

// work processes r.items with syncWorkers goroutines; the first error stops
// them.
func (r *syncRun) work() error {
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var failed atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < min(syncWorkers, len(r.items)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := sha256.New()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(r.items) {
					return
				}
				err := r.interrupted()
				if err == nil {
					err = r.process(&r.items[i], h)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func (r *syncRun) process(it *syncItem, h hash.Hash) error {
	switch it.kind {
	case itemRegular:
		return r.regular(it.rel, it.abs, h)
	case itemSymlink:
		return r.symlink(it.rel, it.abs)
	default:
		perm := fs.FileMode(0o644)
		if it.abs != "" {
			if fi, err := os.Lstat(it.abs); err == nil && fi.Mode().IsRegular() {
				perm = fi.Mode().Perm()
			}
		}
		return r.overlay(it.rel, it.overlay, perm, h)
	}
}

// record notes the state of rel after this sync.
func (r *syncRun) record(rel string, rec *fileRec, changed bool) {
	r.mu.Lock()
	r.files[rel] = rec
	if changed {
		r.dirty = true
	}
	r.mu.Unlock()
}

func (r *syncRun) skip() {
	r.mu.Lock()
	r.stats.Skipped++
	r.mu.Unlock()
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

// fileAbove reports whether one of the paths in nonDirs is a directory above
// rel.
func fileAbove(nonDirs map[string]bool, rel string) bool {
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		if nonDirs[d] {
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

func (r *syncRun) regular(rel, abs string, h hash.Hash) error {
	fi, err := os.Lstat(abs)
	if err != nil || !fi.Mode().IsRegular() {
		r.skip() // vanished or replaced since the walk
		return nil
	}
	key := keyOf(fi)
	perm := fi.Mode().Perm()
	old := r.old[rel]
	if old != nil && old.Link == "" && !old.Overlay && old.Perm == perm {
		if old.Src == key && r.wcUnchanged(rel, old) {
			r.record(rel, old, false)
			return nil
		}
		if old.Size == key.Size && r.wcUnchanged(rel, old) {
			// Touched but maybe not changed: compare content first.
			if d, err := hashFile(abs, h); err == nil && d == old.Hash {
				rec := *old
				rec.Src = key
				r.record(rel, &rec, true)
				return nil
			}
		}
	}
	f, err := os.OpenFile(abs, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		r.skip()
		r.s.p.log.Debug("Sync skipped an unreadable file", "path", rel, "err", err)
		return nil
	}
	defer f.Close()
	if fi2, err := f.Stat(); err == nil && fi2.Mode().IsRegular() {
		key = keyOf(fi2)
	}
	rec := &fileRec{Perm: perm, Src: key}
	if err := r.write(rel, f, rec, h); err != nil {
		return err
	}
	r.record(rel, rec, true)
	return nil
}

func (r *syncRun) overlay(rel string, b []byte, perm fs.FileMode, h hash.Hash) error {
	d := digest(sha256.Sum256(b))
	if old := r.old[rel]; old != nil && old.Overlay && old.Hash == d && old.Perm == perm && r.wcUnchanged(rel, old) {
		r.record(rel, old, false)
		return nil
	}
	rec := &fileRec{Overlay: true, Perm: perm}
	if err := r.write(rel, bytes.NewReader(b), rec, h); err != nil {
		return err
	}
	r.record(rel, rec, true)
	return nil
}

func (r *syncRun) symlink(rel, abs string) error {
	target, err := os.Readlink(abs)
	if err != nil {
		r.skip()
		return nil
	}
	if filepath.IsAbs(target) {
		t := filepath.Clean(target)
		if !within(t, r.src.Root) {
			r.skip()
			return nil
		}
		if target, err = filepath.Rel(filepath.Dir(abs), t); err != nil {
			r.skip()
			return nil
		}
	}
	target = filepath.ToSlash(target)
	if j := path.Join(path.Dir(rel), target); j == ".." || strings.HasPrefix(j, "../") {
		r.skip()
		return nil
	}
	if old := r.old[rel]; old != nil && old.Link == target && r.wcUnchanged(rel, old) {
		r.record(rel, old, false)
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
	r.mu.Lock()
	r.stats.Written++
	r.mu.Unlock()
	r.record(rel, &fileRec{Link: target, WC: keyOf(fi)}, true)
	return nil
}

// hashFile returns the SHA-256 of a host file.
func hashFile(abs string, h hash.Hash) (digest, error) {
	f, err := os.OpenFile(abs, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return digest{}, err
	}
	defer f.Close()
	return hashReader(h, f)
}

func hashReader(h hash.Hash, rd io.Reader) (digest, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	h.Reset()
	if _, err := io.CopyBuffer(h, rd, *bp); err != nil {
		return digest{}, err
	}
	var d digest
	h.Sum(d[:0])
	return d, nil
}

// write copies rd to rel in the working copy, replacing whatever is there,
// and fills rec's Size, Hash and WC.
func (r *syncRun) write(rel string, rd io.Reader, rec *fileRec, h hash.Hash) error {
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
	h.Reset()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), rd, *bp)
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
	h.Sum(rec.Hash[:0])
	rec.WC = keyOf(fi)
	r.mu.Lock()
	r.written = append(r.written, rel)
	r.stats.Written++
	r.stats.Bytes += n
	r.mu.Unlock()
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
	r.mu.Lock()
	done := r.made[dir]
	r.mu.Unlock()
	if done {
		return nil
	}
	if err := r.s.wc.MkdirAll(dir, 0o755); err != nil {
		if err := r.repairDir(dir); err != nil {
			return err
		}
	}
	r.mu.Lock()
	for d := dir; d != "." && !r.made[d]; d = path.Dir(d) {
		r.made[d] = true
	}
	r.mu.Unlock()
	return nil
}

// repairDir makes dir a directory when something that is not one is in the
// way (a file the source turned into a directory).
func (r *syncRun) repairDir(dir string) error {
	r.mu.Lock() // one repair at a time
	defer r.mu.Unlock()
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
	ex, err := sandbox.NewExcluder(s.st.Excludes, s.st.IncludeGit)
	if err != nil {
		return nil, s.errorf("manifest", err)
	}
	m := sandbox.Manifest{}
	seen := make(map[string]bool, len(s.st.Hashes))
	changed := false
	files := s.st.Files
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
		if ex.Match(rel, d.IsDir()) {
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
		if rec := files[rel]; rec != nil && rec.Link == "" && rec.WC == key {
			m[rel] = sandbox.FileState{Size: fi.Size(), Mode: fi.Mode().Perm(), Hash: rec.Hash.String()}
			return nil
		}
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
		m[rel] = sandbox.FileState{Size: fi.Size(), Mode: fi.Mode().Perm(), Hash: hr.Hash.String()}
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
