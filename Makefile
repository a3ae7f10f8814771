# memento — see README.md. Every target works on a fresh machine with Go installed.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build test test-short chaos chaos-corruption chaos-kill chaos-agent chaos-delete chaos-env demo bench bench-quick bench-smoke fuzz vet clean drill

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/memento ./cmd/memento
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/engram-sim ./cmd/engram-sim

# staticcheck at a pinned version, installed into a project-local directory
# (ignored by git) on first use; bump STATICCHECK_VERSION deliberately.
STATICCHECK_VERSION := v0.8.2
TOOLS_BIN           := .cache/bin
STATICCHECK         := $(TOOLS_BIN)/staticcheck-$(STATICCHECK_VERSION)

$(STATICCHECK):
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(abspath $(TOOLS_BIN)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS_BIN)/staticcheck $@

vet: $(STATICCHECK)
	$(GO) vet ./...
	$(STATICCHECK) ./...

# The test command of the README and of CI: vet (go vet and staticcheck), then every test with the race detector.
test: vet
	$(GO) test -race -count=1 -timeout 45m ./...

test-short:
	$(GO) test -short -count=1 ./...

# The chaos tests at full size, not part of make test (which runs a smoke
# case of each): CHAOS_TRIALS corruption trials and CHAOS_KILLS kill -9
# points; each writes its markdown report to CHAOS_OUT, ready to paste into
# docs/verification.md. `make -j2 chaos` runs the two side by side.
CHAOS_TRIALS ?= 1000
CHAOS_KILLS  ?= 100
CHAOS_OUT    ?= $(BIN)/chaos
CHAOS_AGENT_KILLS ?= 60
CHAOS_DELETES     ?= 50
chaos: chaos-corruption chaos-kill chaos-agent chaos-delete chaos-env
	@cat $(CHAOS_OUT)/corruption.md $(CHAOS_OUT)/kill.md $(CHAOS_OUT)/agent.md $(CHAOS_OUT)/delete.md $(CHAOS_OUT)/env.md

chaos-corruption:
	@mkdir -p $(CHAOS_OUT)
	rm -f $(CHAOS_OUT)/corruption.md
	MEMENTO_CHAOS_TRIALS=$(CHAOS_TRIALS) MEMENTO_CHAOS_REPORT=$(abspath $(CHAOS_OUT))/corruption.md \
	  $(GO) test -count=1 -timeout 120m -run '^TestChaosCorruptionIsDetectedNeverRestored$$' ./repo/verify/

chaos-kill:
	@mkdir -p $(CHAOS_OUT)
	rm -f $(CHAOS_OUT)/kill.md
	MEMENTO_CHAOS_KILLS=$(CHAOS_KILLS) MEMENTO_CHAOS_KILL_REPORT=$(abspath $(CHAOS_OUT))/kill.md \
	  $(GO) test -count=1 -timeout 300m -v -run '^TestChaosKill$$' ./cmd/memento/

# SIGKILL of `memento agent` and `memento wal watch` while engram-sim writes.
chaos-agent:
	@mkdir -p $(CHAOS_OUT)
	rm -f $(CHAOS_OUT)/agent.md
	MEMENTO_CHAOS_AGENT_KILLS=$(CHAOS_AGENT_KILLS) MEMENTO_CHAOS_AGENT_REPORT=$(abspath $(CHAOS_OUT))/agent.md \
	  $(GO) test -count=1 -timeout 120m -v -run '^TestChaosAgentKill$$' ./cmd/memento/

# Random deletion of repository objects, healed from a replica.
chaos-delete:
	@mkdir -p $(CHAOS_OUT)
	rm -f $(CHAOS_OUT)/delete.md
	MEMENTO_CHAOS_DELETES=$(CHAOS_DELETES) MEMENTO_CHAOS_DELETE_REPORT=$(abspath $(CHAOS_OUT))/delete.md \
	  $(GO) test -count=1 -timeout 120m -v -run '^TestChaosDeleteHealFromReplica$$' ./cmd/memento/

# The environment's faults: full disks (tmpfs, needs root) and a bad network
# to MinIO (the fault proxy of repo/backend/s3/miniotest).
chaos-env:
	@mkdir -p $(CHAOS_OUT)
	rm -f $(CHAOS_OUT)/env.md
	MEMENTO_CHAOS_ENV=1 MEMENTO_CHAOS_ENV_REPORT=$(abspath $(CHAOS_OUT))/env.md \
	  $(GO) test -count=1 -timeout 60m -v -run '^TestChaos(DiskFull|Network)' ./cmd/memento/

# Generate an Engram data dir, back it up, restore a point in time, verify it.
demo: build
	./scripts/demo.sh

# Full comparison with restic, borg and tar|zstd (docs/benchmarks.md) on every data
# profile (BENCH_PROFILES="default wal-heavy gosrc"); BENCH_SIZE=10G works;
# BENCH_PROFILES=wal-heavy make bench runs one profile.
bench: build
	./scripts/bench.sh

bench-quick: build
	BENCH_SIZE=256M ./scripts/bench.sh

# A tiny run of every profile, memento and restic only, for make test: restic
# is installed with apt-get if it can be, else its rows are skipped, unless
# CI is set (then a missing restic is an error). Writes to its own work dir.
BENCH_SMOKE_DIR ?= /tmp/memento-bench-smoke
bench-smoke: build
	BENCH_SIZE=$${BENCH_SIZE:-24M} BENCH_RUNS=1 BENCH_TOOLS="memento restic" BENCH_GO=0 BENCH_S3=0 \
	  BENCH_PITR100=0 BENCH_EMB_BYTES=$$((8 << 20)) BENCH_DIR=$(BENCH_SMOKE_DIR) BENCH_TIMEOUT=600 ./scripts/bench.sh

# Peak RSS of every memento operation (and restic's backup and restore) on
# one 10 GiB wal-heavy data dir, once each; fails when a memento operation
# reaches 300 MiB (issue 18). RSS_PROFILE, RSS_SIZE, RSS_DIR: scripts/bench-rss.sh.
.PHONY: bench-rss
bench-rss: build
	./scripts/bench-rss.sh

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

# The disaster-recovery drills at full size (docs/operations/disaster-recovery.md):
# every scenario of the runbook on a DRILL_SIZE data dir under live writes, with
# MinIO as the replica; the results table goes to DRILL_OUT/results.md.
# `go test ./deploy/drill/` (part of make test) runs a small case of each.
DRILL_SIZE ?= 1G
DRILL_OUT  ?= $(BIN)/drill
drill:
	@mkdir -p $(DRILL_OUT)
	DRILL_SIZE=$(DRILL_SIZE) DRILL_REPORT=$(abspath $(DRILL_OUT))/results.md \
	  $(GO) test -count=1 -timeout 300m -v -run '^TestDrill$$' ./deploy/drill/
	@cat $(DRILL_OUT)/results.md

# How far WAL archiving lags the writer (BenchmarkAgentRPO): the agent on an
# engram-sim data dir written at 300 entries/s for RPO_SECONDS seconds, with
# the default and with compressed schedules; prints p50/p99/max lag per
# flushed batch, the p99 of memento_wal_rpo_lag_seconds, CPU per archived
# entry and archive runs per second. Also the cost of one archive run that
# ships one new entry (BenchmarkWALArchiveCycleOneEntry).
RPO_SECONDS ?= 30
.PHONY: bench-rpo
bench-rpo:
	$(GO) test -run '^$$' -bench '^BenchmarkAgentRPO$$' -benchtime $(RPO_SECONDS)x -timeout 30m ./repo/agent/
	$(GO) test -run '^$$' -bench '^BenchmarkWALArchiveCycleOneEntry$$' -benchtime 300x ./repo/walarchive/
