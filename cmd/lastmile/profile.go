package main

import (
	"flag"
	"fmt"
	"io"
	"time"
	_ "time/tzdata" // profiles name their time zone; load it on machines without a zone database

	"github.com/lastmile/lastmile/datasets"
	"github.com/lastmile/lastmile/engine"
)

func cmdProfile(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	gpath := fs.String("graph", "", "road graph (.lmg or OSM file) the traces are matched onto")
	traces := fs.String("traces", "", "normalised GPS trace CSV (trace_id,timestamp_unix,lat,lon)")
	out := fs.String("o", "", "profile file to write")
	tz := fs.String("tz", "UTC", "time zone of the quarter-hour bins and of weekday/weekend (IANA name)")
	data := fs.String("data", "", "directory for the prepared graph when --graph is an OSM file")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *gpath == "" || *traces == "" || *out == "" {
		return usagef("usage: lastmile profile --graph G --traces T.csv -o OUT.lmp [--tz Europe/Lisbon]")
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return usagef("--tz %q: %v", *tz, err)
	}
	log := newLogger(stderr, true)
	g, err := engine.Open(*gpath, *data, engine.PrepareOptions{Logger: log})
	if err != nil {
		return err
	}
	trs, err := datasets.ReadTracesFile(*traces)
	if err != nil {
		return err
	}
	t0 := time.Now()
	p, fit, err := engine.FitTracesProfile(g, trs, loc, log)
	if err != nil {
		return err
	}
	if err := engine.SaveProfile(p, g, *out); err != nil {
		return err
	}
	st := fit.Profile
	fmt.Fprintf(stdout, "profile %s: %d traces, %d pings (%v rejected), %d whole-edge traversals; %d used (%d implausible), "+
		"edges %d, H3 groups %d, road classes %d with data of their own; %.1f s\n",
		*out, fit.Traces, fit.Pings, fit.Rejected, fit.Traversals, st.Used, st.Implausible, st.Edges, st.Groups, st.Classes,
		time.Since(t0).Seconds())
	return nil
}
