package lsp

// threadStore keeps chat threads (threadId → messages) for follow-ups.
type threadStore struct{}

func newThreadStore() *threadStore { return &threadStore{} }
