# meshcd — GitOps for Istio ambient mesh. `make help` lists the targets.
SHELL := /usr/bin/env bash
BIN   ?= $(CURDIR)/bin
GO    ?= go

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Build the local control plane (kube-apiserver, etcd, kwok, istiod, ...) from Go modules into bin/.
	BIN=$(BIN) hack/tools/build.sh

.PHONY: build
build: ## Build bin/meshcd.
	$(GO) build -o $(BIN)/meshcd ./cmd/meshcd

# The image's name and versioned tag: the v* tag of HEAD, or v0.0.0-<commit>,
# with -dirty when the work tree has changes.
IMAGE   ?= ghcr.io/meshcd/meshcd
VERSION ?= $(shell git describe --tags --match 'v*' --exact-match 2>/dev/null || echo v0.0.0-$$(git rev-parse --short HEAD))$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
DIST    ?= $(CURDIR)/dist
# meshcd version reports the image's version and commit.
VERSION_LDFLAGS = -X github.com/meshcd/meshcd/internal/version.Version=$(VERSION) -X github.com/meshcd/meshcd/internal/version.Commit=$$(git rev-parse HEAD)

.PHONY: image
image: ## Build the container image tarball dist/meshcd-image.tar (IMAGE:VERSION) without a container daemon.
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w $(VERSION_LDFLAGS)" -o $(DIST)/meshcd ./cmd/meshcd
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) $(GO) run ./hack/image --binary $(DIST)/meshcd \
		--tag $(IMAGE):$(VERSION) --revision $$(git rev-parse HEAD) --out $(DIST)/meshcd-image.tar

.PHONY: test
test: tools ## Run go vet and every test, against a real local control plane.
	$(GO) vet ./...
	MESHCD_REQUIRE_CLUSTER=1 $(GO) test -timeout 30m ./...

.PHONY: bench
bench: tools ## Run the benchmarks, print their figures and write docs/benchmarks.md (MESHCD_BENCH_SCALE=20x10 MESHCD_BENCH_MEMORY_SCALE=40x5 for a quick run).
	MESHCD_REQUIRE_CLUSTER=1 MESHCD_BENCH_REPORT=$(CURDIR)/docs/benchmarks.md $(GO) test -run '^$$' -bench . -benchmem -timeout 100m ./...

.PHONY: fault
fault: tools ## Run the long fault-injection suite (about 4 minutes); write its table to docs/reliability.md, passed or failed, and print its summary line.
	MESHCD_REQUIRE_CLUSTER=1 MESHCD_FAULTS=long MESHCD_FAULTS_REPORT=$(CURDIR)/docs/reliability.md $(GO) test -count=1 -timeout 60m ./internal/faults; \
	status=$$?; grep '^faults: ' docs/reliability.md; exit $$status

# Each fuzz target runs for FUZZTIME; a new input is minimized for at most
# FUZZMINIMIZE runs, so that the time goes to fuzzing rather than shrinking.
FUZZTIME     ?= 20s
FUZZMINIMIZE ?= 100x

.PHONY: fuzz
fuzz: ## Fuzz the spec loader, the renderer and the Markdown plan one after another, FUZZTIME (20s) each.
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./meshspec
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./renderer
	$(GO) test -run '^$$' -fuzz '^FuzzMarkdown$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./reconciler/plan

.PHONY: cluster-up
cluster-up: tools ## Start a local cluster in .cluster/ and leave it running (KUBECONFIG=.cluster/kubeconfig).
	$(GO) run ./hack/cluster up --dir .cluster --detach

.PHONY: cluster-down
cluster-down: ## Stop the cluster started by cluster-up.
	$(GO) run ./hack/cluster down --dir .cluster

.PHONY: demo
demo: tools build ## The main job end to end on a local cluster and the bundled examples.
	$(GO) run ./hack/demo
