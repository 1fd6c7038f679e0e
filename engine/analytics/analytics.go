// Package analytics answers the business's questions about finished
// deliveries: on-time rate against the promised window, lateness, first
// attempts, failures by reason, planned against actual drive, service and
// waiting, distance and emissions, and how true the shown ETAs were.
//
// Its input is one store.Fact per ended stop attempt, written by package
// dispatch in the transaction that ends the stop (or imported). Facts are
// never updated. Figures read rollups: per local day, the aggregate of the
// day's facts by plan, vehicle, driver and class (level day) and also by
// hour and H3 cell (level cell), each an encoded agg with counters and
// minute histograms. A day's rollups are rebuilt from its facts when facts
// newer than the 'rollups' counter exist (Refresh), so a query reads a few
// rows per van and day, never the pings or the stops. Grouping happens in
// Go, so both databases give the same numbers.
package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/lastmile/lastmile/engine/store"
	"github.com/uber/h3-go/v4"
)

// DefaultClass is the class of a route whose plan gave none.
const DefaultClass = "van_diesel"

// DefaultEmissions are grams of CO2-equivalent per kilometre by vehicle
// class, rounded from the UK Government GHG Conversion Factors for
// Company Reporting 2023 ("Delivery vehicles: vans, average up to 3.5
// tonnes", well-to-wheel not included; electric: UK grid generation plus
// transmission losses). They are estimates for comparing routes, not an
// audit: set Config.Emissions with the carrier's own factors.
var DefaultEmissions = map[string]float64{
	"van_diesel":   251,
	"van_petrol":   219,
	"van_electric": 62,
	"cargo_bike":   0,
}

// Config configures a Service.
type Config struct {
	// Store holds the facts and rollups (required).
	Store *store.Store
	// Emissions are grams of CO2e per km by class (default
	// DefaultEmissions); a class missing here counts as DefaultClass.
	Emissions map[string]float64
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Service computes figures. It is safe for concurrent use.
type Service struct {
	st  *store.Store
	cfg Config
	log *slog.Logger
	// refresh serialises this replica's rollup rebuilds (replicas
	// serialise through the locked counter).
	refresh sync.Mutex
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Emissions == nil {
		cfg.Emissions = DefaultEmissions
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{st: cfg.Store, cfg: cfg, log: cfg.Logger}
}

// emission is the factor of a class in g/km.
func (s *Service) emission(class string) float64 {
	if f, ok := s.cfg.Emissions[class]; ok {
		return f
	}
	return s.cfg.Emissions[DefaultClass]
}

// Refresh rebuilds the rollups of every day with facts newer than the
// rollups, one transaction per day. It returns the days rebuilt.
func (s *Service) Refresh(ctx context.Context) (int, error) {
	built, top, err := s.st.RollupState(ctx)
	if err != nil || built >= top {
		return 0, err
	}
	s.refresh.Lock()
	defer s.refresh.Unlock()
	// Every fact numbered up to top has committed (the counter is
	// locked until its facts commit): rebuild their days, then mark top
	// built. Newer facts seen on the way are rebuilt again next time.
	days, _, err := s.st.StaleDays(ctx, built)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for _, day := range days {
		_, err := s.st.Tx(ctx, func(tx *store.Tx) error {
			if _, err := tx.LockRollups(); err != nil {
				return err
			}
			facts, err := tx.DayFacts(day)
			if err != nil {
				return err
			}
			return tx.ReplaceRollups(day, Rollups(facts))
		})
		if err != nil {
			return 0, fmt.Errorf("analytics: rebuild %d: %w", day, err)
		}
	}
	if _, err := s.st.Tx(ctx, func(tx *store.Tx) error { return tx.SetRollups(top) }); err != nil {
		return 0, err
	}
	if len(days) > 1 {
		s.log.Info("analytics rollups rebuilt", "days", len(days), "facts_to", top, "took", time.Since(start).Round(time.Millisecond))
	}
	return len(days), nil
}

// Figure computes one figure over a query, refreshing stale rollups
// first.
func (s *Service) Figure(ctx context.Context, figure string, q Query) (Result, error) {
	cols := Columns(figure)
	if cols == nil {
		return Result{}, errorf("NotFound", "figure %q: want one of %v", figure, Figures)
	}
	res := Result{Figure: figure, From: q.From.Format(time.DateOnly), To: q.To.Format(time.DateOnly), Group: q.Group, Columns: cols}
	if q.Group == "h3" {
		res.Res = q.Res
	}
	if figure == "notifications" {
		return s.notifications(ctx, q, res)
	}
	if q.Group == "channel" {
		return Result{}, errorf("InvalidValue", "group channel: only for notifications")
	}
	if _, err := s.Refresh(ctx); err != nil {
		return Result{}, err
	}
	groups := map[string]*agg{}
	total := &agg{}
	f := store.RollupFilter{Level: q.level(), From: dayNum(q.From), To: dayNum(q.To), Plan: q.Plan, Vehicle: q.Vehicle, Driver: q.Driver}
	err := s.st.Rollups(ctx, f, func(r *store.Rollup) error {
		g := q.groupOf(r)
		if g == "" {
			return nil
		}
		a := groups[g]
		if a == nil {
			a = &agg{}
			groups[g] = a
		}
		before := a.c[cDistSum]
		if err := a.merge(r.Data); err != nil {
			return fmt.Errorf("%w (day %d, vehicle %q)", err, r.Day, r.Vehicle)
		}
		if a.dist == nil {
			a.dist = map[string]int64{}
		}
		a.dist[r.Class] += a.c[cDistSum] - before
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	keys := slices.SortedFunc(maps.Keys(groups), compareGroups(q.Group))
	res.Rows = make([]Row, 0, len(keys))
	for _, k := range keys {
		a := groups[k]
		total.add2(a)
		r := row(figure, k, a, s.co2kg(a))
		if q.Group == "h3" {
			r["boundary"] = boundary(k)
		}
		res.Rows = append(res.Rows, r)
	}
	res.Total = row(figure, "total", total, s.co2kg(total))
	if figure == "lateness" {
		res.Histogram = histogram(total)
	}
	return res, nil
}

// add2 adds another aggregate.
func (a *agg) add2(b *agg) {
	for i, v := range b.c {
		if i == cLateMax {
			a.c[i] = max(a.c[i], v)
		} else {
			a.c[i] += v
		}
	}
	if b.h != nil {
		if a.h == nil {
			a.h = new([nHists][HistMinutes + 1]int64)
		}
		for k := range b.h {
			for m, v := range b.h[k] {
				a.h[k][m] += v
			}
		}
	}
	for c, d := range b.dist {
		if a.dist == nil {
			a.dist = map[string]int64{}
		}
		a.dist[c] += d
	}
}

// co2kg is the emission estimate of an aggregate's planned distance: the
// distance of each class times its factor, summed in class order (so the
// same on every database, whatever the order of the rows).
func (s *Service) co2kg(a *agg) float64 {
	var g float64
	for _, c := range slices.Sorted(maps.Keys(a.dist)) {
		g += float64(a.dist[c]) / 1000 * s.emission(c)
	}
	return g / 1000
}

// boundary is the closed ring [[lon, lat], ...] of an H3 cell.
func boundary(cell string) [][2]float64 {
	c := h3.Cell(h3.IndexFromString(cell))
	b := c.Boundary()
	out := make([][2]float64, 0, len(b)+1)
	for _, p := range b {
		out = append(out, [2]float64{round6(p.Lng), round6(p.Lat)})
	}
	if len(out) > 0 {
		out = append(out, out[0])
	}
	return out
}

func round6(v float64) float64 { return float64(int64(v*1e6+copysign(0.5, v))) / 1e6 }

func copysign(a, b float64) float64 {
	if b < 0 {
		return -a
	}
	return a
}

// notifications counts the outbox's deliveries by outcome, grouped by
// channel or by the UTC day they were queued (other groupings and the
// filters do not apply to notifications).
func (s *Service) notifications(ctx context.Context, q Query, res Result) (Result, error) {
	switch q.Group {
	case "none", "day", "channel":
	default:
		return Result{}, errorf("InvalidValue", "group %q: notifications group by day or channel", q.Group)
	}
	if q.Plan != 0 || q.Vehicle != "" || q.Driver != "" || q.Cell != 0 {
		return Result{}, errorf("InvalidValue", "notifications take no plan, vehicle, driver or h3 filter")
	}
	counts, err := s.st.DeliveryCounts(ctx, q.From.UnixMilli(), q.To.AddDate(0, 0, 1).UnixMilli())
	if err != nil {
		return Result{}, err
	}
	groups := map[string]Row{}
	total := Row{"group": "total", "sent": int64(0), "skipped": int64(0), "dead": int64(0), "pending": int64(0), "retries": int64(0)}
	for _, c := range counts {
		g := "total"
		switch q.Group {
		case "day":
			g = time.UnixMilli(c.Day * 86400000).UTC().Format(time.DateOnly)
		case "channel":
			g = c.Channel
		}
		r := groups[g]
		if r == nil {
			r = Row{"group": g, "sent": int64(0), "skipped": int64(0), "dead": int64(0), "pending": int64(0), "retries": int64(0)}
			groups[g] = r
		}
		for _, x := range []Row{r, total} {
			if _, ok := x[c.State]; ok {
				x[c.State] = x[c.State].(int64) + c.Count
			}
			x["retries"] = x["retries"].(int64) + c.Retries
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(groups), naturalCompare) {
		res.Rows = append(res.Rows, groups[k])
	}
	if res.Rows == nil {
		res.Rows = []Row{}
	}
	res.Total = total
	return res, nil
}
