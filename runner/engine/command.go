package engine

// shellCommand is the argv running script with shell ("" or "sh": /bin/sh).
// It stands in for plan.ShellCommand until the compile stage provides it.
func shellCommand(shell, script string) []string {
	sh := "/bin/sh"
	switch shell {
	case "", "sh":
	case "bash":
		sh = "/bin/bash"
	default:
		sh = shell
	}
	if len(script) <= argChunk {
		return []string{sh, "-c", `exec 2>&1; exec ` + sh + ` -e -c "$1"`, "sh", script}
	}
	cmd := []string{sh, "-c", `exec 2>&1; s=; for p in "$@"; do s="$s$p"; done; set --; set -e; eval "$s"`, "sh"}
	for len(script) > 0 {
		n := min(argChunk, len(script))
		cmd = append(cmd, script[:n])
		script = script[n:]
	}
	return cmd
}

// argChunk is the longest script passed as one argument, bytes: well
// under the kernel's 128 KiB per argument (MAX_ARG_STRLEN).
const argChunk = 64 << 10
