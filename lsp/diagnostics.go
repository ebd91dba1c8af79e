package lsp

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"go.lsp.dev/protocol"
)

// diagnosticSet is the one diagnostics publisher. Diagnostics are keyed by
// producer (a command in a workspace, "run:<root>:go vet ./..."): a producer's Set replaces all
// of that producer's earlier diagnostics, and the merged diagnostics of every
// producer are published only for the URIs whose content changed — an empty
// list clears a file that became clean.
type diagnosticSet struct {
	s *Server

	// sendMu serialises whole Set calls so that notifications leave in the
	// order the states were computed.
	sendMu sync.Mutex

	mu         sync.Mutex
	byProducer map[string]map[protocol.DocumentURI][]protocol.Diagnostic
	published  map[protocol.DocumentURI][32]byte // hash of what the client has
}

func newDiagnosticSet(s *Server) *diagnosticSet {
	return &diagnosticSet{
		s:          s,
		byProducer: map[string]map[protocol.DocumentURI][]protocol.Diagnostic{},
		published:  map[protocol.DocumentURI][32]byte{},
	}
}

// Set replaces producer's diagnostics with byURI and publishes the URIs
// whose merged diagnostics changed. It returns the number of
// publishDiagnostics notifications sent.
func (d *diagnosticSet) Set(ctx context.Context, producer string, byURI map[protocol.DocumentURI][]protocol.Diagnostic) int {
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	d.mu.Lock()
	affected := map[protocol.DocumentURI]bool{}
	for uri := range d.byProducer[producer] {
		affected[uri] = true
	}
	clean := map[protocol.DocumentURI][]protocol.Diagnostic{}
	for uri, list := range byURI {
		affected[uri] = true
		if len(list) > 0 {
			clean[uri] = list
		}
	}
	if len(clean) == 0 {
		delete(d.byProducer, producer)
	} else {
		d.byProducer[producer] = clean
	}

	uris := make([]protocol.DocumentURI, 0, len(affected))
	for uri := range affected {
		uris = append(uris, uri)
	}
	sort.Slice(uris, func(i, j int) bool { return uris[i] < uris[j] })

	type pub struct {
		uri   protocol.DocumentURI
		diags []protocol.Diagnostic
	}
	var toSend []pub
	for _, uri := range uris {
		merged := d.mergedLocked(uri)
		h := hashDiagnostics(merged)
		old, had := d.published[uri]
		if had && old == h {
			continue
		}
		if !had && len(merged) == 0 {
			continue // nothing was ever published for it
		}
		if len(merged) == 0 {
			delete(d.published, uri)
		} else {
			d.published[uri] = h
		}
		toSend = append(toSend, pub{uri, merged})
	}
	d.mu.Unlock()

	for _, p := range toSend {
		params := protocol.PublishDiagnosticsParams{URI: p.uri, Diagnostics: p.diags}
		if params.Diagnostics == nil {
			params.Diagnostics = []protocol.Diagnostic{}
		}
		if !d.s.caps.RelatedInformation {
			params.Diagnostics = withoutRelated(params.Diagnostics)
		}
		d.s.notify(ctx, "textDocument/publishDiagnostics", params)
	}
	return len(toSend)
}

// Get returns the merged diagnostics of uri.
func (d *diagnosticSet) Get(uri protocol.DocumentURI) []protocol.Diagnostic {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mergedLocked(uri)
}

func (d *diagnosticSet) mergedLocked(uri protocol.DocumentURI) []protocol.Diagnostic {
	producers := make([]string, 0, len(d.byProducer))
	for p := range d.byProducer {
		producers = append(producers, p)
	}
	sort.Strings(producers)
	var out []protocol.Diagnostic
	seen := map[diagKey]bool{}
	for _, p := range producers {
		for _, diag := range d.byProducer[p][uri] {
			k := keyOf(diag)
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, diag)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Range.Start, out[j].Range.Start
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Character < b.Character
	})
	return out
}

// diagKey identifies a diagnostic for de-duplication across producers (the
// same problem reported by two commands is shown once).
type diagKey struct {
	rng      protocol.Range
	severity protocol.DiagnosticSeverity
	code     string
	source   string
	message  string
}

func keyOf(d protocol.Diagnostic) diagKey {
	return diagKey{rng: d.Range, severity: d.Severity, code: fmt.Sprint(d.Code), source: d.Source, message: d.Message}
}

func hashDiagnostics(list []protocol.Diagnostic) [32]byte {
	data, _ := json.Marshal(list)
	return sha256.Sum256(data)
}

// withoutRelated folds relatedInformation into the message for clients that
// do not support it.
func withoutRelated(list []protocol.Diagnostic) []protocol.Diagnostic {
	out := make([]protocol.Diagnostic, len(list))
	for i, d := range list {
		if len(d.RelatedInformation) > 0 {
			for _, r := range d.RelatedInformation {
				d.Message += "\n" + r.Message
			}
			d.RelatedInformation = nil
		}
		out[i] = d
	}
	return out
}
