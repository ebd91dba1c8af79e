package fakedaytona

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// serveFiles serves TB/files/... (spec §4.3, corrections §1).
func (sb *sandbox) serveFiles(w http.ResponseWriter, r *http.Request, op string) {
	q := r.URL.Query()
	switch {
	case op == "" && r.Method == http.MethodGet:
		sb.listFiles(w, r, q.Get("path"))
	case op == "" && r.Method == http.MethodDelete:
		sb.deleteFile(w, r, q.Get("path"), q.Get("recursive") == "true")
	case op == "info" && r.Method == http.MethodGet:
		p, ok := sb.resolve(q.Get("path"))
		if !ok {
			writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "invalid path")
			return
		}
		fi, err := os.Stat(p)
		if err != nil {
			writeFSError(w, r, err, q.Get("path"))
			return
		}
		writeJSON(w, 200, fileInfo(p, fi))
	case op == "download" && r.Method == http.MethodGet:
		sb.download(w, r, q.Get("path"))
	case op == "bulk-download" && r.Method == http.MethodPost:
		sb.bulkDownload(w, r)
	case (op == "upload-v2" || op == "upload") && r.Method == http.MethodPost:
		sb.uploadOne(w, r, q.Get("path"), op == "upload")
	case op == "bulk-upload" && r.Method == http.MethodPost:
		sb.bulkUpload(w, r)
	case op == "folder" && r.Method == http.MethodPost:
		p, ok := sb.resolve(q.Get("path"))
		mode, err := strconv.ParseUint(q.Get("mode"), 8, 32)
		if !ok || q.Get("mode") == "" || err != nil {
			writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "path and mode are required")
			return
		}
		if err := os.MkdirAll(p, fs.FileMode(mode)); err != nil {
			writeFSError(w, r, err, q.Get("path"))
			return
		}
		w.WriteHeader(http.StatusCreated)
	case op == "move" && r.Method == http.MethodPost:
		src, ok1 := sb.resolve(q.Get("source"))
		dst, ok2 := sb.resolve(q.Get("destination"))
		if !ok1 || !ok2 {
			writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "source and destination are required")
			return
		}
		if err := os.Rename(src, dst); err != nil {
			writeFSError(w, r, err, q.Get("source"))
			return
		}
		w.WriteHeader(http.StatusOK)
	case op == "permissions" && r.Method == http.MethodPost:
		p, ok := sb.resolve(q.Get("path"))
		if !ok {
			writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "path is required")
			return
		}
		if m := q.Get("mode"); m != "" {
			mode, err := strconv.ParseUint(m, 8, 32)
			if err != nil {
				writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "invalid mode")
				return
			}
			if err := os.Chmod(p, fs.FileMode(mode)); err != nil {
				writeFSError(w, r, err, q.Get("path"))
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	default:
		writeDaemon(w, r, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("route %s /files/%s not found", r.Method, op))
	}
}

func writeFSError(w http.ResponseWriter, r *http.Request, err error, p string) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeDaemon(w, r, http.StatusNotFound, "FILE_NOT_FOUND", "file not found: "+p)
	case errors.Is(err, fs.ErrPermission):
		writeDaemon(w, r, http.StatusForbidden, "FILE_ACCESS_DENIED", "permission denied: "+p)
	default:
		writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", err.Error())
	}
}

// fileInfo is the FileInfo shape of spec §4.3.
func fileInfo(p string, fi fs.FileInfo) map[string]any {
	return map[string]any{
		"name":        fi.Name(),
		"path":        p,
		"isDir":       fi.IsDir(),
		"size":        fi.Size(),
		"mode":        fi.Mode().String(),
		"permissions": fmt.Sprintf("%04o", fi.Mode().Perm()),
		"owner":       "daytona",
		"group":       "daytona",
		"modTime":     fi.ModTime().String(),
		"modifiedAt":  fi.ModTime().UTC().Format(time.RFC3339),
	}
}

func (sb *sandbox) listFiles(w http.ResponseWriter, r *http.Request, p string) {
	if p == "" {
		p = "."
	}
	dir, ok := sb.resolve(p)
	if !ok {
		writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "invalid path")
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		writeFSError(w, r, err, p)
		return
	}
	list := []map[string]any{}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		list = append(list, fileInfo(filepath.Join(dir, e.Name()), fi))
	}
	writeJSON(w, 200, list)
}

func (sb *sandbox) deleteFile(w http.ResponseWriter, r *http.Request, p string, recursive bool) {
	full, ok := sb.resolve(p)
	if !ok {
		writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "invalid path")
		return
	}
	fi, err := os.Lstat(full)
	if err != nil {
		writeFSError(w, r, err, p)
		return
	}
	if fi.IsDir() && !recursive {
		if err := os.Remove(full); err != nil {
			writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "directory is not empty; use recursive=true")
			return
		}
	} else if err := os.RemoveAll(full); err != nil {
		writeFSError(w, r, err, p)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (sb *sandbox) download(w http.ResponseWriter, r *http.Request, p string) {
	full, ok := sb.resolve(p)
	if !ok {
		writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "invalid path")
		return
	}
	f, err := os.Open(full)
	if err != nil {
		writeFSError(w, r, err, p)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "path is a directory: "+p)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	w.WriteHeader(200)
	io.Copy(w, f)
}

// latin1Filename is the sanitised plain filename parameter the daemon sends
// next to filename* (corrections §1): characters outside Latin-1, quotes and
// backslashes become '_'.
func latin1Filename(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r > 0xff || r == '"' || r == '\\' || r < 0x20 {
			b.WriteByte('_')
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func contentDisposition(name, path string) string {
	return fmt.Sprintf(`form-data; name="%s"; filename="%s"; filename*=utf-8''%s`,
		name, latin1Filename(path), url.PathEscape(path))
}

// bulkDownload serves POST /files/bulk-download (corrections §1): one part
// named "file" per path found, one part named "error" with an ErrorResponse
// per path that failed; filename is the Latin-1 sanitised path and filename*
// the exact path; every part has a Content-Length.
func (sb *sandbox) bulkDownload(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Paths []string `json:"paths"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Paths) == 0 {
		writeDaemon(w, r, http.StatusBadRequest, "INVALID_REQUEST_BODY", `request body must be {"paths": [ ... ]} and non-empty`)
		return
	}
	mw := multipart.NewWriter(w)
	w.Header().Set("Content-Type", "multipart/form-data; boundary="+mw.Boundary())
	w.WriteHeader(200)
	defer mw.Close()
	for _, p := range req.Paths {
		status, code, msg := 0, "", ""
		var data []byte
		full, ok := sb.resolve(p)
		if !ok {
			status, code, msg = http.StatusBadRequest, "BAD_REQUEST", "invalid path: "+p
		} else if fi, err := os.Stat(full); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				status, code, msg = http.StatusNotFound, "FILE_NOT_FOUND", "file not found: "+p
			} else {
				status, code, msg = http.StatusForbidden, "FILE_ACCESS_DENIED", err.Error()
			}
		} else if fi.IsDir() {
			status, code, msg = http.StatusBadRequest, "BAD_REQUEST", "path is a directory: "+p
		} else if data, err = os.ReadFile(full); err != nil {
			status, code, msg = http.StatusForbidden, "FILE_ACCESS_DENIED", err.Error()
		}
		h := textproto.MIMEHeader{}
		if status != 0 {
			body, _ := json.Marshal(map[string]any{"statusCode": status, "message": msg, "code": code,
				"source": "DAYTONA_DAEMON", "timestamp": time.Now().UTC().Format(time.RFC3339),
				"path": "/files/bulk-download", "method": "POST"})
			h.Set("Content-Disposition", contentDisposition("error", p))
			h.Set("Content-Type", "application/json; charset=utf-8")
			h.Set("Content-Length", strconv.Itoa(len(body)))
			pw, _ := mw.CreatePart(h)
			pw.Write(body)
			continue
		}
		h.Set("Content-Disposition", contentDisposition("file", p))
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.Itoa(len(data)))
		pw, _ := mw.CreatePart(h)
		pw.Write(data)
	}
}

// writeFileAtomic writes data to full through a temporary file and a
// rename, creating parents with 0755 and leaving the file 0644, as the
// daemon's upload does.
func writeFileAtomic(full string, r io.Reader) (int64, error) {
	dir := filepath.Dir(full)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("mkdir %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".daytona-upload-*")
	if err != nil {
		return 0, fmt.Errorf("create temp: %w", err)
	}
	n, err := io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), full)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	return n, nil
}

// uploadOne serves POST /files/upload-v2 (multipart field "file" or a raw
// body) and the legacy /files/upload (multipart only).
func (sb *sandbox) uploadOne(w http.ResponseWriter, r *http.Request, p string, legacy bool) {
	full, ok := sb.resolve(p)
	if !ok {
		writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "path is required")
		return
	}
	var body io.Reader = r.Body
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		mr, err := r.MultipartReader()
		if err != nil {
			writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "invalid multipart form")
			return
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "file is required")
				return
			}
			if part.FormName() == "file" {
				body = part
				break
			}
		}
	} else if legacy {
		writeDaemon(w, r, http.StatusBadRequest, "BAD_REQUEST", "file is required")
		return
	}
	if _, err := writeFileAtomic(full, body); err != nil {
		writeFSError(w, r, err, p)
		return
	}
	writeJSON(w, 200, map[string]any{"name": filepath.Base(full), "path": full, "type": "file"})
}

// bulkUpload serves POST /files/bulk-upload the way the daemon does: a
// files[i].path text part names the destination of the files[i].file part
// that follows it; errors are collected into a 400 {errors, files}.
func (sb *sandbox) bulkUpload(w http.ResponseWriter, r *http.Request) {
	mr, err := r.MultipartReader()
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []string{"invalid multipart form"}})
		return
	}
	dests := map[string]string{}
	errs := []string{}
	files := []map[string]any{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("reading part: %v", err))
			break
		}
		name := part.FormName()
		idx := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(name, "files["), "].path"), "].file")
		switch {
		case strings.HasSuffix(name, ".path"):
			b, err := io.ReadAll(part)
			if err != nil {
				errs = append(errs, fmt.Sprintf("path[%s]: %v", idx, err))
				continue
			}
			dest := strings.TrimSpace(string(b))
			if dest == "" {
				errs = append(errs, fmt.Sprintf("path[%s]: empty path", idx))
				continue
			}
			dests[idx] = dest
		case strings.HasSuffix(name, ".file"):
			dest, ok := dests[idx]
			if !ok {
				errs = append(errs, fmt.Sprintf("file[%s]: missing .path metadata", idx))
				continue
			}
			full, ok := sb.resolve(dest)
			if !ok {
				errs = append(errs, fmt.Sprintf("%s: permission denied", dest))
				continue
			}
			n, err := writeFileAtomic(full, part)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", dest, err))
				continue
			}
			files = append(files, map[string]any{"path": dest, "bytes": n})
		}
	}
	if len(errs) > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": errs, "files": files})
		return
	}
	writeJSON(w, 200, map[string]any{"files": files})
}
