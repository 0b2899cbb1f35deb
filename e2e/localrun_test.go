package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/kod-forge/kod/sandbox"
)

// localObjects lists the containers, networks and volumes of the local
// runs of kod process pid on this host (instance local-<host>-<pid>-...).
func localObjects(t *testing.T, pid int) []string {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", sandbox.LabelManaged+"=true"))
	host, _ := os.Hostname()
	prefix := fmt.Sprintf("local-%s-%d-", host, pid)
	var out []string
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if strings.HasPrefix(c.Labels[sandbox.LabelInstance], prefix) {
			out = append(out, "container/"+strings.Join(c.Names, ","))
		}
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if strings.HasPrefix(n.Labels[sandbox.LabelInstance], prefix) {
			out = append(out, "network/"+n.Name)
		}
	}
	vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs.Volumes {
		if strings.HasPrefix(v.Labels[sandbox.LabelInstance], prefix) {
			out = append(out, "volume/"+v.Name)
		}
	}
	return out
}

// startLocal starts `kod workflow FILE` in dir with its stdout on a pipe
// and returns the command and a reader of that stdout.
func startLocal(t *testing.T, c *cli, dir, file string) (*exec.Cmd, *os.File, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(kodBin, "workflow", file)
	cmd.Dir = dir
	cmd.Env = c.environ()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill(); r.Close() })
	return cmd, r, &stderr
}

// readUntil reads lines from r until one contains want (a minute catches
// a hang).
func readUntil(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	found := make(chan error, 1)
	go func() {
		for {
			line, err := r.ReadString('\n')
			if strings.Contains(line, want) {
				found <- nil
				return
			}
			if err != nil {
				found <- err
				return
			}
		}
	}()
	select {
	case err := <-found:
		if err != nil {
			t.Fatalf("output ended before %q: %v", want, err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("no %q in the output", want)
	}
}

// waitExit waits for cmd (two minutes catch a hang).
func waitExit(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("kod workflow did not exit")
	}
}

// TestLocalRunCleansUpOnHangupAndBrokenPipe: a local run whose terminal
// closes (SIGHUP) or whose reader goes away (`| head`, SIGPIPE) cancels its
// step and removes its container, volume and network before exiting; one
// killed outright (SIGKILL) leaves them, and the next local run on the host
// removes them, saying so.
func TestLocalRunCleansUpOnHangupAndBrokenPipe(t *testing.T) {
	t.Parallel()
	c := newCLI(t, nil)
	p := newProject(t, "main", map[string]string{
		"long.toml":  "[[steps]]\nname = \"long\"\nrun = \"echo started; sleep 300\"\n",
		"loud.toml":  "[[steps]]\nname = \"loud\"\nrun = \"echo started; while :; do echo more output; sleep 0.1; done\"\n",
		"quick.toml": "[[steps]]\nname = \"quick\"\nrun = \"echo quick\"\n",
	})

	t.Run("SIGHUP", func(t *testing.T) {
		cmd, out, _ := startLocal(t, c, p.Dir, "long.toml")
		readUntil(t, bufio.NewReader(out), "started")
		if left := localObjects(t, cmd.Process.Pid); len(left) == 0 {
			t.Fatal("the running local run has no objects: the test would prove nothing")
		}
		cmd.Process.Signal(syscall.SIGHUP)
		waitExit(t, cmd)
		if left := localObjects(t, cmd.Process.Pid); len(left) > 0 {
			t.Errorf("left behind after SIGHUP: %v", left)
		}
	})

	t.Run("SIGPIPE", func(t *testing.T) {
		cmd, out, stderr := startLocal(t, c, p.Dir, "loud.toml")
		readUntil(t, bufio.NewReader(out), "started")
		out.Close() // `| head -n 1` exits: the next write gets EPIPE
		waitExit(t, cmd)
		if left := localObjects(t, cmd.Process.Pid); len(left) > 0 {
			t.Errorf("left behind after the reader went away: %v\n%s", left, stderr)
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Errorf("kod was killed by %v instead of cleaning up", ws.Signal())
		}
	})

	t.Run("SIGKILL, then the next run sweeps", func(t *testing.T) {
		cmd, out, _ := startLocal(t, c, p.Dir, "long.toml")
		readUntil(t, bufio.NewReader(out), "started")
		cmd.Process.Kill()
		waitExit(t, cmd)
		if left := localObjects(t, cmd.Process.Pid); len(left) == 0 {
			t.Fatal("the killed local run left nothing: the test would prove nothing")
		}
		res := c.run(p.Dir, "", "workflow", "quick.toml")
		if res.Code != 0 || !strings.Contains(res.Stderr+res.Stdout, "earlier local run(s) that ended without cleaning up") {
			t.Errorf("the next local run: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
		}
		if left := localObjects(t, cmd.Process.Pid); len(left) > 0 {
			t.Errorf("the killed run's objects survived the next local run: %v", left)
		}
	})
}
