package engine

import (
	"context"
	"sync"
)

// Slots is the server-wide bound on step containers executing at once
// (KOD_MAX_PARALLEL_STEPS), shared by every Execute. A step holds a slot
// from the start of its container until it exited; steps waiting for one
// stay pending. Free slots go to the waiting runs in turn (round-robin
// between runs, first come first served within a run), so a run with a
// 64-instance matrix cannot starve another run. Safe for concurrent use.
type Slots struct {
	mu     sync.Mutex
	n      int // slots in all
	used   int // slots held
	queues map[string][]chan struct{}
	ring   []string // runs with waiting steps, in the order they began to wait
	next   int      // position in ring of the run served next
}

// NewSlots returns a bound of n step containers at once; n < 1 is taken
// as 1.
func NewSlots(n int) *Slots {
	return &Slots{n: max(n, 1), queues: map[string][]chan struct{}{}}
}

// Size is the number of slots.
func (s *Slots) Size() int { return s.n }

// Acquire waits for a slot for a step of run (the run id). It returns nil
// once the slot is held (give it back with Release), or ctx's error if ctx
// ends first (then no slot is held).
func (s *Slots) Acquire(ctx context.Context, run string) error {
	s.mu.Lock()
	if s.used < s.n && len(s.ring) == 0 {
		s.used++
		s.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	if len(s.queues[run]) == 0 {
		s.ring = append(s.ring, run)
	}
	s.queues[run] = append(s.queues[run], ch)
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	select {
	case <-ch: // granted meanwhile: hand it on
		s.mu.Unlock()
		s.Release()
		return ctx.Err()
	default:
	}
	s.remove(run, ch)
	s.mu.Unlock()
	return ctx.Err()
}

// Release gives back a slot taken with Acquire.
func (s *Slots) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used--
	for s.used < s.n && len(s.ring) > 0 {
		if s.next >= len(s.ring) {
			s.next = 0
		}
		run := s.ring[s.next]
		q := s.queues[run]
		ch := q[0]
		s.queues[run] = q[1:]
		s.used++
		close(ch)
		if len(q) == 1 {
			delete(s.queues, run)
			s.ring = append(s.ring[:s.next], s.ring[s.next+1:]...)
		} else {
			s.next++
		}
	}
}

// remove drops the waiter ch of run. s.mu is held.
func (s *Slots) remove(run string, ch chan struct{}) {
	q := s.queues[run]
	for i, c := range q {
		if c == ch {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) > 0 {
		s.queues[run] = q
		return
	}
	delete(s.queues, run)
	for i, r := range s.ring {
		if r == run {
			s.ring = append(s.ring[:i], s.ring[i+1:]...)
			if i < s.next {
				s.next--
			}
			break
		}
	}
}

// waiting returns the steps waiting per run, for tests.
func (s *Slots) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.queues {
		n += len(q)
	}
	return n
}
