package lsp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aymanbagabas/go-udiff"
	"go.lsp.dev/protocol"

	"github.com/opencode-lsp/opencode-lsp/lsp/position"
	"github.com/opencode-lsp/opencode-lsp/lsp/protocolx"
)

// Change actions (editor contract: FileChange.action).
const (
	actionCreated  = "created"
	actionModified = "modified"
	actionDeleted  = "deleted"
)

// fileChange is one file of a change set to bring into the editor.
type fileChange struct {
	Rel    string // workspace-relative slash path
	Path   string // absolute host path
	URI    protocol.DocumentURI
	Action string
	// Base is the text the change was computed against (the snapshot the
	// sandbox got: an unsaved buffer or the file on disk); nil for created.
	Base []byte
	// New is the new content; nil for deleted.
	New []byte
	// Version is the editor's document version at snapshot time, nil when
	// the file was not open then.
	Version *int32
	// Mode is the file's mode in the sandbox (its executable bits are
	// restored on disk after the edit: an edit cannot carry them).
	Mode os.FileMode
}

// applyOutcome tells what happened to a change set.
type applyOutcome struct {
	Applied bool
	// Reason explains a refusal (from the editor's failureReason or ours).
	Reason string
	// OnDisk lists files the server created or deleted itself because the
	// editor cannot (no resourceOperations).
	OnDisk []string
}

// annotationID labels every edit of a change set (change annotations, LSP 3.16).
const annotationID = "opencode"

// applyTimeout bounds the wait for the editor's answer to applyEdit; a
// confirmation preview may keep it open while the user reviews.
const applyTimeout = 10 * time.Minute

// applyChanges brings a change set into the editor as ONE workspace edit,
// using what the client supports:
//
//   - documentChanges + create/delete resource operations: CreateFile +
//     versioned TextDocumentEdits + DeleteFile, annotated "OpenCode";
//   - documentChanges without resource operations (Emacs eglot): versioned
//     TextDocumentEdits for existing files; new files are written to disk by
//     the server (never over an existing file) and deletions are done on disk
//     only when the file is closed and unchanged since the snapshot;
//   - no documentChanges: the `changes` map, with the version check done by
//     the server against its own document store right before sending.
//
// Disk operations are checked before the edit is sent and performed only
// after the editor applied it, so a refused edit changes nothing.
func (s *Server) applyChanges(ctx context.Context, label string, changes []fileChange, needsConfirmation bool) (applyOutcome, error) {
	if len(changes) == 0 {
		return applyOutcome{Applied: true}, nil
	}
	caps := s.caps
	if !caps.ApplyEdit {
		return applyOutcome{}, errors.New("the editor cannot apply workspace edits (it does not advertise workspace.applyEdit); use apply:false to get the changes")
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Rel < changes[j].Rel })
	canCreate := caps.SupportsResourceOperation(protocolx.ResourceCreate)
	canDelete := caps.SupportsResourceOperation(protocolx.ResourceDelete)

	var diskCreates, diskDeletes []fileChange
	edit := protocolx.WorkspaceEdit{}
	annotate := ""
	if caps.DocumentChanges && caps.ChangeAnnotations {
		annotate = annotationID
		edit.ChangeAnnotations = map[string]protocolx.ChangeAnnotation{annotationID: {
			Label: "OpenCode", NeedsConfirmation: needsConfirmation, Description: label,
		}}
	}
	for _, c := range changes {
		switch c.Action {
		case actionCreated:
			if caps.DocumentChanges && canCreate {
				edit.DocumentChanges = append(edit.DocumentChanges,
					protocolx.DocumentChange{CreateFile: &protocolx.CreateFile{URI: c.URI, AnnotationID: annotate}}, // fails if the file appeared meanwhile: never overwrite
					protocolx.DocumentChange{TextDocumentEdit: &protocolx.TextDocumentEdit{
						TextDocument: protocolx.OptionalVersionedTextDocumentIdentifier{URI: c.URI},
						Edits:        []protocolx.AnnotatedTextEdit{{NewText: string(c.New), AnnotationID: annotate}},
					}})
				continue
			}
			if _, err := os.Lstat(c.Path); err == nil {
				return applyOutcome{Reason: fmt.Sprintf("%s already exists on disk; not overwriting it", c.Rel)}, nil
			}
			diskCreates = append(diskCreates, c)
		case actionDeleted:
			if caps.DocumentChanges && canDelete {
				edit.DocumentChanges = append(edit.DocumentChanges, protocolx.DocumentChange{DeleteFile: &protocolx.DeleteFile{
					URI: c.URI, Options: &protocolx.DeleteFileOptions{IgnoreIfNotExists: true}, AnnotationID: annotate,
				}})
				continue
			}
			if reason := s.checkDiskDelete(c); reason != "" {
				return applyOutcome{Reason: reason}, nil
			}
			diskDeletes = append(diskDeletes, c)
		case actionModified:
			edits, err := textEdits(c.Base, c.New, s.encoding, annotate)
			if err != nil {
				return applyOutcome{}, fmt.Errorf("%s: %w", c.Rel, err)
			}
			if len(edits) == 0 {
				continue
			}
			if caps.DocumentChanges {
				edit.DocumentChanges = append(edit.DocumentChanges, protocolx.DocumentChange{TextDocumentEdit: &protocolx.TextDocumentEdit{
					TextDocument: protocolx.OptionalVersionedTextDocumentIdentifier{URI: c.URI, Version: c.Version},
					Edits:        edits,
				}})
				continue
			}
			// No documentChanges: the client cannot check versions, so do it.
			if reason := s.checkUnversioned(c); reason != "" {
				return applyOutcome{Reason: reason}, nil
			}
			if edit.Changes == nil {
				edit.Changes = map[protocol.DocumentURI][]protocol.TextEdit{}
			}
			for _, e := range edits {
				edit.Changes[c.URI] = append(edit.Changes[c.URI], protocol.TextEdit{Range: e.Range, NewText: e.NewText})
			}
		default:
			return applyOutcome{}, fmt.Errorf("%s: unknown change action %q", c.Rel, c.Action)
		}
	}

	out := applyOutcome{Applied: true}
	if len(edit.DocumentChanges) > 0 || len(edit.Changes) > 0 {
		if len(edit.DocumentChanges) == 0 {
			edit.ChangeAnnotations = nil
		}
		var res protocolx.ApplyWorkspaceEditResult
		// Once sent, the edit's outcome must be known whatever happens to
		// the run: a cancel must not leave an edit the editor may still
		// apply while we report it as not applied.
		err := s.call(context.WithoutCancel(ctx), "workspace/applyEdit", protocolx.ApplyWorkspaceEditParams{Label: label, Edit: edit}, &res, applyTimeout)
		if err != nil {
			return applyOutcome{}, fmt.Errorf("workspace/applyEdit: %w", err)
		}
		if !res.Applied {
			reason := res.FailureReason
			if reason == "" {
				reason = "the editor did not apply the edit (declined, or a document changed since the run started)"
			}
			return applyOutcome{Reason: reason}, nil
		}
	}
	for _, c := range diskCreates {
		if err := writeNewFile(c.Path, c.New); err != nil {
			return out, fmt.Errorf("creating %s: %w", c.Rel, err)
		}
		out.OnDisk = append(out.OnDisk, c.Rel)
	}
	for _, c := range diskDeletes {
		if err := os.Remove(c.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return out, fmt.Errorf("deleting %s: %w", c.Rel, err)
		}
		out.OnDisk = append(out.OnDisk, c.Rel)
	}
	return out, nil
}

// applyModes gives files the executable bits the agent set (a script it
// wrote), once the editor applied the edit and the file exists on disk.
func applyModes(changes []fileChange) {
	for _, c := range changes {
		if c.Action == actionDeleted || c.Mode&0o111 == 0 {
			continue
		}
		if st, err := os.Lstat(c.Path); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != c.Mode.Perm()&0o111 {
			_ = os.Chmod(c.Path, st.Mode().Perm()|c.Mode.Perm()&0o111)
		}
	}
}

// checkUnversioned refuses a change to a document the user edited since the
// snapshot (the client cannot check versions itself).
func (s *Server) checkUnversioned(c fileChange) string {
	d := s.docs.byPath(c.Path)
	switch {
	case d != nil && (c.Version == nil || *c.Version != d.Version):
		return fmt.Sprintf("%s changed in the editor since the run started; not overwriting it", c.Rel)
	case d == nil:
		disk, err := os.ReadFile(c.Path)
		if err != nil || !bytes.Equal(disk, c.Base) {
			return fmt.Sprintf("%s changed on disk since the run started; not overwriting it", c.Rel)
		}
	}
	return ""
}

// checkDiskDelete allows deleting a file on disk only when it is not open
// and its content is what the run saw.
func (s *Server) checkDiskDelete(c fileChange) string {
	if s.docs.byPath(c.Path) != nil {
		return fmt.Sprintf("%s is open in the editor; close it to let OpenCode delete it", c.Rel)
	}
	disk, err := os.ReadFile(c.Path)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil || sha256.Sum256(disk) != sha256.Sum256(c.Base) {
		return fmt.Sprintf("%s changed on disk since the run started; not deleting it", c.Rel)
	}
	return ""
}

// writeNewFile creates path with data, failing if it exists.
func writeNewFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// textEdits computes minimal line-granular edits turning base into next,
// with ranges in enc. Line endings are kept: each replaced line carries its
// own ending from next, so a one-line change to a CRLF file is a one-line
// edit.
func textEdits(base, next []byte, enc position.Encoding, annotation string) ([]protocolx.AnnotatedTextEdit, error) {
	if bytes.Equal(base, next) {
		return nil, nil
	}
	diffs := udiff.Lines(string(base), string(next))
	m := position.NewMapper(base)
	out := make([]protocolx.AnnotatedTextEdit, 0, len(diffs))
	for _, d := range diffs {
		sl, sc, err := m.Position(d.Start, enc)
		if err != nil {
			return nil, err
		}
		el, ec, err := m.Position(d.End, enc)
		if err != nil {
			return nil, err
		}
		out = append(out, protocolx.AnnotatedTextEdit{
			Range: protocol.Range{
				Start: protocol.Position{Line: uint32(sl), Character: uint32(sc)},
				End:   protocol.Position{Line: uint32(el), Character: uint32(ec)},
			},
			NewText:      d.New,
			AnnotationID: annotation,
		})
	}
	return out, nil
}

// summarizeChanges is a one-line description of a change set.
func summarizeChanges(changes []fileChange) string {
	counts := map[string]int{}
	for _, c := range changes {
		counts[c.Action]++
	}
	var parts []string
	for _, a := range []string{actionCreated, actionModified, actionDeleted} {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[a], a))
		}
	}
	if len(parts) == 0 {
		return "no file changes"
	}
	return strings.Join(parts, ", ")
}
