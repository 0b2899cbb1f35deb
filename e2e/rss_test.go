package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

// BenchmarkServeLogRSS measures the resident memory of a real `kod serve`
// process (built without the race detector, which multiplies memory)
// while a pushed workflow's step prints 100 MB: VmRSS sampled every 10 ms
// from /proc/<pid>/status during the run, against VmRSS just before the
// push. Target: under 100 MB of growth.
func BenchmarkServeLogRSS(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "kod")
	build := exec.Command("go", "build", "-o", bin, "../cmd/kod")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building kod: %v\n%s", err, out)
	}
	home := b.TempDir()
	s := &server{t: b, Home: home, bin: bin}
	s.start()
	b.Cleanup(s.Stop)
	s.createRepo("loud")
	p := newProject(b, "main", map[string]string{".kod/workflows/ci.toml": `
[[steps]]
name = "loud"
run = "yes 'kod log throughput benchmark: a line of build output, eighty characters long' | head -c 100000000"
`})
	pid := s.cmd.Process.Pid
	var growth, took float64
	for i := 0; b.Loop(); i++ {
		before := procStatus(b, pid, "VmRSS")
		peak := before
		var mu sync.Mutex
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				v := procStatus(b, pid, "VmRSS")
				mu.Lock()
				peak = max(peak, v)
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
		p.commit("run "+strconv.Itoa(i), nil)
		p.git("push", "-q", "-f", s.gitURL("loud", adminToken), "main")
		runs := s.runs("loud")
		run := s.waitRun("loud", runs[0].ID, 5*time.Minute)
		close(stop)
		wg.Wait()
		if run.Status != forge.RunCompleted {
			b.Fatalf("run %s: %q", run.Status, run.Error)
		}
		growth += float64(peak-before) / (1 << 20)
		took += float64(run.Result.Steps[0].Duration) / 1000
	}
	b.ReportMetric(growth/float64(b.N), "MiB-rss-growth")
	b.ReportMetric(took/float64(b.N), "s/step-100MB")
	b.ReportMetric(float64(procStatus(b, pid, "VmHWM"))/(1<<20), "MiB-peak-rss")
}

// procStatus reads a "kB" field of /proc/<pid>/status, in bytes.
func procStatus(tb testing.TB, pid int, field string) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
