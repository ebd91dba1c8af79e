// Package redact keeps secrets (API keys) out of everything opencode-lsp
// writes: log lines, RPC traces, messages to the editor. A [Redactor] knows
// the secret values in use and also masks values that look like secrets
// wherever they appear (JSON fields named like keys or tokens, bearer
// credentials, OpenRouter/E2B/Daytona key prefixes).
package redact

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
)

// Mask replaces a secret.
const Mask = "[REDACTED]"

// minSecretLen: shorter values are not treated as secrets (masking "abc"
// everywhere would mangle logs without protecting anything).
const minSecretLen = 6

var patterns = []*regexp.Regexp{
	// JSON fields whose names say they hold a secret.
	// (LSP's own "token" fields — progress tokens — are not secrets.)
	regexp.MustCompile(`(?i)("(?:[a-z_-]*api[_-]?key|[a-z_-]*(?:access|auth|bearer|preview|refresh|session|id)[_-]?token|[a-z_-]*password|[a-z_-]*secret|authorization|x-api-key)"\s*:\s*")((?:[^"\\]|\\.)*)(")`),
	// HTTP credentials.
	regexp.MustCompile(`(?i)(\b(?:bearer|basic)\s+)([A-Za-z0-9._~+/=-]{6,})()`),
	// Well-known key shapes: OpenRouter (sk-or-...), OpenAI-style sk-..., E2B (e2b_...), Daytona (dtn_...).
	regexp.MustCompile(`()(\b(?:sk-or-v1-|sk-or-|sk-|e2b_|dtn_)[A-Za-z0-9_-]{8,})()`),
}

// Redactor masks known secrets and secret-looking values. The zero value is
// ready to use; it is safe for concurrent use.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// Add registers secret values to mask. Values shorter than 6 bytes are ignored.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if len(s) < minSecretLen {
			continue
		}
		dup := false
		for _, have := range r.secrets {
			if have == s {
				dup = true
				break
			}
		}
		if !dup {
			r.secrets = append(r.secrets, s)
		}
	}
}

// String returns s with every secret masked.
func (r *Redactor) String(s string) string {
	if r != nil {
		r.mu.RLock()
		for _, sec := range r.secrets {
			if strings.Contains(s, sec) {
				s = strings.ReplaceAll(s, sec, Mask)
			}
		}
		r.mu.RUnlock()
	}
	for _, p := range patterns {
		s = p.ReplaceAllString(s, "${1}"+Mask+"${3}")
	}
	return s
}

// Handler wraps h so that the message and every string, error and
// stringer attribute of each record are redacted.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	return &handler{next: h, r: r}
}

type handler struct {
	next slog.Handler
	r    *Redactor
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		red := make([]any, 0, len(attrs))
		for _, g := range attrs {
			red = append(red, h.attr(g))
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.r.String(x.Error()))
		case []byte:
			return slog.String(a.Key, h.r.String(string(x)))
		default:
			return slog.String(a.Key, h.r.String(v.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &handler{next: h.next.WithAttrs(red), r: h.r}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), r: h.r}
}
