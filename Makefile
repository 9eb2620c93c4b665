# switchover: the two commands the README gives, and a few helpers.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/switchover
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build test demo vet fmt clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/switchover

# The whole test suite: vet, then every package, bounded.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

# The main job, end to end with the binary: validate, rehearse, run and
# list the shipped example runbook in a scratch directory.
demo: build
	@set -e; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; \
	echo "== switchover validate example"; ./$(BIN) validate example; \
	echo; echo "== switchover plan example (dry run: changes nothing)"; \
	./$(BIN) plan example --var dir=$$d --journal-dir $$d/journal; \
	echo; echo "== switchover run example --yes"; \
	./$(BIN) run example --var dir=$$d --yes --journal-dir $$d/journal; \
	echo; echo "== what the run wrote to $$d/log"; cat $$d/log; \
	echo; echo "== switchover runs"; ./$(BIN) runs --journal-dir $$d/journal

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
