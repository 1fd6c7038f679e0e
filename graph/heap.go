package graph

// quadHeap is a 4-ary min-heap of nodes keyed by int64 with a position
// index, so that decrease-key is O(log n) and no stale entries pile up.
// st[v].pos is the heap index of v while it is in the heap; its value is
// meaningless otherwise (callers track membership with stamps).
type quadHeap struct {
	items []heapItem
	st    []nodeState
}

func (h *quadHeap) len() int { return len(h.items) }

func (h *quadHeap) reset() { h.items = h.items[:0] }

func (h *quadHeap) minKey() int64 {
	if len(h.items) == 0 {
		return infWeight
	}
	return h.items[0].key
}

// push inserts v, which must not be in the heap.
func (h *quadHeap) push(v uint32, key int64) {
	h.items = append(h.items, heapItem{key, v})
	h.up(len(h.items)-1, heapItem{key, v})
}

// decrease lowers the key of v, which must be in the heap.
func (h *quadHeap) decrease(v uint32, key int64) {
	h.up(int(h.st[v].pos), heapItem{key, v})
}

func (h *quadHeap) up(i int, it heapItem) {
	for i > 0 {
		p := (i - 1) / 4
		if h.items[p].key <= it.key {
			break
		}
		h.items[i] = h.items[p]
		h.st[h.items[i].node].pos = int32(i)
		i = p
	}
	h.items[i] = it
	h.st[it.node].pos = int32(i)
}

// pop removes and returns the minimum.
func (h *quadHeap) pop() heapItem {
	top := h.items[0]
	last := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	n := len(h.items)
	if n == 0 {
		return top
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		end := min(c+4, n)
		for j := c + 1; j < end; j++ {
			if h.items[j].key < h.items[m].key {
				m = j
			}
		}
		if h.items[m].key >= last.key {
			break
		}
		h.items[i] = h.items[m]
		h.st[h.items[i].node].pos = int32(i)
		i = m
	}
	h.items[i] = last
	h.st[last.node].pos = int32(i)
	return top
}
