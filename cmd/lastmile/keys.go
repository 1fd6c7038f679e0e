package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/seal"
)

// cmdKeys manages API keys in the state store: create, list, revoke, and
// generate (a key for LASTMILE_ADMIN_KEY, stored nowhere).
func cmdKeys(args []string, stdout, stderr io.Writer) error {
	const usage = "usage: lastmile keys create --scope admin|dispatcher|driver|readonly [--vehicle V] [--name N] | list | revoke ID | generate; with --state DIR or --db postgres://..."
	if len(args) == 0 {
		return usagef(usage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	state := fs.String("state", "", "state folder of the server (its lastmile.db and data.key)")
	db := fs.String("db", "", "PostgreSQL URL of the server's state instead of the SQLite file in --state")
	scope := fs.String("scope", "", "create: admin, dispatcher, driver or readonly")
	vehicle := fs.String("vehicle", "", "create: the vehicle of a driver key")
	name := fs.String("name", "", "create: a label for the key")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if sub == "generate" {
		if len(pos) != 0 {
			return usagef(usage)
		}
		key, id, _ := seal.NewAPIKey()
		fmt.Fprintf(stdout, "%s\n", key)
		fmt.Fprintf(stderr, "key id %s; use it as LASTMILE_ADMIN_KEY=%s (it is stored nowhere)\n", id, key)
		return nil
	}
	if *state == "" && *db == "" {
		return usagef("give the server's --state DIR or --db postgres://...")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := engine.OpenStore(ctx, *state, *db, newLogger(stderr, true))
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := dispatch.NewKeys(st, "", nil)
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		if len(pos) != 0 || *scope == "" {
			return usagef(usage)
		}
		k, err := keys.Create(ctx, dispatch.KeyInput{Scope: *scope, Vehicle: *vehicle, Name: *name})
		if err != nil {
			return err
		}
		return writeJSON(stdout, k)
	case "list":
		if len(pos) != 0 {
			return usagef(usage)
		}
		list, err := keys.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSCOPE\tVEHICLE\tNAME\tCREATED\tREVOKED")
		for _, k := range list {
			revoked := ""
			if k.Revoked != 0 {
				revoked = time.Unix(k.Revoked, 0).UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Scope, k.Vehicle, k.Name, time.Unix(k.Created, 0).UTC().Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "revoke":
		if len(pos) != 1 {
			return usagef(usage)
		}
		if err := keys.Revoke(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", pos[0])
		return nil
	}
	return usagef(usage)
}
