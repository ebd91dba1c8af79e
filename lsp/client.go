package lsp

import (
	"context"
	"time"

	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

// showDocumentTimeout bounds the wait for window/showDocument.
const showDocumentTimeout = 15 * time.Second

// showDocument asks the editor to show uri (external: in the browser). It
// reports false when the client does not support window/showDocument, did
// not answer in time, or failed.
func (s *Server) showDocument(ctx context.Context, uri string, external bool, sel *protocol.Range) bool {
	if !s.caps.ShowDocument {
		return false
	}
	var res protocolx.ShowDocumentResult
	err := s.call(ctx, protocolx.MethodShowDocument, protocolx.ShowDocumentParams{
		URI: uri, External: external, TakeFocus: !external, Selection: sel,
	}, &res, showDocumentTimeout)
	if err != nil {
		s.log.Info("window/showDocument failed", "uri", uri, "err", err)
		return false
	}
	return res.Success
}

// showMessageRequest asks the user to pick one of actions and returns the
// chosen title, or "" when the user dismissed the message, the client did
// not answer within the configured request timeout (Vim + ALE never answers
// server requests), or the request failed.
func (s *Server) showMessageRequest(ctx context.Context, typ protocol.MessageType, msg string, actions ...string) (string, error) {
	items := make([]protocol.MessageActionItem, len(actions))
	for i, a := range actions {
		items[i] = protocol.MessageActionItem{Title: a}
	}
	timeout := time.Duration(s.Settings().RequestTimeoutSec) * time.Second
	var res *protocol.MessageActionItem
	err := s.call(ctx, "window/showMessageRequest", protocol.ShowMessageRequestParams{
		Type: typ, Message: s.redactor.String(msg), Actions: items,
	}, &res, timeout)
	if err != nil {
		return "", err
	}
	if res == nil {
		return "", nil
	}
	return res.Title, nil
}
