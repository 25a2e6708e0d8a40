# The index of what a developer can do. `make help` lists it.
SHELL := /bin/bash
GO ?= go
BIN := bin/cairn
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GOFLAGS_BUILD := -trimpath -ldflags "-X main.version=$(VERSION)"

.PHONY: all build deps tools test bench e2e fmt vet help clean

all: build ## the main job: build cairn, then the default stack's images into out/
	$(BIN) build

build: deps ## build bin/cairn
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/cairn

deps: ## install the Debian packages cairn and its tests need
	@scripts/install-deps.sh

tools: ## install the pinned Go tools the tests check outputs with (syft)
	@scripts/install-test-tools.sh

test: deps tools vet ## run every test (as root the namespace and unpack tests run too)
	$(GO) test -race -count=1 ./...

e2e: deps tools ## build the default stack for real, twice, and check the images (minutes)
	CAIRN_E2E=1 $(GO) test -count=1 -timeout 40m -run TestEndToEnd -v ./cmd/cairn

bench: deps ## measure against reference tools in the same run (see docs/bench.md)
	$(GO) test -run '^$$' -bench . -benchtime 20x -count 1 $$($(GO) list ./... | grep -v /pkg/seed)
	$(GO) test -run '^$$' -bench . -benchtime 2x -count 1 ./pkg/seed
	$(MAKE) build
	scripts/bench-build.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

clean: ## remove build outputs (not the store)
	rm -rf bin out

help:
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
