// Package e2e tests kod end to end: the built binary as a server on random
// ports with temporary directories, the real git client, and the real
// Docker engine.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// kodBin is the kod binary built once for all tests.
var kodBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kod-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kodBin = filepath.Join(dir, "kod")
	build := exec.Command("go", "build", "-race", "-o", kodBin, "../cmd/kod")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building kod:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if plainBin != "" {
		os.RemoveAll(filepath.Dir(plainBin))
	}
	os.Exit(code)
}

const adminToken = "kod_e2eAdminToken0123456789abcdefgh"

// server is a running `kod serve` child process.
type server struct {
	t        testing.TB
	URL      string
	Instance string // labels every container of this server
	Home     string // KOD_HOME: data/, repos/
	cmd      *exec.Cmd
	logMu    sync.Mutex
	log      bytes.Buffer
	exited   chan struct{}
	env      []string
	args     []string
	stopped  bool
	// SSH is on when the server was started by startSSHServer; SSHAddr is
	// then its host:port (a new random port after every start).
	SSH     bool
	SSHAddr string
	bin     string // the kod binary; "" means kodBin
}

// startServer starts kod serve with a fresh home (or the given one), HTTP
// on a random port, SSH off. It is stopped with SIGTERM at the end of the
// test.
func startServer(t testing.TB, home string, env []string, args ...string) *server {
	t.Helper()
	return newServer(t, home, env, false, args)
}

// startSSHServer is startServer with SSH on too, on 127.0.0.1 and a random
// port (s.SSHAddr).
func startSSHServer(t testing.TB, home string, env []string, args ...string) *server {
	t.Helper()
	return newServer(t, home, env, true, args)
}

func newServer(t testing.TB, home string, env []string, ssh bool, args []string) *server {
	t.Helper()
	dockertest.Require(t)
	if home == "" {
		home = t.TempDir()
	}
	s := &server{t: t, Home: home, env: env, args: args, SSH: ssh}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

var (
	listenRE    = regexp.MustCompile(`msg="kod is listening" http=(\S+) instance=(\S+)`)
	sshListenRE = regexp.MustCompile(`msg="kod is listening" .* ssh=(\S+)`)
)

func (s *server) start() {
	t := s.t
	t.Helper()
	args := []string{"serve", "--port", "0", "--host", "127.0.0.1", "--no-ssh"}
	if s.SSH {
		args = []string{"serve", "--port", "0", "--host", "127.0.0.1", "--ssh-port", "0", "--ssh-host", "127.0.0.1"}
	}
	args = append(args, s.args...)
	bin := kodBin
	if s.bin != "" {
		bin = s.bin
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"KOD_HOME="+s.Home,
		"KOD_DATA_DIR="+filepath.Join(s.Home, "data"),
		"KOD_REPOS_DIR="+filepath.Join(s.Home, "repos"),
		"KOD_ADMIN_TOKEN="+adminToken,
		"KOD_CONFIG=",
	)
	cmd.Env = append(cmd.Env, s.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.exited, s.stopped = cmd, make(chan struct{}), false
	addr := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.logMu.Lock()
			s.log.WriteString(line + "\n")
			s.logMu.Unlock()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				a := append([]string(nil), m[1:]...)
				if m := sshListenRE.FindStringSubmatch(line); m != nil {
					a = append(a, m[1])
				}
				addr <- a
			}
		}
	}()
	go func() { cmd.Wait(); close(s.exited) }()
	select {
	case a := <-addr:
		s.URL, s.Instance = "http://"+a[0], a[1]
		if s.SSH && len(a) > 2 {
			s.SSHAddr = a[2]
		}
	case <-s.exited:
		t.Fatalf("kod serve exited at start:\n%s", s.Logs())
	case <-time.After(2 * time.Minute): // catches hangs only
		t.Fatalf("kod serve did not start in 2 minutes:\n%s", s.Logs())
	}
}

// Logs returns what the server wrote to stderr so far.
func (s *server) Logs() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// Stop sends SIGTERM and waits for a graceful exit.
func (s *server) Stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(2 * time.Minute): // catches hangs only
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("kod serve did not stop within 2 minutes of SIGINT:\n%s", s.Logs())
	}
	if s.t.Failed() {
		s.t.Logf("server log:\n%s", s.Logs())
	}
}

// Kill ends the server with SIGKILL (no cleanup at all).
func (s *server) Kill() {
	s.stopped = true
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// Restart starts the server again on the same home (new port).
func (s *server) Restart() {
	s.start()
}

// do sends a JSON request with token (Bearer) and returns status and body.
func (s *server) do(method, path, token string, body any) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return res.StatusCode, data
}

// mustDo is do that fails the test unless the status is want, decoding the
// body into out when out is not nil.
func (s *server) mustDo(method, path, token string, body any, want int, out any) {
	s.t.Helper()
	status, data := s.do(method, path, token, body)
	if status != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: decoding %s: %v", method, path, data, err)
		}
	}
}

func (s *server) createRepo(name string) {
	s.t.Helper()
	s.mustDo("POST", "/repos", adminToken, map[string]string{"name": name}, http.StatusCreated, nil)
}

// gitURL is the clone URL of repo with token as the Basic password.
func (s *server) gitURL(repo, token string) string {
	return strings.Replace(s.URL, "http://", "http://git:"+token+"@", 1) + "/repos/" + repo + ".git"
}

// runs lists the runs of repo.
func (s *server) runs(repo string) []forge.Run {
	var runs []forge.Run
	s.mustDo("GET", "/repos/"+repo+"/workflows", adminToken, nil, http.StatusOK, &runs)
	return runs
}

// waitRun polls run id of repo until it is done or timeout passes. The
// deadline only catches hangs: it is at least 3 minutes whatever the caller
// asks, so a loaded machine's slow engine never fails a test.
func (s *server) waitRun(repo, id string, timeout time.Duration) forge.Run {
	s.t.Helper()
	timeout = max(timeout, 3*time.Minute)
	deadline := time.Now().Add(timeout)
	for {
		var run forge.Run
		s.mustDo("GET", "/repos/"+repo+"/workflows/"+id, adminToken, nil, http.StatusOK, &run)
		if run.Status.Done() {
			return run
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("run %s still %s after %s:\n%s", id, run.Status, timeout, s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logs returns GET .../workflows/:id/logs.
func (s *server) logs(repo, id string) string {
	s.t.Helper()
	status, data := s.do("GET", "/repos/"+repo+"/workflows/"+id+"/logs", adminToken, nil)
	if status != http.StatusOK {
		s.t.Fatalf("logs: %d %s", status, data)
	}
	return string(data)
}

// project is a git work tree to push from.
type project struct {
	t   testing.TB
	Dir string
}

// newProject creates a repository with files (path -> content) committed
// on branch.
func newProject(t testing.TB, branch string, files map[string]string) *project {
	t.Helper()
	p := &project{t: t, Dir: t.TempDir()}
	p.git("init", "-q", "-b", branch)
	p.commit("initial", files)
	return p
}

// git runs git in the project and returns its combined output.
func (p *project) git(args ...string) string {
	p.t.Helper()
	out, err := p.gitErr(args...)
	if err != nil {
		p.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (p *project) gitErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=kod test", "GIT_AUTHOR_EMAIL=test@kod.invalid", "GIT_COMMITTER_NAME=kod test", "GIT_COMMITTER_EMAIL=test@kod.invalid")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// commit writes files and commits them; it returns the new commit id.
func (p *project) commit(msg string, files map[string]string) string {
	p.t.Helper()
	for name, content := range files {
		path := filepath.Join(p.Dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			p.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
	p.git("add", "-A")
	p.git("commit", "-q", "--allow-empty", "-m", msg)
	return strings.TrimSpace(p.git("rev-parse", "HEAD"))
}
