package plan

import (
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
