# switchover: the two commands the README gives, and a few helpers.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/switchover
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build test demo bench vet fmt clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/switchover

# The whole test suite: vet; the tests that need no server, with the race
# detector (what a plain `go test -race ./...` runs, in under a minute);
# every test again with real servers (SWITCHOVER_INTEGRATION=1); then the
# loader's fuzz targets for a bounded time (their seed corpus runs with
# every package above). -timeout bounds a hung test binary, not the
# suite's speed: the longest package takes about 8 minutes on an idle
# 2-core machine, and half as long again with both cores busy.
FUZZTIME ?= 20s
# The loader's fuzz targets; a target that is not there fails the run
# (go test -fuzz that matches nothing passes, fuzzing nothing).
FUZZ_PKG = ./runbook/spec
FUZZ_TARGETS = FuzzLoadRunbook FuzzLoadInventory FuzzLoadFleet
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 5m ./...
	SWITCHOVER_INTEGRATION=1 $(GO) test -count=1 -timeout 30m ./...
	@for f in $(FUZZ_TARGETS); do \
	  $(GO) test $(FUZZ_PKG) -list "^$$f$$" | grep -qx "$$f" || { echo "make test: $(FUZZ_PKG) has no fuzz target $$f" >&2; exit 1; }; \
	  echo "$(GO) test $(FUZZ_PKG) -run '^$$' -fuzz '^$$f$$' -fuzztime $(FUZZTIME)"; \
	  $(GO) test $(FUZZ_PKG) -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

# The main job, end to end with the binary: check (as root: install) what
# the sandbox needs, bring up a sandbox cluster
# (pg1 primary, pg2 and pg3 standbys, PgBouncer in front), switch the
# primary to pg2 with the shipped playbook, without a terminal, show the
# resulting topology, and bring the sandbox down (also when a step fails).
SANDBOX_PORT ?= 54320
demo: build
	@set -e; sb=/tmp/switchover-demo-$$$$; j=$$(mktemp -d); \
	trap './$(BIN) sandbox down --dir "'$$sb'" >/dev/null 2>&1 || true; rm -rf "'$$j'"' EXIT; \
	echo "== switchover sandbox prereqs --install (root installs what is missing; anyone else is told the command)"; \
	./$(BIN) sandbox prereqs --install; \
	echo; echo "== switchover sandbox up"; \
	./$(BIN) sandbox up --dir $$sb --port-base $(SANDBOX_PORT); \
	echo; echo "== switchover run postgres-streaming-switchover --yes (no terminal)"; \
	./$(BIN) run postgres-streaming-switchover -i $$sb/inventory.yaml --yes --journal-dir $$j </dev/null; \
	echo; echo "== switchover sandbox status"; \
	./$(BIN) sandbox status --dir $$sb; \
	echo; echo "== switchover sandbox down"; \
	./$(BIN) sandbox down --dir $$sb

# The measures that matter (DESIGN.md), on real sandbox clusters: RUNS round
# trips pg1 -> pg2 -> pg1 with the canary through PgBouncer, RUNS without a
# pooler, the patroni-switchover playbook beside plain patronictl when
# Patroni is installed, and the preflight alone with 2 and with 8 standbys.
# The last line printed is one JSON object with the figures. The harness
# is cmd/switchover-bench, a tool of the project, not the product; its
# tests run with `make test`, the benchmark itself does not.
RUNS ?= 5
bench: build
	$(GO) run ./cmd/switchover-bench -runs $(RUNS)

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
