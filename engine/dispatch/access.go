package dispatch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
)

// Key scopes, from most to least privileged.
const (
	// ScopeAdmin may do everything, including managing keys.
	ScopeAdmin = "admin"
	// ScopeDispatcher runs the day: shipments, plans, statuses, reads.
	ScopeDispatcher = "dispatcher"
	// ScopeDriver acts for one vehicle: its pings and its stops' statuses.
	ScopeDriver = "driver"
	// ScopeReadonly reads.
	ScopeReadonly = "readonly"
)

// Scopes lists the valid scopes.
var Scopes = []string{ScopeAdmin, ScopeDispatcher, ScopeDriver, ScopeReadonly}

// Principal is who a request acts as: the key's id, scope and, for a
// driver key, its vehicle.
type Principal struct {
	KeyID   string
	Scope   string
	Vehicle string
}

// Keys checks bearer keys against the store with a short cache, plus an
// optional admin key from the environment (never stored). A key revoked
// through this Keys stops working at once; one revoked through another
// replica within CacheTTL.
type Keys struct {
	st        *store.Store
	adminHash []byte // SHA-256 of LASTMILE_ADMIN_KEY, nil when unset
	now       func() time.Time

	mu    sync.Mutex
	cache map[string]cachedKey // by hash
	any   cachedAny
}

type cachedKey struct {
	p       Principal
	ok      bool
	expires time.Time
}

type cachedAny struct {
	v       bool
	expires time.Time
}

// CacheTTL is how long a key lookup is reused.
const CacheTTL = 2 * time.Second

// NewKeys checks keys of st; adminKey (may be empty) is an admin key
// besides the stored ones. now nil means time.Now.
func NewKeys(st *store.Store, adminKey string, now func() time.Time) (*Keys, error) {
	if now == nil {
		now = time.Now
	}
	k := &Keys{st: st, now: now, cache: map[string]cachedKey{}}
	if adminKey != "" {
		if !seal.ValidKeyFormat(adminKey) {
			return nil, errors.New("dispatch: LASTMILE_ADMIN_KEY is not a lastmile key (lm_ and 43 base64url characters; make one with lastmile keys generate)")
		}
		k.adminHash = seal.HashAPIKey(adminKey)
	}
	return k, nil
}

// Any reports whether any key exists (stored, or the environment's), in
// which case telemetry endpoints need one too.
func (k *Keys) Any(ctx context.Context) (bool, error) {
	if k.adminHash != nil {
		return true, nil
	}
	now := k.now()
	k.mu.Lock()
	c := k.any
	k.mu.Unlock()
	if now.Before(c.expires) {
		return c.v, nil
	}
	keys, err := k.st.Keys(ctx)
	if err != nil {
		return false, err
	}
	v := slices.ContainsFunc(keys, func(x store.Key) bool { return x.Revoked == 0 })
	k.mu.Lock()
	k.any = cachedAny{v, now.Add(CacheTTL)}
	k.mu.Unlock()
	return v, nil
}

// Authenticate returns the principal of a bearer key; Unauthorized for a
// malformed, unknown or revoked key.
func (k *Keys) Authenticate(ctx context.Context, key string) (Principal, error) {
	if !seal.ValidKeyFormat(key) {
		return Principal{}, errorf("Unauthorized", "invalid API key")
	}
	hash := seal.HashAPIKey(key)
	if k.adminHash != nil && seal.Equal(hash, k.adminHash) {
		return Principal{KeyID: "env", Scope: ScopeAdmin}, nil
	}
	now := k.now()
	hk := string(hash)
	k.mu.Lock()
	c, hit := k.cache[hk]
	k.mu.Unlock()
	if !hit || !now.Before(c.expires) {
		sk, err := k.st.KeyByHash(ctx, hash)
		switch {
		case errors.Is(err, store.ErrNotFound):
			c = cachedKey{expires: now.Add(CacheTTL)}
		case err != nil:
			return Principal{}, err
		default:
			c = cachedKey{p: Principal{KeyID: sk.ID, Scope: sk.Scope, Vehicle: sk.Vehicle}, ok: sk.Revoked == 0, expires: now.Add(CacheTTL)}
		}
		k.mu.Lock()
		if len(k.cache) > 100_000 {
			clear(k.cache)
		}
		k.cache[hk] = c
		k.mu.Unlock()
	}
	if !c.ok {
		return Principal{}, errorf("Unauthorized", "unknown or revoked API key")
	}
	return c.p, nil
}

// KeyInput is the body of POST /v1/keys.
type KeyInput struct {
	Scope   string `json:"scope"`
	Vehicle string `json:"vehicle,omitempty"`
	Name    string `json:"name,omitempty"`
}

// KeyCreated answers POST /v1/keys; Key is shown this once.
type KeyCreated struct {
	ID      string `json:"id"`
	Key     string `json:"key"`
	Scope   string `json:"scope"`
	Vehicle string `json:"vehicle,omitempty"`
}

// KeyView is a key as listed (never the secret).
type KeyView struct {
	ID      string `json:"id"`
	Scope   string `json:"scope"`
	Vehicle string `json:"vehicle,omitempty"`
	Name    string `json:"name,omitempty"`
	Created int64  `json:"created"`
	Revoked int64  `json:"revoked,omitempty"`
}

// Create makes a new key; a driver key names its vehicle, other scopes
// none.
func (k *Keys) Create(ctx context.Context, in KeyInput) (KeyCreated, error) {
	if !slices.Contains(Scopes, in.Scope) {
		return KeyCreated{}, errorf("InvalidValue", "scope %q: want admin, dispatcher, driver or readonly", in.Scope)
	}
	if (in.Scope == ScopeDriver) != (in.Vehicle != "") {
		return KeyCreated{}, errorf("InvalidValue", "vehicle: a driver key names its vehicle, other scopes none")
	}
	if err := checkText("vehicle", in.Vehicle, 128, false); err != nil {
		return KeyCreated{}, err
	}
	if err := checkText("name", in.Name, 200, false); err != nil {
		return KeyCreated{}, err
	}
	key, id, hash := seal.NewAPIKey()
	_, err := k.st.Tx(ctx, func(tx *store.Tx) error {
		return tx.InsertKey(store.Key{ID: id, Hash: hash, Scope: in.Scope, Vehicle: in.Vehicle, Name: in.Name, Created: k.now().Unix()})
	})
	if err != nil {
		return KeyCreated{}, err
	}
	k.mu.Lock()
	k.any = cachedAny{}
	k.mu.Unlock()
	return KeyCreated{ID: id, Key: key, Scope: in.Scope, Vehicle: in.Vehicle}, nil
}

// Revoke revokes key id; NotFound when no valid key has it.
func (k *Keys) Revoke(ctx context.Context, id string) error {
	_, err := k.st.Tx(ctx, func(tx *store.Tx) error { return tx.RevokeKey(id, k.now().Unix()) })
	if errors.Is(err, store.ErrNotFound) {
		return errorf("NotFound", "key %q: unknown or revoked already", id)
	}
	if err != nil {
		return err
	}
	k.mu.Lock()
	clear(k.cache)
	k.any = cachedAny{}
	k.mu.Unlock()
	return nil
}

// List returns every key, oldest first.
func (k *Keys) List(ctx context.Context) ([]KeyView, error) {
	keys, err := k.st.Keys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]KeyView, len(keys))
	for i, x := range keys {
		out[i] = KeyView{ID: x.ID, Scope: x.Scope, Vehicle: x.Vehicle, Name: x.Name, Created: x.Created, Revoked: x.Revoked}
	}
	return out, nil
}
