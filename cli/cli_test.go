package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite testdata/cli/*.golden")

// cliResult is what one in-process run of the CLI printed and its exit code.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the client commands in-process with env as the whole
// environment (KOD_SERVER_URL and KOD_API_TOKEN default to the fake's),
// the clock at fakeNow, and stdin.
func runCLI(t *testing.T, f *fakeAPI, env map[string]string, stdin string, args ...string) cliResult {
	t.Helper()
	full := map[string]string{"KOD_CONFIG": filepath.Join(t.TempDir(), "config.json")}
	if f != nil {
		full["KOD_SERVER_URL"], full["KOD_API_TOKEN"] = f.srv.URL, fakeToken
	}
	for k, v := range env {
		full[k] = v
	}
	a := &app{getenv: func(k string) string { return full[k] }, now: func() time.Time { return fakeNow },
		stdin: strings.NewReader(stdin), interactive: func() bool { return false }}
	root := &cobra.Command{Use: "kod", SilenceUsage: true, SilenceErrors: true}
	addClientCommands(root, a)
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	res := cliResult{code: 0}
	var exit *ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.Code
	case err != nil:
		res.code = 1
		errOut.WriteString("kod: " + err.Error() + "\n")
	}
	res.stdout, res.stderr = out.String(), errOut.String()
	return res
}

// golden compares got with testdata/cli/<name>.golden (rewritten with
// -update), after replacing the fake server's URL with <server>.
func golden(t *testing.T, f *fakeAPI, name, got string) {
	t.Helper()
	if f != nil {
		got = strings.ReplaceAll(got, f.srv.URL, "<server>")
	}
	path := filepath.Join("testdata", "cli", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

// TestCLITables runs every listing command against the contract fake and
// compares its table with a golden file.
func TestCLITables(t *testing.T) {
	f := newFakeAPI(t)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"repo_list", []string{"repo", "list"}},
		{"repo_info", []string{"repo", "info", "app"}},
		{"repo_collaborators", []string{"repo", "app", "collaborator", "list"}},
		{"repo_protected", []string{"repo", "app", "protected"}},
		{"repo_webhooks", []string{"repo", "app", "webhook", "list"}},
		{"repo_deliveries", []string{"repo", "app", "webhook", "deliveries", "hook00000001"}},
		{"repo_secrets", []string{"repo", "app", "secret", "list"}},
		{"token_list", []string{"token", "list"}},
		{"token_create", []string{"token", "create", "deploy", "--permissions", "repo:read,workflow:trigger", "--expires", "30"}},
		{"keys_list", []string{"keys", "list"}},
		{"workflow_status", []string{"workflow", "status"}},
		{"workflow_runs", []string{"workflow", "status", "app"}},
		{"workflow_show", []string{"workflow", "show", "app", "run000000002"}},
		{"workflow_logs", []string{"workflow", "logs", "app", "run000000001"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			res := runCLI(t, f, nil, "", tc.args...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			golden(t, f, tc.golden, res.stdout)
		})
	}
}
