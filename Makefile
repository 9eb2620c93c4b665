# switchover: the two commands the README gives, and a few helpers.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/switchover
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build test demo bench docs package package-check vet fmt clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/switchover

# The whole test suite: vet; the tests that need no server, with the race
# detector (what a plain `go test -race ./...` runs, in under a minute);
# every test again with real servers (SWITCHOVER_INTEGRATION=1); then the
# loader's fuzz targets for a bounded time (their seed corpus runs with
# every package above); last, under CI (CI=1, as .ci/run sets it), the
# Debian package installed and removed for real (package-check: as root
# with dpkg only; it installs into the machine, so not on a developer's). -timeout bounds a hung
# test binary, not the suite's speed: the longest package takes about 8
# minutes on an idle 2-core machine, and half as long again with both
# cores busy.
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
	@if [ -n "$$CI" ]; then $(MAKE) --no-print-directory package-check; \
	 else echo "make test: the package check installs into this machine, so it runs under CI only (CI=1); make package-check runs it"; fi

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

# The generated documentation: the check and step reference (docs/reference),
# rendered from the registered checks and steps. The same test without
# -update (part of every go test ./...) fails when a page is stale.
docs:
	$(GO) test ./internal/docs -run TestReference -count=1 -update

# The Debian package, bin/switchover_<version>_<arch>.deb: the binary built
# as `make build` does, a man page per command, bash, zsh and fish
# completions, README and copyright (.ci/package stages the tree). The
# version is VERSION made Debian-valid: 0.0~git20261207.97b4278 before the
# first tag, 1.4.0 at tag v1.4.0, 1.4.0+git20261207.abc1234 after it.
DEB_VERSION = $(shell bash .ci/package --deb-version '$(VERSION)')
DEB_ARCH = $(shell dpkg --print-architecture 2>/dev/null)
DEB = bin/switchover_$(DEB_VERSION)_$(DEB_ARCH).deb
package: build
	@command -v dpkg >/dev/null 2>&1 || { echo "make package: needs dpkg (a Debian or Ubuntu machine)" >&2; exit 1; }
	GO=$(GO) bash .ci/package $(BIN) '$(DEB_VERSION)' $(DEB_ARCH) $(DEB)
	@echo "$(DEB): $$(stat -c %s $(DEB)) bytes"

# The package as a user gets it: install it with dpkg -i, run the binary,
# find the man pages, complete in a login shell's bash, remove it with
# dpkg -r and see nothing left; the package is removed also when a check
# fails. It installs into the machine itself, so it runs as root with dpkg
# only (CI, a throwaway machine); anyone else is told it was skipped.
ifeq ($(shell id -u)-$(shell command -v dpkg >/dev/null 2>&1 && echo dpkg),0-dpkg)
package-check: package
	bash .ci/package-check $(DEB) '$(VERSION)'
else
package-check:
	@echo "make package-check: skipped: installing the package needs root and dpkg"
endif

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
