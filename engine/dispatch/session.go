package dispatch

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
)

// SessionTTL is how long a browser session lasts: a working day and its
// evening, so a courier or dispatcher signs in once a day.
const SessionTTL = 16 * time.Hour

// DriverSession is a signed-in browser session (the driver's app, the
// dispatcher's dashboard): Secret goes in
// an HttpOnly cookie (only its hash is stored), CSRF must come back in a
// header or form field with every change, Principal is who it acts as.
type DriverSession struct {
	Secret    string
	CSRF      string
	Principal Principal
	Expires   time.Time
}

// SignIn opens a browser session for a key of one of scopes (the page
// signs in with the key once; the key itself is not kept by the
// browser). The driver's app takes driver keys only (it acts for one
// vehicle), the dashboard dispatcher and admin keys.
func (k *Keys) SignIn(ctx context.Context, key string, scopes ...string) (DriverSession, error) {
	p, err := k.Authenticate(ctx, key)
	if err != nil {
		return DriverSession{}, err
	}
	if !slices.Contains(scopes, p.Scope) || (p.Scope == ScopeDriver && p.Vehicle == "") {
		return DriverSession{}, errorf("Forbidden", "a %s key cannot sign in here: use a %s key", p.Scope, strings.Join(scopes, " or "))
	}
	now := k.now()
	ds := DriverSession{Secret: seal.Token(), CSRF: seal.Token(), Principal: p, Expires: now.Add(SessionTTL)}
	keyID := p.KeyID
	if keyID == "env" {
		keyID = k.envSessionKey()
	}
	_, err = k.st.Tx(ctx, func(tx *store.Tx) error {
		return tx.InsertSession(store.Session{Hash: seal.HashToken(ds.Secret), KeyID: keyID, Vehicle: p.Vehicle, CSRF: ds.CSRF,
			Created: now.Unix(), Expires: ds.Expires.Unix()})
	})
	if err != nil {
		return DriverSession{}, err
	}
	return ds, nil
}

// Session returns the session of a cookie secret; Unauthorized for a
// malformed, unknown, expired or signed-out one, or one whose key was
// revoked.
func (k *Keys) Session(ctx context.Context, secret string) (DriverSession, error) {
	if !seal.ValidToken(secret) {
		return DriverSession{}, errorf("Unauthorized", "not signed in")
	}
	ss, err := k.st.SessionByHash(ctx, seal.HashToken(secret), k.now().Unix())
	if errors.Is(err, store.ErrNotFound) {
		return DriverSession{}, errorf("Unauthorized", "the session expired: sign in again")
	}
	if err != nil {
		return DriverSession{}, err
	}
	p := Principal{KeyID: ss.KeyID, Scope: ss.Scope, Vehicle: ss.Vehicle}
	switch {
	case strings.HasPrefix(ss.KeyID, "env:"):
		// The environment's admin key, while it is still the same key.
		if k.adminHash == nil || ss.KeyID != k.envSessionKey() {
			return DriverSession{}, errorf("Unauthorized", "the session's key changed: sign in again")
		}
		p = Principal{KeyID: "env", Scope: ScopeAdmin}
	case ss.Scope == "":
		return DriverSession{}, errorf("Unauthorized", "the session's key is gone: sign in again")
	}
	return DriverSession{Secret: secret, CSRF: ss.CSRF, Principal: p, Expires: time.Unix(ss.Expires, 0)}, nil
}

// envSessionKey is the key id a session of the environment's admin key
// is stored under: "env:" and a prefix of the key's hash, so that its
// sessions end when the key is changed.
func (k *Keys) envSessionKey() string {
	return "env:" + hex.EncodeToString(k.adminHash[:8])
}

// SignOut ends a session (and drops expired ones).
func (k *Keys) SignOut(ctx context.Context, secret string) error {
	if !seal.ValidToken(secret) {
		return nil
	}
	_, err := k.st.Tx(ctx, func(tx *store.Tx) error {
		return tx.DeleteSession(seal.HashToken(secret), k.now().Unix())
	})
	return err
}
