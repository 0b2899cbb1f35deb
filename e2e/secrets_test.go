package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/sandbox"
)

const (
	e2eKey      = "a passphrase typed by a person"
	tokenSecret = "e2e-tok-9d8c7b6a5f"
	multiSecret = "line-one-abcdef\nline-two-ghijkl\nline-three-mnop"
)

// leakWorkflow prints the secrets every way the issue lists: whole, split
// over two writes with a pause, multi-line (whole and one line alone),
// under set -x, and once more while the test inspects the running
// container.
const leakWorkflow = `
[env]
TOKEN = "overridden by the secret"

[[steps]]
name = "print"
run = 'echo "token=$TOKEN"'

[[steps]]
name = "split"
run = '''
printf 'split=%s' "$(printf %s "$TOKEN" | head -c 7)"
sleep 1
printf '%s\n' "$(printf %s "$TOKEN" | tail -c +8)"
'''

[[steps]]
name = "multi"
run = '''
echo "$MULTI"
printf '%s\n' "$MULTI" | sed -n 2p
'''

[[steps]]
name = "xtrace"
run = '''
set -x
echo "$TOKEN" > /dev/null
test "$TOKEN" = guess || echo "not $TOKEN"
'''

[[steps]]
name = "inspected"
run = 'echo inspect-me; sleep 4; echo "still $TOKEN"; exit 3'
`

// TestSecretsNeverLeak is the showcase: a workflow prints its
// secrets every which way; the run record, /logs (polled while the run is
// going, the live output) and the final output hold [secret] and never the
// values, no container is left, and neither the data dir nor the server
// log contains a value.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", []string{"KOD_ENCRYPTION_KEY=" + e2eKey})
	s.createRepo("vault")
	s.mustDo("PUT", "/repos/vault/secrets/TOKEN", adminToken, map[string]string{"value": tokenSecret}, http.StatusOK, nil)
	s.mustDo("PUT", "/repos/vault/secrets/MULTI", adminToken, map[string]string{"value": multiSecret}, http.StatusOK, nil)
	values := append([]string{tokenSecret}, strings.Split(multiSecret, "\n")...)
	assertClean := func(what, text string) {
		t.Helper()
		for _, v := range values {
			if strings.Contains(text, v) {
				t.Errorf("%s contains the secret value %q", what, v)
			}
		}
	}

	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": leakWorkflow})
	p.git("push", "-q", s.gitURL("vault", adminToken), "main")
	runs := s.runs("vault")
	if len(runs) != 1 {
		t.Fatalf("runs: %+v", runs)
	}
	id := runs[0].ID

	// While the run goes: the live log never shows a value; the running
	// container's environment does (that is what injection means), its
	// command does not.
	inspected := false
	deadline := time.Now().Add(2 * time.Minute)
	for {
		live := s.logs("vault", id)
		assertClean("the live log", live)
		if !inspected && strings.Contains(live, "inspect-me") {
			env, cmd := inspectRunning(t, id)
			if !strings.Contains(env, "TOKEN="+tokenSecret) {
				t.Errorf("the running step's environment lacks the secret: %s", env)
			}
			if strings.Contains(cmd, tokenSecret) {
				t.Errorf("the secret is in the container command: %s", cmd)
			}
			inspected = true
		}
		var run forge.Run
		s.mustDo("GET", "/repos/vault/workflows/"+id, adminToken, nil, http.StatusOK, &run)
		if run.Status.Done() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run still %s", run.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !inspected {
		t.Error("never saw the inspected step running")
	}
	run := s.waitRun("vault", id, time.Minute)
	if run.Status != forge.RunFailed || len(run.Result.Steps) != 5 {
		t.Fatalf("run: %s %+v", run.Status, run.Result)
	}
	st := run.Result.Steps
	for i, want := range []string{"token=[secret]\n", "split=[secret]\n", "[secret]\n[secret]\n", "+ echo [secret]", "still [secret]\n"} {
		if !strings.Contains(st[i].Output, want) {
			t.Errorf("step %s output lacks %q: %q", st[i].Name, want, st[i].Output)
		}
	}
	if !strings.Contains(st[2].Output, "[secret]\n[secret]\n") || strings.Count(st[2].Output, "[secret]") < 2 {
		t.Errorf("multi-line output: %q", st[2].Output)
	}
	record, _ := json.Marshal(run)
	assertClean("the run record", string(record))
	var listed []forge.Run
	s.mustDo("GET", "/repos/vault/workflows", adminToken, nil, http.StatusOK, &listed)
	listJSON, _ := json.Marshal(listed)
	assertClean("the run list", string(listJSON))
	assertClean("/logs", s.logs("vault", id))
	_, secretsList := s.do("GET", "/repos/vault/secrets", adminToken, nil)
	assertClean("GET /secrets", string(secretsList))
	assertNoLeftovers(t, s)

	s.Stop()
	assertClean("the server log", s.Logs())
	_ = filepath.WalkDir(s.Home, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("reading %s: %v", path, err)
			return nil
		}
		for _, v := range values {
			if bytes.Contains(data, []byte(v)) {
				t.Errorf("%s contains the secret value %q", path, v)
			}
		}
		return nil
	})
}

// inspectRunning returns the environment and command of the running step
// container of run, as `docker inspect` shows them.
func inspectRunning(t *testing.T, runID string) (env, cmd string) {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Step containers only: a workflow's network holder carries no step label.
	list, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", sandbox.LabelRun+"="+runID), filters.Arg("label", sandbox.LabelStep))})
	if err != nil || len(list) != 1 {
		t.Fatalf("running containers of %s: %v %v", runID, list, err)
	}
	info, err := cli.ContainerInspect(ctx, list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(info.Config.Env, "\n"), strings.Join(info.Config.Cmd, " ") + strings.Join(info.Config.Entrypoint, " ")
}

// TestSecretsKeyChecks: a data dir with secrets refuses to start without
// KOD_ENCRYPTION_KEY; with another key the server starts, refuses new
// secrets, and runs of the repository fail at setup saying why, before any
// container starts.
func TestSecretsKeyChecks(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", []string{"KOD_ENCRYPTION_KEY=" + e2eKey})
	s.createRepo("keyed")
	s.mustDo("PUT", "/repos/keyed/secrets/TOKEN", adminToken, map[string]string{"value": tokenSecret}, http.StatusOK, nil)
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": "[[steps]]\nname = \"s\"\nrun = 'echo \"$TOKEN\"'\n"})
	p.git("push", "-q", s.gitURL("keyed", adminToken), "main")
	run := s.waitRun("keyed", s.runs("keyed")[0].ID, time.Minute)
	if run.Status != forge.RunCompleted || run.Result.Steps[0].Output != "[secret]\n" {
		t.Fatalf("run with the right key: %s %+v", run.Status, run.Result)
	}
	s.Stop()

	out := serveFails(t, s, nil)
	if !strings.Contains(out, "secrets are stored but no encryption key is configured") || !strings.Contains(out, "KOD_ENCRYPTION_KEY") {
		t.Errorf("start without the key:\n%s", out)
	}

	s.env = []string{"KOD_ENCRYPTION_KEY=not the same key"}
	s.Restart()
	if !strings.Contains(s.Logs(), "KOD_ENCRYPTION_KEY is not the key the stored secrets were saved with") {
		t.Errorf("no start-up error about the wrong key:\n%s", s.Logs())
	}
	status, body := s.do("PUT", "/repos/keyed/secrets/OTHER", adminToken, map[string]string{"value": "x"})
	if status != http.StatusInternalServerError || !strings.Contains(string(body), "not the key the stored secrets were saved with") {
		t.Errorf("PUT with the wrong key: %d %s", status, body)
	}
	var queued struct{ ID string }
	s.mustDo("POST", "/repos/keyed/workflows", adminToken, map[string]string{"branch": "main"}, http.StatusAccepted, &queued)
	run = s.waitRun("keyed", queued.ID, time.Minute)
	if run.Status != forge.RunFailed || len(run.Result.Steps) != 0 || !strings.Contains(run.Error, "KOD_ENCRYPTION_KEY") || !strings.Contains(run.Error, "TOKEN") {
		t.Errorf("run with the wrong key: %s %q %+v", run.Status, run.Error, run.Result)
	}
	assertNoLeftovers(t, s)
}

// serveFails runs `kod serve` on s's home with env and returns its output;
// the test fails unless it exits with an error (2 minutes catch a hang).
func serveFails(t *testing.T, s *server, env []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kodBin, "serve", "--port", "0", "--host", "127.0.0.1", "--no-ssh")
	cmd.Env = append(os.Environ(), "KOD_HOME="+s.Home, "KOD_DATA_DIR="+filepath.Join(s.Home, "data"),
		"KOD_REPOS_DIR="+filepath.Join(s.Home, "repos"), "KOD_CONFIG=", "KOD_ENCRYPTION_KEY=")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("kod serve did not fail: %v\n%s", err, out)
	}
	return string(out)
}
