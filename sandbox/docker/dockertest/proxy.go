package dockertest

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Proxy is a Docker engine API proxy on a unix socket, for tests that need
// to hold or reorder engine calls (what a loaded engine does by chance).
// Point a backend at Host. Every request goes to the engine unchanged
// unless Hold said otherwise.
type Proxy struct {
	Host string // "unix:///.../engine.sock", for docker.Config.Host

	engine *http.Client
	mu     sync.Mutex
	holds  []*Hold
	seen   []string // "METHOD path" of every request, in arrival order
	seenC  chan struct{}
}

// Hold is a rule: the first request whose method is Method and whose path
// contains PathPart is reported on Arrived and kept from the engine until
// the client gave up on it (or ClientWait passed with the client still
// waiting), then, once After says so, sent on to the engine as if it had
// been there all along. The engine's answer goes to the client if it is
// still waiting. Done is closed once the engine answered.
type Hold struct {
	Method, PathPart string
	// ClientWait is how long a client that keeps waiting is held; default 2 s.
	ClientWait time.Duration
	// After, if set, is awaited (after the client gave up) before the
	// request goes on: e.g. until the client's clean-up call went through.
	After func(ctx context.Context)

	Arrived    chan struct{}
	Done       chan struct{}
	ClientGone bool // set before Done is closed: the client had hung up
	used       bool
}

// NewHold returns a Hold for method and path part.
func NewHold(method, pathPart string) *Hold {
	return &Hold{Method: method, PathPart: pathPart, Arrived: make(chan struct{}), Done: make(chan struct{})}
}

// StartProxy starts a proxy to the engine of DOCKER_HOST (or the default
// socket), stopped when the test ends.
func StartProxy(t testing.TB) *Proxy {
	t.Helper()
	target := os.Getenv("DOCKER_HOST")
	if target == "" {
		target = "unix:///var/run/docker.sock"
	}
	if !strings.HasPrefix(target, "unix://") {
		t.Fatalf("the engine proxy needs a unix socket engine, not %s", target)
	}
	engineSock := strings.TrimPrefix(target, "unix://")
	dir, err := os.MkdirTemp("", "kodproxy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "engine.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{
		Host:  "unix://" + sock,
		seenC: make(chan struct{}, 1),
		engine: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", engineSock)
			},
		}},
	}
	srv := &http.Server{Handler: p}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close()
	})
	return p
}

// Add installs a hold rule.
func (p *Proxy) Add(h *Hold) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holds = append(p.holds, h)
}

// WaitRequest waits until a request matching method and path part has been
// passed on and answered, or ctx ends (false).
func (p *Proxy) WaitRequest(ctx context.Context, method, pathPart string) bool {
	for {
		p.mu.Lock()
		for _, s := range p.seen {
			if strings.HasPrefix(s, method+" ") && strings.Contains(s, pathPart) {
				p.mu.Unlock()
				return true
			}
		}
		p.mu.Unlock()
		select {
		case <-p.seenC:
		case <-ctx.Done():
			return false
		}
	}
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	var hold *Hold
	for _, h := range p.holds {
		if !h.used && r.Method == h.Method && strings.Contains(r.URL.Path, h.PathPart) {
			h.used = true
			hold = h
			break
		}
	}
	p.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	ctx := r.Context()
	if hold != nil {
		close(hold.Arrived)
		wait := hold.ClientWait
		if wait == 0 {
			wait = 2 * time.Second
		}
		select {
		case <-ctx.Done():
			hold.ClientGone = true
			if hold.After != nil {
				hold.After(context.Background())
			}
		case <-time.After(wait):
		}
		// The engine finishes what it was asked even if the client left.
		ctx = context.WithoutCancel(ctx)
		defer close(hold.Done)
	}
	p.forward(ctx, w, r, body)
	p.mu.Lock()
	p.seen = append(p.seen, r.Method+" "+r.URL.Path)
	p.mu.Unlock()
	select {
	case p.seenC <- struct{}{}:
	default:
	}
}

func (p *Proxy) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte) {
	out, err := http.NewRequestWithContext(ctx, r.Method, "http://engine"+r.URL.RequestURI(), strings.NewReader(string(body)))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	if r.Header.Get("Upgrade") != "" {
		p.tunnel(w, r, out)
		return
	}
	resp, err := p.engine.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	flush, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flush != nil {
				flush.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// tunnel passes an upgraded (attach) connection through as raw bytes.
func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request, out *http.Request) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "no hijack", http.StatusInternalServerError)
		return
	}
	engine, err := p.engine.Transport.(*http.Transport).DialContext(r.Context(), "unix", "")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer engine.Close()
	if err := out.Write(engine); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	client, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer client.Close()
	done := make(chan struct{}, 2)
	go func() {
		if n := rw.Reader.Buffered(); n > 0 {
			b, _ := rw.Reader.Peek(n)
			engine.Write(b)
		}
		io.Copy(engine, client)
		done <- struct{}{}
	}()
	go func() { io.Copy(client, engine); done <- struct{}{} }()
	<-done
}
