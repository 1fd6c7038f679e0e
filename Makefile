# lastmile: route optimisation, ETA and last-mile tracking engine.
# `make run` and `make test` are the two commands of the README's first screen.

GO            ?= go
LASTMILE_DATA ?= $(abspath ../shared/datasets)
export LASTMILE_DATA
BIN           := bin/lastmile
ADDR          ?= 127.0.0.1:5000
# The default dataset: Porto when the shared datasets are beside the repo,
# else the Monaco extract committed in datasets/osm (ODbL, see its NOTICE).
OSM           ?= $(firstword $(wildcard $(LASTMILE_DATA)/osm/porto.osm.pbf) datasets/osm/monaco.osm.pbf)
GRAPH         ?= var/$(basename $(basename $(notdir $(OSM)))).lmg

.PHONY: all build run test vet fuzz bench bench-gate clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/lastmile

$(GRAPH): $(OSM) | build
	@mkdir -p var
	$(BIN) prepare $(OSM) -o $(GRAPH)

# Prepare the default dataset, start the server and print an example request.
# The dispatch state (SQLite), its data key and an admin API key created on
# first start live in var/state; --demo replays a simulated delivery day
# through the API to watch.
run: build $(GRAPH)
	$(BIN) serve --graph $(GRAPH) --addr $(ADDR) --state var/state --admin-key-file var/state/admin.key --public-routing --example --demo

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# Unit, reference and end-to-end tests (the real extracts in LASTMILE_DATA;
# tests skip with a message where a file is missing).
test: vet
	$(GO) test -count=1 -timeout 25m ./...

# Short coverage-guided fuzzing of every parser (input minimisation is
# capped: with the default 60 s a run can look stuck on this machine).
FUZZTIME ?= 20s
fuzz:
	@for p in $$(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$p/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$p $$f"; $(GO) test ./$$p -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 3s || exit 1; \
	  done; \
	done

# The quick benchmark gate (under 3 minutes): fails when a ratio measured in
# this run falls below its floor.
bench-gate: build
	$(BIN) bench gate

# The full benchmarks recorded in bench/RESULTS.md.
bench: build
	$(BIN) bench route --graph $(LASTMILE_DATA)/osm/porto.osm.pbf

clean:
	rm -rf bin var
