package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/runner/engine"
	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/runner/workflow"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker"
)

// localOutputTail is the most output of one step a local run's result
// keeps (the step's whole output was printed live).
const localOutputTail = 64 << 10

// executeLocal compiles files for req and executes the plan on the Docker
// engine (no store, no queue), printing each step's output live, and
// returns the run as the server would record it. Interrupting (ctx) stops
// every running step; its containers, volumes and networks are removed
// before it returns.
func executeLocal(ctx context.Context, u *ui, o localOptions, image string, src *localSource, req runner.Request) (*forge.Run, error) {
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(u.errOut, &slog.HandlerOptions{Level: level}))
	run := &forge.Run{ID: forge.NewID(), RepoName: req.Repo, Branch: req.Branch, Commit: req.Commit, Trigger: req.Trigger,
		CreatedAt: forge.NowMillis()}
	p, err := compileLocal(run, image, src.files)
	if err != nil {
		finishLocal(run, forge.RunFailed, err.Error())
		return run, nil
	}
	backend, err := localBackend(ctx, image, log)
	if err != nil {
		return nil, err
	}
	defer backend.Close()
	sweepDeadLocalRuns(ctx, u, backend)
	sink := newLocalSink(u, p)
	stop := context.AfterFunc(ctx, func() {
		u.notef("\nInterrupted: cancelling the run and removing its containers...\n")
	})
	defer stop()
	run.StartedAt = forge.NowMillis()
	out := engine.Execute(ctx, p, backend, sink, engine.Options{
		Instance:  localInstance(),
		StopGrace: 5 * time.Second,
		Prepare:   localPrepare(backend, image, src),
		Slots:     engine.NewSlots(runtime.NumCPU()),
		Log:       log,
	})
	run.Result = &forge.Result{Steps: sink.results()}
	switch {
	case ctx.Err() != nil:
		finishLocal(run, forge.RunCancelled, "the run was interrupted")
	case out.Err != nil:
		finishLocal(run, forge.RunFailed, out.Err.Error())
	case !out.Success:
		finishLocal(run, forge.RunFailed, "")
	default:
		finishLocal(run, forge.RunCompleted, "")
	}
	return run, nil
}

// compileLocal parses files and compiles them into the run's plan, with
// the errors a server gives for the same files.
func compileLocal(run *forge.Run, image string, files []runner.File) (*plan.Plan, error) {
	var wfs []*workflow.Workflow
	var msgs []string
	for _, f := range files {
		wf, err := f.Parse(workflow.Options{})
		if err != nil {
			msgs = append(msgs, err.Error())
			continue
		}
		wfs = append(wfs, wf)
	}
	if len(msgs) > 0 {
		return nil, fmt.Errorf("invalid workflow: %s", strings.Join(msgs, "; "))
	}
	p, err := plan.Compile(wfs, plan.Trigger{RunID: run.ID, Repo: run.RepoName, Branch: run.Branch, Commit: run.Commit, Event: string(run.Trigger)},
		plan.Defaults{Image: image, Pull: sandbox.PullIfNotPresent, Limits: localStepLimits, MaxSteps: runner.MaxRunSteps}, plan.Inputs{})
	if le := (*plan.StepLimitError)(nil); err != nil && !errors.As(err, &le) {
		err = fmt.Errorf("invalid workflow: %w", err)
	}
	return p, err
}

// localPrepare loads each workflow instance's workspace with the working
// tree and, in a git repository, a .git of HEAD with the instance's clone
// depth (see localSource.archive), carried by image.
func localPrepare(be sandbox.Backend, image string, src *localSource) func(context.Context, *sandbox.RunSpec, *plan.Workflow) error {
	return func(ctx context.Context, spec *sandbox.RunSpec, wf *plan.Workflow) error {
		depth := 0
		if wf != nil {
			depth = wf.CloneDepth
		}
		pr, pw := io.Pipe()
		archived := make(chan error, 1)
		go func() {
			err := src.archive(ctx, depth, pw)
			pw.CloseWithError(err)
			archived <- err
		}()
		err := be.LoadWorkspace(ctx, spec, image, pr)
		pr.CloseWithError(errors.New("workspace load ended"))
		archiveErr := <-archived
		if err != nil {
			var se *sandbox.StepError
			if errors.As(err, &se) {
				return fmt.Errorf("preparing the workspace: %s", se.Error())
			}
			return fmt.Errorf("loading the workspace: %w", err)
		}
		if archiveErr != nil {
			return fmt.Errorf("archiving the working tree: %w", archiveErr)
		}
		return nil
	}
}

// finishLocal sets the run's final status as the runner does.
func finishLocal(run *forge.Run, status forge.RunStatus, reason string) {
	now := forge.NowMillis()
	run.Status, run.CompletedAt, run.Error = status, now, reason
	if run.Result == nil {
		run.Result = &forge.Result{Steps: []forge.StepResult{}}
	}
	run.Result.Success = status == forge.RunCompleted
	if run.StartedAt != 0 {
		run.Result.Duration = int64(now - run.StartedAt)
	}
}

// localSink prints the steps of a local run as they go and keeps their
// results. A plan that is one chain of steps prints each step's output
// under its "==> STEP" header; otherwise steps may run at once, and every
// line of output is prefixed with "[STEP] " (the step id where names
// repeat, as in a matrix).
type localSink struct {
	mu       sync.Mutex
	lw       *logWriter
	prefixed bool
	labels   map[*plan.Step]string
	steps    []forge.StepResult
	outputs  map[int]*tailBuffer
}

func newLocalSink(u *ui, p *plan.Plan) *localSink {
	s := &localSink{lw: newLogWriter(u, localLogOut(u)), prefixed: !isChain(p), labels: map[*plan.Step]string{}, outputs: map[int]*tailBuffer{}}
	names := map[string]int{}
	for _, wf := range p.Workflows {
		for _, st := range wf.Steps {
			names[st.Name]++
		}
	}
	for _, wf := range p.Workflows {
		for _, st := range wf.Steps {
			s.labels[st] = st.Name
			if names[st.Name] > 1 {
				s.labels[st] = st.ID
			}
			s.steps = append(s.steps, forge.StepResult{ID: st.ID, Name: st.Name, Workflow: wf.FileLabel(), Needs: st.Needs, Status: forge.StepPending})
		}
	}
	return s
}

// isChain reports whether p is one workflow whose steps run one after
// another in file order.
func isChain(p *plan.Plan) bool {
	if len(p.Workflows) != 1 {
		return len(p.Workflows) == 0
	}
	steps := p.Workflows[0].Steps
	for i, st := range steps {
		if i == 0 && len(st.Needs) != 0 || i > 0 && (len(st.Needs) != 1 || st.Needs[0] != steps[i-1].ID) {
			return false
		}
	}
	return true
}

// StepStarted implements engine.Sink.
func (s *localSink) StepStarted(st *plan.Step, at time.Time) io.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.lw.print([]byte("==> " + s.labels[st] + "\n"))
	r := &s.steps[st.Index]
	r.Status, r.StartedAt = forge.StepRunning, forge.Millis(at.UnixMilli())
	tail := &tailBuffer{max: localOutputTail}
	s.outputs[st.Index] = tail
	var prefix []byte
	if s.prefixed {
		prefix = []byte("[" + s.labels[st] + "] ")
	}
	return &stepPrinter{sink: s, prefix: prefix, tail: tail, lineStart: true}
}

// StepEnded implements engine.Sink.
func (s *localSink) StepEnded(st *plan.Step, end engine.StepEnd) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.steps[st.Index]
	r.Status, r.Error, r.ExitCode = forge.StepStatus(end.Status), end.Error, end.ExitCode
	if !end.Started.IsZero() {
		r.StartedAt = forge.Millis(end.Started.UnixMilli())
	}
	r.CompletedAt = forge.NowMillis()
	if !end.Ended.IsZero() {
		r.CompletedAt = forge.Millis(end.Ended.UnixMilli())
	}
	if r.StartedAt != 0 {
		r.Duration = int64(r.CompletedAt - r.StartedAt)
	}
	if tail := s.outputs[st.Index]; tail != nil {
		r.Output = tail.String()
	}
	switch end.Status {
	case engine.StepCompleted:
		r.Success = true
	case engine.StepSkipped:
		r.Success, r.Skipped, r.Duration = true, true, 0
	}
}

// results returns the step results in plan order.
func (s *localSink) results() []forge.StepResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]forge.StepResult(nil), s.steps...)
}

// stepPrinter prints one step's output, each line prefixed when steps may
// run at once, and keeps its tail.
type stepPrinter struct {
	sink      *localSink
	prefix    []byte
	tail      *tailBuffer
	lineStart bool
}

func (w *stepPrinter) Write(p []byte) (int, error) {
	s := w.sink
	s.mu.Lock()
	defer s.mu.Unlock()
	w.tail.Write(p)
	if w.prefix == nil {
		_ = s.lw.print(p)
		return len(p), nil
	}
	var b bytes.Buffer
	for rest := p; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		if w.lineStart {
			b.Write(w.prefix)
		}
		b.Write(line)
		w.lineStart = line[len(line)-1] == '\n'
		rest = rest[len(line):]
	}
	if !w.lineStart {
		// Lines of steps running at once must not run into each other:
		// a partial line ends here and goes on under the prefix.
		b.WriteByte('\n')
		w.lineStart = true
	}
	_ = s.lw.print(b.Bytes())
	return len(p), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
}

func (t *tailBuffer) String() string { return string(t.b) }

// localBackend connects to the Docker engine and checks that it answers;
// image holds each workspace network (docker.Config.NetworkHolderImage).
func localBackend(ctx context.Context, image string, log *slog.Logger) (*docker.Docker, error) {
	backend, err := docker.New(docker.Config{NetworkHolderImage: image}, log)
	if err != nil {
		return nil, fmt.Errorf("connecting to the Docker engine: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := backend.Ping(pingCtx); err != nil {
		backend.Close()
		return nil, fmt.Errorf("the Docker engine is unreachable (local runs need it): %w", err)
	}
	return backend, nil
}
