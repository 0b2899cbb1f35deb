package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

type secretList []forge.SecretValue

func (s secretList) RunSecrets(ctx context.Context, repo string) ([]forge.SecretValue, error) {
	return s, nil
}

type brokenSecrets struct{ err error }

func (b brokenSecrets) RunSecrets(ctx context.Context, repo string) ([]forge.SecretValue, error) {
	return nil, b.err
}

// failingImage is the fake backend, except that steps whose image is
// "missing" fail to start with a message quoting a secret.
type failingImage struct {
	*sandboxtest.Fake
	msg string
}

func (f failingImage) StartStep(ctx context.Context, run *sandbox.RunSpec, st *sandbox.StepSpec, out io.Writer) error {
	if st.Image == "missing" {
		return &sandbox.StepError{Msg: f.msg}
	}
	return f.Fake.StartStep(ctx, run, st, out)
}

// secretRunner runs one workflow over backend with secrets and returns the
// final run and the logs directory.
func secretRunner(t *testing.T, secrets runner.Secrets, wf string, backend sandbox.Backend) (*forge.Run, string) {
	t.Helper()
	dir := t.TempDir()
	store, err := boltstore.Open(filepath.Join(dir, "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.CreateRepo(context.Background(), &forge.Repo{Name: "repo"}); err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(dir, "logs")
	cfg := runner.Config{Instance: "test", DefaultImage: "img", LogsDir: logs, Secrets: secrets}
	done := make(chan *forge.Run, 1)
	cfg.OnRunDone = func(_ context.Context, run *forge.Run) { done <- run }
	r := runner.New(cfg, store, backend, staticSource{wf}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	enqueue(t, r, "main")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return wait(t, done), logs
}

// TestSecretsInjectedAndMasked: secrets reach the step environment
// (overriding workflow env, not kod's own variables) and never the run
// record or the log, also when split across writes, over lines, or quoted
// in a step's error.
func TestSecretsInjectedAndMasked(t *testing.T) {
	t.Parallel()
	const token, multi = "tok-7f3a9c2e51", "-----BEGIN KEY-----\nAAAAB3NzaC1yc2E\n-----END KEY-----"
	secrets := secretList{{Name: "TOKEN", Value: token}, {Name: "KEY", Value: multi}, {Name: "SHORT", Value: "abc"}, {Name: "KOD_REPO", Value: "hijack"}}
	var env []string
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		if st.Name != "print" {
			return 0
		}
		env = st.Env
		fmt.Fprintf(out, "token=%s\n", envOf(st.Env, "TOKEN"))
		v := envOf(st.Env, "TOKEN")
		fmt.Fprint(out, "split="+v[:5])
		time.Sleep(20 * time.Millisecond)
		fmt.Fprint(out, v[5:]+"\n")
		fmt.Fprintf(out, "key:\n%s\nline alone: AAAAB3NzaC1yc2E\nshort=%s\n", envOf(st.Env, "KEY"), envOf(st.Env, "SHORT"))
		return 3
	}
	wf := `[env]
TOKEN = "from-workflow"
[[steps]]
name = "print"
run = "print"
continue_on_error = true
[[steps]]
name = "pull"
image = "missing"
run = "true"
`
	backend := failingImage{sandboxtest.New(play), "pulling image: registry answered 401 for credentials " + token}
	run, logs := secretRunner(t, secrets, wf, backend)
	if got := envOf(env, "TOKEN"); got != token {
		t.Errorf("TOKEN in the step = %q, want the secret (secrets override workflow env)", got)
	}
	if got := envOf(env, "KOD_REPO"); got != "repo" {
		t.Errorf("KOD_REPO = %q: kod's own variables must win over secrets", got)
	}
	if len(run.Result.Steps) != 2 {
		t.Fatalf("steps: %+v", run.Result.Steps)
	}
	out := run.Result.Steps[0].Output
	for _, want := range []string{"token=[secret]\n", "split=[secret]\n", "key:\n[secret]\n", "line alone: [secret]\n", "short=abc\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if e := run.Result.Steps[1].Error; !strings.Contains(e, "credentials [secret]") {
		t.Errorf("step error not masked: %q", e)
	}
	record, _ := json.Marshal(run)
	logData, err := os.ReadFile(runner.StepLogPath(logs, run.ID, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{token, "AAAAB3NzaC1yc2E", "BEGIN KEY"} {
		if strings.Contains(string(record), leak) || strings.Contains(string(logData), leak) {
			t.Errorf("%q leaked into the run record or the log", leak)
		}
	}
	if string(logData) != out {
		t.Errorf("log file and record output differ:\n%q\n%q", logData, out)
	}
}

// TestUndecryptableSecretsFailTheRunAtSetup: no container is started and the
// run says why.
func TestUndecryptableSecretsFailTheRunAtSetup(t *testing.T) {
	t.Parallel()
	fake := sandboxtest.New(nil)
	why := fmt.Errorf("secret TOKEN of repo: %w: the encryption key (KOD_ENCRYPTION_KEY) is not the one it was saved with", forge.ErrSecretKey)
	run, _ := secretRunner(t, brokenSecrets{why}, fiveTrueSteps, fake)
	if run.Status != forge.RunFailed || !strings.Contains(run.Error, "KOD_ENCRYPTION_KEY") || !strings.Contains(run.Error, "repository secrets") {
		t.Errorf("run = %s %q", run.Status, run.Error)
	}
	if n := len(fake.Started()); n != 0 {
		t.Errorf("%d steps started despite undecryptable secrets", n)
	}
	if !errors.Is(why, forge.ErrSecretKey) {
		t.Fatal("test error does not wrap ErrSecretKey")
	}
}

// TestRunErrorMasked: a run-level error quoting a secret (here a workflow
// that does not parse) is masked too.
func TestRunErrorMasked(t *testing.T) {
	t.Parallel()
	run, _ := secretRunner(t, secretList{{Name: "K", Value: "leaky-value-99"}}, "[[steps]]\nname = \"x\"\nrun = \"true\"\nleaky-value-99 = 1\n", sandboxtest.New(nil))
	if run.Status != forge.RunFailed || strings.Contains(run.Error, "leaky-value-99") || !strings.Contains(run.Error, "[secret]") {
		t.Errorf("run error = %q", run.Error)
	}
}
