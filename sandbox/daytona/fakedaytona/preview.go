package fakedaytona

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"
)

// previewProxy is the preview endpoint of one sandbox port (spec §5). The
// real one is https://{port}-{sandboxId}.{proxyDomain}; the fake gives each
// port a loopback listener of its own so that paths stay at the root.
type previewProxy struct {
	url string
	srv *http.Server
}

func (p *previewProxy) close() { p.srv.Close() }

func (sb *sandbox) preview(port int) (*previewProxy, error) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if p, ok := sb.previews[port]; ok {
		return p, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	target := &url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(port)}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, "no server is listening on port %d of sandbox %s\n", port, sb.id)
	}
	p := &previewProxy{url: "http://" + ln.Addr().String()}
	p.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			s := sb.srv
			s.mu.Lock()
			s.requests = append(s.requests, Request{Target: "preview", Method: r.Method, Path: r.URL.Path,
				Query: cloneValues(r.URL.Query()), Header: r.Header.Clone(), Status: rec.status})
			s.mu.Unlock()
		}()
		s := sb.srv
		s.mu.Lock()
		_, exists := s.sandboxes[sb.id]
		s.refreshLocked(sb, false)
		state, token, public := sb.state, sb.token, sb.public
		s.mu.Unlock()
		if !exists || state != "started" {
			writeDaemon(rec, r, http.StatusBadGateway, "SANDBOX_NOT_STARTED", fmt.Sprintf("sandbox %s is not started", sb.id))
			return
		}
		got := r.Header.Get("X-Daytona-Preview-Token")
		if got == "" {
			got = r.URL.Query().Get("DAYTONA_SANDBOX_AUTH_KEY")
		}
		if !public && got != token {
			// corrections §7: the fake's answer to a preview request without
			// a (valid) token.
			rec.Header().Set("Content-Type", "text/plain; charset=utf-8")
			rec.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(rec, "Unauthorized: missing or invalid x-daytona-preview-token")
			return
		}
		r.Header.Del("X-Daytona-Preview-Token")
		rp.ServeHTTP(rec, r)
	})}
	go p.srv.Serve(ln)
	sb.previews[port] = p
	return p, nil
}
