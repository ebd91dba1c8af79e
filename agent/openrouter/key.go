package openrouter

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/openai/openai-go/v3/option"
)

// KeyInfo is the part of GET /key's "data" object (spec §7) that doctor
// reports. Money is in USD; Limit and LimitRemaining are nil when the key
// has no limit.
type KeyInfo struct {
	// Label is OpenRouter's own masked label of the key (for example
	// "sk-or-v1-abc...xyz"), never the key itself.
	Label          string   `json:"label"`
	Limit          *float64 `json:"limit"`
	LimitRemaining *float64 `json:"limit_remaining"`
	LimitReset     *string  `json:"limit_reset"`
	Usage          float64  `json:"usage"`
	UsageDaily     float64  `json:"usage_daily"`
	IsFreeTier     bool     `json:"is_free_tier"`
	ExpiresAt      *string  `json:"expires_at"`
}

// CheckKey asks OpenRouter about the configured key with GET /key, and
// GET /auth/key (the older path) when /key answers 404. A rejected key is a
// [KindAuth] error naming where the key came from.
func (c *Client) CheckKey(ctx context.Context) (KeyInfo, error) {
	var out struct {
		Data KeyInfo `json:"data"`
	}
	err := c.get(ctx, "key", &out)
	if e, ok := asError(err); ok && e.Status == http.StatusNotFound {
		err = c.get(ctx, "auth/key", &out)
	}
	if err != nil {
		return KeyInfo{}, err
	}
	out.Data.Label = c.redact(out.Data.Label)
	return out.Data, nil
}

// ModelInfo is one entry of GET /models (spec §6). Prices are OpenRouter's
// decimal strings, USD per token.
type ModelInfo struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	ContextLength int    `json:"context_length"`
	Pricing       struct {
		Prompt     string `json:"prompt"`
		Completion string `json:"completion"`
	} `json:"pricing"`
	SupportedParameters []string `json:"supported_parameters"`
}

// Models lists the model catalogue (GET /models).
func (c *Client) Models(ctx context.Context) ([]ModelInfo, error) {
	var out struct {
		Data []ModelInfo `json:"data"`
	}
	if err := c.get(ctx, "models", &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// get makes one GET request through openai-go and decodes a JSON answer,
// with the same error mapping and timeouts (connect, total) as Stream.
func (c *Client) get(ctx context.Context, path string, dst any) error {
	tctx := ctx
	if c.cfg.TotalTimeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeoutCause(ctx, c.cfg.TotalTimeout, timeoutCause{PhaseTotal})
		defer cancel()
	}
	var st attemptState
	var body []byte
	mw := func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		resp, err := next(r)
		if err != nil || resp == nil {
			return resp, err
		}
		st.status, st.header = resp.StatusCode, resp.Header
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if rerr != nil {
			return nil, rerr
		}
		body = b
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return resp, nil
	}
	var raw []byte
	err := c.api.Get(tctx, path, nil, &raw, option.WithMiddleware(mw))
	if st.status >= 400 {
		return c.statusError(st.status, st.header, body, c.now())
	}
	if err != nil {
		return c.contextError(ctx, tctx, nil, err, st.status != 0, false)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return &Error{Kind: KindServer, Status: st.status, Message: "unexpected answer to GET /" + path + ": " + err.Error()}
	}
	return nil
}
