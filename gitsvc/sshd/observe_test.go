package sshd_test

import (
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/gitsvc/sshd"
)

// TestSSHObserverHooks: OnConn hears of every accepted connection and its
// close, and Git.OnServe of every git protocol request with transport
// "ssh" and the service.
func TestSSHObserverHooks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	open, total := 0, 0
	var served []string
	git := &gitsvc.Git{OnServe: func(transport, service string) {
		mu.Lock()
		served = append(served, transport+" "+service)
		mu.Unlock()
	}}
	e := newSSHEnv(t, git, func(c *sshd.Config) {
		c.OnConn = func() func() {
			mu.Lock()
			open++
			total++
			mu.Unlock()
			return func() { mu.Lock(); open--; mu.Unlock() }
		}
	})
	e.repo("watched", "alice")
	key, _ := e.newKey("alice")
	c, err := e.dial("kod", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// No client speaks the protocol here: git exits once stdin closes,
	// after the request was served.
	run(t, c, "git-upload-pack 'watched.git'")
	mu.Lock()
	if total != 1 || open != 1 || len(served) != 1 || served[0] != "ssh git-upload-pack" {
		t.Errorf("while connected: total %d open %d served %v", total, open, served)
	}
	mu.Unlock()
	c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		o := open
		mu.Unlock()
		if o == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the close of the connection was never reported")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
