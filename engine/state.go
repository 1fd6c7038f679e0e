package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
)

// StoreFile is the SQLite database's name in the data folder.
const StoreFile = "lastmile.db"

// AdminKeyFile is where `make run` keeps the admin key it generated on
// first start (mode 0600, in the data folder).
const AdminKeyFile = "admin.key"

// OpenStore opens the product layer's state: the PostgreSQL database at
// db when it is a postgres:// URL, else the SQLite file lastmile.db in
// stateDir (serve --state: not --data, whose LASTMILE_DATA names the
// shared datasets in tests and benchmarks). Personal data is sealed with the key ring of LASTMILE_DATA_KEY,
// or of the key file data.key in stateDir (created with mode 0600 on first
// start; replicas sharing one PostgreSQL need the same key: set
// LASTMILE_DATA_KEY on each).
func OpenStore(ctx context.Context, stateDir, db string, log *slog.Logger) (*store.Store, error) {
	log = logger(log)
	if db != "" && !strings.HasPrefix(db, "postgres://") && !strings.HasPrefix(db, "postgresql://") {
		return nil, fmt.Errorf("--db %q: want a postgres:// URL (the SQLite default lives in --data)", redactDSN(db))
	}
	env := os.Getenv(seal.EnvVar)
	if env == "" && stateDir == "" {
		return nil, errors.New("no state folder for the key file: give --state, or set " + seal.EnvVar)
	}
	ring, created, err := seal.LoadRing(env, stateDir)
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("created a new data key: back it up, personal data cannot be read without it",
			"file", filepath.Join(stateDir, seal.KeyFileName))
	}
	dsn := db
	if dsn == "" {
		dsn = filepath.Join(stateDir, StoreFile)
	}
	st, err := store.Open(ctx, dsn, store.Options{Ring: ring})
	if err != nil {
		return nil, err
	}
	log.Info("state store open", "backend", st.Dialect().String(), "where", redactDSN(dsn))
	return st, nil
}

// redactDSN hides the password of a database URL for logs and errors.
func redactDSN(dsn string) string {
	at := strings.LastIndexByte(dsn, '@')
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	creds := dsn[scheme+3 : at]
	if user, _, ok := strings.Cut(creds, ":"); ok {
		return dsn[:scheme+3] + user + ":***" + dsn[at:]
	}
	return dsn
}
