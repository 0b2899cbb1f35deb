package runner

import (
	"slices"
	"sync"

	"github.com/kod-forge/kod/forge"
)

// notifier wakes any number of waiters at once: wait returns a channel that
// notify closes. A notify without waiters costs one mutex round trip, so
// writers can call it on every write.
type notifier struct {
	mu      sync.Mutex
	ch      chan struct{}
	waiting bool
}

// wait returns a channel closed by the next notify.
func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	n.waiting = true
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	if n.waiting {
		close(n.ch)
		n.ch = make(chan struct{})
		n.waiting = false
	}
	n.mu.Unlock()
}

// runStream is what log followers see of an executing run: every planned
// step in plan order (once the plan is known) with its state and the log
// of each step that started, and the order in which steps started (or
// ended without starting). Followers read the logs, which read the log
// files: the stream holds no output itself.
type runStream struct {
	changed notifier // any step planned, started, written or ended, or the run ended

	mu    sync.Mutex
	steps []streamStep
	order []int // step indexes in the order they started or ended unstarted
	done  bool
}

// streamStep is one planned step of a runStream.
type streamStep struct {
	ID       string
	Name     string
	Workflow string
	Status   forge.StepStatus
	Skipped  bool
	NotRun   bool     // ended without starting (skipped, cancelled)
	Reason   string   // why it did not run
	log      *stepLog // nil until it starts, and when its log could not be opened
	began    bool     // in order
}

// setPlan lists the planned steps (all pending).
func (s *runStream) setPlan(steps []streamStep) {
	s.mu.Lock()
	s.steps = steps
	s.mu.Unlock()
	s.changed.notify()
}

// start marks step idx running with its log (nil if it could not be
// opened).
func (s *runStream) start(idx int, log *stepLog) {
	s.mu.Lock()
	if idx < len(s.steps) {
		st := &s.steps[idx]
		st.Status, st.log = forge.StepRunning, log
		if !st.began {
			st.began = true
			s.order = append(s.order, idx)
		}
	}
	s.mu.Unlock()
	s.changed.notify()
}

// end marks step idx ended; its log, if any, is closed already.
func (s *runStream) end(idx int, status forge.StepStatus, skipped bool, reason string) {
	s.mu.Lock()
	if idx < len(s.steps) {
		st := &s.steps[idx]
		st.Status, st.Skipped = status, skipped
		if !st.began {
			st.NotRun, st.Reason = true, reason
			st.began = true
			s.order = append(s.order, idx)
		}
	}
	s.mu.Unlock()
	s.changed.notify()
}

// finish marks the run ended: followers stop once they delivered the rest.
func (s *runStream) finish() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.changed.notify()
}

// snapshot returns the steps, the order they began in, whether the run
// has ended, and a channel closed at the next change. Taking the channel
// before reading the logs means no write after the read goes unnoticed.
func (s *runStream) snapshot() ([]streamStep, []int, bool, <-chan struct{}) {
	wake := s.changed.wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.steps), slices.Clone(s.order), s.done, wake
}

// stream returns the live stream of run id, or nil if it is not executing.
func (r *Runner) stream(id string) *runStream {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.streams[id]
}

// endStream marks the stream of run id ended and forgets it.
func (r *Runner) endStream(id string) {
	r.mu.Lock()
	s := r.streams[id]
	delete(r.streams, id)
	r.mu.Unlock()
	if s != nil {
		s.finish()
	}
}
