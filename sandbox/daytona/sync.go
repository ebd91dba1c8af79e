package daytona

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// syncRec is what the last sync put at one path of the working copy.
type syncRec struct {
	Link string      // symlink target; "" for a regular file
	Perm fs.FileMode // permission bits of a regular file
	Size int64
	Hash string // hex SHA-256 of the content
}

// remoteFile is what a listing of the working copy says about one entry.
type remoteFile struct {
	Key  string // inode, size, mtime and ctime: unchanged key, unchanged content
	Link string // symlink target; "" for a regular file
	Perm fs.FileMode
	Size int64
	Hash string // "" until known
}

// Upload batches: a request carries at most this many files or bytes.
const (
	batchFiles = 1000
	batchBytes = 64 << 20
)

// findExpr is the find(1) expression listing regular files and symlinks
// under the current directory, pruned by e.
func findExpr(e *sandbox.Excluder) string {
	const format = `-printf '%y %i %s %T@ %C@ %m\0%p\0%l\0'`
	prune := strings.Join(e.FindPrune(shq), " ")
	if prune != "" {
		prune += " "
	}
	return prune + `\( -type f -o -type l \) ` + format
}

// parseListing parses the output of findExpr's -printf: for each entry
// "<type> <ino> <size> <mtime> <ctime> <mode>\0./<path>\0<link target>\0".
func parseListing(out string) (map[string]remoteFile, error) {
	files := map[string]remoteFile{}
	fields := strings.Split(out, "\x00")
	for i := 0; i+2 < len(fields); i += 3 {
		head, p, link := fields[i], fields[i+1], fields[i+2]
		f := strings.Fields(head)
		if len(f) != 6 {
			return nil, fmt.Errorf("bad listing entry %q", head)
		}
		rel := strings.TrimPrefix(p, "./")
		if rel == p || rel == "" {
			return nil, fmt.Errorf("bad listing path %q", p)
		}
		size, err1 := strconv.ParseInt(f[2], 10, 64)
		perm, err2 := strconv.ParseUint(f[5], 8, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad listing entry %q", head)
		}
		rf := remoteFile{Key: f[1] + " " + f[2] + " " + f[3] + " " + f[4], Perm: fs.FileMode(perm) & fs.ModePerm, Size: size}
		switch f[0] {
		case "f":
		case "l":
			rf.Link = link
			if rf.Link == "" {
				rf.Link = "\x00" // an unreadable link still differs from any target
			}
		default:
			continue
		}
		files[rel] = rf
	}
	return files, nil
}

// parseHashes parses `sha256sum -z` output: "<hex>  <path>\0".
func parseHashes(out string) map[string]string {
	h := map[string]string{}
	for _, rec := range strings.Split(out, "\x00") {
		if len(rec) < 66 || rec[64] != ' ' {
			continue
		}
		h[strings.TrimPrefix(rec[66:], "./")] = rec[:64]
	}
	return h
}

// listing lists the working copy with e, filling the hashes of regular files
// from the cache (by stat key) or by hashing those the cache does not know
// with one more command. Excluded paths are left out. The cache is replaced
// by what the listing found.
func (s *Sandbox) listing(ctx context.Context, op string, e *sandbox.Excluder) (map[string]remoteFile, error) {
	script := fmt.Sprintf("cd %s || exit 3\nfind . %s 2>/dev/null\nexit 0\n", shq(s.root), findExpr(e))
	out, err := s.script(ctx, op, script, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	all, err := parseListing(out)
	if err != nil {
		return nil, &Error{Op: op + " in sandbox", Sandbox: s.id, Message: err.Error()}
	}
	files := make(map[string]remoteFile, len(all))
	var unknown []string
	s.mu.Lock()
	for rel, f := range all {
		if e.Excluded(rel) {
			continue
		}
		if f.Link == "" {
			if c, ok := s.cache[rel]; ok && c.Key == f.Key && c.Hash != "" {
				f.Hash = c.Hash
			} else {
				unknown = append(unknown, rel)
			}
		}
		files[rel] = f
	}
	s.mu.Unlock()
	if len(unknown) > 0 {
		sort.Strings(unknown)
		var b strings.Builder
		fmt.Fprintf(&b, "cd %s || exit 3\n%s | xargs -0 -r sha256sum -z -- 2>/dev/null\nexit 0\n", shq(s.root), nulList(unknown))
		out, err := s.script(ctx, op, b.String(), 10*time.Minute)
		if err != nil {
			return nil, err
		}
		sums := parseHashes(out)
		for _, rel := range unknown {
			f := files[rel]
			if h, ok := sums[rel]; ok {
				f.Hash = h
				files[rel] = f
			} else {
				// Vanished or unreadable since the listing.
				delete(files, rel)
			}
		}
	}
	s.mu.Lock()
	cache := make(map[string]remoteFile, len(files))
	for rel, f := range files {
		if f.Link == "" {
			cache[rel] = f
		}
	}
	for rel, f := range s.cache {
		if _, listed := all[rel]; listed {
			if _, ok := cache[rel]; !ok && e.Excluded(rel) {
				cache[rel] = f // excluded now, may be included again
			}
		}
	}
	s.cache = cache
	s.mu.Unlock()
	return files, nil
}

// Manifest lists the regular files of the working copy with their SHA-256,
// computed in the sandbox (see listing), leaving out the excludes of the last
// Sync.
func (s *Sandbox) Manifest(ctx context.Context) (sandbox.Manifest, error) {
	const op = "list the working copy"
	if err := s.enter(); err != nil {
		return nil, s.opErr(op, err)
	}
	defer s.running.Done()
	s.mu.Lock()
	excludes, includeGit := s.excludes, s.includeGit
	s.mu.Unlock()
	e, err := sandbox.NewExcluder(excludes, includeGit)
	if err != nil {
		return nil, s.opErr(op, err)
	}
	files, err := s.listing(ctx, op, e)
	if err != nil {
		return nil, s.opErr(op, err)
	}
	m := make(sandbox.Manifest, len(files))
	for rel, f := range files {
		if f.Link == "" {
			m[rel] = sandbox.FileState{Size: f.Size, Mode: f.Perm, Hash: f.Hash}
		}
	}
	return m, nil
}

// srcFile is one entry of the source to sync.
type srcFile struct {
	rec     syncRec
	abs     string // source file on disk; "" for an overlay
	overlay []byte
}

// srcHash caches source hashes by path and stat.
type srcHash struct {
	size, mtime, ctime int64
	ino                uint64
	hash               string
}

// Sync brings the working copy up to date with src (see [sandbox.Sandbox]):
// a source file is uploaded when the working copy's content differs (so a
// file a command changed is restored), permission bits follow the source,
// files an earlier sync wrote that src no longer has are removed, files
// commands created are left alone. Overlays win over disk. Symlinks that
// stay inside the workspace are recreated (absolute ones made relative);
// those pointing out of it, and special files, are skipped and counted in
// SyncStats.Skipped.
func (s *Sandbox) Sync(ctx context.Context, src sandbox.Source) (sandbox.Manifest, sandbox.SyncStats, error) {
	const op = "sync"
	start := time.Now()
	var stats sandbox.SyncStats
	fail := func(err error) (sandbox.Manifest, sandbox.SyncStats, error) {
		stats.Elapsed = time.Since(start)
		return nil, stats, s.opErr(op, err)
	}
	if err := s.enter(); err != nil {
		return fail(err)
	}
	defer s.running.Done()
	if !filepath.IsAbs(src.Root) {
		return fail(fmt.Errorf("source root %q is not absolute", src.Root))
	}
	root := filepath.Clean(src.Root)
	if fi, err := os.Stat(root); err != nil {
		return fail(err)
	} else if !fi.IsDir() {
		return fail(fmt.Errorf("source root %q is not a directory", src.Root))
	}
	e, err := sandbox.NewExcluder(src.Excludes, src.IncludeGit)
	if err != nil {
		return fail(err)
	}
	overlays := make(map[string][]byte, len(src.Overlays))
	for p, b := range src.Overlays {
		rel, err := relPath(p)
		if err == nil && rel == "." {
			err = errors.New("overlay for the workspace root")
		}
		if err != nil {
			return fail(fmt.Errorf("overlay %q: %w", p, err))
		}
		overlays[rel] = b
	}

	s.syncMu.Lock()
	defer s.syncMu.Unlock()

	want, skipped, err := s.walkSource(ctx, root, e, overlays)
	if err != nil {
		return fail(err)
	}
	stats.Skipped = skipped
	remote, err := s.listing(ctx, op, e)
	if err != nil {
		return fail(err)
	}
	s.mu.Lock()
	prev := s.synced
	s.mu.Unlock()

	var removed []string
	for rel := range prev {
		if _, ok := want[rel]; !ok {
			removed = append(removed, rel)
		}
	}
	sort.Strings(removed)
	var uploads, links []string
	chmods := map[fs.FileMode][]string{}
	rels := make([]string, 0, len(want))
	for rel := range want {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		w := want[rel]
		r, ok := remote[rel]
		switch {
		case w.rec.Link != "":
			if !ok || r.Link != w.rec.Link {
				links = append(links, rel)
			}
		case !ok || r.Link != "" || r.Hash != w.rec.Hash:
			uploads = append(uploads, rel)
			if w.rec.Perm != 0o644 {
				chmods[w.rec.Perm] = append(chmods[w.rec.Perm], rel)
			}
		case r.Perm != w.rec.Perm:
			chmods[w.rec.Perm] = append(chmods[w.rec.Perm], rel)
			stats.Written++
		}
	}

	// Removals first: a path that changed from file to directory (or back)
	// must be free before the upload.
	var pre strings.Builder
	remoteDirs := map[string]bool{}
	for p := range remote {
		for d := path.Dir(p); d != "." && !remoteDirs[d]; d = path.Dir(d) {
			remoteDirs[d] = true
		}
	}
	if len(removed) > 0 {
		fmt.Fprintf(&pre, "%s | xargs -0 -r rm -f --\n", nulList(removed))
	}
	var clear []string
	for _, rel := range append(append([]string(nil), uploads...), links...) {
		if r, ok := remote[rel]; ok && r.Link != "" || remoteDirs[rel] {
			clear = append(clear, rel)
		}
	}
	if len(clear) > 0 {
		fmt.Fprintf(&pre, "%s | xargs -0 -r rm -rf --\n", nulList(clear))
	}
	if pre.Len() > 0 {
		if _, err := s.script(ctx, op, "cd "+shq(s.root)+" || exit 3\n"+pre.String(), 10*time.Minute); err != nil {
			return fail(err)
		}
	}
	stats.Removed = len(removed)
	next := make(map[string]syncRec, len(want))
	for rel, w := range want {
		next[rel] = w.rec
	}
	// Forget removed records and cached hashes now: they are gone.
	s.mu.Lock()
	for _, rel := range removed {
		delete(s.cache, rel)
	}
	s.mu.Unlock()

	written, n, err := s.upload(ctx, want, uploads)
	stats.Bytes = n
	for rel, rec := range written {
		next[rel] = rec
	}
	if err != nil {
		s.forgetSync()
		return fail(err)
	}
	stats.Written += len(uploads) + len(links)

	// Permissions, symlinks, and the new stat keys of what was written.
	var post strings.Builder
	perms := make([]fs.FileMode, 0, len(chmods))
	for p := range chmods {
		perms = append(perms, p)
	}
	sort.Slice(perms, func(i, j int) bool { return perms[i] < perms[j] })
	for _, p := range perms {
		fmt.Fprintf(&post, "%s | xargs -0 -r chmod %o -- || exit 1\n", nulList(chmods[p]), p)
	}
	for _, rel := range links {
		fmt.Fprintf(&post, "mkdir -p -- %s && ln -sfn -- %s %s || exit 1\n",
			shq("./"+path.Dir(rel)), shq(want[rel].rec.Link), shq("./"+rel))
	}
	if len(uploads) > 0 || len(chmods) > 0 {
		// The new stat keys of what was written (argument lists may be
		// long, so the whole tree is listed again rather than the files).
		fmt.Fprintf(&post, "find . %s 2>/dev/null\n", findExpr(e))
	}
	if post.Len() > 0 {
		out, err := s.script(ctx, op, "cd "+shq(s.root)+" || exit 3\n"+post.String()+"exit 0\n", 10*time.Minute)
		if err != nil {
			s.forgetSync()
			return fail(err)
		}
		listed, err := parseListing(out)
		if err != nil {
			s.forgetSync()
			return fail(err)
		}
		s.mu.Lock()
		for _, rel := range uploads {
			if f, ok := listed[rel]; ok && f.Link == "" {
				f.Hash = next[rel].Hash
				s.cache[rel] = f
			}
		}
		for _, rels := range chmods {
			for _, rel := range rels {
				if f, ok := listed[rel]; ok && f.Link == "" {
					f.Hash = next[rel].Hash
					s.cache[rel] = f
				}
			}
		}
		s.mu.Unlock()
	}

	s.mu.Lock()
	s.synced = next
	s.excludes = append([]string(nil), src.Excludes...)
	s.includeGit = src.IncludeGit
	s.mu.Unlock()

	m := make(sandbox.Manifest, len(next))
	for rel, rec := range next {
		if rec.Link == "" {
			m[rel] = sandbox.FileState{Size: rec.Size, Mode: rec.Perm, Hash: rec.Hash}
		}
	}
	stats.Files = len(next)
	stats.Elapsed = time.Since(start)
	return m, stats, nil
}

// forgetSync drops the knowledge of the working copy after a failed sync, so
// the next one compares everything by content again.
func (s *Sandbox) forgetSync() {
	s.mu.Lock()
	s.cache = map[string]remoteFile{}
	s.mu.Unlock()
}

// nulList is a shell command printing "./rel" for each rel, NUL-terminated,
// for `xargs -0`: printf is built into the shell, so the list may be longer
// than an exec argument list.
func nulList(rels []string) string {
	var b strings.Builder
	b.WriteString(`printf '%s\0'`)
	for _, rel := range rels {
		b.WriteString(" ")
		b.WriteString(shq("./" + rel))
	}
	return b.String()
}

// walkSource reads the source tree: regular files (hashed, with a cache by
// stat), symlinks that stay inside the workspace, and overlays.
func (s *Sandbox) walkSource(ctx context.Context, root string, e *sandbox.Excluder, overlays map[string][]byte) (map[string]*srcFile, int, error) {
	want := map[string]*srcFile{}
	skipped := 0
	srcDirs := map[string]bool{}
	s.mu.Lock()
	if s.srcRoot != root {
		s.srcRoot, s.srcHashes = root, map[string]srcHash{}
	}
	hashes := s.srcHashes
	s.mu.Unlock()
	h := sha256.New()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if p == root {
			return err
		}
		rel := filepath.ToSlash(p[len(root)+1:])
		if err != nil {
			skipped++
			return nil
		}
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		isDir := d.IsDir()
		if e.Match(rel, isDir) {
			if isDir {
				return filepath.SkipDir
			}
			return nil
		}
		if isDir {
			srcDirs[rel] = true
			return nil
		}
		if b, ok := overlays[rel]; ok {
			delete(overlays, rel)
			perm := fs.FileMode(0o644)
			if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
				perm = fi.Mode().Perm()
			}
			want[rel] = &srcFile{rec: syncRec{Perm: perm, Size: int64(len(b)), Hash: sumBytes(b)}, overlay: b}
			return nil
		}
		switch t := d.Type(); {
		case t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				skipped++
				return nil
			}
			hs, err := hashFile(p, fi, hashes[rel], h)
			if err != nil {
				skipped++
				return nil
			}
			hashes[rel] = hs
			want[rel] = &srcFile{rec: syncRec{Perm: fi.Mode().Perm(), Size: fi.Size(), Hash: hs.hash}, abs: p}
		case t&fs.ModeSymlink != 0:
			target, ok := insideLink(root, p, rel)
			if !ok {
				skipped++
				return nil
			}
			want[rel] = &srcFile{rec: syncRec{Link: target}}
		default:
			skipped++
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	// Overlays of files not on disk (new, unsaved buffers).
	for rel, b := range overlays {
		if e.Excluded(rel) {
			continue
		}
		if srcDirs[rel] || fileAbove(rel, want) {
			skipped++
			continue
		}
		want[rel] = &srcFile{rec: syncRec{Perm: 0o644, Size: int64(len(b)), Hash: sumBytes(b)}, overlay: b}
	}
	return want, skipped, nil
}

// fileAbove reports whether a file of want sits at a parent path of rel.
func fileAbove(rel string, want map[string]*srcFile) bool {
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		if _, ok := want[d]; ok {
			return true
		}
	}
	return false
}

// insideLink returns the target of the symlink at abs (rel in the
// workspace) when it stays inside the workspace, made relative.
func insideLink(root, abs, rel string) (string, bool) {
	target, err := os.Readlink(abs)
	if err != nil || target == "" {
		return "", false
	}
	dir := path.Dir(rel)
	if filepath.IsAbs(target) {
		t := filepath.Clean(target)
		if t != root && !strings.HasPrefix(t, root+string(filepath.Separator)) {
			return "", false
		}
		r, err := filepath.Rel(filepath.Join(root, filepath.FromSlash(dir)), t)
		if err != nil {
			return "", false
		}
		target = filepath.ToSlash(r)
	}
	resolved := path.Clean(path.Join(dir, filepath.ToSlash(target)))
	if resolved == ".." || strings.HasPrefix(resolved, "../") || strings.HasPrefix(resolved, "/") {
		return "", false
	}
	return filepath.ToSlash(target), true
}

func sumBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hashFile(p string, fi fs.FileInfo, old srcHash, h hash.Hash) (srcHash, error) {
	hs := srcHash{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		hs.ctime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
		hs.ino = st.Ino
	}
	if old.hash != "" && old.size == hs.size && old.mtime == hs.mtime && old.ctime == hs.ctime && old.ino == hs.ino {
		hs.hash = old.hash
		return hs, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return hs, err
	}
	defer f.Close()
	h.Reset()
	if _, err := io.Copy(h, f); err != nil {
		return hs, err
	}
	hs.hash = hex.EncodeToString(h.Sum(nil))
	return hs, nil
}

// hashingReader hashes and counts what is read through it.
type hashingReader struct {
	r io.ReadCloser
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashingReader) Close() error { return h.r.Close() }

// upload sends the files rels of want in batches with bulk-upload and
// returns the records of what was actually sent (a source file that changed
// since it was hashed is recorded as sent) and the bytes sent.
func (s *Sandbox) upload(ctx context.Context, want map[string]*srcFile, rels []string) (map[string]syncRec, int64, error) {
	written := map[string]syncRec{}
	var total int64
	for len(rels) > 0 {
		var batch []string
		var size int64
		for len(rels) > 0 && len(batch) < batchFiles && (len(batch) == 0 || size+want[rels[0]].rec.Size <= batchBytes) {
			size += want[rels[0]].rec.Size
			batch = append(batch, rels[0])
			rels = rels[1:]
		}
		readers := make([]*hashingReader, len(batch))
		files := make([]uploadFile, len(batch))
		for i, rel := range batch {
			w := want[rel]
			files[i] = uploadFile{Path: s.root + "/" + rel, Open: func() (io.ReadCloser, error) {
				var r io.ReadCloser
				if w.abs == "" {
					r = io.NopCloser(strings.NewReader(string(w.overlay)))
				} else {
					f, err := os.Open(w.abs)
					if err != nil {
						return nil, err
					}
					r = f
				}
				readers[i] = &hashingReader{r: r, h: sha256.New()}
				return readers[i], nil
			}}
		}
		if err := s.tb.bulkUpload(ctx, files); err != nil {
			return written, total, err
		}
		for i, rel := range batch {
			rec := want[rel].rec
			if hr := readers[i]; hr != nil {
				rec.Size, rec.Hash = hr.n, hex.EncodeToString(hr.h.Sum(nil))
			}
			written[rel] = rec
			total += rec.Size
		}
	}
	return written, total, nil
}
