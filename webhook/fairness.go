package webhook

import (
	"maps"
	"sync"
)

// slot is what an attempt in flight is counted against: its repository (by id)
// and its receiver (forge.Delivery.Receiver, the URL's host).
type slot struct{ repo, receiver string }

// load counts attempts in flight: in all, per repository and per receiver.
// The caps keep one slow or dead receiver, or one repository with many
// webhooks, from taking every attempt slot: what it cannot take is left to
// the deliveries of others, which are sent at once instead of waiting
// behind it.
type load struct {
	mu        sync.Mutex
	total     int
	repos     map[string]int
	receivers map[string]int
}

func newLoad() *load {
	return &load{repos: map[string]int{}, receivers: map[string]int{}}
}

// acquire counts an attempt to s as started.
func (l *load) acquire(s slot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	l.repos[s.repo]++
	l.receivers[s.receiver]++
}

// release counts an attempt to s as finished.
func (l *load) release(s slot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.repos[s.repo]--; l.repos[s.repo] <= 0 {
		delete(l.repos, s.repo)
	}
	if l.receivers[s.receiver]--; l.receivers[s.receiver] <= 0 {
		delete(l.receivers, s.receiver)
	}
}

// picker chooses the deliveries of one pick-up pass from a snapshot of
// the load: a delivery is taken while a slot is free in all, for its
// repository and for its receiver, counting what the pass took. Passes do
// not overlap and attempts only finish meanwhile, so the snapshot never
// lets the load exceed the caps.
type picker struct {
	free      int // slots left in all
	perRepo   int
	perRecv   int
	repos     map[string]int
	receivers map[string]int
}

// picker returns the picker of a pass under the caps of cfg.
func (l *load) picker(cfg Config) *picker {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &picker{free: cfg.Concurrency - l.total, perRepo: cfg.PerRepository, perRecv: cfg.PerReceiver,
		repos: maps.Clone(l.repos), receivers: maps.Clone(l.receivers)}
}

// take is the store's take function (forge.DeliveryStore.DueDeliveries).
func (p *picker) take(repo, receiver string) bool {
	if p.free <= 0 || p.repos[repo] >= p.perRepo || p.receivers[receiver] >= p.perRecv {
		return false
	}
	p.free--
	p.repos[repo]++
	p.receivers[receiver]++
	return true
}
