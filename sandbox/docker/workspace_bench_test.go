package docker_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// benchRepo makes a bare repository whose tree is about 50 MB of
// source-like text (2000 files of 25 KB drawn from a small vocabulary, so
// it compresses like code) with 21 commits of history, each later one
// changing 100 files, pushed into it. It returns the bare directory and
// the tip.
func benchRepo(b *testing.B) (string, string) {
	b.Helper()
	work := b.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@x", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@x",
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	words := strings.Fields("func return if else for range err nil := struct type interface package import var const string int byte map chan go defer select case switch break continue ctx context error fmt Errorf Println len append make new")
	rng := rand.New(rand.NewPCG(1, 2))
	file := func() []byte {
		var s strings.Builder
		for s.Len() < 25<<10 {
			for range 8 {
				s.WriteString(words[rng.IntN(len(words))])
				s.WriteByte(' ')
			}
			fmt.Fprintf(&s, "%d\n", rng.IntN(1e6))
		}
		return []byte(s.String())
	}
	write := func(i int) {
		p := filepath.Join(work, fmt.Sprintf("pkg%02d/file%04d.go", i%40, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, file(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	git("init", "-q", "-b", "main")
	for i := range 2000 {
		write(i)
	}
	git("add", "-A")
	git("commit", "-qm", "initial")
	for c := range 20 {
		for range 100 {
			write(rng.IntN(2000))
		}
		git("add", "-A")
		git("commit", "-qm", fmt.Sprintf("change %d", c))
		if c == 10 {
			git("tag", "-a", "-m", "release", "v1.0")
		}
	}
	// Pushed, as kod receives it: one pack (receive-pack keeps packs of
	// more than 100 objects).
	bare := filepath.Join(b.TempDir(), "r.git")
	git("init", "-q", "--bare", bare)
	git("push", "-q", bare, "main", "v1.0")
	return bare, git("rev-parse", "HEAD")
}

// BenchmarkWorkspaceLoad: loading a run's workspace from a 50 MB
// repository into a Docker volume, as `git archive` (the plain tree) and
// as a checkout with its .git (full history; depth 1). Each iteration
// loads all three, in a rotating order, so a machine whose load drifts
// (other test suites) weighs on each alike; it reports the mean seconds of
// each and the checkout's ratio to the archive.
func BenchmarkWorkspaceLoad(b *testing.B) {
	d := dockertest.Require(b)
	bare, tip := benchRepo(b)
	g := &gitsvc.Git{}
	instance := dockertest.NewID(b)
	b.Cleanup(func() { dockertest.Clean(b, d, instance) })
	variants := []struct {
		name  string
		write func(ctx context.Context, w io.Writer) error
		total time.Duration
		bytes int64
	}{
		{name: "archive", write: func(ctx context.Context, w io.Writer) error { return g.Archive(ctx, bare, tip, w) }},
		{name: "checkout", write: func(ctx context.Context, w io.Writer) error {
			return g.Checkout(ctx, bare, gitsvc.CheckoutOptions{Commit: tip, Branch: "main"}, w)
		}},
		{name: "depth1", write: func(ctx context.Context, w io.Writer) error {
			return g.Checkout(ctx, bare, gitsvc.CheckoutOptions{Commit: tip, Branch: "main", Depth: 1}, w)
		}},
	}
	ctx := context.Background()
	n := 0
	for b.Loop() {
		for j := range variants {
			v := &variants[(n+j)%len(variants)]
			run := &sandbox.RunSpec{ID: dockertest.NewID(b), Instance: instance, Network: sandbox.NetworkNone}
			if err := d.SetupRun(ctx, run); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			counted := &countWriter{w: pw}
			go func() {
				err := v.write(ctx, counted)
				pw.CloseWithError(err)
				done <- err
			}()
			err := d.LoadWorkspace(ctx, run, dockertest.Image, pr)
			pr.Close()
			if werr := <-done; err == nil {
				err = werr
			}
			v.total += time.Since(start)
			v.bytes = counted.n
			if err != nil {
				b.Fatal(err)
			}
			if err := d.DestroyRun(ctx, run); err != nil {
				b.Fatal(err)
			}
		}
		n++
	}
	for _, v := range variants {
		b.ReportMetric(v.total.Seconds()/float64(n), v.name+"-s")
		b.ReportMetric(float64(v.bytes)/(1<<20), v.name+"-MiB")
	}
	b.ReportMetric(variants[1].total.Seconds()/variants[0].total.Seconds(), "checkout/archive")
	b.ReportMetric(variants[2].total.Seconds()/variants[0].total.Seconds(), "depth1/archive")
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
