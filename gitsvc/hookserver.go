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
	RepoID    string           // the repository's stable id: hooks find it by id, whatever its name is now
	Repo      string           // repository name when the push began (for logs)
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

// Pushes is the registry of pushes in flight: the per-push credentials
// that git's hooks present to the HookServer. Transports register a push
// with BeginPush before running git receive-pack. Safe for concurrent use.
type Pushes struct {
	socket string
	mu     sync.Mutex
	pushes map[string]*Push // credential -> push
	// ensure, set by the HookServer's Start, makes sure the socket is there.
	ensure func() error
	log    *slog.Logger
	// accepted holds the updates pre-receive accepted, until post-receive
	// reached the server (then the entry goes); missed is called by a
	// push's end for updates whose post-receive never arrived.
	accepted map[string][]forge.RefUpdate
	missed   func(p *Push, updates []forge.RefUpdate)
}

// NewPushes returns an empty registry whose credentials name the hook
// server listening on socketPath.
func NewPushes(socketPath string) *Pushes {
	return &Pushes{socket: socketPath, pushes: map[string]*Push{}}
}

// HookServer serves the hook callback protocol on a unix socket in the data
// dir: POST /v1/pre-receive and /v1/post-receive, authenticated by the
// per-push credential of Pushes.BeginPush.
type HookServer struct {
	pushes  *Pushes
	handler HookHandler
	log     *slog.Logger

	srv *http.Server

	sockMu   sync.Mutex
	sockInfo os.FileInfo // the socket file this server listens on
}

// NewHookServer returns a server on the socket of pushes (created by
// Start) that hands every hook call to h.
func NewHookServer(pushes *Pushes, h HookHandler, log *slog.Logger) *HookServer {
	return &HookServer{pushes: pushes, handler: h, log: log.With("component", "hooks")}
}

// SocketPath returns the unix socket path hooks call.
func (p *Pushes) SocketPath() string { return p.socket }

// Start listens on the socket (mode 0600, replacing a stale one) and serves
// in the background until Shutdown. Every push (Pushes.BeginPush) then
// checks that the socket file is still there and creates it again if not.
func (s *HookServer) Start() error {
	if len(s.pushes.socket) > 100 {
		return fmt.Errorf("hook socket path %q is too long for a unix socket (max ~100 bytes); use a shorter data dir", s.pushes.socket)
	}
	if err := os.MkdirAll(filepath.Dir(s.pushes.socket), 0o700); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/pre-receive", s.serve(true))
	mux.HandleFunc("POST /v1/post-receive", s.serve(false))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.sockMu.Lock()
	err := s.listen()
	s.sockMu.Unlock()
	if err != nil {
		return err
	}
	s.pushes.mu.Lock()
	s.pushes.ensure, s.pushes.log = s.ensureSocket, s.log
	if m, ok := s.handler.(MissedPostReceiver); ok {
		s.pushes.missed = func(p *Push, updates []forge.RefUpdate) {
			s.log.Warn("a push's post-receive hook never reached the server: finishing the push here", "repo", p.Repo, "updates", len(updates))
			m.MissedPostReceive(context.Background(), p, updates)
		}
	}
	s.pushes.mu.Unlock()
	return nil
}

// MissedPostReceiver is a HookHandler that can finish a push whose
// post-receive hook never reached the server (the socket vanished, the
// hook process was killed) although pre-receive accepted it: it gets the
// accepted updates once receive-pack ended, and must act only on those
// that landed (git may still have refused some).
type MissedPostReceiver interface {
	MissedPostReceive(ctx context.Context, push *Push, accepted []forge.RefUpdate)
}

// listen (re)creates the socket file, replacing a stale one, and serves
// on it. Called with sockMu held.
func (s *HookServer) listen() error {
	socket := s.pushes.socket
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale hook socket: %w", err)
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("listening on hook socket: %w", err)
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		ln.Close()
		return err
	}
	info, err := os.Lstat(socket)
	if err != nil {
		ln.Close()
		return err
	}
	s.sockInfo = info
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
	if info, err := os.Lstat(s.pushes.socket); err == nil && os.SameFile(info, s.sockInfo) {
		return nil
	}
	if err := s.listen(); err != nil {
		return err
	}
	s.log.Warn("the hook socket was gone; listening on it again", "socket", s.pushes.socket)
	return nil
}

// Shutdown stops serving and removes the socket.
func (s *HookServer) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if rmErr := os.Remove(s.pushes.socket); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	return err
}

// BeginPush registers a push and returns the environment git receive-pack
// must run with, and a func that revokes the credential when the push ends.
func (s *Pushes) BeginPush(p *Push) (env []string, end func()) {
	s.mu.Lock()
	ensure, log := s.ensure, s.log
	s.mu.Unlock()
	if ensure != nil {
		if err := ensure(); err != nil {
			// The push goes on; its hook cannot reach the server and refuses it.
			log.Error("the hook socket is gone and cannot be created again: pushes are refused", "socket", s.socket, "err", err)
		}
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
		accepted, missed := s.accepted[cred], s.missed
		delete(s.accepted, cred)
		cp := *s.pushes[cred]
		delete(s.pushes, cred)
		s.mu.Unlock()
		if accepted != nil && missed != nil {
			missed(&cp, accepted)
		}
	})
	return []string{EnvHookSocket + "=" + s.socket, EnvHookToken + "=" + cred}, end
}

// lookup returns a copy of the push whose credential r carries and the
// credential, or nil.
func (s *Pushes) lookup(r *http.Request) (*Push, string) {
	cred, ok := bearer(r)
	if !ok {
		return nil, ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pushes[cred]
	if !ok {
		return nil, ""
	}
	cp := *p
	return &cp, cred
}

// setAccepted records (updates) or forgets (nil) what pre-receive accepted
// for the push of cred.
func (s *Pushes) setAccepted(cred string, updates []forge.RefUpdate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if updates == nil {
		delete(s.accepted, cred)
		return
	}
	if s.accepted == nil {
		s.accepted = map[string][]forge.RefUpdate{}
	}
	s.accepted[cred] = updates
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
		push, cred := s.pushes.lookup(r)
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
			s.pushes.setAccepted(cred, nil) // arrived: nothing to finish at the end
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
		s.pushes.setAccepted(cred, req.Updates)
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
