package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

// upgradeFixture is testdata/upgrade-schema1.tar.gz: the home (data dir,
// repos dir, SSH host key) of a server of the release before repository
// ids (schema 1, commit 73df677), made by TestGenerateUpgradeFixture with
// that binary. fixture.json in it says what it holds.
const upgradeFixture = "testdata/upgrade-schema1.tar.gz"

// fixtureFacts is fixture.json: what the old server was given and
// answered, for the new one to be checked against.
type fixtureFacts struct {
	UserToken    string   `json:"userToken"` // alice: repo:read, repo:write, collaborator of app
	UserKeyID    string   `json:"userKeyId"` // alice's SSH key; the private key is client_key in the home
	AppCommit    string   `json:"appCommit"` // main of app
	LibCommit    string   `json:"libCommit"` // main of lib
	PushRunID    string   `json:"pushRunId"` // app's completed push run; its log says "secret ok"
	WebhookID    string   `json:"webhookId"` // app's webhook to a closed port: its deliveries wait
	Pending      []string `json:"pending"`   // ids of deliveries still pending
	ScheduleRuns int      `json:"scheduleRuns"`
}

const (
	fixtureKey    = "upgrade fixture encryption key"
	fixtureSecret = "fixture-secret-value"
	// fixtureHook is a webhook URL nothing listens on (the discard port):
	// attempts fail at once, so deliveries stay pending.
	fixtureHook = "http://127.0.0.1:9/hook"
)

// fixtureEnv is the environment of both the old and the new server. A
// failed delivery waits a century for its next attempt, so the fixture's
// pending deliveries stay pending however old the fixture is.
var fixtureEnv = []string{"KOD_ENCRYPTION_KEY=" + fixtureKey, "KOD_WEBHOOK_ALLOWED_HOSTS=loopback",
	"KOD_WEBHOOK_RETRY_SCHEDULE=876000h", "KOD_SCHEDULE_MIN_INTERVAL=1s"}

// fixtureWorkflows: ci.toml proves the secret decrypts (the run fails
// otherwise); nightly.toml fires every 2 seconds.
var fixtureWorkflows = map[string]string{
	".kod/workflows/ci.toml":      "[[steps]]\nname = \"secret\"\nrun = \"test \\\"$DEPLOY_TOKEN\\\" = " + fixtureSecret + " && echo secret ok\"\n",
	".kod/workflows/nightly.toml": "[on]\nschedule = [\"@every 2s\"]\n[[steps]]\nname = \"tick\"\nrun = \"echo tick\"\n",
}

// TestGenerateUpgradeFixture writes upgradeFixture with the kod binary
// named by KOD_UPGRADE_FIXTURE_BIN (built from the release before
// repository ids: git archive 73df677 | tar -x -C old && cd old && go build
// ./cmd/kod). It only runs when asked.
func TestGenerateUpgradeFixture(t *testing.T) {
	bin := os.Getenv("KOD_UPGRADE_FIXTURE_BIN")
	if bin == "" {
		t.Skip("set KOD_UPGRADE_FIXTURE_BIN to the old kod binary to regenerate " + upgradeFixture)
	}
	home := t.TempDir()
	s := &server{t: t, Home: home, env: fixtureEnv, SSH: true, bin: bin}
	s.start()
	t.Cleanup(s.Stop)
	var f fixtureFacts
	s.createRepo("app")
	s.createRepo("lib")
	alice := s.newUser("alice", "app", "repo:read", "repo:write")
	f.UserToken, f.UserKeyID = alice.Token, alice.KeyID
	for _, name := range []string{"", ".pub"} {
		data, err := os.ReadFile(alice.Key.Path + name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, "client_key"+name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.mustDo("PUT", "/repos/app/secrets/DEPLOY_TOKEN", adminToken, map[string]string{"value": fixtureSecret}, http.StatusOK, nil)
	f.WebhookID = s.createWebhook("app", fixtureHook, "hook-secret", "push", "workflow")

	app := newProject(t, "main", fixtureWorkflows)
	app.git("push", "-q", s.gitURL("app", adminToken), "main")
	f.AppCommit = strings.TrimSpace(app.git("rev-parse", "HEAD"))
	lib := newProject(t, "main", map[string]string{"README": "lib"})
	lib.git("push", "-q", s.gitURL("lib", adminToken), "main")
	f.LibCommit = strings.TrimSpace(lib.git("rev-parse", "HEAD"))

	waitFor(t, time.Minute, "the push run and a scheduled run", func() bool {
		push, sched := false, false
		for _, r := range s.runs("app") {
			push = push || r.Trigger == forge.TriggerPush && r.Status == forge.RunCompleted
			sched = sched || r.Trigger == forge.TriggerSchedule && r.Status.Done()
		}
		return push && sched
	})
	waitFor(t, time.Minute, "push and workflow deliveries attempted once", func() bool {
		ds := s.deliveries("app", f.WebhookID)
		n := 0
		for _, d := range ds {
			if d.Status == forge.DeliveryPending && d.Attempts == 1 {
				n++
			}
		}
		return n >= 2
	})
	s.Stop()
	s.stopped = false
	s.start() // to read what the stopped server left, as it left it
	for _, r := range s.runs("app") {
		switch {
		case r.Trigger == forge.TriggerPush:
			f.PushRunID = r.ID
		case r.Trigger == forge.TriggerSchedule:
			f.ScheduleRuns++
		}
	}
	for _, d := range s.deliveries("app", f.WebhookID) {
		if d.Status == forge.DeliveryPending {
			f.Pending = append(f.Pending, d.ID)
		}
	}
	s.Stop()
	data, _ := json.MarshalIndent(f, "", "  ")
	if err := os.WriteFile(filepath.Join(home, "fixture.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := filepath.Abs(upgradeFixture)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("tar", "-czf", out, "--exclude", "hook.sock", "-C", home, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, b)
	}
}

// extractFixture unpacks upgradeFixture into a new home and returns it
// with its facts.
func extractFixture(t *testing.T) (string, fixtureFacts) {
	t.Helper()
	home := t.TempDir()
	if b, err := exec.Command("tar", "-xzf", upgradeFixture, "-C", home).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, b)
	}
	var f fixtureFacts
	data, err := os.ReadFile(filepath.Join(home, "fixture.json"))
	if err == nil {
		err = json.Unmarshal(data, &f)
	}
	if err != nil {
		t.Fatal(err)
	}
	return home, f
}

// TestUpgradeInPlace: a home written by the release before repository ids
// opens with this binary, which keeps a copy of the old database, migrates
// it once, and everything keeps working through the REST API and git:
// repositories (now with ids), tokens, SSH keys, secrets (a run checks the
// value), webhooks and their pending deliveries, runs and their logs,
// schedules, a rename. A database of a newer schema is refused.
func TestUpgradeInPlace(t *testing.T) {
	t.Parallel()
	home, f := extractFixture(t)
	s := startSSHServer(t, home, fixtureEnv)
	backups, _ := filepath.Glob(filepath.Join(home, "data", "kod.db.schema1-*.bak"))
	if len(backups) != 1 {
		t.Fatalf("copies of the old database: %v", backups)
	}
	if !strings.Contains(s.Logs(), `msg="secrets bound to repository ids" rebound=1 failed=0`) {
		t.Errorf("the secret saved for the name was not bound to the id at start:\n%s", s.Logs())
	}

	// Repositories, with ids, and their content over HTTP.
	var repos []struct{ ID, Name string }
	s.mustDo("GET", "/repos", adminToken, nil, http.StatusOK, &repos)
	if len(repos) != 2 || repos[0].Name != "app" || repos[1].Name != "lib" || repos[0].ID == "" || repos[0].ID == repos[1].ID {
		t.Fatalf("repositories after the upgrade: %+v", repos)
	}
	if got := s.headOf("app", "main"); got != f.AppCommit {
		t.Errorf("app's main is %s, want %s", got, f.AppCommit)
	}
	if got := s.headOf("lib", "main"); got != f.LibCommit {
		t.Errorf("lib's main is %s, want %s", got, f.LibCommit)
	}

	// Tokens and keys: alice's token reads, her key lists and clones over SSH.
	s.mustDo("GET", "/repos/app", f.UserToken, nil, http.StatusOK, nil)
	var keys []struct{ ID string }
	s.mustDo("GET", "/keys", f.UserToken, nil, http.StatusOK, &keys)
	if len(keys) != 1 || keys[0].ID != f.UserKeyID {
		t.Errorf("alice's keys: %+v", keys)
	}
	key := keyPair{Path: filepath.Join(home, "client_key")}
	clone := &project{t: t, Dir: t.TempDir()}
	if out, err := clone.gitSSH(s, key, nil, "clone", "-q", s.sshURL("alice", "app"), "."); err != nil {
		t.Fatalf("clone over SSH with alice's key: %v %s", err, out)
	}

	// Runs and their logs.
	var old forge.Run
	s.mustDo("GET", "/repos/app/workflows/"+f.PushRunID, adminToken, nil, http.StatusOK, &old)
	if old.Status != forge.RunCompleted || old.RepoName != "app" || old.Commit != f.AppCommit {
		t.Errorf("the old push run: %s %q %s", old.Status, old.RepoName, old.Commit)
	}
	if logs := s.logs("app", f.PushRunID); !strings.Contains(logs, "secret ok") {
		t.Errorf("the old run's log: %q", logs)
	}

	// Webhooks and pending deliveries: listed, and a retry is attempted.
	var hooks []struct{ ID string }
	s.mustDo("GET", "/repos/app/webhooks", adminToken, nil, http.StatusOK, &hooks)
	if len(hooks) != 1 || hooks[0].ID != f.WebhookID {
		t.Fatalf("webhooks: %+v", hooks)
	}
	pending := map[string]forge.Delivery{}
	for _, d := range s.deliveries("app", f.WebhookID) {
		pending[d.ID] = d
	}
	// Every delivery pending in the fixture still is (the dispatcher may
	// have attempted those that were due: their next attempt is a century
	// away). One that waits for its next attempt is retried by hand: the
	// retry answers after the attempt.
	retried := ""
	for _, id := range f.Pending {
		d, ok := pending[id]
		if !ok || d.Status != forge.DeliveryPending || d.RepoName != "app" {
			t.Errorf("pending delivery %s after the upgrade: %+v", id, d)
		}
		if d.Attempts == 1 && d.NextAttemptAt > forge.NowMillis()+60_000 {
			retried = id
		}
	}
	if retried == "" {
		t.Fatalf("no delivery waits for its next attempt: %+v", pending)
	}
	var after forge.Delivery
	s.mustDo("POST", "/repos/app/webhooks/"+f.WebhookID+"/deliveries/"+retried+"/retry", adminToken, nil, http.StatusAccepted, &after)
	if after.Attempts != 2 || !strings.Contains(after.Error, "connection refused") {
		t.Errorf("the retried delivery: %+v", after)
	}

	// Schedules keep firing.
	scheduled := func() int {
		n := 0
		for _, r := range s.runs("app") {
			if r.Trigger == forge.TriggerSchedule {
				n++
			}
		}
		return n
	}
	if before := scheduled(); before < f.ScheduleRuns {
		t.Errorf("%d scheduled runs after the upgrade, the fixture has %d", before, f.ScheduleRuns)
	} else {
		waitFor(t, time.Minute, "a scheduled run after the upgrade", func() bool { return scheduled() > before })
	}

	// Secrets still decrypt: alice pushes over SSH and the run checks the
	// value; after a rename, a manual run still gets it.
	clone.commit("after the upgrade", map[string]string{"NOTES": "upgraded"})
	if out, err := clone.gitSSH(s, key, nil, "push", "-q", "origin", "main"); err != nil {
		t.Fatalf("push over SSH: %v %s", err, out)
	}
	newRun := latestRun(t, s, "app", forge.TriggerPush, f.PushRunID)
	if run := s.waitRun("app", newRun, time.Minute); run.Status != forge.RunCompleted {
		t.Fatalf("the run after the upgrade: %s %s %+v", run.Status, run.Error, run.Result)
	}
	s.mustDo("PATCH", "/repos/app", adminToken, map[string]string{"name": "app2"}, http.StatusOK, nil)
	var queued struct{ ID string }
	s.mustDo("POST", "/repos/app2/workflows", adminToken, map[string]any{"branch": "main", "files": []string{".kod/workflows/ci.toml"}}, http.StatusAccepted, &queued)
	if run := s.waitRun("app2", queued.ID, time.Minute); run.Status != forge.RunCompleted || run.RepoName != "app2" {
		t.Fatalf("the run after the rename: %s %q %s", run.Status, run.RepoName, run.Error)
	}

	// Migrated once: a restart writes no second copy.
	s.Stop()
	s.Restart()
	s.mustDo("GET", "/repos/app2", f.UserToken, nil, http.StatusOK, nil)
	if again, _ := filepath.Glob(filepath.Join(home, "data", "kod.db.schema1-*.bak")); len(again) != 1 {
		t.Errorf("copies after a restart: %v", again)
	}
	s.Stop()

	// A database of a newer schema is refused, untouched.
	db, err := bolt.Open(filepath.Join(home, "data", "kod.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("99")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	cmd := exec.Command(kodBin, "serve", "--port", "0", "--host", "127.0.0.1", "--no-ssh")
	cmd.Env = append(os.Environ(), "KOD_HOME="+home, "KOD_DATA_DIR="+filepath.Join(home, "data"), "KOD_REPOS_DIR="+filepath.Join(home, "repos"), "KOD_CONFIG=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "written by a newer version of kod (schema 99; this binary knows schema 2") {
		t.Errorf("a newer database: %v\n%s", err, out)
	}
}

// latestRun returns the id of repo's newest run with trigger other than
// not, waiting for it to be queued.
func latestRun(t *testing.T, s *server, repo string, trigger forge.Trigger, not string) string {
	t.Helper()
	id := ""
	waitFor(t, 30*time.Second, "a new "+string(trigger)+" run", func() bool {
		for _, r := range s.runs(repo) { // newest first
			if r.Trigger == trigger && r.ID != not {
				id = r.ID
				return true
			}
		}
		return false
	})
	return id
}
