package tiles

import (
	"errors"
	"sync"
)

// entryOverhead is the memory counted per cached tile beyond its bytes: the
// map slot, the list node and the slice header, rounded up.
const entryOverhead = 96

// errRenderFailed is what callers waiting on a render get when the render
// panicked in the goroutine that ran it.
var errRenderFailed = errors.New("tiles: render of a shared tile failed")

// cache is an LRU cache of compressed tiles bounded in bytes, safe for
// concurrent use, that renders a missing tile once however many goroutines
// ask for it at the same time (their calls wait for the first one).
//
// Invariants: used is the sum of size() over entries, used <= budget after
// every call, and the entries form a doubly linked list from head.next (most
// recently used) to head.prev (least recently used).
type cache struct {
	mu       sync.Mutex
	budget   int64
	used     int64
	entries  map[uint64]*entry
	head     entry // sentinel of the LRU list
	inflight map[uint64]*call
	hits     int64
	misses   int64
}

type entry struct {
	key        uint64
	data       []byte
	prev, next *entry
}

func (e *entry) size() int64 { return int64(len(e.data)) + entryOverhead }

// call is one render in progress; done is closed when data and err are set.
type call struct {
	done chan struct{}
	data []byte
	err  error
}

func newCache(budget int64) *cache {
	c := &cache{budget: budget, entries: map[uint64]*entry{}, inflight: map[uint64]*call{}}
	c.head.prev, c.head.next = &c.head, &c.head
	return c
}

// get returns the tile of key, from the cache or from render. render also
// says whether its result may be kept; errors are never kept.
func (c *cache) get(key uint64, render func() ([]byte, bool, error)) ([]byte, error) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		c.hits++
		c.unlink(e)
		c.pushFront(e)
		c.mu.Unlock()
		return e.data, nil
	}
	if cl, ok := c.inflight[key]; ok {
		c.hits++ // rendered once for several callers
		c.mu.Unlock()
		<-cl.done
		return cl.data, cl.err
	}
	cl := &call{done: make(chan struct{}), err: errRenderFailed}
	c.inflight[key] = cl
	c.misses++
	c.mu.Unlock()

	keep := false
	defer func() {
		// Runs on panic too, so that waiters are released with
		// errRenderFailed and a later call retries.
		c.mu.Lock()
		delete(c.inflight, key)
		if keep {
			c.add(key, cl.data)
		}
		c.mu.Unlock()
		close(cl.done)
	}()
	data, ok, err := render()
	cl.data, cl.err = data, err
	keep = ok && err == nil
	return data, err
}

// add inserts a tile and evicts the least recently used ones until the
// budget holds; a tile larger than the whole budget is not kept. c.mu is
// held.
func (c *cache) add(key uint64, data []byte) {
	e := &entry{key: key, data: data}
	if e.size() > c.budget {
		return
	}
	if old, ok := c.entries[key]; ok { // cannot happen while inflight guards key, kept for safety
		c.unlink(old)
		c.used -= old.size()
	}
	c.entries[key] = e
	c.pushFront(e)
	c.used += e.size()
	for c.used > c.budget {
		last := c.head.prev
		c.unlink(last)
		delete(c.entries, last.key)
		c.used -= last.size()
	}
}

func (c *cache) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *cache) pushFront(e *entry) {
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}

func (c *cache) stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits, Misses: c.misses, Entries: len(c.entries), Bytes: c.used, Budget: c.budget}
}
