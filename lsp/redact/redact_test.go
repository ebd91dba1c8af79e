package redact

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactorMasksKnownAndShapedSecrets(t *testing.T) {
	var r Redactor
	r.Add("plain-known-secret-value", "abc") // "abc" is too short to be a secret
	cases := map[string]string{
		"key is plain-known-secret-value!":               "key is [REDACTED]!",
		`{"apiKey":"whatever-it-is","model":"m"}`:        `{"apiKey":"[REDACTED]","model":"m"}`,
		`{"openrouterApiKey": "x\"y", "n": 1}`:           `{"openrouterApiKey": "[REDACTED]", "n": 1}`,
		"Authorization: Bearer abcdef123456":             "Authorization: Bearer [REDACTED]",
		"using sk-or-v1-0123456789abcdef for the call":   "using [REDACTED] for the call",
		"e2b key e2b_0123456789abcdef and dtn_abcdefghi": "e2b key [REDACTED] and [REDACTED]",
		"abc stays": "abc stays",
	}
	for in, want := range cases {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHandlerRedactsRecords(t *testing.T) {
	var r Redactor
	r.Add("sentinel-secret-123")
	var buf bytes.Buffer
	log := slog.New(r.Handler(slog.NewTextHandler(&buf, nil))).With("k", "sentinel-secret-123")
	log.Info("msg sentinel-secret-123", "err", errors.New("bad key sentinel-secret-123"),
		slog.Group("g", "v", "sentinel-secret-123"), "raw", []byte("sentinel-secret-123"))
	if strings.Contains(buf.String(), "sentinel-secret-123") {
		t.Fatalf("secret leaked: %s", buf.String())
	}
	if strings.Count(buf.String(), Mask) != 5 {
		t.Fatalf("expected 5 masks: %s", buf.String())
	}
}
