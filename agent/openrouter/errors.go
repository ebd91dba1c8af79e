package openrouter

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrorKind classifies an [Error] by what the user can do about it.
type ErrorKind int

const (
	// KindConfig: the client is misconfigured (no key, bad base URL, empty
	// request); nothing was sent.
	KindConfig ErrorKind = iota + 1
	// KindAuth: 401, the key is missing, invalid or disabled.
	KindAuth
	// KindCredits: 402, out of credits or over the key's limit.
	KindCredits
	// KindModeration: 403, flagged by moderation or blocked by a guardrail.
	KindModeration
	// KindBadRequest: 400, 404, 413, 422 and other 4xx answers that
	// retrying cannot fix (unknown model, context too long, …).
	KindBadRequest
	// KindRateLimited: 429 (still limited after the retries).
	KindRateLimited
	// KindUnavailable: 502, 503, 524, 529 (still failing after the
	// retries): the model's provider is down or overloaded.
	KindUnavailable
	// KindServer: 500 and other unexpected statuses.
	KindServer
	// KindTimeout: a client timeout fired (see [Error.Phase]) or the
	// service answered 408.
	KindTimeout
	// KindStream: the service reported an error inside a 200 stream (an
	// error chunk with finish_reason "error").
	KindStream
	// KindTruncated: the stream ended without a finish reason or without
	// "data: [DONE]"; the answer may be incomplete.
	KindTruncated
	// KindNetwork: the connection failed or broke.
	KindNetwork
	// KindCanceled: the caller's context was cancelled.
	KindCanceled
)

var kindNames = [...]string{"", "config", "auth", "credits", "moderation", "bad-request", "rate-limited",
	"unavailable", "server", "timeout", "stream", "truncated", "network", "canceled"}

func (k ErrorKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Timeout phases reported in [Error.Phase] for [KindTimeout].
const (
	PhaseConnect    = "connect"     // TCP connect and TLS handshake
	PhaseFirstToken = "first-token" // request sent → first token
	PhaseIdle       = "idle"        // silence on the stream (any bytes, keep-alives included, reset it)
	PhaseTotal      = "total"       // the whole call, retries included
	PhaseServer     = "server"      // the service answered 408
)

// Error is every error the client returns. Its Error text is meant for the
// user: it says what happened and what to do, quotes the service's message
// (with the API key redacted should the service ever echo it) and never
// contains the key. Use [errors.As] to get it and switch on Kind.
type Error struct {
	Kind ErrorKind
	// Status is the HTTP status (pre-stream errors), or the numeric
	// error.code of an in-band error chunk; 0 when there is none.
	Status int
	// Code is error.code when the service sent a string code (the
	// streaming docs' "server_error" variant), else empty.
	Code string
	// Type is error.metadata.error_type (spec §4.3), for example
	// "rate_limit_exceeded"; empty when absent.
	Type string
	// Message is the service's error.message, key redacted.
	Message string
	// Reasons are the moderation reasons (403 metadata.reasons).
	Reasons []string
	// Hint is metadata.remedy_hint (402), when sent.
	Hint string
	// RetryAfter is the wait the service asked for (Retry-After), 0 if none.
	RetryAfter time.Duration
	// Attempts is how many requests were made.
	Attempts int
	// Phase names the timeout that fired (Phase* constants) for KindTimeout,
	// and Timeout is its configured length.
	Phase   string
	Timeout time.Duration
	// KeySource says where the API key came from (for KindAuth).
	KeySource string
	// GenerationID is the service's id of the failed generation, if known.
	GenerationID string
	// Partial is true when some of the answer had already streamed.
	Partial bool

	err error
}

// Unwrap returns the underlying cause (context.Canceled,
// context.DeadlineExceeded, a network error), if any.
func (e *Error) Unwrap() error { return e.err }

func (e *Error) Error() string {
	var b strings.Builder
	msg := e.Message
	status := ""
	if e.Status != 0 {
		status = " (" + strconv.Itoa(e.Status) + ")"
	}
	switch e.Kind {
	case KindConfig:
		b.WriteString(msg)
		return b.String()
	case KindAuth:
		if e.KeySource != "" {
			fmt.Fprintf(&b, "OpenRouter rejected the API key from the %s%s", e.KeySource, status)
		} else {
			fmt.Fprintf(&b, "OpenRouter rejected the API key%s", status)
		}
	case KindCredits:
		fmt.Fprintf(&b, "OpenRouter: out of credits%s", status)
		if e.Hint != "" && !strings.Contains(msg, e.Hint) {
			msg = joinMsg(msg, e.Hint)
		}
		if msg == "" {
			msg = "add credits at openrouter.ai or raise the key's limit"
		}
	case KindModeration:
		if len(e.Reasons) > 0 {
			fmt.Fprintf(&b, "OpenRouter: the request was flagged by moderation%s: %s", status, strings.Join(e.Reasons, ", "))
			if msg != "" {
				fmt.Fprintf(&b, " (%s)", msg)
			}
			return b.String()
		}
		fmt.Fprintf(&b, "OpenRouter: the request was flagged by moderation or blocked by a guardrail%s", status)
	case KindBadRequest:
		fmt.Fprintf(&b, "OpenRouter rejected the request%s", status)
	case KindRateLimited:
		fmt.Fprintf(&b, "OpenRouter: rate limited%s", status)
	case KindUnavailable:
		fmt.Fprintf(&b, "OpenRouter: the model's provider is unavailable%s", status)
	case KindServer:
		fmt.Fprintf(&b, "OpenRouter: server error%s", status)
	case KindTimeout:
		switch e.Phase {
		case PhaseConnect:
			b.WriteString("OpenRouter: timed out connecting to the service")
		case PhaseFirstToken:
			b.WriteString("OpenRouter: timed out waiting for the first token")
		case PhaseIdle:
			b.WriteString("OpenRouter: the stream went silent (idle timeout)")
		case PhaseTotal:
			b.WriteString("OpenRouter: the request took longer than the total timeout")
		default:
			fmt.Fprintf(&b, "OpenRouter: the request timed out%s", status)
		}
		if e.Timeout > 0 {
			fmt.Fprintf(&b, " (%s)", e.Timeout)
		}
	case KindStream:
		b.WriteString("OpenRouter: the model failed while answering")
		switch {
		case e.Code != "" && e.Type != "" && e.Type != e.Code:
			fmt.Fprintf(&b, " (%s, %s)", e.Code, e.Type)
		case e.Code != "":
			fmt.Fprintf(&b, " (%s)", e.Code)
		case e.Status != 0 && e.Type != "":
			fmt.Fprintf(&b, " (%d, %s)", e.Status, e.Type)
		case e.Status != 0:
			fmt.Fprintf(&b, " (%d)", e.Status)
		}
	case KindTruncated:
		b.WriteString("OpenRouter: the stream ended before the answer was complete")
	case KindNetwork:
		b.WriteString("OpenRouter: connection failed")
		if e.Partial {
			b.WriteString(" mid-answer")
		}
	case KindCanceled:
		b.WriteString("OpenRouter: request canceled")
	default:
		fmt.Fprintf(&b, "OpenRouter: error%s", status)
	}
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	if e.Attempts > 1 && (e.Kind == KindRateLimited || e.Kind == KindUnavailable || e.Kind == KindNetwork) {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	if e.RetryAfter > 0 && (e.Kind == KindRateLimited || e.Kind == KindUnavailable || e.Kind == KindCredits) {
		fmt.Fprintf(&b, "; retry after %s", fmtWait(e.RetryAfter))
	}
	return b.String()
}

func joinMsg(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return strings.TrimRight(a, ". ") + ". " + b
}

// fmtWait prints a wait as whole seconds ("12s"), or milliseconds below 1s.
func fmtWait(d time.Duration) string {
	if d < time.Second {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	return strconv.FormatInt(int64((d+time.Second/2)/time.Second), 10) + "s"
}

// wireError is OpenRouter's error object {code, message, metadata}
// (spec §4.1, §3.4); code is a number or a string.
type wireError struct {
	Code     json.RawMessage `json:"code"`
	Message  string          `json:"message"`
	Metadata struct {
		ErrorType   string          `json:"error_type"`
		Reasons     json.RawMessage `json:"reasons"`
		RemedyHint  string          `json:"remedy_hint"`
		LimitSource string          `json:"limit_source"`
		Raw         json.RawMessage `json:"raw"`
	} `json:"metadata"`
}

// code splits error.code into a number or a string.
func (w *wireError) code() (int, string) {
	raw := strings.TrimSpace(string(w.Code))
	if raw == "" || raw == "null" {
		return 0, ""
	}
	if n, err := strconv.Atoi(raw); err == nil {
		return n, ""
	}
	var f float64
	if json.Unmarshal(w.Code, &f) == nil {
		return int(f), ""
	}
	var s string
	if json.Unmarshal(w.Code, &s) == nil {
		if n, err := strconv.Atoi(s); err == nil && n >= 100 && n < 600 {
			return n, ""
		}
		return 0, s
	}
	return 0, raw
}

func (w *wireError) reasons() []string {
	if len(w.Metadata.Reasons) == 0 {
		return nil
	}
	var rs []string
	if json.Unmarshal(w.Metadata.Reasons, &rs) == nil {
		return rs
	}
	var one string
	if json.Unmarshal(w.Metadata.Reasons, &one) == nil && one != "" {
		return []string{one}
	}
	return nil
}

// statusError builds the Error for a non-2xx answer from its status,
// headers and body (which may be OpenRouter's JSON, or anything else a
// proxy sent).
func (c *Client) statusError(status int, h http.Header, body []byte, now time.Time) *Error {
	e := &Error{Status: status, KeySource: c.cfg.KeySource, RetryAfter: parseRetryAfter(h.Get("Retry-After"), now)}
	var env struct {
		Error *wireError `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		w := env.Error
		e.Message = c.redact(w.Message)
		e.Type = w.Metadata.ErrorType
		e.Reasons = redactAll(c, w.reasons())
		e.Hint = c.redact(w.Metadata.RemedyHint)
		if n, s := w.code(); s != "" {
			e.Code = s
		} else if n != 0 && n != status {
			e.Code = strconv.Itoa(n)
		}
	} else {
		e.Message = c.redact(snippet(body))
	}
	e.GenerationID = h.Get("X-Generation-Id")
	e.Kind = kindForStatus(status)
	if e.Kind == KindTimeout {
		e.Phase = PhaseServer
	}
	return e
}

func redactAll(c *Client, ss []string) []string {
	for i, s := range ss {
		ss[i] = c.redact(s)
	}
	return ss
}

// snippet returns a short, single-line excerpt of a non-JSON error body
// (an HTML error page from a proxy, for instance).
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "<") {
		return "" // HTML page: the status says more than its markup
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func kindForStatus(status int) ErrorKind {
	switch status {
	case http.StatusUnauthorized:
		return KindAuth
	case http.StatusPaymentRequired:
		return KindCredits
	case http.StatusForbidden:
		return KindModeration
	case http.StatusRequestTimeout:
		return KindTimeout
	case http.StatusTooManyRequests:
		return KindRateLimited
	case http.StatusBadGateway, http.StatusServiceUnavailable, 524, 529:
		return KindUnavailable
	}
	if status >= 400 && status < 500 {
		return KindBadRequest
	}
	return KindServer
}

// retryable reports whether a pre-stream error may be retried (spec §4.2:
// 429/502/503/524/529, network errors, and a 402 for the in-flight budget
// when it carries Retry-After).
func retryable(e *Error) bool {
	switch e.Kind {
	case KindRateLimited, KindUnavailable:
		return true
	case KindNetwork:
		return !e.Partial
	case KindCredits:
		return e.RetryAfter > 0 // only the in-flight-budget 402 carries Retry-After
	}
	return false
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date
// (RFC 9110 §10.2.3). Unparseable or past values give 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n <= 0 || n > 1e6 {
			return 0
		}
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// asError returns err as an *Error when it is one.
func asError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
