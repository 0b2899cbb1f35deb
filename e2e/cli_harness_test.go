package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/cli/*.golden")

// cli runs the kod client binary as a user would: a home of its own
// (HOME, KOD_HOME), the server's URL and the admin token in the
// environment unless a test changes them.
type cli struct {
	t    testing.TB
	Home string
	env  map[string]string
}

func newCLI(t testing.TB, s *server) *cli {
	home := t.TempDir()
	c := &cli{t: t, Home: home, env: map[string]string{
		"HOME": home, "KOD_HOME": filepath.Join(home, ".kod"), "KOD_API_TOKEN": adminToken,
		"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
		// The race detector's default 1 s sleep at exit would double the
		// time of these tests; races are still reported.
		"GORACE":          "atexit_sleep_ms=0",
		"GIT_AUTHOR_NAME": "kod test", "GIT_AUTHOR_EMAIL": "test@kod.invalid", "GIT_COMMITTER_NAME": "kod test", "GIT_COMMITTER_EMAIL": "test@kod.invalid",
	}}
	if s != nil {
		c.env["KOD_SERVER_URL"] = s.URL
	}
	return c
}

// environ is the process environment without KOD_* variables, plus c.env.
func (c *cli) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KOD_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "NO_COLOR=") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	for k, v := range c.env {
		env = append(env, k+"="+v)
	}
	return env
}

// result is one run of the binary.
type result struct {
	Stdout, Stderr string
	Code           int
}

// run runs kod args in dir ("" = the home) with stdin.
func (c *cli) run(dir, stdin string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kodBin, args...)
	cmd.Dir = dir
	if dir == "" {
		cmd.Dir = c.Home
	}
	cmd.Env = c.environ()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := result{Stdout: out.String(), Stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	case err != nil:
		c.t.Fatalf("kod %v: %v", args, err)
	}
	return res
}

// ok runs kod args and fails the test unless it exits 0; it returns stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	res := c.run("", "", args...)
	if res.Code != 0 {
		c.t.Fatalf("kod %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return res.Stdout
}

// fails runs kod args and fails the test unless it exits 1 with want in
// stderr.
func (c *cli) fails(want string, args ...string) result {
	c.t.Helper()
	res := c.run("", "", args...)
	if res.Code != 1 || !strings.Contains(res.Stderr, want) {
		c.t.Fatalf("kod %s: exit %d, stderr %q: want exit 1 and %q", strings.Join(args, " "), res.Code, res.Stderr, want)
	}
	return res
}

var (
	relTimeRE = regexp.MustCompile(`just now|\d+ (second|minute|hour|day)s? ago|in \d+ (second|minute|hour|day)s?`)
	spacesRE  = regexp.MustCompile(` {2,}`)
)

// normalise makes real-server output comparable with a golden file: the
// given values (ids, URLs, paths) become their placeholders, relative
// times become <time>, and column padding becomes two spaces.
func normalise(out string, replace map[string]string) string {
	for v, placeholder := range replace {
		if v != "" {
			out = strings.ReplaceAll(out, v, placeholder)
		}
	}
	out = relTimeRE.ReplaceAllString(out, "<time>")
	return spacesRE.ReplaceAllString(out, "  ")
}

// golden compares got with testdata/cli/<name>.golden (-update rewrites).
func golden(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "cli", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

// writeFile writes content to path, creating its directory.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
