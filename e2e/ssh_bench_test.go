package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkSSHClone clones a repository of about 50 MB (50 files of 1 MiB
// of random bytes, so nothing compresses) from kod over SSH and, in the
// same iteration, the same bare repository from `git daemon`, and reports
// both times and their ratio (target: at most 1.2). The repository is
// repacked first (as after gc) and both are bare clones, so the figure is
// the transport plus index-pack, with neither recompression nor a checkout
// diluting the difference. The server is built without the race detector
// for this benchmark: its crypto runs in the measured path.
//
//	go test -run X -bench SSHClone -benchtime 5x ./e2e/
func BenchmarkSSHClone(b *testing.B) {
	fast := filepath.Join(b.TempDir(), "kod")
	if out, err := exec.Command("go", "build", "-o", fast, "../cmd/kod").CombinedOutput(); err != nil {
		b.Fatalf("building kod: %v\n%s", err, out)
	}
	raceBin := kodBin
	kodBin = fast // benchmarks run after every test, one at a time
	defer func() { kodBin = raceBin }()
	s := startSSHServer(b, "", nil)
	s.createRepo("big")
	files := map[string]string{}
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	for i := range 50 {
		data := make([]byte, 1<<20)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		files[fmt.Sprintf("blob-%02d.bin", i)] = string(data)
	}
	p := newProject(b, "main", files)
	p.git("push", "-q", s.gitURL("big", adminToken), "main")
	// One pack, as after gc: the clones then reuse it instead of
	// recompressing loose objects, so the transport is a larger share.
	bare := &project{t: b, Dir: filepath.Join(s.Home, "repos", "big.git")}
	bare.git("repack", "-a", "-d", "-q")
	u := s.newUser("bench", "big", "repo:read")
	daemonURL := startGitDaemon(b, filepath.Join(s.Home, "repos")) + "/big.git"

	var viaSSH, viaDaemon time.Duration
	for i := 0; b.Loop(); i++ {
		dir := b.TempDir()
		start := time.Now()
		if out, err := p.gitSSH(s, u.Key, nil, "clone", "-q", "--bare", s.sshURL("kod", "big"), filepath.Join(dir, "ssh")); err != nil {
			b.Fatalf("clone over SSH: %v\n%s", err, out)
		}
		viaSSH += time.Since(start)
		start = time.Now()
		if out, err := p.gitErr("clone", "-q", "--bare", daemonURL, filepath.Join(dir, "daemon")); err != nil {
			b.Fatalf("clone from git daemon: %v\n%s", err, out)
		}
		viaDaemon += time.Since(start)
		os.RemoveAll(dir)
	}
	n := float64(b.N)
	b.ReportMetric(viaSSH.Seconds()/n, "s/ssh-clone")
	b.ReportMetric(viaDaemon.Seconds()/n, "s/daemon-clone")
	b.ReportMetric(viaSSH.Seconds()/viaDaemon.Seconds(), "ratio")
}

// startGitDaemon serves the bare repositories under base with `git daemon`
// on a free local port until the benchmark ends, and returns its git://
// base URL.
func startGitDaemon(b *testing.B, base string) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--base-path="+base, "--listen=127.0.0.1", "--port="+port, base)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "git://127.0.0.1:" + port
	for range 100 {
		if exec.Command("git", "ls-remote", url+"/big.git").Run() == nil {
			return url
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("git daemon did not start")
	return ""
}
