package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/api"
	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/repos"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

// oneFile serves a fixed workflow for any commit and an empty tree.
type oneFile string

func (w oneFile) WorkflowFiles(context.Context, string, string) ([]runner.File, error) {
	return []runner.File{{Path: ".kod/workflows/ci.toml", Data: []byte(w)}}, nil
}

func (oneFile) Archive(context.Context, string, string, io.Writer) error { return nil }

const logWorkflow = `
[[steps]]
name = "build"
run = "true"
[[steps]]
name = "skip me"
if = "branch == 'nope'"
run = "true"
[[steps]]
name = "test"
run = "true"
`

// logEnv serves the API with a runner whose steps are played by play.
func logEnv(t *testing.T, play sandboxtest.StepFunc) (*httptest.Server, *runner.Runner, *api.Server) {
	t.Helper()
	srv, r, s, _ := logEnvWithStore(t, play)
	return srv, r, s
}

func logEnvWithStore(t *testing.T, play sandboxtest.StepFunc) (*httptest.Server, *runner.Runner, *api.Server, *boltstore.Store) {
	t.Helper()
	return logEnvFile(t, oneFile(logWorkflow), play)
}

// logEnvFile is logEnvWithStore with the workflow files of src.
func logEnvFile(t *testing.T, src runner.Source, play sandboxtest.StepFunc) (*httptest.Server, *runner.Runner, *api.Server, *boltstore.Store) {
	t.Helper()
	dir := t.TempDir()
	store, err := boltstore.Open(filepath.Join(dir, "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx := context.Background()
	if _, err := api.Bootstrap(ctx, store, admin); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateRepo(ctx, &forge.Repo{Name: "app", ProtectedBranches: []string{}}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	logs := filepath.Join(dir, "logs")
	r := runner.New(runner.Config{Instance: "t", DefaultImage: "img", LogsDir: logs}, store, sandboxtest.New(play), src, log)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	rs := repos.New(repos.Config{ReposDir: dir, LogsDir: logs, HookBinary: "/bin/false", Store: store, Git: &gitsvc.Git{}, Runs: r, Log: log})
	s := api.New(api.Deps{Store: store, Git: &gitsvc.Git{}, Repos: rs, Runner: r, ReposDir: dir, LogsDir: logs, Log: log, TokenRecheck: 50 * time.Millisecond})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, r, s, store
}

func logRequest(t *testing.T, srv *httptest.Server, path string, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	req.Header.Set("Authorization", bearer(admin))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

type sseEvent struct {
	ID, Name string
	Data     map[string]any
}

// readEvents parses SSE events until the stream ends.
func readEvents(t *testing.T, body io.Reader, each func(sseEvent)) {
	t.Helper()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Name != "" {
				each(ev)
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			ev.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.Name = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &ev.Data); err != nil {
				t.Fatalf("data %q: %v", line, err)
			}
		}
	}
}

// TestLogsFollowAndEventStream: a plain follower and an SSE client both
// join while the first step runs; each gets the backlog, then live output
// in order, and the stream ends with the run.
func TestLogsFollowAndEventStream(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		if st.Name == "build" {
			fmt.Fprint(out, "early line\nprogress 10%\rprogress 90%\r")
			<-release
			fmt.Fprint(out, "\nbad \xff byte\nlast without newline")
			return 0
		}
		fmt.Fprint(out, "tested\n")
		return 0
	}
	srv, r, _ := logEnv(t, play)
	run, err := r.Enqueue(context.Background(), runner.Request{Repo: "app", Branch: "main", Commit: strings.Repeat("a", 40), Trigger: forge.TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	base := "/repos/app/workflows/" + run.ID + "/logs"

	plain := logRequest(t, srv, base+"?follow=true")
	if plain.StatusCode != 200 || !strings.HasPrefix(plain.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("follow: %d %s", plain.StatusCode, plain.Header.Get("Content-Type"))
	}
	sse := logRequest(t, srv, base, "Accept", "text/event-stream")
	if sse.StatusCode != 200 || !strings.HasPrefix(sse.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("sse: %d %s", sse.StatusCode, sse.Header.Get("Content-Type"))
	}
	// The backlog arrives before the step goes on.
	br := bufio.NewReader(plain.Body)
	for _, want := range []string{"==> build\n", "early line\n"} {
		line, err := br.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("backlog line %q, %v; want %q", line, err, want)
		}
	}
	var events []sseEvent
	gotEvents := make(chan struct{})
	go func() {
		defer close(gotEvents)
		readEvents(t, sse.Body, func(ev sseEvent) {
			events = append(events, ev)
			if ev.Name == "line" && ev.Data["line"] == "progress 10%" {
				close(release) // live part only after the SSE client has the backlog
			}
		})
	}()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	const wantRest = "progress 10%\rprogress 90%\r\nbad \xff byte\nlast without newline\n==> skip me (skipped)\n==> test\ntested\n"
	if string(rest) != wantRest {
		t.Errorf("followed text:\n%q\nwant\n%q", rest, wantRest)
	}
	select {
	case <-gotEvents:
	case <-time.After(time.Minute):
		t.Fatal("the event stream did not end with the run")
	}
	var got []string
	held := "" // partial pieces of a line, joined as a client does
	for _, ev := range events {
		d := ev.Data
		switch ev.Name {
		case "step":
			got = append(got, fmt.Sprintf("step %v %v skipped=%v", d["index"], d["step"], d["skipped"]))
		case "line":
			held += d["line"].(string)
			if d["partial"] == true {
				continue
			}
			got = append(got, fmt.Sprintf("%v: %q cr=%v", d["step"], held, d["cr"] == true))
			held = ""
		case "end":
			got = append(got, fmt.Sprintf("end %v [%s]", d["status"], ev.ID))
		}
	}
	want := []string{
		"step 0 build skipped=false",
		`build: "early line" cr=false`,
		`build: "progress 10%" cr=true`,
		`build: "progress 90%" cr=false`,
		"build: \"bad \ufffd byte\" cr=false",
		`build: "last without newline" cr=false`,
		"step 1 skip me skipped=true",
		"step 2 test skipped=false",
		`test: "tested" cr=false`,
		"end completed [end]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// After the run: plain full log, one step, resume and stop by event id.
	full := logRequest(t, srv, base)
	body, _ := io.ReadAll(full.Body)
	if !strings.HasPrefix(string(body), "==> build\nearly line\n") || !strings.HasSuffix(string(body), "==> test\ntested\n") {
		t.Errorf("full log: %q", body)
	}
	one := logRequest(t, srv, base+"?step=test")
	if body, _ := io.ReadAll(one.Body); string(body) != "tested\n" {
		t.Errorf("?step=test: %q", body)
	}
	if res := logRequest(t, srv, base+"?step=nope"); res.StatusCode != http.StatusNotFound {
		t.Errorf("?step=nope: %d", res.StatusCode)
	}
	if res := logRequest(t, srv, base+"?follow=maybe"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("?follow=maybe: %d", res.StatusCode)
	}
	if res := logRequest(t, srv, base, "Accept", "text/event-stream", "Last-Event-ID", "end"); res.StatusCode != http.StatusNoContent {
		t.Errorf("reconnect after end: %d, want 204", res.StatusCode)
	}
	// A cursor beyond the run's steps: 400, not an empty stream an
	// EventSource would reconnect to forever (nor one entry per step).
	for _, id := range []string{"<9223372036854775807", "<50", "7:0", "0:0,<5"} {
		if res := logRequest(t, srv, base, "Accept", "text/event-stream", "Last-Event-ID", id); res.StatusCode != http.StatusBadRequest {
			t.Errorf("Last-Event-ID %q: %d, want 400", id, res.StatusCode)
		}
	}
	var tail []string
	readEvents(t, logRequest(t, srv, base, "Accept", "text/event-stream", "Last-Event-ID", "<3").Body, func(ev sseEvent) { tail = append(tail, ev.Name) })
	if strings.Join(tail, ",") != "end" {
		t.Errorf("resumed after every step: %v, want the end event", tail)
	}
	resumed := logRequest(t, srv, base, "Accept", "text/event-stream", "Last-Event-ID", "2:0")
	var names []string
	readEvents(t, resumed.Body, func(ev sseEvent) { names = append(names, ev.Name) })
	if strings.Join(names, ",") != "line,end" { // no repeated step event
		t.Errorf("resumed at 2:0: %v", names)
	}
}

// TestLogStreamsEndAtStopStreams: a follower of a run that never starts
// ends when the server stops its streams (shutdown).
func TestLogStreamsEndAtStopStreams(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	defer close(block)
	srv, r, s := logEnv(t, func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return 0
	})
	ctx := context.Background()
	r.Enqueue(ctx, runner.Request{Repo: "app", Branch: "a", Commit: strings.Repeat("a", 40), Trigger: forge.TriggerManual})
	r.Enqueue(ctx, runner.Request{Repo: "app", Branch: "b", Commit: strings.Repeat("a", 40), Trigger: forge.TriggerManual})
	queued, _ := r.Enqueue(ctx, runner.Request{Repo: "app", Branch: "c", Commit: strings.Repeat("a", 40), Trigger: forge.TriggerManual})
	res := logRequest(t, srv, "/repos/app/workflows/"+queued.ID+"/logs?follow=1")
	ended := make(chan struct{})
	go func() { io.Copy(io.Discard, res.Body); close(ended) }()
	time.Sleep(100 * time.Millisecond)
	s.StopStreams()
	select {
	case <-ended:
	case <-time.After(time.Minute):
		t.Fatal("the stream did not end at StopStreams")
	}
}

// A stream opened with a token ends soon after the token is deleted.
func TestLogStreamEndsWhenItsTokenIsDeleted(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	defer close(block)
	srv, r, _, store := logEnvWithStore(t, func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		fmt.Fprintln(out, "still running")
		select {
		case <-block:
		case <-ctx.Done():
		}
		return 0
	})
	ctx := context.Background()
	reader := forge.NewTokenSecret()
	tok := &forge.Token{ID: forge.NewID(), Name: "reader", Hash: forge.HashToken(reader), Permissions: []forge.Permission{forge.PermWorkflowRead}}
	if err := store.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	run, _ := r.Enqueue(ctx, runner.Request{Repo: "app", Branch: "a", Commit: strings.Repeat("a", 40), Trigger: forge.TriggerManual})
	req, _ := http.NewRequest("GET", srv.URL+"/repos/app/workflows/"+run.ID+"/logs?follow=true", nil)
	req.Header.Set("Authorization", bearer(reader))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("follow: %v %v", res, err)
	}
	defer res.Body.Close()
	ended := make(chan struct{})
	go func() { io.Copy(io.Discard, res.Body); close(ended) }()
	select {
	case <-ended:
		t.Fatal("the stream ended while its token was valid")
	case <-time.After(300 * time.Millisecond):
	}
	if err := store.DeleteToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	case <-time.After(time.Minute):
		t.Fatal("the stream went on after its token was deleted")
	}
}

// TestEventStreamEndsAHeldLastLine: a step's last line without newline,
// sent as a partial piece because the step went on quietly for a while,
// is ended when the step ends (the loaded-machine case: the step's end
// comes seconds after its last output), live and after a reconnect with
// the piece's id.
func TestEventStreamEndsAHeldLastLine(t *testing.T) {
	t.Parallel()
	pieceSent := make(chan struct{})
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		if st.Name == "build" {
			fmt.Fprint(out, "first\nend")
			select { // the step ends only once "end" went out as a piece
			case <-pieceSent:
			case <-ctx.Done():
			}
			return 0
		}
		fmt.Fprint(out, "tested\n")
		return 0
	}
	srv, r, _ := logEnv(t, play)
	run, err := r.Enqueue(context.Background(), runner.Request{Repo: "app", Branch: "main", Commit: strings.Repeat("a", 40), Trigger: forge.TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	base := "/repos/app/workflows/" + run.ID + "/logs"
	// lines joins partial pieces as a client does; a line still held when
	// the next step starts or the stream ends is reported as such.
	lines := func(body io.Reader, onPiece func(sseEvent)) []string {
		var got []string
		held, holding := "", false
		readEvents(t, body, func(ev sseEvent) {
			if ev.Name != "line" {
				if holding {
					got = append(got, fmt.Sprintf("UNENDED %q", held))
					held, holding = "", false
				}
				got = append(got, ev.Name)
				return
			}
			held += ev.Data["line"].(string)
			if ev.Data["partial"] == true {
				holding = true
				onPiece(ev)
				return
			}
			got = append(got, fmt.Sprintf("%v: %q", ev.Data["step"], held))
			held, holding = "", false
		})
		return got
	}
	var pieceID string
	done := make(chan []string, 1)
	go func() {
		done <- lines(logRequest(t, srv, base, "Accept", "text/event-stream").Body, func(ev sseEvent) {
			if pieceID == "" {
				pieceID = ev.ID
				close(pieceSent)
			}
		})
	}()
	var got []string
	select {
	case got = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the event stream did not end with the run")
	}
	want := `step,build: "first",build: "end",step,step,test: "tested",end`
	if strings.Join(got, ",") != want {
		t.Errorf("events:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
	if pieceID != "0:9+" {
		t.Fatalf("the piece %q has not the partial id 0:9+", pieceID)
	}
	// A client that lost the connection right after the piece resumes
	// after it: the line is ended before the next step.
	resumed := lines(logRequest(t, srv, base, "Accept", "text/event-stream", "Last-Event-ID", pieceID).Body, func(ev sseEvent) {
		t.Errorf("resumed: unexpected piece %v", ev)
	})
	if got := strings.Join(resumed, ","); got != `build: "",step,step,test: "tested",end` {
		t.Errorf("resumed after %s: %s", pieceID, got)
	}
}
