package blob

import (
	"bytes"
	"context"
	"fmt"
	"sync"
)

// Mem is a Store in memory, for tests. The zero value is an empty store
// ready to use. Its map holds a private copy of every blob, keyed by
// KeyOf of that copy; Mem is safe for concurrent use.
type Mem struct {
	mu    sync.RWMutex
	blobs map[string][]byte
}

// NewMem returns an empty Mem.
func NewMem() *Mem { return &Mem{} }

// Put implements Store.
func (m *Mem) Put(ctx context.Context, data []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("blob: put: %w", err)
	}
	key := KeyOf(data)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.blobs == nil {
		m.blobs = make(map[string][]byte)
	}
	if _, ok := m.blobs[key]; !ok {
		m.blobs[key] = bytes.Clone(data)
	}
	return key, nil
}

// Get implements Store.
func (m *Mem) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: get: %w", err)
	}
	if !ValidKey(key) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidKey, clip(key))
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	data, ok := m.blobs[key]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return append([]byte{}, data...), nil
}

// Has implements Store.
func (m *Mem) Has(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("blob: has: %w", err)
	}
	if !ValidKey(key) {
		return false, fmt.Errorf("%w: %q", ErrInvalidKey, clip(key))
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.blobs[key]
	return ok, nil
}

// Delete implements Store.
func (m *Mem) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: delete: %w", err)
	}
	if !ValidKey(key) {
		return fmt.Errorf("%w: %q", ErrInvalidKey, clip(key))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blobs, key)
	return nil
}

// Len returns the number of blobs stored.
func (m *Mem) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.blobs)
}
