package gitsvc

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Service is a git smart-protocol service kod serves.
type Service string

const (
	UploadPack  Service = "git-upload-pack"  // fetch and clone
	ReceivePack Service = "git-receive-pack" // push
)

// ParseService returns the service named s, or false.
func ParseService(s string) (Service, bool) {
	switch Service(s) {
	case UploadPack, ReceivePack:
		return Service(s), true
	}
	return "", false
}

// RPCTimeout bounds one git process serving an HTTP request; the client
// going away ends it sooner.
const RPCTimeout = time.Hour

// gitProtocolRE accepts Git-Protocol values like "version=2" or
// "version=2:object-format=sha1" and nothing that could smuggle other data.
var gitProtocolRE = regexp.MustCompile(`^[A-Za-z0-9=:._-]{1,256}$`)

// GitProtocolEnv returns the GIT_PROTOCOL environment entry for a
// client-supplied value, or nil when the value is empty or malformed.
func GitProtocolEnv(v string) []string {
	if v == "" || !gitProtocolRE.MatchString(v) {
		return nil
	}
	return []string{"GIT_PROTOCOL=" + v}
}

// InfoRefs serves GET /repos/:name.git/info/refs?service=<svc> (the smart
// HTTP ref advertisement) for the bare repository at dir. env is added to
// the git process's environment.
func (g *Git) InfoRefs(w http.ResponseWriter, r *http.Request, dir string, svc Service, env []string) error {
	proto := r.Header.Get("Git-Protocol")
	env = append(env, GitProtocolEnv(proto)...)
	h := w.Header()
	h.Set("Content-Type", fmt.Sprintf("application/x-%s-advertisement", svc))
	noCache(h)
	w.WriteHeader(http.StatusOK)
	// Protocol v2 clients get the capability advertisement straight from
	// git; v0/v1 expect the "# service=" preamble first (as git-http-backend).
	// Only a value git will also see counts: a malformed header is dropped
	// from git's environment, so it must not change the preamble either.
	if GitProtocolEnv(proto) == nil || !isV2(proto) {
		if _, err := io.WriteString(w, pktLine(fmt.Sprintf("# service=%s\n", svc))+"0000"); err != nil {
			return nil // client gone
		}
	}
	err := g.Run(r.Context(), &Cmd{
		Dir:     dir,
		Args:    []string{string(svc)[len("git-"):], "--stateless-rpc", "--advertise-refs", "."},
		Env:     env,
		Stdout:  flushWriter{w},
		Timeout: time.Minute,
	})
	if err != nil && r.Context().Err() == nil {
		return &StreamError{Err: err}
	}
	return nil
}

// ServiceRPC serves POST /repos/:name.git/<svc>: the request body (gzip
// allowed) streams into `git <svc> --stateless-rpc` and its output streams
// back; neither is held in memory as a whole.
func (g *Git) ServiceRPC(w http.ResponseWriter, r *http.Request, dir string, svc Service, env []string) error {
	g.Served("http", svc)
	body := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return &BadRequestError{Msg: "Invalid gzip request body"}
		}
		defer zr.Close()
		body = zr
	}
	env = append(env, GitProtocolEnv(r.Header.Get("Git-Protocol"))...)
	// Read the request while writing the response: receive-pack reports
	// progress before it has consumed everything.
	_ = http.NewResponseController(w).EnableFullDuplex()
	h := w.Header()
	h.Set("Content-Type", fmt.Sprintf("application/x-%s-result", svc))
	noCache(h)
	w.WriteHeader(http.StatusOK)
	err := g.Run(r.Context(), &Cmd{
		Dir:     dir,
		Args:    []string{string(svc)[len("git-"):], "--stateless-rpc", "."},
		Env:     env,
		Stdin:   body,
		Stdout:  flushWriter{w},
		Timeout: RPCTimeout,
	})
	if err != nil && r.Context().Err() == nil {
		// Headers are gone; all we can do is log through the caller.
		return &StreamError{Err: err}
	}
	return nil
}

// BadRequestError is a client error detected before any response was written.
type BadRequestError struct{ Msg string }

func (e *BadRequestError) Error() string { return e.Msg }

// StreamError is a failure after the response started; it can only be logged.
type StreamError struct{ Err error }

func (e *StreamError) Error() string { return "git stream: " + e.Err.Error() }
func (e *StreamError) Unwrap() error { return e.Err }

func isV2(proto string) bool {
	for _, p := range strings.Split(proto, ":") {
		if p == "version=2" {
			return true
		}
	}
	return false
}

func pktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

func noCache(h http.Header) {
	h.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "Fri, 01 Jan 1980 00:00:00 GMT")
}

// flushWriter flushes after every write so git's progress and packs reach
// the client as they are produced.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = http.NewResponseController(f.w).Flush()
	}
	return n, err
}
