package local

import (
	"crypto/sha256"
	"reflect"
	"testing"
)

func TestStateRoundTrip(t *testing.T) {
	st := newState()
	st.IncludeGit = true
	st.Excludes = []string{"*.log", "node_modules/"}
	st.Files["a/b.txt"] = &fileRec{Perm: 0o755, Src: statKey{Size: 3, Mtime: -5, Ctime: 1 << 60, Ino: 42, Mode: 0o644}, Size: 3,
		Hash: digest(sha256.Sum256([]byte("abc"))), WC: statKey{Size: 3, Mtime: 7, Ino: 9}}
	st.Files["link"] = &fileRec{Link: "a/b.txt", WC: statKey{Ino: 1}}
	st.Files["ov"] = &fileRec{Overlay: true, Perm: 0o644, Size: 0}
	st.Hashes["made.txt"] = hashRec{Key: statKey{Size: 1}, Hash: digest(sha256.Sum256([]byte("m")))}
	b := encodeState(st)
	got, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, st)
	}
	// Every truncation and a trailing byte are refused, never a panic.
	for i := 0; i < len(b); i++ {
		if _, err := decodeState(b[:i]); err == nil {
			t.Fatalf("decodeState accepted %d of %d bytes", i, len(b))
		}
	}
	if _, err := decodeState(append(b, 0)); err == nil {
		t.Errorf("trailing byte accepted")
	}
	// A huge count does not allocate.
	bad := append([]byte(stateMagic), 0, 0xff, 0xff, 0xff, 0xff, 0x0f)
	if _, err := decodeState(bad); err == nil {
		t.Errorf("huge count accepted")
	}
	if st := loadState(t.TempDir() + "/missing"); len(st.Files) != 0 || st.Hashes == nil {
		t.Errorf("loadState of a missing file = %+v", st)
	}
}
