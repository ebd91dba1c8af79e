package openrouter

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults used where a [Config] field is left zero.
const (
	DefaultBaseURL = "https://openrouter.ai/api/v1"
	// DefaultReferer and DefaultTitle are the app attribution sent as
	// HTTP-Referer and X-OpenRouter-Title (spec §2).
	DefaultReferer = "https://github.com/opencode-lsp/opencode-lsp"
	DefaultTitle   = "opencode-lsp"

	DefaultConnectTimeout    = 30 * time.Second
	DefaultFirstTokenTimeout = 3 * time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultTotalTimeout      = 15 * time.Minute
	DefaultMaxRetries        = 3
	DefaultRetryBaseDelay    = 500 * time.Millisecond
	DefaultMaxRetryWait      = 60 * time.Second
)

// Where an API key came from, as [Config.KeySource] names it in messages.
const (
	KeySourceEnv     = "OPENROUTER_API_KEY environment variable"
	KeySourceSetting = "opencode.openrouter.apiKey setting"
)

// Environment variables read by [ConfigFromEnv] (the names OpenRouter's own
// SDK reads).
const (
	EnvAPIKey  = "OPENROUTER_API_KEY"
	EnvBaseURL = "OPENROUTER_BASE_URL"
)

// Config configures a [Client]. The zero value of every field but APIKey
// means its default.
type Config struct {
	// BaseURL is the API base, default [DefaultBaseURL]. It must start with
	// https:// or http:// (plain http is for loopback fakes and
	// self-hosted gateways).
	BaseURL string
	// APIKey is the OpenRouter key (sk-or-v1-…). It is sent only as the
	// bearer token to BaseURL and never appears in a log line, an event, a
	// result or an error text.
	APIKey string
	// KeySource names where APIKey came from ([KeySourceEnv],
	// [KeySourceSetting]); 401 messages quote it, never the key.
	KeySource string
	// Model is the model used when a [Request] names none (for example
	// "openai/gpt-4o-mini"). When both are empty the request omits "model"
	// and OpenRouter uses the account's default model.
	Model string
	// Referer and Title are the attribution headers HTTP-Referer and
	// X-OpenRouter-Title (plus the legacy X-Title); defaults
	// [DefaultReferer], [DefaultTitle].
	Referer, Title string
	// HTTPClient, when set, is used as is; ConnectTimeout then applies only
	// if its transport enforces it. nil uses a client whose transport
	// applies ConnectTimeout to the TCP connect and the TLS handshake.
	HTTPClient *http.Client

	// ConnectTimeout bounds the TCP connect plus TLS handshake;
	// FirstTokenTimeout the time from sending the request to the first
	// token (keep-alive comments do not count); IdleTimeout the silence on
	// an open stream (any bytes, keep-alives included, reset it);
	// TotalTimeout the whole call, retries and their waits included.
	// 0 means the default; a negative value switches the timeout off.
	ConnectTimeout, FirstTokenTimeout, IdleTimeout, TotalTimeout time.Duration

	// MaxRetries bounds the retries of 429, 502, 503, 524, 529, an
	// in-flight-budget 402 and connection failures before any answer
	// streamed (default [DefaultMaxRetries]; negative: no retries).
	MaxRetries int
	// RetryBaseDelay is the first backoff (doubling, with jitter) when the
	// service sends no Retry-After (default [DefaultRetryBaseDelay]).
	RetryBaseDelay time.Duration
	// MaxRetryWait caps one wait: when Retry-After asks for longer, the
	// client gives up at once with an error saying when to retry (default
	// [DefaultMaxRetryWait]).
	MaxRetryWait time.Duration

	// Logger receives debug and info records about requests (never the key
	// or message contents); nil discards them.
	Logger *slog.Logger
}

// ConfigFromEnv fills the fields the settings left empty from the
// environment: APIKey from OPENROUTER_API_KEY (KeySource becomes
// [KeySourceEnv]) and BaseURL from OPENROUTER_BASE_URL. Values already in
// cfg (from settings) win. getenv is normally [os.Getenv].
func ConfigFromEnv(cfg Config, getenv func(string) string) Config {
	if cfg.APIKey == "" {
		if k := strings.TrimSpace(getenv(EnvAPIKey)); k != "" {
			cfg.APIKey = k
			cfg.KeySource = KeySourceEnv
		}
	} else if cfg.KeySource == "" {
		cfg.KeySource = KeySourceSetting
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = strings.TrimSpace(getenv(EnvBaseURL))
	}
	return cfg
}

func (cfg *Config) applyDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		switch {
		case *d == 0:
			*d = v
		case *d < 0:
			*d = 0 // off
		}
	}
	cfg.APIKey = strings.TrimSpace(cfg.APIKey) // a pasted key often ends in a newline
	cfg.BaseURL = strings.TrimSpace(cfg.BaseURL)
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.Referer == "" {
		cfg.Referer = DefaultReferer
	}
	if cfg.Title == "" {
		cfg.Title = DefaultTitle
	}
	def(&cfg.ConnectTimeout, DefaultConnectTimeout)
	def(&cfg.FirstTokenTimeout, DefaultFirstTokenTimeout)
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.TotalTimeout, DefaultTotalTimeout)
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = DefaultMaxRetries
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	if cfg.RetryBaseDelay <= 0 {
		cfg.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = DefaultMaxRetryWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
}

// validate fails fast on a configuration that cannot work.
func (cfg *Config) validate() (*url.URL, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, &Error{Kind: KindConfig, Message: "no OpenRouter API key: set the " + KeySourceEnv + " or the " + KeySourceSetting}
	}
	if strings.ContainsAny(cfg.APIKey, "\r\n") {
		return nil, &Error{Kind: KindConfig, Message: "the OpenRouter API key" + from(cfg.KeySource) + " contains a line break; check how it was pasted"}
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, &Error{Kind: KindConfig, Message: "OpenRouter base URL " + quoteURL(cfg.BaseURL) +
			" is not an absolute http:// or https:// URL (for example " + DefaultBaseURL + ")"}
	}
	return u, nil
}

func from(source string) string {
	if source == "" {
		return ""
	}
	return " from the " + source
}

// quoteURL quotes a URL for a message with any user:password part hidden.
func quoteURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return `"` + u.Redacted() + `"`
	}
	if at := strings.LastIndex(s, "@"); at >= 0 {
		s = "…" + s[at:]
	}
	return `"` + s + `"`
}
