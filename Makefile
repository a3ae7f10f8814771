# memento — see README.md. Every target works on a fresh machine with Go installed.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build test test-short demo bench bench-quick fuzz vet clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/memento ./cmd/memento
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/engram-sim ./cmd/engram-sim

vet:
	$(GO) vet ./...

# The test command of the README and of CI: vet, then every test with the race detector.
test: vet
	$(GO) test -race -count=1 -timeout 45m ./...

test-short:
	$(GO) test -short -count=1 ./...

# Generate an Engram data dir, back it up, restore a point in time, verify it.
demo: build
	./scripts/demo.sh

# Full comparison with restic, borg and tar|zstd (docs/benchmarks.md); BENCH_SIZE=10G works.
bench: build
	./scripts/bench.sh

bench-quick: build
	BENCH_SIZE=256M ./scripts/bench.sh

# A short run of every fuzz target (FUZZTIME per target).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BIN)
