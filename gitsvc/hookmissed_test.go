package gitsvc

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/kod-forge/kod/forge"
)

// missingHandler records what a push's end hands to MissedPostReceive.
type missingHandler struct {
	recordingHandler
	mu     sync.Mutex
	missed [][]forge.RefUpdate
}

func (h *missingHandler) MissedPostReceive(_ context.Context, _ *Push, u []forge.RefUpdate) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.missed = append(h.missed, u)
}

// TestPostReceiveThatNeverArrivedIsFinishedAtTheEnd: when the socket
// vanishes between a push's pre-receive and post-receive, the hook tells
// the pusher, and the push's end hands the accepted updates to the
// handler, so the push is not left half-way; a push whose post-receive
// arrived, or whose pre-receive refused, hands over nothing.
func TestPostReceiveThatNeverArrivedIsFinishedAtTheEnd(t *testing.T) {
	h := &missingHandler{}
	s := startHooks(t, h)

	env, end := s.BeginPush(&Push{Repo: "r", Principal: &forge.Principal{}})
	var stderr bytes.Buffer
	if code := RunHook(context.Background(), "pre-receive", strings.NewReader(line), &stderr, envFunc(env)); code != 0 {
		t.Fatalf("pre-receive: %d %s", code, stderr.String())
	}
	if err := os.Remove(s.SocketPath()); err != nil {
		t.Fatal(err)
	}
	if code := RunHook(context.Background(), "post-receive", strings.NewReader(line), &stderr, envFunc(env)); code != 0 || !strings.Contains(stderr.String(), "could not reach the kod server after the push") {
		t.Errorf("post-receive without a socket: %d %q", code, stderr.String())
	}
	end()
	if len(h.missed) != 1 || len(h.missed[0]) != 1 || h.missed[0][0].Ref != "refs/heads/main" || len(h.post) != 0 {
		t.Fatalf("missed %+v, post %+v", h.missed, h.post)
	}

	// The next push makes the socket again; its hooks arrive: nothing missed.
	env, end = s.BeginPush(&Push{Repo: "r", Principal: &forge.Principal{}})
	for _, name := range []string{"pre-receive", "post-receive"} {
		if code := RunHook(context.Background(), name, strings.NewReader(line), &stderr, envFunc(env)); code != 0 {
			t.Fatalf("%s: %d %s", name, code, stderr.String())
		}
	}
	end()
	// A refused push hands over nothing either.
	h.refuse = forge.Forbidden("no")
	env, end = s.BeginPush(&Push{Repo: "r", Principal: &forge.Principal{}})
	RunHook(context.Background(), "pre-receive", strings.NewReader(line), &stderr, envFunc(env))
	end()
	if len(h.missed) != 1 || len(h.post) != 1 {
		t.Errorf("after normal and refused pushes: missed %d, post %d", len(h.missed), len(h.post))
	}
}
