package runner

import (
	"slices"
	"sync"
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

// runStream is what log followers see of an executing run: every step so
// far, in result.steps order (skipped ones included), with the sink of
// each step that ran. Followers read the sinks, which read the log files:
// the stream holds no output itself.
type runStream struct {
	changed notifier // any step added or written, or the run ended

	mu    sync.Mutex
	steps []streamStep
	done  bool
}

// streamStep is one step of a runStream.
type streamStep struct {
	Name     string
	Workflow string
	Skipped  bool
	log      *stepLog // nil for skipped steps and steps whose log could not be opened
}

func (s *runStream) addStep(st streamStep) {
	s.mu.Lock()
	s.steps = append(s.steps, st)
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

// snapshot returns the steps so far, whether the run has ended, and a
// channel closed at the next change. Taking the channel before reading
// the sinks means no write after the read goes unnoticed.
func (s *runStream) snapshot() ([]streamStep, bool, <-chan struct{}) {
	wake := s.changed.wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.steps), s.done, wake
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
