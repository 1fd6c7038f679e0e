package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lastmile/lastmile/bench"
	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/vrp"
)

func cmdSolve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("solve", flag.ContinueOnError)
	gpath := fs.String("graph", "", "road graph for problems given with coordinates (.lmg or OSM file)")
	limit := fs.Duration("time", 5*time.Second, "time limit")
	seed := fs.Int64("seed", 1, "random seed")
	workers := fs.Int("workers", 2, "parallel searches")
	radius := fs.Float64("radius", 1000, "largest snapping distance in metres")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: lastmile solve [--graph G] [--time 10s] [--seed N] problem.json (or - for stdin)")
	}
	var data []byte
	if pos[0] == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(pos[0])
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", pos[0], err)
	}
	p, err := vrp.ParseProblem(data)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	var r *engine.Router
	if *gpath != "" {
		if r, err = openGraph(*gpath, stderr); err != nil {
			return err
		}
		r.SnapRadius = *radius
	}
	sol, err := engine.Solve(r, p, engine.SolveOptions{Time: *limit, Seed: *seed, Workers: *workers})
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	out, err := vrp.MarshalSolution(sol)
	if err != nil {
		return err
	}
	_, err = stdout.Write(append(out, '\n'))
	return err
}

func benchVRP(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench vrp", flag.ContinueOnError)
	set := fs.String("set", "", "solomon, homberger, cvrplib, or a folder of instances with a bks.csv")
	limit := fs.Duration("time", 10*time.Second, "time limit per instance")
	filter := fs.String("filter", "", "regular expression on instance names")
	maxc := fs.Int("max-customers", 0, "skip instances with more customers (0 = all)")
	seed := fs.Int64("seed", 1, "random seed")
	workers := fs.Int("workers", 2, "parallel searches per instance")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *set == "" {
		return usagef("usage: lastmile bench vrp --set solomon|homberger|cvrplib|DIR --time 10s")
	}
	log := newLogger(stderr, false)
	rep, err := bench.VRP(bench.VRPConfig{Set: *set, Time: *limit, Filter: *filter, MaxCustomers: *maxc, Seed: *seed, Workers: *workers, Logger: log})
	if err != nil {
		return err
	}
	bench.WriteVRP(stdout, rep)
	if rep.Invalid() > 0 {
		return fmt.Errorf("%d invalid solutions", rep.Invalid())
	}
	return nil
}
