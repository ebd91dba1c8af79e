package opencode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// streamItem is what the event subscriber hands the run: an event, or a
// note that events may have been missed (after a reconnect, or an event too
// large to keep), upon which the run resynchronises from the session's
// messages.
type streamItem struct {
	ev  event
	gap bool
}

// Event stream tuning.
const (
	// streamIdleTimeout: OpenCode sends a heartbeat every 10 s; a stream
	// silent this long is treated as dropped.
	streamIdleTimeout = 35 * time.Second
	// maxEventSize bounds one event (a write of a big file carries the whole
	// content); larger ones are skipped and resynchronised.
	maxEventSize = 64 << 20
	minReconnect = 100 * time.Millisecond
	maxReconnect = 2 * time.Second
	// listenerBacklog is how many events a run may fall behind before it
	// is told it missed some (and resynchronises).
	listenerBacklog = 4096
)

// hub fans the server's one event stream out to the runs: each run adds a
// listener for its lifetime and filters the events of its sessions. A
// listener is never waited for: when its backlog is full, the event is
// dropped and the listener gets a gap item as soon as it has room, so it
// resynchronises.
type hub struct {
	mu        sync.Mutex
	listeners map[*listener]struct{}
}

type listener struct {
	ch       chan streamItem
	overflow bool        // guarded by hub.mu
	dropped  atomic.Bool // an event was ever dropped for this listener
}

func (h *hub) add() *listener {
	l := &listener{ch: make(chan streamItem, listenerBacklog)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.listeners == nil {
		h.listeners = map[*listener]struct{}{}
	}
	h.listeners[l] = struct{}{}
	return l
}

func (h *hub) remove(l *listener) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.listeners, l)
}

func (h *hub) deliver(it streamItem) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for l := range h.listeners {
		if l.overflow {
			select {
			case l.ch <- streamItem{gap: true}:
				l.overflow = false
			default:
				continue
			}
		}
		select {
		case l.ch <- it:
		default:
			l.overflow = true
			l.dropped.Store(true)
		}
	}
}

// subscribe follows GET /event for the server's lifetime (until ctx ends or
// the server exits), reconnecting with backoff when the stream drops, and
// hands every event to the hub. connected is closed at the first
// server.connected; after a later one, the listeners get a gap item before
// any event of the new stream.
func (s *Server) subscribe(ctx context.Context, connected chan<- struct{}) {
	first := true
	backoff := minReconnect
	for ctx.Err() == nil {
		got, err := s.readStream(ctx, &first, connected)
		if ctx.Err() != nil {
			return
		}
		if got {
			backoff = minReconnect
		}
		s.log.Debug("OpenCode event stream dropped, reconnecting", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxReconnect)
	}
}

// readStream reads one connection of the event stream; got reports whether
// it delivered anything.
func (s *Server) readStream(ctx context.Context, first *bool, connected chan<- struct{}) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := s.newRequest(ctx, http.MethodGet, "/event", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")

	// A watchdog cancels the request when nothing (not even a heartbeat)
	// arrives for streamIdleTimeout, including while connecting.
	watchdog := time.AfterFunc(streamIdleTimeout, cancel)
	defer watchdog.Stop()

	resp, err := s.stream.Do(req)
	if err != nil {
		return false, fmt.Errorf("connect: %s", s.red.Replace(unwrapURLError(err).Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return false, s.apiError(http.MethodGet, "/event", resp.StatusCode, b)
	}
	send := func(it streamItem) bool {
		s.hub.deliver(it)
		return ctx.Err() == nil
	}
	rd := newSSEReader(resp.Body, maxEventSize)
	for {
		data, err := rd.next()
		watchdog.Reset(streamIdleTimeout)
		if errors.Is(err, errEventTooLarge) {
			s.log.Warn("OpenCode event over the size bound skipped; resynchronising", "bound", maxEventSize)
			if !send(streamItem{gap: true}) {
				return got, ctx.Err()
			}
			continue
		}
		if err != nil {
			return got, err
		}
		var ev event
		if err := json.Unmarshal(data, &ev); err != nil {
			s.log.Debug("Undecodable OpenCode event skipped", "error", err)
			continue
		}
		switch ev.Type {
		case "server.heartbeat":
			continue
		case "server.connected":
			if *first {
				*first = false
				close(connected)
			} else if !send(streamItem{gap: true}) {
				return got, ctx.Err()
			}
			got = true
			continue
		}
		got = true
		if !send(streamItem{ev: ev}) {
			return got, ctx.Err()
		}
	}
}
