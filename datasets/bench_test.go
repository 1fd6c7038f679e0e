package datasets

import (
	"bytes"
	"os"
	"testing"
)

func benchRead(b *testing.B, parse func(*bytes.Reader) error, parts ...string) {
	path := Require(b, parts...)
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := parse(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadSolomon1000(b *testing.B) {
	benchRead(b, func(r *bytes.Reader) error { _, err := ReadSolomon(r); return err }, "vrp", "homberger", "c1_10_1.txt")
}

func BenchmarkReadCVRP1001(b *testing.B) {
	benchRead(b, func(r *bytes.Reader) error { _, err := ReadCVRP(r); return err }, "vrp", "cvrplib", "X-n1001-k43.vrp")
}

func BenchmarkReadTracesPorto(b *testing.B) {
	benchRead(b, func(r *bytes.Reader) error { _, err := ReadTraces(r); return err }, "traces", "normalised", "porto_taxi_train-1000.csv")
}
