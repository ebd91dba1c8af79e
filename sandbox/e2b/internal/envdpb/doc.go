// Package envdpb holds the protobuf messages and Connect stubs of E2B's
// in-sandbox daemon envd (services process.Process and
// filesystem.Filesystem), generated from the .proto files beside this file,
// which were written from shared/specs/e2b.md §3.5–3.6.
//
// Regenerating needs protoc (Debian package protobuf-compiler) and the two
// plugins installed with `go install
// google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.11` and `go install
// connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1`; the generated
// files are committed, so building needs neither.
package envdpb

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --connect-go_out=. --connect-go_opt=paths=source_relative process/process.proto filesystem/filesystem.proto
