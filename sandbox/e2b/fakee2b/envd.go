package fakee2b

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	fspb "github.com/opencode-lsp/opencode-lsp/sandbox/e2b/internal/envdpb/filesystem"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/internal/envdpb/filesystem/filesystemconnect"
	"github.com/opencode-lsp/opencode-lsp/sandbox/e2b/internal/envdpb/process/processconnect"
)

// sandbox is one live fake sandbox.
type sandbox struct {
	id, templateID, alias, token string
	metadata, envVars            map[string]string
	startedAt                    time.Time
	root, home                   string
	dead                         chan struct{}
	// holder leads the process group every command of the sandbox joins,
	// so that, as under envd, a command is not a group leader itself.
	holder *exec.Cmd

	mu     sync.Mutex
	endAt  time.Time
	timer  *time.Timer
	procs  map[uint32]*proc
	killed bool
}

// kill ends every process group the sandbox started, cuts its streams and
// removes its root.
func (sb *sandbox) kill() {
	sb.mu.Lock()
	if sb.killed {
		sb.mu.Unlock()
		return
	}
	sb.killed = true
	if sb.timer != nil {
		sb.timer.Stop()
	}
	procs := make([]*proc, 0, len(sb.procs))
	for _, p := range sb.procs {
		procs = append(procs, p)
	}
	close(sb.dead)
	sb.mu.Unlock()
	// The sandbox's group, plus the groups commands made of their own
	// (a command that called setsid leads a group whose id is its pid).
	if sb.holder != nil {
		syscall.Kill(-sb.holder.Process.Pid, syscall.SIGKILL)
	}
	for _, p := range procs {
		syscall.Kill(-p.pid(), syscall.SIGKILL)
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cancelReaders()
	}
	for _, p := range procs {
		<-p.done
	}
	if sb.holder != nil {
		sb.holder.Wait()
	}
	os.RemoveAll(sb.root)
}

// startHolder starts the process that leads the sandbox's process group.
func (sb *sandbox) startHolder() error {
	sb.holder = exec.Command("sleep", "infinity")
	sb.holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return sb.holder.Start()
}

// pgid is the process group commands join.
func (sb *sandbox) pgid() int { return sb.holder.Process.Pid }

type ctxKey struct{}

func sandboxFrom(ctx context.Context) *sandbox {
	sb, _ := ctx.Value(ctxKey{}).(*sandbox)
	return sb
}

// resolve maps a path as envd sees it onto the host: relative paths are
// relative to the user's home; absolute paths inside the sandbox root are
// kept; other absolute paths are taken relative to the root.
func (sb *sandbox) resolve(p string) string {
	switch {
	case p == "":
		return sb.home
	case strings.HasPrefix(p, "~/") || p == "~":
		return filepath.Join(sb.home, p[1:])
	case !filepath.IsAbs(p):
		return filepath.Join(sb.home, p)
	}
	p = filepath.Clean(p)
	if p == sb.root || strings.HasPrefix(p, sb.root+"/") {
		return p
	}
	return filepath.Join(sb.root, p)
}

func (s *Server) envdHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /files", s.download)
	mux.HandleFunc("POST /files", s.upload)
	opts := []connect.HandlerOption{connect.WithRequireConnectProtocolHeader()}
	mux.Handle(processconnect.NewProcessHandler(&processService{s: s}, opts...))
	mux.Handle(filesystemconnect.NewFilesystemHandler(&filesystemService{}, opts...))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := sandboxIDOf(r, s.Domain)
		sb := s.lookup(id)
		if sb == nil {
			writeEdge502(w, id)
			return
		}
		if port := previewPort(r); port != 0 {
			s.servePreview(w, r, sb, port)
			return
		}
		tok := r.Header.Get("X-Access-Token")
		if subtle.ConstantTimeCompare([]byte(tok), []byte(sb.token)) != 1 && r.URL.Path != "/health" {
			writeJSONError(w, http.StatusUnauthorized, "unauthorized access, please provide a valid access token or method signing if supported")
			return
		}
		ctx := context.WithValue(r.Context(), ctxKey{}, sb)
		mux.ServeHTTP(w, r.WithContext(ctx))
	})
}

// checkUser answers 401 for a username other than the default "user".
func checkUser(w http.ResponseWriter, r *http.Request) bool {
	if u := r.URL.Query().Get("username"); u != "" && u != "user" && u != "root" {
		writeJSONError(w, http.StatusUnauthorized, fmt.Sprintf("error looking up user '%s'", u))
		return false
	}
	return true
}

// download serves GET /files?path= with http.ServeContent (corrections §9).
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	sb := sandboxFrom(r.Context())
	if !checkUser(w, r) {
		return
	}
	p := r.URL.Query().Get("path")
	if p == "" {
		writeJSONError(w, http.StatusBadRequest, "path is required")
		return
	}
	host := sb.resolve(p)
	f, err := os.Open(host)
	if errors.Is(err, fs.ErrNotExist) {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("path '%s' does not exist", host))
		return
	}
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "error opening file: "+err.Error())
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "error statting file: "+err.Error())
		return
	}
	if st.IsDir() {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("path '%s' is a directory", host))
		return
	}
	http.ServeContent(w, r, filepath.Base(host), st.ModTime(), f)
}

type uploadedEntry struct {
	Path string `json:"path"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// upload serves POST /files: multipart parts named "file" whose filename is
// the destination (the path query, when given, wins for a single part), or
// a raw application/octet-stream body written to the path query.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	sb := sandboxFrom(r.Context())
	if !checkUser(w, r) {
		return
	}
	qpath := r.URL.Query().Get("path")
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid Content-Type: "+err.Error())
		return
	}
	var entries []uploadedEntry
	write := func(dest string, body io.Reader) bool {
		host := sb.resolve(dest)
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("error creating parent of '%s': %v", host, err))
			return false
		}
		f, err := os.OpenFile(host, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("error opening file '%s': %v", host, err))
			return false
		}
		_, err = io.Copy(f, body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			writeJSONError(w, http.StatusInternalServerError, fmt.Sprintf("error writing file '%s': %v", host, err))
			return false
		}
		entries = append(entries, uploadedEntry{Path: host, Name: filepath.Base(host), Type: "file"})
		return true
	}
	switch ct {
	case "application/octet-stream":
		if qpath == "" {
			writeJSONError(w, http.StatusBadRequest, "path is required")
			return
		}
		if !write(qpath, r.Body) {
			return
		}
	case "multipart/form-data":
		mr, err := r.MultipartReader()
		if err != nil || params["boundary"] == "" {
			writeJSONError(w, http.StatusBadRequest, "invalid multipart body")
			return
		}
		n := 0
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				writeJSONError(w, http.StatusBadRequest, "invalid multipart body: "+err.Error())
				return
			}
			if part.FormName() != "file" {
				continue
			}
			// Part.FileName keeps only the base name; the destination is
			// the whole filename parameter.
			_, dp, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
			dest := dp["filename"]
			if qpath != "" {
				dest = qpath
			}
			if err != nil || dest == "" {
				writeJSONError(w, http.StatusBadRequest, "file part without a path")
				return
			}
			if !write(dest, part) {
				return
			}
			n++
		}
		if n == 0 {
			writeJSONError(w, http.StatusBadRequest, "no file part in the request")
			return
		}
	default:
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("unsupported Content-Type %q", ct))
		return
	}
	writeJSON(w, http.StatusOK, entries)
}

// entryInfo builds EntryInfo for a host path (Lstat: symlinks are reported
// as such, with their target).
func entryInfo(host string) (*fspb.EntryInfo, error) {
	st, err := os.Lstat(host)
	if err != nil {
		return nil, err
	}
	e := &fspb.EntryInfo{
		Name:         filepath.Base(host),
		Path:         host,
		Size:         st.Size(),
		Mode:         uint32(st.Mode().Perm()),
		Permissions:  st.Mode().String(),
		ModifiedTime: timestamppb.New(st.ModTime()),
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		e.Type = fspb.FileType_FILE_TYPE_SYMLINK
		if t, err := os.Readlink(host); err == nil {
			e.SymlinkTarget = &t
		}
	case st.IsDir():
		e.Type = fspb.FileType_FILE_TYPE_DIRECTORY
	default:
		e.Type = fspb.FileType_FILE_TYPE_FILE
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		e.Owner = lookupUser(sys.Uid)
		e.Group = lookupGroup(sys.Gid)
	}
	return e, nil
}

func lookupUser(uid uint32) string {
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		return u.Username
	}
	return strconv.Itoa(int(uid))
}

func lookupGroup(gid uint32) string {
	if g, err := user.LookupGroupId(strconv.Itoa(int(gid))); err == nil {
		return g.Name
	}
	return strconv.Itoa(int(gid))
}

// previewPort is the port a request through the shared sandbox host is for
// when it is not envd's (E2b-Sandbox-Port), else 0.
func previewPort(r *http.Request) int {
	p, err := strconv.Atoi(r.Header.Get("E2b-Sandbox-Port"))
	if err != nil || p <= 0 || p > 65535 || p == envdPort {
		return 0
	}
	return p
}

// servePreview plays the edge for a public port of a sandbox (spec §4):
// commands run on the host, so the port is 127.0.0.1:<port>. Nobody
// listening gives the edge's 502.
func (s *Server) servePreview(w http.ResponseWriter, r *http.Request, sb *sandbox, port int) {
	target := &url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(port)}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		writeJSON(w, http.StatusBadGateway, map[string]any{
			"code": http.StatusBadGateway, "message": fmt.Sprintf("The sandbox is running but port is not open: %d", port), "sandboxId": sb.id, "port": port,
		})
	}
	r.Header.Del("E2b-Sandbox-Id")
	r.Header.Del("E2b-Sandbox-Port")
	rp.ServeHTTP(w, r)
}
