# kioskmon: `make run` starts the server with a simulated fleet, `make test` runs the tests.
GO       ?= go
BIN      := bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION) -X github.com/kioskmon/kioskmon/exporter.Version=$(VERSION)
EXPORTER_PLATFORMS := windows/amd64 linux/amd64 linux/arm64 linux/loong64
FUZZTIME ?= 15s

.PHONY: footprint help build exporter-all run test test-unit test-e2e bench bench-sla fuzz lint deps clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build the binaries into bin/
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

exporter-all: ## cross-build kiosk-exporter for every kiosk platform into bin/OS-ARCH/
	@for p in $(EXPORTER_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; echo "kiosk-exporter $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/$$os-$$arch/ ./cmd/kiosk-exporter || exit 1; \
	done

run: build ## run the server on its embedded defaults with a simulated fleet (Ctrl-C stops)
	bash scripts/run.sh

deps: ## install the Debian packages the tests and benchmarks use (idempotent)
	bash scripts/install-deps.sh test

test: deps build ## run every test: unit, fuzz seeds, end-to-end with real Prometheus
	$(GO) vet ./...
	KIOSKMON_REQUIRE_PEERS=1 $(GO) test -count=1 -timeout 20m ./...

test-unit: ## run the tests that need nothing installed
	$(GO) test -count=1 -short ./...

footprint: ## measure the kiosk exporter's peak RSS and CPU share (FOOTPRINT_DURATION, default 300 s)
	bash scripts/footprint.sh

bench: ## run the ingest benchmark against peers, the rule evaluation cost and the SLA report's; results in bench-results/
	bash scripts/bench.sh
	bash scripts/bench-rules.sh
	bash scripts/bench-sla.sh

bench-sla: ## the monthly SLA report over 1,000,000 incidents on SQLite and PostgreSQL (SLA_INCIDENTS, SLA_KIOSKS)
	bash scripts/bench-sla.sh

fuzz: ## run each fuzz test for FUZZTIME (default 15s)
	bash scripts/fuzz.sh $(FUZZTIME)

lint: ## gofmt check and go vet (and staticcheck if installed)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; fi

clean: ## remove build output and the demo's data
	rm -rf $(BIN) run bench-results
