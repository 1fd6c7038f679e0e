package notify

import "sync"

// Bell tells event streams that events committed: Wait returns a channel
// closed at the next Ring. The zero Bell is not usable; use NewBell.
type Bell struct {
	mu   sync.Mutex
	ch   chan struct{}
	last int64
}

// NewBell returns a Bell that has not rung.
func NewBell() *Bell { return &Bell{ch: make(chan struct{})} }

// Ring records that events up to cursor committed and wakes the waiters.
func (b *Bell) Ring(cursor int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = max(b.last, cursor)
	close(b.ch)
	b.ch = make(chan struct{})
}

// Wait returns a channel closed at the next Ring, and the highest cursor
// rung so far.
func (b *Bell) Wait() (<-chan struct{}, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch, b.last
}
