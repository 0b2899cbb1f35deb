package gitsvc

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A git command outlives no server killed with SIGKILL: the helper below
// (this test binary run again) starts a git that waits on its stdin and is
// then killed; the git must go too.
func TestGitDiesWithServer(t *testing.T) {
	if os.Getenv("KOD_TEST_GIT_DEATH_HELPER") == "1" {
		return
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestGitDeathHelper$")
	helper.Env = append(os.Environ(), "KOD_TEST_GIT_DEATH_HELPER=1")
	// git's stdin: a pipe this process holds open, so git waits on it
	// whatever happens to the helper.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	helper.ExtraFiles = []*os.File{r}
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer helper.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "git-pid "))
	if err != nil || perr != nil {
		t.Fatalf("helper said %q (%v)", line, err)
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	helper.Wait()
	deadline := time.Now().Add(time.Minute) // catches a hang only
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("git (pid %d) still runs after its server was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestGitDeathHelper(t *testing.T) {
	if os.Getenv("KOD_TEST_GIT_DEATH_HELPER") != "1" {
		t.Skip("run by TestGitDiesWithServer")
	}
	g := &Git{}
	cmd, cancel := g.Command(context.Background(), &Cmd{Dir: t.TempDir(), Args: []string{"hash-object", "--stdin"}, Stdin: os.NewFile(3, "stdin"), Timeout: -1})
	defer cancel()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("git-pid %d\n", cmd.Process.Pid)
	os.Stdout.Sync()
	time.Sleep(time.Hour) // until killed
}
