package fakee2b

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"connectrpc.com/connect"

	pb "github.com/opencode-lsp/opencode-lsp/sandbox/e2b/internal/envdpb/filesystem"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/internal/envdpb/filesystem/filesystemconnect"
)

// filesystemService serves filesystem.Filesystem (spec §3.6); the watcher
// RPCs answer unimplemented.
type filesystemService struct {
	filesystemconnect.UnimplementedFilesystemHandler
}

func fsError(err error, host string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("path '%s' does not exist", host))
	}
	return connect.NewError(connect.CodeInternal, err)
}

func (filesystemService) Stat(ctx context.Context, req *connect.Request[pb.StatRequest]) (*connect.Response[pb.StatResponse], error) {
	host := sandboxFrom(ctx).resolve(req.Msg.GetPath())
	e, err := entryInfo(host)
	if err != nil {
		return nil, fsError(err, host)
	}
	return connect.NewResponse(&pb.StatResponse{Entry: e}), nil
}

func (filesystemService) MakeDir(ctx context.Context, req *connect.Request[pb.MakeDirRequest]) (*connect.Response[pb.MakeDirResponse], error) {
	host := sandboxFrom(ctx).resolve(req.Msg.GetPath())
	if st, err := os.Stat(host); err == nil {
		if st.IsDir() {
			return nil, connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("directory '%s' already exists", host))
		}
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("path '%s' already exists but it is not a directory", host))
	}
	if err := os.MkdirAll(host, 0o755); err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("error creating directory: %w", err))
	}
	e, err := entryInfo(host)
	if err != nil {
		return nil, fsError(err, host)
	}
	return connect.NewResponse(&pb.MakeDirResponse{Entry: e}), nil
}

func (filesystemService) Move(ctx context.Context, req *connect.Request[pb.MoveRequest]) (*connect.Response[pb.MoveResponse], error) {
	sb := sandboxFrom(ctx)
	src, dst := sb.resolve(req.Msg.GetSource()), sb.resolve(req.Msg.GetDestination())
	if _, err := os.Lstat(src); err != nil {
		return nil, fsError(err, src)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("error creating parent directory: %w", err))
	}
	if err := os.Rename(src, dst); err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("error renaming: %w", err))
	}
	e, err := entryInfo(dst)
	if err != nil {
		return nil, fsError(err, dst)
	}
	return connect.NewResponse(&pb.MoveResponse{Entry: e}), nil
}

func (filesystemService) ListDir(ctx context.Context, req *connect.Request[pb.ListDirRequest]) (*connect.Response[pb.ListDirResponse], error) {
	host := sandboxFrom(ctx).resolve(req.Msg.GetPath())
	st, err := os.Stat(host)
	if err != nil {
		return nil, fsError(err, host)
	}
	if !st.IsDir() {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("path '%s' is not a directory", host))
	}
	depth := int(req.Msg.GetDepth())
	if depth == 0 {
		depth = 1
	}
	res := &pb.ListDirResponse{}
	err = filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == host {
			return nil
		}
		rel, _ := filepath.Rel(host, p)
		level := strings.Count(rel, string(filepath.Separator)) + 1
		if e, err := entryInfo(p); err == nil {
			res.Entries = append(res.Entries, e)
		}
		if d.IsDir() && level >= depth {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, fsError(err, host)
	}
	return connect.NewResponse(res), nil
}

func (filesystemService) Remove(ctx context.Context, req *connect.Request[pb.RemoveRequest]) (*connect.Response[pb.RemoveResponse], error) {
	host := sandboxFrom(ctx).resolve(req.Msg.GetPath())
	if _, err := os.Lstat(host); err != nil {
		return nil, fsError(err, host)
	}
	if err := os.RemoveAll(host); err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("error removing: %w", err))
	}
	return connect.NewResponse(&pb.RemoveResponse{}), nil
}
