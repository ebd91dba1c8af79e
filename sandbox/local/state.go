package local

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"syscall"
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

// digest is a SHA-256.
type digest [32]byte

// String returns the lowercase hex form used in manifests.
func (d digest) String() string { return hex.EncodeToString(d[:]) }

// fileRec is what the last sync put at one path of the working copy.
type fileRec struct {
	Link    string      // symlink target; "" for a regular file
	Overlay bool        // content came from an editor buffer
	Perm    fs.FileMode // permission bits of a regular file
	Src     statKey     // the source file when it was read (zero for overlays)
	Size    int64
	Hash    digest  // of the content written
	WC      statKey // the working-copy file after writing
}

// hashRec caches the hash of a working-copy file that no sync record
// describes (a command made or changed it), by its stat.
type hashRec struct {
	Key  statKey
	Hash digest
}

// syncState is what a sandbox remembers between syncs, persisted in
// sync.state so a daemon restart does not copy everything again.
type syncState struct {
	Excludes   []string
	IncludeGit bool
	Files      map[string]*fileRec
	Hashes     map[string]hashRec // Manifest's cache for files not in Files
}

func newState() *syncState {
	return &syncState{Files: map[string]*fileRec{}, Hashes: map[string]hashRec{}}
}

// stateMagic starts sync.state; its last byte is the format version.
const stateMagic = "OCLSYNC\x01"

// loadState reads the state file; a missing, stale or damaged one yields an
// empty state (the next sync then compares every file by content).
func loadState(file string) *syncState {
	b, err := os.ReadFile(file)
	if err != nil {
		return newState()
	}
	st, err := decodeState(b)
	if err != nil {
		return newState()
	}
	return st
}

// saveState writes the state file atomically (temp file + rename).
func saveState(file string, st *syncState) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, encodeState(st), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// The encoding is a compact binary one (varints, raw digests): gob spent
// more time than the whole sync of an unchanged 10,000-file tree.

func encodeState(st *syncState) []byte {
	b := make([]byte, 0, 64+len(st.Files)*120+len(st.Hashes)*100)
	b = append(b, stateMagic...)
	b = appendBool(b, st.IncludeGit)
	b = binary.AppendUvarint(b, uint64(len(st.Excludes)))
	for _, e := range st.Excludes {
		b = appendString(b, e)
	}
	b = binary.AppendUvarint(b, uint64(len(st.Files)))
	for rel, r := range st.Files {
		b = appendString(b, rel)
		b = appendString(b, r.Link)
		b = appendBool(b, r.Overlay)
		b = binary.AppendUvarint(b, uint64(r.Perm))
		b = appendKey(b, r.Src)
		b = binary.AppendVarint(b, r.Size)
		b = append(b, r.Hash[:]...)
		b = appendKey(b, r.WC)
	}
	b = binary.AppendUvarint(b, uint64(len(st.Hashes)))
	for rel, h := range st.Hashes {
		b = appendString(b, rel)
		b = appendKey(b, h.Key)
		b = append(b, h.Hash[:]...)
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendKey(b []byte, k statKey) []byte {
	b = binary.AppendVarint(b, k.Size)
	b = binary.AppendVarint(b, k.Mtime)
	b = binary.AppendVarint(b, k.Ctime)
	b = binary.AppendUvarint(b, k.Ino)
	return binary.AppendUvarint(b, uint64(k.Mode))
}

var errBadState = errors.New("damaged sync state")

type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errBadState, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = errBadState, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.err, r.b = errBadState, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *stateReader) str() string { return string(r.bytes(r.uvarint())) }

func (r *stateReader) digest() digest {
	var d digest
	copy(d[:], r.bytes(32))
	return d
}

func (r *stateReader) key() statKey {
	return statKey{Size: r.varint(), Mtime: r.varint(), Ctime: r.varint(), Ino: r.uvarint(), Mode: fs.FileMode(r.uvarint())}
}

// count reads a collection length, refusing ones the remaining bytes cannot
// hold (each element takes at least min bytes).
func (r *stateReader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.err, r.b = errBadState, nil
		return 0
	}
	return int(n)
}

func decodeState(b []byte) (*syncState, error) {
	if len(b) < len(stateMagic) || string(b[:len(stateMagic)]) != stateMagic {
		return nil, errBadState
	}
	r := &stateReader{b: b[len(stateMagic):]}
	st := newState()
	flag := r.bytes(1)
	st.IncludeGit = len(flag) == 1 && flag[0] == 1
	for n := r.count(1); n > 0 && r.err == nil; n-- {
		st.Excludes = append(st.Excludes, r.str())
	}
	for n := r.count(40); n > 0 && r.err == nil; n-- {
		rel := r.str()
		rec := &fileRec{Link: r.str()}
		ov := r.bytes(1)
		rec.Overlay = len(ov) == 1 && ov[0] == 1
		rec.Perm = fs.FileMode(r.uvarint())
		rec.Src = r.key()
		rec.Size = r.varint()
		rec.Hash = r.digest()
		rec.WC = r.key()
		st.Files[rel] = rec
	}
	for n := r.count(38); n > 0 && r.err == nil; n-- {
		rel := r.str()
		h := hashRec{Key: r.key()}
		h.Hash = r.digest()
		st.Hashes[rel] = h
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errBadState
	}
	if r.err != nil {
		return nil, r.err
	}
	return st, nil
}
