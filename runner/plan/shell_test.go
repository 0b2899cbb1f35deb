package plan

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestShellCommandSh: the default shell gives exactly Kod's command (the
// runner's shellCommand before the plan existed), short and chunked.
func TestShellCommandSh(t *testing.T) {
	for _, shell := range []string{"", "sh"} {
		got := ShellCommand(shell, "echo hi")
		want := []string{"/bin/sh", "-c", `exec 2>&1; exec /bin/sh -e -c "$1"`, "sh", "echo hi"}
		if !slices.Equal(got, want) {
			t.Errorf("ShellCommand(%q) = %q, want %q", shell, got, want)
		}
	}
	long := strings.Repeat("x", 2*argChunk+5)
	got := ShellCommand("sh", long)
	want := []string{"/bin/sh", "-c", `exec 2>&1; s=; for p in "$@"; do s="$s$p"; done; set --; set -e; eval "$s"`, "sh", long[:argChunk], long[argChunk : 2*argChunk], long[2*argChunk:]}
	if !slices.Equal(got, want) {
		t.Errorf("long script: got %d args, want %d", len(got), len(want))
	}
}

func TestShellCommandOther(t *testing.T) {
	tests := []struct{ shell, flags string }{
		{"bash", "-eo pipefail"},
		{"/usr/local/bin/bash", "-eo pipefail"},
		{"zsh", "-e"},
		{"/bin/ash", "-e"},
	}
	for _, tt := range tests {
		got := ShellCommand(tt.shell, "make")
		if len(got) != 5 || got[0] != "/bin/sh" || got[3] != tt.shell || got[4] != "make" ||
			!strings.HasPrefix(got[2], "exec 2>&1; ") ||
			!strings.Contains(got[2], `command -v "$0"`) ||
			!strings.HasSuffix(got[2], `exec "$0" `+tt.flags+` -c "$1"`) {
			t.Errorf("ShellCommand(%q) = %q", tt.shell, got)
		}
		long := ShellCommand(tt.shell, strings.Repeat("y", argChunk+1))
		if len(long) != 6 || long[3] != tt.shell || len(long[4]) != argChunk || long[5] != "y" {
			t.Errorf("long script with %q: %d args", tt.shell, len(long))
		}
	}
}

// TestShellCommandRuns runs the commands with the host's /bin/sh and bash
// (the same wrapper runs in step containers): bash fails a pipe whose left
// side fails, sh keeps Kod's semantics, stderr arrives on stdout, chunked
// scripts run whole, and a missing shell exits 127 with a message.
func TestShellCommandRuns(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on this host") // the wrapper itself is covered by TestShellCommandOther
	}
	long := "x='" + strings.Repeat("y", argChunk) + "'\necho ${#x}\n"
	tests := []struct {
		shell, script string
		code          int
		out           string
	}{
		{"sh", "false | true; echo went on", 0, "went on\n"},
		{"bash", "false | true; echo went on", 1, ""},
		{bash, "set -o | grep -q 'pipefail.*on' && echo on", 0, "on\n"},
		{"bash", "{ time true; } 2>/dev/null; echo err >&2; echo out", 0, "err\nout\n"},
		{"sh", "echo one; echo two >&2; false; echo never", 1, "one\ntwo\n"},
		{"sh", long, 0, "65536\n"},
		{"bash", long + "false | true\necho never\n", 1, "65536\n"},
		{"kod-no-such-shell", "echo hi", 127, "kod: shell 'kod-no-such-shell' not found in the step's image\n"},
		{"/nonexistent/bash", "echo hi", 127, "kod: shell '/nonexistent/bash' not found in the step's image\n"},
	}
	for _, tt := range tests {
		cmd := ShellCommand(tt.shell, tt.script)
		c := exec.Command(cmd[0], cmd[1:]...)
		var stderr strings.Builder
		c.Stderr = &stderr
		out, err := c.Output()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code || string(out) != tt.out || stderr.Len() != 0 {
			t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q", tt.shell, clipTest(tt.script), code, out, stderr.String(), tt.code, tt.out)
		}
	}
}

func clipTest(s string) string { return s[:min(len(s), 40)] }
