# perturb: `make run` installs what is missing and runs the quickstart;
# `make test` runs the test suite (what CI runs).

GO       ?= go
BIN      := bin/perturb
DATA_DIR ?= /usr/share/datasets/fashion-mnist
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build build-gpu cuda-check blas data check-go run test test-purego test-slurm vet fuzz bench bench-go clean reproduction

# OpenBLAS (Debian's libopenblas-dev) behind gonum and gorgonia: the build
# tag openblas links it; without the tag everything runs on gonum's pure Go.
TAGS ?= openblas
GOFLAGS_TAGS := $(if $(TAGS),-tags $(TAGS))

all: build

check-go:
	@command -v $(GO) >/dev/null 2>&1 || { echo "Go 1.21 or newer is needed (go.mod asks for 1.26, fetched automatically by Go >= 1.21): install it from https://go.dev/dl and put it on PATH"; exit 1; }

build: check-go $(if $(filter openblas,$(TAGS)),blas)
	$(GO) build $(GOFLAGS_TAGS) -o $(BIN) ./cmd/perturb

# The GPU build (tag gpu, never gorgonia's cuda tag): needs the CUDA
# toolkit's headers and libraries (cuda, cublas, nvrtc); see docs/gpu.md.
build-gpu: check-go
	$(GO) build -tags gpu$(if $(TAGS),$(comma)$(TAGS)) -o bin/perturb-gpu ./cmd/perturb

# Compile and link the GPU build here against Debian's CUDA 11.8 (installs
# nvidia-cuda-dev and libcuda1 from non-free when missing): CI catches a
# broken GPU build without a GPU.
cuda-check: check-go
	bash scripts/cuda-check.sh

comma := ,

# Install OpenBLAS's development files when they are missing.
blas:
	@if [ -z "$$(ls /usr/lib/libopenblas.so /usr/lib/*/libopenblas.so 2>/dev/null)" ]; then \
		echo "installing libopenblas-dev"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libopenblas-dev; \
	fi

# The real Fashion-MNIST, from Debian's dataset-fashion-mnist package.
data:
	@if [ ! -f $(DATA_DIR)/train-images-idx3-ubyte.gz ] && [ ! -f $(DATA_DIR)/train-images-idx3-ubyte ]; then \
		echo "installing dataset-fashion-mnist into $(DATA_DIR)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; \
	fi

# The quickstart: run (or resume) the sweep, summarise it, estimate the
# landscape statistics and write the report (runs/quickstart/report/report.md).
run: data build
	./$(BIN) run configs/quickstart.toml --out runs/quickstart
	./$(BIN) summarize runs/quickstart
	./$(BIN) stats runs/quickstart
	./$(BIN) report runs/quickstart

# One paper experiment end to end: make paper-PANEL [SCALE=100], where PANEL
# is a config of configs/paper (e.g. make paper-archimedes SCALE=10).
SCALE ?= 1
paper-%: data build
	./$(BIN) run configs/paper/$*.toml --scale $(SCALE) --out runs/paper-$*-s$(SCALE)
	./$(BIN) stats runs/paper-$*-s$(SCALE)
	./$(BIN) report runs/paper-$*-s$(SCALE)

# docs/reproduction.md from the runs it cites (their report/report.json
# and sessions.json): scripts/reproduction/manifest.toml lists the runs and
# the commands that make them. REPRO_FLAGS=--allow-missing writes a "not
# run" row for a run not made yet instead of failing.
REPRO_FLAGS ?=
reproduction: check-go
	$(GO) run ./scripts/reproduction $(REPRO_FLAGS)

vet: check-go
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet $(GOFLAGS_TAGS) ./...

# Fuzz each target briefly (their corpora live in testdata/fuzz).
FUZZTIME ?= 10s
fuzz: check-go
	bash scripts/fuzz.sh ./nets/data/ FuzzReadIDXImages $(FUZZTIME)
	bash scripts/fuzz.sh ./nets/data/ FuzzReadIDXLabels $(FUZZTIME)
	bash scripts/fuzz.sh ./nets/data/ FuzzReadCIFARBatch $(FUZZTIME)
	bash scripts/fuzz.sh ./trials/config/ FuzzParse $(FUZZTIME)

test: data vet $(if $(filter openblas,$(TAGS)),blas)
	$(GO) test $(GOFLAGS_TAGS) -count=1 -timeout 20m ./...
	$(MAKE) test-purego
	$(MAKE) fuzz FUZZTIME=5s

# The pure-Go BLAS path of the numerical packages (no cgo, no OpenBLAS).
test-purego: check-go
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 10m ./graph/ ./trials/optim/

# A real one-node Slurm cluster (installs slurm-wlm and munge when missing,
# as root or with passwordless sudo): a sweep as a 3-task job array plus its
# merge must equal the same sweep run locally. See scripts/slurm/README.md.
test-slurm: build
	bash scripts/slurm/test-local.sh

# Speed measurements (not run by CI): BLAS, batched against unbatched
# trials, evaluation GFLOP/s, on the real Fashion-MNIST.
bench: data build
	./$(BIN) bench

# Go benchmarks of the graph package (full-pool loss, steps, batching).
bench-go: check-go
	$(GO) test $(GOFLAGS_TAGS) ./graph/ -run '^$$' -bench . -benchtime 3x

clean:
	rm -rf bin
