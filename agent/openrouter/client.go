// Package openrouter is opencode-lsp's client for OpenRouter's
// OpenAI-compatible chat-completions API (shared/specs/openrouter.md),
// built on github.com/openai/openai-go/v3.
//
// openai-go builds and sends the requests (base URL, bearer key,
// attribution headers) and decodes the SSE chunks; this package adds what
// OpenRouter needs on top of it:
//
//   - keep-alive comments (": OPENROUTER PROCESSING") are skipped by
//     openai-go's decoder; a body observer installed with
//     option.WithMiddleware sees them and reports [EventWaiting], and every
//     byte read resets the idle timer;
//   - usage and OpenRouter's usage.cost are read from the final chunk's raw
//     JSON into [Result.Usage];
//   - an error chunk inside a 200 stream (top-level "error",
//     finish_reason "error", error.code a number or a string) ends the call
//     with a [KindStream] error; openai-go surfaces it as an
//     ssestream.StreamError whose raw event this package decodes;
//   - a stream that ends without a finish reason or without "data: [DONE]"
//     (openai-go reports both as a clean end) is a [KindTruncated] error,
//     never a success;
//   - errors before streaming become an [*Error] with a message for the
//     user (401 names where the key came from, 402, 403 moderation
//     reasons, 408, …); 429, 502, 503, 524, 529, an in-flight-budget 402
//     and connection failures are retried with bounded exponential backoff
//     that honours Retry-After (seconds or HTTP-date). openai-go's own
//     retries are off;
//   - connect, first-token, idle and total timeouts, each reported as a
//     [KindTimeout] error naming its phase. Cancelling the context closes
//     the HTTP stream at once.
//
// The API key goes only to the configured base URL as the bearer token;
// it never reaches a log record, an [Event], a [Result] or an error text
// (service messages that echo it are redacted).
//
// The fake server in package fakeopenrouter implements the same spec for
// tests.
package openrouter

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/shared"
)

// Client talks to OpenRouter. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	chat openai.ChatCompletionService
	api  openai.Client
	log  *slog.Logger

	// sleep waits between attempts and now reads the clock for HTTP-date
	// Retry-After values (tests replace both); dial opens the default
	// transport's TCP connections.
	sleep func(ctx context.Context, d time.Duration) error
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	now   func() time.Time
}

// New checks cfg and returns a client. It fails fast, with a [KindConfig]
// error and without any network traffic, when the key is empty or the base
// URL is not an absolute http(s) URL.
func New(cfg Config) (*Client, error) {
	cfg.applyDefaults()
	base, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, base: base, log: cfg.Logger, sleep: sleepCtx, now: time.Now}
	c.dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext

	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = c.dialContext
		tr.TLSHandshakeTimeout = cfg.ConnectTimeout
		tr.ResponseHeaderTimeout = 0 // the first-token timer covers the wait for headers
		hc = &http.Client{Transport: tr}
	}
	opts := []option.RequestOption{
		option.WithHTTPClient(hc),
		option.WithBaseURL(cfg.BaseURL),
		option.WithAPIKey(cfg.APIKey),
		option.WithMaxRetries(0), // retries are ours: spec-exact and Retry-After aware
		option.WithHeader("HTTP-Referer", cfg.Referer),
		option.WithHeader("X-OpenRouter-Title", cfg.Title),
		option.WithHeader("X-Title", cfg.Title), // legacy name, still accepted (spec §2)
	}
	// Built from the services, not openai.NewClient: NewClient also reads
	// OPENAI_* variables (organization, project, custom headers) that must
	// not leak to OpenRouter.
	c.chat = openai.NewChatCompletionService(opts...)
	c.api = openai.Client{Options: opts}
	return c, nil
}

// BaseURL returns the API base the client talks to.
func (c *Client) BaseURL() string { return c.base.String() }

// Model returns the default model ("" means the account's default).
func (c *Client) Model() string { return c.cfg.Model }

// Message is one chat message. Role is "system", "developer", "user" or
// "assistant" (empty means "user").
type Message struct {
	Role    string
	Content string
}

// Request is one chat-completions request (spec §3.1).
type Request struct {
	// Model overrides [Config.Model] for this request.
	Model    string
	Messages []Message
	// MaxTokens caps the answer's tokens (max_tokens); 0 leaves it to the
	// model.
	MaxTokens int
	// Temperature (0..2); nil leaves it to the model.
	Temperature *float64
}

// EventKind says what an [Event] reports.
type EventKind int

const (
	// EventDelta: a piece of the answer's text, in Delta.
	EventDelta EventKind = iota + 1
	// EventReasoning: a piece of a reasoning model's thinking, in Delta.
	EventReasoning
	// EventWaiting: a keep-alive comment arrived; the model is still
	// working (show "waiting").
	EventWaiting
	// EventRetry: the previous attempt failed with Err (retryable); attempt
	// number Attempt starts after RetryIn.
	EventRetry
)

// Event is a progress report delivered to the callback of
// [Client.Stream], on the calling goroutine, in order.
type Event struct {
	Kind    EventKind
	Delta   string
	Attempt int
	RetryIn time.Duration
	Err     error
}

// Usage is the final chunk's usage (spec §3.3): token counts and
// OpenRouter's cost in USD (nil when the service sent none).
type Usage struct {
	PromptTokens, CompletionTokens, TotalTokens int
	Cost                                        *float64
}

// Result is a finished answer. On error, Stream still returns the text
// received so far (Result.Text) alongside the error.
type Result struct {
	Text         string
	Model        string // the model that answered, as the service named it
	Provider     string // the upstream provider OpenRouter routed to, if sent
	FinishReason string // stop | length | tool_calls | content_filter | …
	ID           string // generation id (gen-…)
	Usage        *Usage // nil when the stream carried no usage
	Attempts     int
}

// Stream sends req with "stream": true and calls on (which may be nil) for
// every text delta, keep-alive and retry. It returns when the answer is
// complete, or with an [*Error] (see [ErrorKind]) when it is not; the
// partial text is in the Result either way.
func (c *Client) Stream(ctx context.Context, req Request, on func(Event)) (Result, error) {
	if on == nil {
		on = func(Event) {}
	}
	params, err := c.params(req)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	tctx := ctx
	if c.cfg.TotalTimeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeoutCause(ctx, c.cfg.TotalTimeout, timeoutCause{PhaseTotal})
		defer cancel()
	}
	log := c.log.With("model", string(params.Model))
	for attempt := 1; ; attempt++ {
		log.Debug("openrouter: sending chat request", "attempt", attempt, "messages", len(req.Messages))
		res, err := c.attempt(ctx, tctx, params, on)
		res.Attempts = attempt
		if err == nil {
			attrs := []any{"attempts", attempt, "finish_reason", res.FinishReason, "duration", time.Since(start).Round(time.Millisecond)}
			if res.Usage != nil {
				attrs = append(attrs, "prompt_tokens", res.Usage.PromptTokens, "completion_tokens", res.Usage.CompletionTokens)
				if res.Usage.Cost != nil {
					attrs = append(attrs, "cost_usd", *res.Usage.Cost)
				}
			}
			log.Info("openrouter: answer complete", attrs...)
			return res, nil
		}
		e, _ := asError(err)
		e.Attempts = attempt
		wait := e.RetryAfter
		if wait == 0 {
			wait = c.backoff(attempt)
		}
		if attempt > c.cfg.MaxRetries || !retryable(e) || wait > c.cfg.MaxRetryWait || !fits(tctx, wait) {
			log.Warn("openrouter: request failed", "kind", e.Kind.String(), "status", e.Status, "attempts", attempt,
				"error", e.Error())
			return res, e
		}
		log.Info("openrouter: retrying", "kind", e.Kind.String(), "status", e.Status, "attempt", attempt+1,
			"wait", wait, "retry_after", e.RetryAfter > 0)
		on(Event{Kind: EventRetry, Attempt: attempt + 1, RetryIn: wait, Err: e})
		if err := c.sleep(tctx, wait); err != nil {
			e := c.contextError(ctx, tctx, nil, err, true, false)
			e.Attempts = attempt
			return res, e
		}
	}
}

// fits reports whether a wait ends before ctx's deadline.
func fits(ctx context.Context, wait time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > wait
}

// backoff is the wait before attempt+1 when the service gave no
// Retry-After: RetryBaseDelay doubled per attempt, ±25% jitter.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.RetryBaseDelay << min(attempt-1, 10)
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return min(d+jitter, c.cfg.MaxRetryWait)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (c *Client) params(req Request) (openai.ChatCompletionNewParams, error) {
	if len(req.Messages) == 0 {
		return openai.ChatCompletionNewParams{}, &Error{Kind: KindConfig, Message: "OpenRouter: the request has no messages"}
	}
	msgs := make([]openai.ChatCompletionMessageParamUnion, 0, len(req.Messages))
	for _, m := range req.Messages {
		switch m.Role {
		case "system":
			msgs = append(msgs, openai.SystemMessage(m.Content))
		case "developer":
			msgs = append(msgs, openai.DeveloperMessage(m.Content))
		case "user", "":
			msgs = append(msgs, openai.UserMessage(m.Content))
		case "assistant":
			msgs = append(msgs, openai.AssistantMessage(m.Content))
		default:
			return openai.ChatCompletionNewParams{}, &Error{Kind: KindConfig,
				Message: "OpenRouter: unknown message role " + `"` + m.Role + `"` + " (want system, developer, user or assistant)"}
		}
	}
	model := req.Model
	if model == "" {
		model = c.cfg.Model
	}
	p := openai.ChatCompletionNewParams{Messages: msgs, Model: shared.ChatModel(model)} // "" is omitted: account default
	if req.MaxTokens > 0 {
		p.MaxTokens = openai.Int(int64(req.MaxTokens))
	}
	if req.Temperature != nil {
		p.Temperature = openai.Float(*req.Temperature)
	}
	return p, nil
}

// attemptState is what the middleware saw of one HTTP exchange.
type attemptState struct {
	status int
	header http.Header
	body   []byte // error bodies only
	obs    *observer
}

// attempt makes one HTTP request and reads its stream to the end.
func (c *Client) attempt(ctx, tctx context.Context, params openai.ChatCompletionNewParams, on func(Event)) (Result, error) {
	actx, cancel := context.WithCancelCause(tctx)
	defer cancel(nil)
	wd := newWatchdog(cancel, c.cfg.FirstTokenTimeout, c.cfg.IdleTimeout)
	defer wd.stop()

	var st attemptState
	mw := func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		resp, err := next(r)
		if err != nil || resp == nil {
			return resp, err
		}
		st.status, st.header = resp.StatusCode, resp.Header
		if resp.StatusCode >= 400 {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			st.body = b
			resp.Body = io.NopCloser(bytes.NewReader(b))
			return resp, nil
		}
		wd.headers()
		st.obs = &observer{rc: resp.Body, wd: wd, on: on, lineStart: true}
		resp.Body = st.obs
		return resp, nil
	}
	stream := c.chat.NewStreaming(actx, params, option.WithMiddleware(mw),
		option.WithHeader("Accept", "text/event-stream"),
		// No compression: a gzip reader may hold back bytes of a stream.
		option.WithHeader("Accept-Encoding", "identity"))
	defer stream.Close()

	var acc accumulator
	for stream.Next() {
		acc.add(stream.Current(), on, wd)
	}
	err := stream.Err()
	res := acc.result()

	if st.status >= 400 {
		return res, c.statusError(st.status, st.header, st.body, c.now())
	}
	if err != nil {
		var se *ssestream.StreamError
		if errors.As(err, &se) {
			return res, c.chunkError(se.Event.Data, &acc)
		}
		return res, c.contextError(ctx, tctx, actx, err, st.status != 0 || acc.chunks > 0, acc.partial())
	}
	if acc.finish == "error" {
		return res, c.choiceError(&acc)
	}
	done := st.obs != nil && st.obs.done
	if acc.finish == "" || !done {
		e := &Error{Kind: KindTruncated, Partial: acc.partial(), GenerationID: acc.id}
		switch {
		case acc.finish == "" && !done:
			e.Message = "no finish reason and no [DONE]"
		case acc.finish == "":
			e.Message = "no finish reason before [DONE]"
		default:
			e.Message = "no [DONE] after finish reason " + `"` + acc.finish + `"`
		}
		return res, e
	}
	return res, nil
}

// contextError maps a failure to read or connect: the caller's
// cancellation, one of our timeouts, or a network error.
func (c *Client) contextError(ctx, tctx, actx context.Context, err error, gotResponse, partial bool) *Error {
	if ctx.Err() != nil {
		e := &Error{Kind: KindCanceled, Partial: partial, err: ctx.Err()}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			e.Message = "the caller's deadline passed"
		}
		return e
	}
	var tc timeoutCause
	if errors.As(context.Cause(tctx), &tc) ||
		actx != nil && errors.As(context.Cause(actx), &tc) ||
		errors.As(err, &tc) {
		return &Error{Kind: KindTimeout, Phase: tc.phase, Timeout: c.timeoutOf(tc.phase), Partial: partial, err: context.DeadlineExceeded}
	}
	var ne net.Error
	if !gotResponse && errors.As(err, &ne) && ne.Timeout() {
		return &Error{Kind: KindTimeout, Phase: PhaseConnect, Timeout: c.cfg.ConnectTimeout, err: err}
	}
	return &Error{Kind: KindNetwork, Partial: partial, Message: c.redact(netMessage(err)), err: err}
}

func (c *Client) timeoutOf(phase string) time.Duration {
	switch phase {
	case PhaseConnect:
		return c.cfg.ConnectTimeout
	case PhaseFirstToken:
		return c.cfg.FirstTokenTimeout
	case PhaseIdle:
		return c.cfg.IdleTimeout
	case PhaseTotal:
		return c.cfg.TotalTimeout
	}
	return 0
}

// netMessage is a network error's text without the request URL.
func netMessage(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "the connection closed mid-stream (unexpected EOF)"
	}
	return err.Error()
}

// chunkError decodes an in-band error chunk (spec §3.4).
func (c *Client) chunkError(data []byte, acc *accumulator) *Error {
	var ch struct {
		ID    string     `json:"id"`
		Error *wireError `json:"error"`
	}
	e := &Error{Kind: KindStream, Partial: acc.partial(), GenerationID: acc.id}
	if err := jsonUnmarshal(data, &ch); err != nil || ch.Error == nil {
		e.Message = "malformed error chunk"
		return e
	}
	if ch.ID != "" {
		e.GenerationID = ch.ID
	}
	c.fillFromWire(e, ch.Error)
	return e
}

// choiceError handles finish_reason "error" without a top-level error
// object (the error may sit on the choice instead).
func (c *Client) choiceError(acc *accumulator) *Error {
	e := &Error{Kind: KindStream, Partial: acc.partial(), GenerationID: acc.id}
	if acc.choiceErr != nil {
		c.fillFromWire(e, acc.choiceErr)
	} else {
		e.Message = "finish reason \"error\" without details"
	}
	return e
}

func (c *Client) fillFromWire(e *Error, w *wireError) {
	n, s := w.code()
	e.Status, e.Code = n, s
	e.Message = c.redact(w.Message)
	e.Type = w.Metadata.ErrorType
	e.Reasons = redactAll(c, w.reasons())
}

var bearerRE = regexp.MustCompile(`(?i)bearer\s+[^\s"',;]+`)

// redact removes the API key (and any bearer token) from text that came
// from the service or the network.
func (c *Client) redact(s string) string {
	if s == "" {
		return s
	}
	if k := c.cfg.APIKey; k != "" && strings.Contains(s, k) {
		s = strings.ReplaceAll(s, k, "[REDACTED]")
	}
	if strings.Contains(strings.ToLower(s), "bearer") {
		s = bearerRE.ReplaceAllString(s, "Bearer [REDACTED]")
	}
	return s
}

// dialContext applies ConnectTimeout to the TCP connect.
func (c *Client) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.cfg.ConnectTimeout <= 0 {
		return c.dial(ctx, network, addr)
	}
	dctx, cancel := context.WithTimeoutCause(ctx, c.cfg.ConnectTimeout, timeoutCause{PhaseConnect})
	defer cancel()
	conn, err := c.dial(dctx, network, addr)
	if err != nil {
		var tc timeoutCause
		if errors.As(context.Cause(dctx), &tc) && ctx.Err() == nil {
			return nil, tc
		}
	}
	return conn, err
}

// timeoutCause is the cancellation cause of one of our timeouts.
type timeoutCause struct{ phase string }

func (t timeoutCause) Error() string   { return "openrouter: " + t.phase + " timeout" }
func (t timeoutCause) Timeout() bool   { return true }
func (t timeoutCause) Temporary() bool { return false }
