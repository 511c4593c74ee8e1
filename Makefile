# keyward: `make help` lists the targets.

MODULE   := github.com/keyward/keyward
COMMIT   := $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS  := -s -w -X $(MODULE)/internal/version.Commit=$(COMMIT)
CACHE    := $(CURDIR)/.cache
TOOLS    := $(CACHE)/tools/bin
GO       ?= go
# Every test that needs notation, a registry or SoftHSM finds them here.
export KEYWARD_TOOLS_BIN := $(TOOLS)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/notation-keyward and bin/keyward
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/notation-keyward ./cmd/notation-keyward
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/keyward ./cmd/keyward

.PHONY: tools
tools: ## install the tools tests need (notation v1.3.2, registries, SoftHSM2, redis-server, kube-apiserver + etcd, helm, opa, Ratify v1.4.0, cosign v2.4.3, chromium) into .cache/
	@bash scripts/tools.sh
	@bash scripts/tools-redis.sh
	@bash scripts/tools-k8s.sh
	@bash scripts/tools-helm.sh
	@bash scripts/tools-opa.sh
	@bash scripts/tools-ratify.sh
	@bash scripts/tools-cosign.sh
	@bash scripts/tools-chromium.sh

.PHONY: test
test: tools ## run every test, with the race detector (installs tools first)
	$(GO) test -race -count=1 -timeout 20m ./...
	cd test/gatekeeper && $(GO) test -race -count=1 -timeout 5m ./...

.PHONY: demo
demo: build tools ## sign and verify a sample artifact in an OCI layout with a throw-away key
	@bash scripts/demo.sh

.PHONY: bench
bench: build tools ## run the benchmarks and print ratios against notation
	@bash scripts/bench.sh

.PHONY: fuzz
fuzz: ## run every fuzz target briefly (FUZZTIME=10s)
	@bash scripts/fuzz.sh $(or $(FUZZTIME),10s)

.PHONY: lint
lint: tools ## gofmt, go vet and staticcheck (installs tools first)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd test/gatekeeper && $(GO) vet ./...
	$(TOOLS)/staticcheck ./...

.PHONY: clean
clean: ## remove bin/ and the tool cache .cache/
	rm -rf bin .cache
