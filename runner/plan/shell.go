package plan

import "path"

// DefaultShell runs the scripts of steps that name no shell (Kod: sh -e -c).
const DefaultShell = "sh"

// ShellCommand is the container command that runs script with shell: a
// name found on the image's PATH or an absolute path ("" means
// DefaultShell). In every case stderr is pointed at stdout first, so the
// step's output reaches the log in exactly the order it was written
// (container engines copy two streams with no order between them).
//
//   - "sh": `/bin/sh -e -c SCRIPT`, Kod's command.
//   - bash (a name or path ending in /bash): `bash -eo pipefail -c SCRIPT`,
//     so a failure on the left of a pipe fails the step.
//   - any other shell: `SHELL -e -c SCRIPT`.
//
// Other shells are started through /bin/sh, which first checks that the
// image has them: when it lacks one the step prints "kod: shell 'NAME' not
// found in the step's image" and exits 127 (the shell's own code for a
// missing command).
//
// Linux refuses a single argument longer than 128 KiB (MAX_ARG_STRLEN:
// "argument list too long"), so a script longer than argChunk is passed in
// pieces that the shell joins and runs with `eval` under the same options:
// the same shell language and empty positional parameters, for scripts up
// to the workflow file limit (argv and environment together may take a
// quarter of the stack limit, 2 MiB by default).
func ShellCommand(shell, script string) []string {
	if shell == "" || shell == DefaultShell {
		return shCommand(script)
	}
	flags := "-e"
	if path.Base(shell) == "bash" {
		flags = "-eo pipefail"
	}
	// $0 of the wrapper is the shell, "$@" the script (or its pieces).
	check := `exec 2>&1; if ! command -v "$0" >/dev/null 2>&1; then echo "kod: shell '$0' not found in the step's image"; exit 127; fi; `
	if len(script) <= argChunk {
		return []string{"/bin/sh", "-c", check + `exec "$0" ` + flags + ` -c "$1"`, shell, script}
	}
	join := `s=; for p in "$@"; do s="$s$p"; done; set --; eval "$s"`
	cmd := []string{"/bin/sh", "-c", check + `exec "$0" ` + flags + ` -c '` + join + `' "$0" "$@"`, shell}
	return appendChunks(cmd, script)
}

// shCommand is Kod's command: `sh -e -c` after `exec 2>&1`.
func shCommand(script string) []string {
	if len(script) <= argChunk {
		return []string{"/bin/sh", "-c", `exec 2>&1; exec /bin/sh -e -c "$1"`, "sh", script}
	}
	cmd := []string{"/bin/sh", "-c", `exec 2>&1; s=; for p in "$@"; do s="$s$p"; done; set --; set -e; eval "$s"`, "sh"}
	return appendChunks(cmd, script)
}

func appendChunks(cmd []string, script string) []string {
	for len(script) > 0 {
		n := min(argChunk, len(script))
		cmd = append(cmd, script[:n])
		script = script[n:]
	}
	return cmd
}

// argChunk is the longest script passed as one argument, bytes: well
// under the kernel's 128 KiB per argument.
const argChunk = 64 << 10
