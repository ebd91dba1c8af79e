package lsp

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"sync"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/position"
)

// document is one open editor buffer. A document value is immutable: every
// change stores a new one, so readers may keep it without locking.
type document struct {
	URI        protocol.DocumentURI
	Path       string // local path; "" for non-file URIs (untitled:)
	LanguageID string
	Version    int32
	Text       []byte

	mapperOnce sync.Once
	mapper     *position.Mapper
}

// Mapper returns the document's line index, built on first use.
func (d *document) Mapper() *position.Mapper {
	d.mapperOnce.Do(func() { d.mapper = position.NewMapper(d.Text) })
	return d.mapper
}

// documents holds the open buffers by URI.
type documents struct {
	mu sync.RWMutex
	m  map[protocol.DocumentURI]*document
}

func (ds *documents) get(uri protocol.DocumentURI) *document {
	ds.mu.RLock()
	defer ds.mu.RUnlock()
	return ds.m[uri]
}

// byPath returns the open document for a local path, if any.
func (ds *documents) byPath(path string) *document {
	ds.mu.RLock()
	defer ds.mu.RUnlock()
	for _, d := range ds.m {
		if d.Path != "" && d.Path == path {
			return d
		}
	}
	return nil
}

// all returns the open documents sorted by URI.
func (ds *documents) all() []*document {
	ds.mu.RLock()
	out := make([]*document, 0, len(ds.m))
	for _, d := range ds.m {
		out = append(out, d)
	}
	ds.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].URI < out[j].URI })
	return out
}

func (ds *documents) put(d *document) {
	ds.mu.Lock()
	ds.m[d.URI] = d
	ds.mu.Unlock()
}

func (ds *documents) remove(uri protocol.DocumentURI) {
	ds.mu.Lock()
	delete(ds.m, uri)
	ds.mu.Unlock()
}

func newDocument(uri protocol.DocumentURI, lang string, version int32, text []byte) *document {
	path, _ := uriToPath(uri)
	return &document{URI: uri, Path: path, LanguageID: lang, Version: version, Text: text}
}

func (s *Server) didOpen(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		TextDocument struct {
			URI        protocol.DocumentURI `json:"uri"`
			LanguageID string               `json:"languageId"`
			Version    int32                `json:"version"`
			Text       string               `json:"text"`
		} `json:"textDocument"`
	}
	if err := decodeParams("textDocument/didOpen", params, &p); err != nil {
		s.log.Warn("Ignoring malformed didOpen", "err", err)
		return nil, nil
	}
	td := p.TextDocument
	if td.URI == "" {
		return nil, nil
	}
	s.docs.put(newDocument(td.URI, td.LanguageID, td.Version, []byte(td.Text)))
	return nil, nil
}

// contentChange is TextDocumentContentChangeEvent with a pointer Range, so
// that a full replacement (no range) is told apart from an edit at 0:0.
type contentChange struct {
	Range *protocol.Range `json:"range,omitempty"`
	Text  string          `json:"text"`
}

func (s *Server) didChange(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		TextDocument struct {
			URI     protocol.DocumentURI `json:"uri"`
			Version int32                `json:"version"`
		} `json:"textDocument"`
		ContentChanges []contentChange `json:"contentChanges"`
	}
	if err := decodeParams("textDocument/didChange", params, &p); err != nil {
		s.log.Warn("Ignoring malformed didChange", "err", err)
		return nil, nil
	}
	old := s.docs.get(p.TextDocument.URI)
	if old == nil {
		s.log.Warn("didChange for a document that is not open", "uri", p.TextDocument.URI)
		return nil, nil
	}
	text := old.Text
	for _, c := range p.ContentChanges {
		if c.Range == nil {
			text = []byte(c.Text)
			continue
		}
		// Incremental change (we advertise full sync, but apply it anyway).
		next, err := applyRangeEdit(text, *c.Range, c.Text, s.encoding)
		if err != nil {
			s.log.Warn("Ignoring an incremental change that does not fit the document", "uri", old.URI, "err", err)
			return nil, nil
		}
		text = next
	}
	s.docs.put(&document{URI: old.URI, Path: old.Path, LanguageID: old.LanguageID, Version: p.TextDocument.Version, Text: text})
	return nil, nil
}

// applyRangeEdit replaces rng of text with newText.
func applyRangeEdit(text []byte, rng protocol.Range, newText string, enc position.Encoding) ([]byte, error) {
	m := position.NewMapper(text)
	start, err := m.Offset(int(rng.Start.Line), int(rng.Start.Character), enc)
	if err != nil {
		return nil, err
	}
	end, err := m.Offset(int(rng.End.Line), int(rng.End.Character), enc)
	if err != nil {
		return nil, err
	}
	if end < start {
		return nil, fmt.Errorf("range end before start")
	}
	out := make([]byte, 0, len(text)-(end-start)+len(newText))
	out = append(out, text[:start]...)
	out = append(out, newText...)
	return append(out, text[end:]...), nil
}

func (s *Server) didClose(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		TextDocument protocol.TextDocumentIdentifier `json:"textDocument"`
	}
	if err := decodeParams("textDocument/didClose", params, &p); err == nil {
		s.docs.remove(p.TextDocument.URI)
	}
	return nil, nil
}

func (s *Server) didSave(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		TextDocument protocol.TextDocumentIdentifier `json:"textDocument"`
		Text         *string                         `json:"text"`
	}
	if err := decodeParams("textDocument/didSave", params, &p); err == nil && p.Text != nil {
		if old := s.docs.get(p.TextDocument.URI); old != nil {
			s.docs.put(newDocument(old.URI, old.LanguageID, old.Version, []byte(*p.Text)))
		}
	}
	return nil, nil
}

// requireDocument returns the open document for uri, or InvalidParams
// naming the command.
func (s *Server) requireDocument(command string, uri protocol.DocumentURI) (*document, error) {
	if d := s.docs.get(uri); d != nil {
		return d, nil
	}
	if path, ok := uriToPath(uri); ok {
		return s.diskDocument(uri, path)
	}
	if command == "" {
		return nil, rpcError(jsonrpc2.InvalidParams, "document %s is not open (and is not a file)", uri)
	}
	return nil, rpcError(jsonrpc2.InvalidParams, "%s: document %s is not open (and is not a file)", command, uri)
}

// diskDocument reads a file that is not open in the editor.
func (s *Server) diskDocument(uri protocol.DocumentURI, path string) (*document, error) {
	text, err := readFileLimited(path, 8<<20)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Base(path), err)
	}
	return newDocument(uri, languageFromPath(path), 0, text), nil
}
