package analytics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
)

// BenchmarkFigure times figures over 30 synthetic days of 9,000 stops
// (30 vans, 12 hours, stops spread over Porto) on SQLite, warm.
func BenchmarkFigure(b *testing.B) {
	ring, _ := seal.NewRing(seal.GenerateKey(1))
	st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "s.db"), store.Options{Ring: ring})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s := New(Config{Store: st})
	rng := rand.New(rand.NewPCG(1, 1))
	start := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC).Unix()
	var in []FactInput
	for d := range 30 {
		for i := range 9000 {
			v := i % 30
			arr := start + int64(d)*86400 + int64(i/30)*140
			drive := int64(rng.IntN(300))
			in = append(in, FactInput{ID: fmt.Sprintf("%d-%d", d, i), Plan: int64(d + 1), Vehicle: fmt.Sprintf("van-%d", v+1),
				Driver: fmt.Sprintf("driver-%d", (v+d)%37), Tracking: "T", TimeZone: "Europe/Lisbon",
				Location: [2]float64{-8.66 + float64(v%6)*0.02 + rng.Float64()*0.02, 41.13 + float64(v/6)*0.01 + rng.Float64()*0.01},
				Status:   "delivered", Attempt: 1, TimeWindow: &[2]int64{arr - 3600, arr + 600 - int64(rng.IntN(1200))},
				Arrival: arr, Done: arr + 60, Service: 60, Drive: &drive, PlannedDistance: 500, ETA30: arr + int64(rng.IntN(600)) - 300})
		}
	}
	if _, err := s.Import(context.Background(), in, time.UTC); err != nil {
		b.Fatal(err)
	}
	q := Query{From: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 2, 3, 0, 0, 0, 0, time.UTC), Res: RollupRes}
	if _, err := s.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, g := range []string{"none", "hour", "h3", "vehicle"} {
		q.Group = g
		b.Run(g, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Figure(context.Background(), "on_time", q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	q.Group, q.Vehicle = "hour", "van-3"
	b.Run("hour-van", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Figure(context.Background(), "on_time", q); err != nil {
				b.Fatal(err)
			}
		}
	})
}
