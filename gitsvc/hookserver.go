package gitsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kod-forge/kod/forge"
)

// Push is one running receive-pack as the hook server knows it.
type Push struct {
	Repo      string           // repository name
	Principal *forge.Principal // who pushes
	Transport string           // "http" or "ssh"
}

// HookHandler decides on and reacts to pushes. Implemented by the server's
// wiring (forge policy for pre-receive, the runner for post-receive).
type HookHandler interface {
	// PreReceive returns nil to accept every update, or an error whose
	// user message (forge.UserMessage) is shown to the pusher; any error
	// refuses the whole push.
	PreReceive(ctx context.Context, push *Push, updates []forge.RefUpdate) error
	// PostReceive runs after the refs moved and returns lines to show the
	// pusher (for example the runs it queued).
	PostReceive(ctx context.Context, push *Push, updates []forge.RefUpdate) []string
}

// hookRequest is the body `kod hook` posts to the server.
type hookRequest struct {
	Updates []forge.RefUpdate `json:"updates"`
}

// hookResponse is the server's answer: OK false refuses the push.
type hookResponse struct {
	OK       bool     `json:"ok"`
	Messages []string `json:"messages,omitempty"`
}

// HookServer serves the hook callback protocol on a unix socket in the data
// dir: POST /v1/pre-receive and /v1/post-receive, authenticated by the
// per-push credential of BeginPush.
type HookServer struct {
	socket  string
	handler HookHandler
	log     *slog.Logger

	mu     sync.Mutex
	pushes map[string]*Push // credential -> push
	srv    *http.Server
	ln     net.Listener

	sockMu   sync.Mutex
	sockInfo os.FileInfo // the socket file this server listens on
}

// NewHookServer returns a server for socketPath (created by Start).
func NewHookServer(socketPath string, h HookHandler, log *slog.Logger) *HookServer {
	return &HookServer{socket: socketPath, handler: h, log: log.With("component", "hooks"), pushes: map[string]*Push{}}
}

// SocketPath returns the unix socket path hooks call.
func (s *HookServer) SocketPath() string { return s.socket }

// Start listens on the socket (mode 0600, replacing a stale one) and serves
// in the background until Shutdown. Every push (BeginPush) checks that the
// socket file is still there and creates it again if not.
func (s *HookServer) Start() error {
	if len(s.socket) > 100 {
		return fmt.Errorf("hook socket path %q is too long for a unix socket (max ~100 bytes); use a shorter data dir", s.socket)
	}
	if err := os.MkdirAll(filepath.Dir(s.socket), 0o700); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/pre-receive", s.serve(true))
	mux.HandleFunc("POST /v1/post-receive", s.serve(false))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	return s.listen()
}

// listen (re)creates the socket file, replacing a stale one, and serves
// on it. Called with sockMu held.
func (s *HookServer) listen() error {
	if err := os.Remove(s.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale hook socket: %w", err)
	}
	ln, err := net.Listen("unix", s.socket)
	if err != nil {
		return fmt.Errorf("listening on hook socket: %w", err)
	}
	if err := os.Chmod(s.socket, 0o600); err != nil {
		ln.Close()
		return err
	}
	info, err := os.Lstat(s.socket)
	if err != nil {
		ln.Close()
		return err
	}
	s.ln, s.sockInfo = ln, info
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("hook server stopped", "err", err)
		}
	}()
	return nil
}

// ensureSocket listens again when the socket file is gone or is no longer
// the one this server created (something cleaned the data dir): the old
// listener still runs, but no hook can reach it, so every push would be
// refused until a restart.
func (s *HookServer) ensureSocket() error {
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	if s.srv == nil {
		return nil // not started (tests of the push path alone)
	}
	if info, err := os.Lstat(s.socket); err == nil && os.SameFile(info, s.sockInfo) {
		return nil
	}
	if err := s.listen(); err != nil {
		return err
	}
	s.log.Warn("the hook socket was gone; listening on it again", "socket", s.socket)
	return nil
}

// Shutdown stops serving and removes the socket.
func (s *HookServer) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if rmErr := os.Remove(s.socket); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	return err
}

// BeginPush registers a push and returns the environment git receive-pack
// must run with, and a func that revokes the credential when the push ends.
func (s *HookServer) BeginPush(p *Push) (env []string, end func()) {
	if err := s.ensureSocket(); err != nil {
		// The push goes on; its hook cannot reach the server and refuses it.
		s.log.Error("the hook socket is gone and cannot be created again: pushes are refused", "socket", s.socket, "err", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("gitsvc: crypto/rand failed: " + err.Error())
	}
	cred := hex.EncodeToString(b[:])
	s.mu.Lock()
	s.pushes[cred] = p
	s.mu.Unlock()
	end = sync.OnceFunc(func() {
		s.mu.Lock()
		delete(s.pushes, cred)
		s.mu.Unlock()
	})
	return []string{EnvHookSocket + "=" + s.socket, EnvHookToken + "=" + cred}, end
}

// RepoRenamed points the pushes in flight to repository oldName at newName,
// so their hooks find the record under its new name after a rename.
func (s *HookServer) RepoRenamed(oldName, newName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pushes {
		if p.Repo == oldName {
			p.Repo = newName
		}
	}
}

// lookup returns a copy of the push whose credential r carries, or nil.
func (s *HookServer) lookup(r *http.Request) *Push {
	cred, ok := bearer(r)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pushes[cred]
	if !ok {
		return nil
	}
	cp := *p
	return &cp
}

func bearer(r *http.Request) (string, bool) {
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) <= len(prefix) || h[:len(prefix)] != prefix {
		return "", false
	}
	return h[len(prefix):], true
}

func (s *HookServer) serve(pre bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		push := s.lookup(r)
		if push == nil {
			writeHook(w, http.StatusUnauthorized, hookResponse{Messages: []string{"kod: unknown or expired push credential"}})
			return
		}
		var req hookRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxHookBody))
		if err := dec.Decode(&req); err != nil {
			writeHook(w, http.StatusBadRequest, hookResponse{Messages: []string{"kod: malformed hook request"}})
			return
		}
		if !pre {
			msgs := s.handler.PostReceive(r.Context(), push, req.Updates)
			writeHook(w, http.StatusOK, hookResponse{OK: true, Messages: msgs})
			return
		}
		if err := s.handler.PreReceive(r.Context(), push, req.Updates); err != nil {
			msg, ok := forge.UserMessage(err)
			if !ok {
				s.log.Error("pre-receive failed", "repo", push.Repo, "err", err)
				msg = "kod: internal error while checking the push"
			}
			writeHook(w, http.StatusOK, hookResponse{Messages: []string{msg}})
			return
		}
		writeHook(w, http.StatusOK, hookResponse{OK: true})
	}
}

// maxHookBody caps a hook request: 100k ref updates of ~350 bytes.
const maxHookBody = 64 << 20

func writeHook(w http.ResponseWriter, status int, resp hookResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}
