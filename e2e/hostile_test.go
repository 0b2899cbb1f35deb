package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

var (
	plainOnce sync.Once
	plainBin  string
	plainErr  error
)

// plainKodBin builds kod without the race detector (which multiplies
// memory), once, for tests that measure the server's memory.
func plainKodBin(t testing.TB) string {
	t.Helper()
	plainOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kod-e2e-plain")
		if err != nil {
			plainErr = err
			return
		}
		plainBin = filepath.Join(dir, "kod")
		if out, err := exec.Command("go", "build", "-o", plainBin, "../cmd/kod").CombinedOutput(); err != nil {
			plainErr = fmt.Errorf("building kod: %v\n%s", err, out)
		}
	})
	if plainErr != nil {
		t.Fatal(plainErr)
	}
	return plainBin
}

// TestHostileWorkflowFilesFailFast: the attack's workflow files (4,000
// nested inline tables in 16 KB and in 1 MiB, a key of 5,000 dotted parts)
// are refused at the push with the file, the line and the limit; each
// queues a run that fails saying the same; the server (built without the
// race detector) stays under 100 MB of resident memory and answers /health
// throughout. The decoder took 37 s and 1.6 GB on the 16 KB file and grew
// the server to 7 GB on the 1 MiB one, with the post-receive hook timing
// out. How fast /health answers is logged; the bound asserted only catches
// a server that stopped answering.
func TestHostileWorkflowFilesFailFast(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := &server{t: t, Home: dir, bin: plainKodBin(t)}
	s.start()
	t.Cleanup(s.Stop)
	s.createRepo("hostile")
	pid := s.cmd.Process.Pid

	nested := strings.Repeat("{a=", 4000) + "1" + strings.Repeat("}", 4000)
	var big strings.Builder
	big.WriteString("[[steps]]\nname = \"a\"\nrun = \"true\"\n")
	for big.Len() < (1<<20)-20000 {
		fmt.Fprintf(&big, "Y = %s\n", nested)
	}
	files := []struct{ name, body, want string }{
		{"nested.toml", "[[steps]]\nname = \"a\"\nrun = \"true\"\n\nY = " + nested + "\n", ".kod/workflows/nested.toml:5: arrays and tables nest more than 8 levels deep here"},
		{"big.toml", big.String(), ".kod/workflows/big.toml:4: arrays and tables nest more than 8 levels deep here"},
		{"dotted.toml", "[[steps]]\nname = \"a\"\nrun = \"true\"\n" + strings.Repeat("a.", 5000) + "b = 1\n", ".kod/workflows/dotted.toml:4: a key here has more than 8 dot-separated parts"},
	}

	// Probe the server while the pushes go on: resident memory and /health.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak int64
	var slowest time.Duration
	var failed []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := &http.Client{Timeout: 30 * time.Second} // catches a server that stopped answering
		for {
			peak = max(peak, procStatus(t, pid, "VmRSS"))
			start := time.Now()
			res, err := client.Get(s.URL + "/health")
			slowest = max(slowest, time.Since(start))
			if err != nil {
				failed = append(failed, err.Error())
			} else {
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					failed = append(failed, res.Status)
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	for _, f := range files {
		p := newProject(t, "main", map[string]string{".kod/workflows/" + f.name: f.body})
		out := p.git("push", "-f", s.gitURL("hostile", adminToken), "main")
		if !strings.Contains(out, "kod: warning: "+f.want) || !strings.Contains(out, "queued workflow run") {
			t.Errorf("%s: push output:\n%.2000s", f.name, out)
		}
		runs := s.runs("hostile")
		run := s.waitRun("hostile", runs[0].ID, time.Minute)
		if run.Status != forge.RunFailed || !strings.Contains(run.Error, f.want) {
			t.Errorf("%s: run %s %.500q", f.name, run.Status, run.Error)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("peak RSS %d MiB, slowest /health %s", peak>>20, slowest.Round(time.Millisecond))
	if peak > 100<<20 {
		t.Errorf("the server's resident memory reached %d MiB, want under 100", peak>>20)
	}
	if len(failed) > 0 {
		t.Errorf("/health failed %d times during the pushes: %v", len(failed), failed[0])
	}
}

// TestLongRunScript: a step whose run script is 500 KiB (beyond Linux's
// 128 KiB per argument, which failed it with "argument list too long")
// runs in the real engine like any other: every line executes, `sh -e`
// stops at the first failing command, and no positional parameters leak.
func TestLongRunScript(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("long")
	var script strings.Builder
	script.WriteString("echo first\nn=0\n")
	for script.Len() < 500<<10 {
		script.WriteString("n=$((n+1)) # a line of a long generated script, padded to some eighty characters\n")
	}
	script.WriteString("echo \"lines=$n args=$#\"\nfalse\necho never\n")
	lines := strings.Count(script.String(), "n=$((n+1))")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": "[[steps]]\nname = \"long\"\nrun = '''\n" + script.String() + "'''\n"})
	p.git("push", "-q", s.gitURL("long", adminToken), "main")
	run := s.waitRun("long", s.runs("long")[0].ID, 5*time.Minute)
	st := run.Result.Steps
	want := fmt.Sprintf("first\nlines=%d args=0\n", lines)
	if run.Status != forge.RunFailed || len(st) != 1 || st[0].Output != want || st[0].ExitCode == nil || *st[0].ExitCode != 1 {
		t.Fatalf("run %s %q, steps %+v; want output %q and exit 1 at false", run.Status, run.Error, st, want)
	}
	assertNoLeftovers(t, s)
}

// TestNonUTF8BranchRefusedAtPreReceive: with the real git client, branch
// names that are not valid UTF-8 (caf\xe9 and caf\xe8 would both be
// "caf\uFFFD" in runs and webhooks) are refused at pre-receive, naming the
// ref, and no ref moves; a UTF-8 name (café) is accepted.
func TestNonUTF8BranchRefusedAtPreReceive(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("names")
	p := newProject(t, "main", map[string]string{"README.md": "x\n"})
	p.git("push", "-q", s.gitURL("names", adminToken), "main")
	for _, name := range []string{"caf\xe9", "caf\xe8"} {
		out, err := p.gitErr("push", s.gitURL("names", adminToken), "HEAD:refs/heads/"+name)
		if err == nil || !strings.Contains(out, "is not valid UTF-8") || !strings.Contains(out, "push refused") {
			t.Errorf("push of %q: %v\n%s", name, err, out)
		}
	}
	if out, err := p.gitErr("push", "-q", s.gitURL("names", adminToken), "HEAD:refs/heads/café"); err != nil {
		t.Errorf("push of café: %v\n%s", err, out)
	}
	refs := p.git("ls-remote", s.gitURL("names", adminToken))
	if strings.Contains(refs, "caf\xe9") || strings.Contains(refs, "caf\xe8") || !strings.Contains(refs, "refs/heads/café") {
		t.Errorf("refs after the pushes:\n%q", refs)
	}
}

// idleRSS starts a server (built without the race detector) with secrets
// configured, waits until it answers and its start-up work settled, and
// returns its resident anonymous memory (RssAnon: heap, stacks, runtime),
// bytes. The binary's own pages (RssFile, shared page cache: ~35 MiB of a
// 78 MB binary once client-go is linked in) are left out: they are not
// memory the server holds.
func idleRSS(t testing.TB) int64 {
	t.Helper()
	s := &server{t: t, Home: t.TempDir(), bin: plainKodBin(t), env: []string{"KOD_ENCRYPTION_KEY=" + e2eKey}}
	s.start()
	defer s.Stop()
	s.createRepo("idle")
	s.mustDo("PUT", "/repos/idle/secrets/TOKEN", adminToken, map[string]string{"value": "idle-secret"}, http.StatusOK, nil)
	// The lowest of a few samples a second apart: start-up work settles.
	rss := int64(-1)
	for range 5 {
		time.Sleep(time.Second)
		if v := procStatus(t, s.cmd.Process.Pid, "RssAnon"); rss < 0 || v < rss {
			rss = v
		}
	}
	return rss
}

// TestIdleServerMemory: an idle server with secrets configured holds under
// 30 MiB of anonymous memory. scrypt's 32 MiB work area, derived at start,
// stayed resident before (47-51 MB idle).
func TestIdleServerMemory(t *testing.T) {
	t.Parallel()
	rss := idleRSS(t)
	t.Logf("idle RssAnon %.1f MiB", float64(rss)/(1<<20))
	if rss > 30<<20 {
		t.Errorf("idle server resident anonymous memory %.1f MiB, want under 30", float64(rss)/(1<<20))
	}
}

// BenchmarkIdleRSS reports an idle server's resident anonymous memory (see
// TestIdleServerMemory), MiB.
func BenchmarkIdleRSS(b *testing.B) {
	var total float64
	for b.Loop() {
		total += float64(idleRSS(b)) / (1 << 20)
	}
	b.ReportMetric(total/float64(b.N), "MiB-idle-rss")
}
