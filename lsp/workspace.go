package lsp

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"go.lsp.dev/protocol"
)

// workspaceRoots returns the current workspace folders.
func (s *Server) workspaceRoots() []string {
	s.rootsMu.RLock()
	defer s.rootsMu.RUnlock()
	return append([]string(nil), s.roots...)
}

// rootFor returns the workspace folder that contains uri (the deepest one),
// or the first folder when uri is empty or not a file inside any folder.
// It fails when the server has no workspace folder at all.
func (s *Server) rootFor(uri protocol.DocumentURI) (string, error) {
	roots := s.workspaceRoots()
	if path, ok := uriToPath(uri); ok {
		best := ""
		for _, r := range roots {
			if within(r, path) && len(r) > len(best) {
				best = r
			}
		}
		if best != "" {
			return best, nil
		}
		if len(roots) == 0 {
			// No folder open: use the file's directory.
			return filepath.Dir(path), nil
		}
	}
	if len(roots) == 0 {
		return "", fmt.Errorf("no workspace folder is open")
	}
	return roots[0], nil
}

// within reports whether path is root or inside it.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// overlays returns the text of open documents under root, keyed by
// workspace-relative slash path: the unsaved buffers a sandbox sync must use
// instead of the files on disk. versions gets each document's version.
func (s *Server) overlays(root string) (texts map[string][]byte, versions map[string]int32) {
	texts, versions = map[string][]byte{}, map[string]int32{}
	for _, d := range s.docs.all() {
		if d.Path == "" || !within(root, d.Path) {
			continue
		}
		rel, err := filepath.Rel(root, d.Path)
		if err != nil || rel == "." {
			continue
		}
		rel = filepath.ToSlash(rel)
		texts[rel] = d.Text
		versions[rel] = d.Version
	}
	return texts, versions
}

// uriFor returns the URI under which the editor knows path: the open
// document's own URI when the file is open (editors escape URIs in their own
// way), else a freshly built file:// URI.
func (s *Server) uriFor(path string) protocol.DocumentURI {
	if d := s.docs.byPath(path); d != nil {
		return d.URI
	}
	return pathToURI(path)
}

// readFileLimited reads a regular file of at most limit bytes.
func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("file is %d bytes, over the %d-byte limit", st.Size(), limit)
	}
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// languageFromPath guesses an LSP languageId from a file name.
func languageFromPath(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".go":
		return "go"
	case ".ts":
		return "typescript"
	case ".tsx":
		return "typescriptreact"
	case ".js", ".mjs", ".cjs":
		return "javascript"
	case ".jsx":
		return "javascriptreact"
	case ".py":
		return "python"
	case ".rs":
		return "rust"
	case ".c", ".h":
		return "c"
	case ".cc", ".cpp", ".cxx", ".hpp":
		return "cpp"
	case ".java":
		return "java"
	case ".md":
		return "markdown"
	case ".html", ".htm":
		return "html"
	case ".css":
		return "css"
	case ".json":
		return "json"
	case ".sh":
		return "shellscript"
	case ".lua":
		return "lua"
	}
	return "plaintext"
}

// looksBinary reports whether text is not something to show a model: a NUL
// byte, or mostly invalid UTF-8, in its first 8 KiB.
func looksBinary(text []byte) bool {
	head := text[:min(len(text), 8<<10)]
	if bytes.IndexByte(head, 0) >= 0 {
		return true
	}
	bad := 0
	for len(head) > 0 {
		r, size := utf8.DecodeRune(head)
		if r == utf8.RuneError && size == 1 {
			bad++
		}
		head = head[size:]
	}
	return bad > len(text[:min(len(text), 8<<10)])/10
}

// plural renders "1 file", "3 files".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
