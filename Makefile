# ecmplb — see README.md. Heavy, pinned artefacts (Kubernetes, etcd, tools)
# are cached in $(ECMPLB_CACHE), outside the repository.
SHELL := /bin/bash
ECMPLB_CACHE ?= /var/cache/ecmplb
export ECMPLB_CACHE
TOOLS := $(ECMPLB_CACHE)/tools/bin
CONTROLLER_GEN := $(TOOLS)/controller-gen
CONTROLLER_GEN_VERSION := v0.19.0
STATICCHECK := $(TOOLS)/staticcheck
STATICCHECK_VERSION := v0.8.2
BIN := bin
GO_TEST_FLAGS ?=

.PHONY: all deps build test e2e node-image kind-smoke unit lint generate verify-generate tools kube lab bench-controller bench-speaker bench-bfd bench-lab bench-l2 bench-faults images manifests clean

all: build

## build: compile ecmplb-controller, ecmplb-speaker and fabric into ./bin
build:
	CGO_ENABLED=0 go build -o $(BIN)/ecmplb-controller ./controller
	CGO_ENABLED=0 go build -o $(BIN)/ecmplb-speaker ./speaker
	CGO_ENABLED=0 go build -o $(BIN)/fabric ./fabric

## images: OCI image archives of ecmplb-controller, ecmplb-speaker and ecmplb-echo (amd64 + arm64, no Docker) in bin/images
IMAGE_TAG ?= dev
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
images:
	go run ./deploy/cmd/images -o $(BIN)/images -tag $(IMAGE_TAG) -platforms $(IMAGE_PLATFORMS)

## manifests: render the Helm chart with default values into deploy/ecmplb.yaml (and copy the CRDs into the chart)
manifests:
	go generate ./deploy

## deps: install the Debian packages the tests and the lab need (FRR, gobgp CLI, nftables)
deps:
	hack/install-deps.sh

## kube: build (or reuse from the cache) the pinned kube-apiserver & co and etcd
kube:
	hack/build-kube.sh >/dev/null
	hack/build-etcd.sh >/dev/null

## test: every unit and integration test (real apiserver, namespaces, FRR), then
## the scenario suite on its own: its BFD timings (300 ms x 3) must not share
## the two cores with other packages' tests
test: deps kube verify-generate
	go vet ./...
	go test -count=1 -timeout 40m $(GO_TEST_FLAGS) $$(go list ./... | grep -vx 'github.com/ecmplb/ecmplb/scenarios')
	@stamp=$$(mktemp); go test -count=1 -p 1 -timeout 40m $(GO_TEST_FLAGS) ./scenarios/ || \
	  { status=$$?; hack/report-failures.sh $$stamp; rm -f $$stamp; exit $$status; }; rm -f $$stamp

## lab: the main job — fabric + real speakers + controller, example manifests, drills, report
lab: deps kube
	go run ./scenarios/cmd/lab

## bench-lab: the lab at scale (100 nodes, 5,000 Services): convergence time (RIB and kernel FIB) and memory of every process
bench-lab: deps kube
	go run ./scenarios/cmd/lab -nodes 100 -services 5000

## bench-l2: layer 2 mode on the lab (5 nodes, 100 Services, MetalLB's plain L2Advertisement): spread of the IPs over the nodes,
## failover time over 20 node failures (cut-link; BENCH_L2_FLAGS='-fault freeze-speaker' etc.), one owner at a time; PASS/FAIL per goal
BENCH_L2_FLAGS ?=
bench-l2: deps kube
	go run ./scenarios/cmd/lab -l2-bench $(BENCH_L2_FLAGS)

## bench-controller: allocation backlog, 10,000-Service burst, restart, memory against the real apiserver
bench-controller: kube
	go run ./controller/bench

## bench-speaker: EndpointSlice→route latency at 1 and 10,000 Services (status writes in flight and settled) against the floor, status lag, speaker memory; PASS/FAIL per goal
bench-speaker: kube
	go run ./speaker/bench

## bench-bfd: time from a peer falling silent to our BFD Down (20 trials, 300ms x3 and 50ms x3; ours vs ours, then vs FRR bfdd)
bench-bfd: deps
	go run ./bfd/bfdbench -trials 20
	go run ./bfd/bfdbench -trials 20 -peer frr

## bench-faults: the lab fault suite at 100 cycles per fault (apiserver outage: 3 of 30 s), recovery distributions
bench-faults: deps kube
	ECMPLB_FAULT_CYCLES=$${ECMPLB_FAULT_CYCLES:-100} ECMPLB_APISERVER_DOWN_CYCLES=$${ECMPLB_APISERVER_DOWN_CYCLES:-3} \
	  go test -count=1 -timeout 6h -v ./scenarios/ -run TestScenarios -ginkgo.label-filter=faults

## scenarios: the scenario files (scenarios/catalogue/*.yaml and the README example) on the lab;
## SCENARIOS=path/to/file.yaml runs one file, LABELS='bfd && !restart' selects by label
.PHONY: scenarios
scenarios: deps kube
	SCENARIOS="$(SCENARIOS)" go test -count=1 -timeout 30m -v ./scenarios/ -run TestScenarios \
	  -ginkgo.label-filter='scenario-file$(if $(LABELS), && ($(LABELS)))'

## node-image: the offline kind node image (installs and starts Docker if needed; ~2 min, cached)
node-image: kube
	hack/build-node-image.sh

## e2e: the kind backend. The offline node image and the image archives (rebuilt
## only when a Go source is newer), the pod-network test (1 control plane, 2
## workers: pod network, DNS, Services), then the scenario files on one kind
## cluster with ecmplb deployed from the chart (ECMPLB_BACKEND=kind; LABELS
## narrows them as for make scenarios), and a check that nothing is left behind
E2E_IMAGES := $(foreach i,ecmplb-controller ecmplb-speaker ecmplb-echo,$(BIN)/images/$(i).tar)
E2E_SOURCES := $(shell git ls-files '*.go' go.mod go.sum 2>/dev/null)
# The cluster runs this machine's architecture only: half the cold build of make images.
E2E_PLATFORMS ?= linux/$(shell go env GOARCH)
$(E2E_IMAGES) &: $(E2E_SOURCES)
	go run ./deploy/cmd/images -o $(BIN)/images -tag $(IMAGE_TAG) -platforms $(E2E_PLATFORMS)
# NODE_IMAGE=kindest/node:v1.34.0 uses kind's stock node image instead of
# building the offline one (needs a reachable registry).
NODE_IMAGE ?=
e2e: $(if $(NODE_IMAGE),,node-image) $(E2E_IMAGES)
	@export ECMPLB_NODE_IMAGE='$(NODE_IMAGE)'; status=0; stamp=$$(mktemp); before=$$(mktemp); \
	hack/e2e-leftovers.sh --list > $$before; \
	go test -tags kind -count=1 -v -timeout 20m ./scenarios/kind/ || status=1; \
	ECMPLB_BACKEND=kind go test -count=1 -p 1 -timeout 60m ./scenarios/ -run TestScenarios \
	  -ginkgo.label-filter='scenario-file$(if $(LABELS), && ($(LABELS)))' || status=1; \
	hack/e2e-leftovers.sh --before $$before || status=1; \
	hack/report-failures.sh $$stamp; rm -f $$stamp $$before; \
	exit $$status

## kind-smoke: create a kind cluster, print its nodes and pods, delete it
kind-smoke: node-image
	go run ./kindconfig/cmd/kindsmoke

## unit: the fast tests only (no root, no apiserver)
unit:
	go test -short -count=1 ./...

## lint: vet, gofmt and staticcheck
lint: tools
	go vet ./...
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(STATICCHECK) ./...

## generate: deepcopy and CRD manifests from api/ types
generate: tools
	$(CONTROLLER_GEN) object paths=./api/... crd:crdVersions=v1 output:crd:artifacts:config=deploy/crds

## verify-generate: fail when generated files are out of date
verify-generate: generate
	@git diff --exit-code -- api deploy/crds || { echo "generated files are stale: run make generate and commit"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- api deploy/crds); \
	  if [ -n "$$untracked" ]; then echo "generated files not committed: $$untracked"; exit 1; fi

## tools: install pinned code generators and linters into the cache
tools: $(CONTROLLER_GEN) $(STATICCHECK)
$(CONTROLLER_GEN):
	GOBIN=$(TOOLS) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
$(STATICCHECK):
	GOBIN=$(TOOLS) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

clean:
	rm -rf $(BIN) reports/out
