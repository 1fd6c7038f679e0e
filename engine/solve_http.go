package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/vrp"
)

// handleSolve answers POST /v1/solve: a VROOM-format problem (locations as
// coordinates are snapped and the matrix computed from the graph; matrices
// given are used as they are), solved within the time limit of the query
// parameter time (seconds, default SolveTime, at most MaxSolveTime, or
// MaxJobSolveTime for an asynchronous solve) with the seed of the query
// parameter seed. The answer is VROOM's output, with each route's
// geometry when the problem has "options": {"g": true}. With "async":
// true at the top level of the problem (or ?async=true) the solve is
// queued instead and the answer is 202 with the job's id and URL.
func (s *Server) handleSolve(ctx *fasthttp.RequestCtx, _ pathParams) error {
	seed := int64(1)
	var timeArg []byte
	var async bool
	var err error
	ctx.QueryArgs().VisitAll(func(k, v []byte) {
		if err != nil {
			return
		}
		switch string(k) {
		case "time":
			timeArg = v
		case "seed":
			n, e := strconv.ParseInt(string(v), 10, 64)
			if e != nil {
				err = &Error{"InvalidOptions", fmt.Sprintf("parameter seed=%q: want an integer", v)}
				return
			}
			seed = n
		case "async":
			switch string(v) {
			case "true":
				async = true
			case "false":
			default:
				err = &Error{"InvalidOptions", fmt.Sprintf("parameter async=%q: want true or false", v)}
			}
		default:
			err = &Error{"InvalidOptions", fmt.Sprintf("unknown parameter %q (known: async, seed, time)", k)}
		}
	})
	if err != nil {
		return err
	}
	body := ctx.PostBody()
	extra, err := parseSolveExtras(body)
	if err != nil {
		return err
	}
	async = async || extra.async
	limit, maxTime := s.cfg.SolveTime, s.cfg.MaxSolveTime
	if async {
		maxTime = s.cfg.MaxJobSolveTime
	}
	if timeArg != nil {
		sec, e := strconv.ParseFloat(string(timeArg), 64)
		if e != nil || !(sec > 0) || time.Duration(sec*float64(time.Second)) > maxTime {
			return &Error{"InvalidOptions", fmt.Sprintf("parameter time=%q: want seconds in (0, %g]", timeArg, maxTime.Seconds())}
		}
		limit = time.Duration(sec * float64(time.Second))
	}
	p, err := vrp.ParseProblem(body)
	if err != nil {
		return &Error{"InvalidQuery", err.Error()}
	}
	if len(p.Matrices) == 0 || extra.geometry {
		locs := p.Locations()
		if n := len(locs); len(p.Matrices) == 0 && n*n > s.cfg.MaxTableCells {
			return &Error{"TooBig", fmt.Sprintf("%d locations need a %dx%d matrix, at most %d cells", n, n, n, s.cfg.MaxTableCells)}
		}
		if extra.geometry {
			if s.R == nil {
				return &Error{"InvalidOptions", "options.g: route geometry needs a road graph and the server has none"}
			}
			for i, l := range locs {
				if math.IsNaN(l[0]) {
					return &Error{"InvalidOptions", fmt.Sprintf("options.g: route geometry needs coordinates for every location; location_index %d has none", i)}
				}
			}
		}
	}
	opt := SolveOptions{Time: limit, Seed: seed, Workers: s.cfg.Workers, Geometry: extra.geometry}
	solve := func(c context.Context, progress func(int64, int, int64)) ([]byte, error) {
		t0 := time.Now()
		o := opt
		o.Context, o.Progress = c, progress
		sol, geoms, err := SolveWithGeometry(s.R, p, o)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				return nil, e
			}
			return nil, &Error{"InvalidQuery", err.Error()}
		}
		b, err := MarshalSolution(sol, geoms)
		if c.Err() != nil {
			return b, err // cancelled: not a complete solve
		}
		if async {
			s.jobs.asyncSolves.observe(time.Since(t0))
		} else {
			s.jobs.syncSolves.observe(time.Since(t0))
		}
		return b, err
	}
	if async {
		j, err := s.jobs.submit(limit, solve)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && e.Code == "TooManyJobs" {
				ctx.Response.Header.Set("Retry-After", "5")
			}
			return err
		}
		loc := jobsPath + j.id
		if err := s.writeJSON(ctx, jobAccepted{ID: j.id, Status: jobQueued, Location: loc}); err != nil {
			return err
		}
		ctx.Response.Header.Set("Location", loc)
		ctx.SetStatusCode(fasthttp.StatusAccepted)
		return nil
	}
	// A solve abandoned by compute (503 Timeout) stops searching at once
	// rather than keep its slot for the whole time limit.
	c, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := s.compute(func() (any, error) { return solve(c, nil) })
	if err != nil {
		return err
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(append(v.([]byte), '\n'))
	return nil
}

// solveExtras are the top-level fields of a solve request that are not
// part of the VROOM problem proper: "async" (ours) and VROOM's "options"
// (of which "g", route geometry, is the one VROOM reads from JSON input).
type solveExtras struct {
	async, geometry bool
}

// parseSolveExtras reads "async" and "options" from the top level of a
// solve request, strictly (async a boolean; options an object whose only
// key is g, a boolean). vrp.ParseProblem ignores both fields, so the
// problem itself is parsed from the same bytes. Bodies that mention
// neither name skip the extra decoding.
func parseSolveExtras(body []byte) (solveExtras, error) {
	var x solveExtras
	if !bytes.Contains(body, []byte(`"async"`)) && !bytes.Contains(body, []byte(`"options"`)) {
		return x, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return x, nil // vrp.ParseProblem reports malformed JSON with its own message
	}
	if raw, ok := top["async"]; ok {
		if err := json.Unmarshal(raw, &x.async); err != nil || string(raw) == "null" {
			return x, &Error{"InvalidQuery", fmt.Sprintf("field async: want true or false, got %s", clip(raw, 40))}
		}
	}
	if raw, ok := top["options"]; ok {
		var opts map[string]json.RawMessage
		if err := json.Unmarshal(raw, &opts); err != nil || opts == nil {
			return x, &Error{"InvalidQuery", fmt.Sprintf("field options: want an object, got %s", clip(raw, 40))}
		}
		for k, v := range opts {
			if k != "g" {
				return x, &Error{"InvalidOptions", fmt.Sprintf("options.%s: unknown option (known: g, route geometry)", k)}
			}
			if err := json.Unmarshal(v, &x.geometry); err != nil || string(v) == "null" {
				return x, &Error{"InvalidQuery", fmt.Sprintf("field options.g: want true or false, got %s", clip(v, 40))}
			}
		}
	}
	return x, nil
}
