package opencode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"

	"github.com/opencode-lsp/opencode-lsp/sandbox"
)

// Pool keeps one OpenCode server per sandbox (by [sandbox.Sandbox.ID]): the
// first run in a sandbox starts it, later runs reuse it, a server that died
// is replaced at the next use, and one whose configuration changed (model,
// key, endpoint, policy) is restarted. Release or Close stop servers; call
// Release before closing a sandbox. It is safe for concurrent use.
type Pool struct {
	mu      sync.Mutex
	entries map[string]*poolEntry
	closed  bool
}

type poolEntry struct {
	ready chan struct{} // closed when the start attempt finished
	srv   *Server
	err   error
	fp    string // configuration fingerprint
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{entries: map[string]*poolEntry{}} }

// Server returns the running server of sb, starting one with cfg when there
// is none, it died, or it runs with another configuration (which is then
// closed: runs still using it fail). Concurrent callers share one start.
func (p *Pool) Server(ctx context.Context, sb sandbox.Sandbox, cfg Config) (*Server, error) {
	fp := fingerprint(cfg)
	key := sb.ID()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		e := p.entries[key]
		if e == nil {
			e = &poolEntry{ready: make(chan struct{}), fp: fp}
			p.entries[key] = e
			p.mu.Unlock()
			e.srv, e.err = Start(ctx, sb, cfg)
			close(e.ready)
			p.mu.Lock()
			if e.err != nil && p.entries[key] == e {
				delete(p.entries, key)
			}
			closed := p.closed
			p.mu.Unlock()
			if closed && e.srv != nil {
				e.srv.Close()
				return nil, ErrClosed
			}
			return e.srv, e.err
		}
		p.mu.Unlock()

		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err // that start failed; a later call tries again
		}
		if e.fp == fp && e.srv.Err() == nil {
			return e.srv, nil
		}
		// Dead, or configured differently: replace it.
		p.mu.Lock()
		if p.entries[key] == e {
			delete(p.entries, key)
		}
		p.mu.Unlock()
		e.srv.Close()
	}
}

// Release stops the server of the sandbox with id sandboxID, if any.
func (p *Pool) Release(sandboxID string) error {
	p.mu.Lock()
	e := p.entries[sandboxID]
	delete(p.entries, sandboxID)
	p.mu.Unlock()
	if e == nil {
		return nil
	}
	<-e.ready
	if e.srv != nil {
		return e.srv.Close()
	}
	return nil
}

// Close stops every server; later calls to Server fail with [ErrClosed].
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	entries := p.entries
	p.entries = map[string]*poolEntry{}
	p.mu.Unlock()
	var first error
	for _, e := range entries {
		<-e.ready
		if e.srv != nil {
			if err := e.srv.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// fingerprint identifies what a server's configuration fixes; the key is
// hashed, never kept in clear.
func fingerprint(c Config) string {
	c = c.withDefaults()
	b, _ := json.Marshal([]any{c.Binary, c.BaseURL, c.APIKey, c.Model, c.Hostname, c.ContextLimit, c.OutputLimit, c.Permissions})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
