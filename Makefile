# perturb: `make run` installs what is missing and runs the quickstart;
# `make test` runs the test suite (what CI runs).

GO       ?= go
BIN      := bin/perturb
DATA_DIR ?= /usr/share/datasets/fashion-mnist
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build data check-go run test vet fuzz bench clean

all: build

check-go:
	@command -v $(GO) >/dev/null 2>&1 || { echo "Go 1.21 or newer is needed (go.mod asks for 1.26, fetched automatically by Go >= 1.21): install it from https://go.dev/dl and put it on PATH"; exit 1; }

build: check-go
	$(GO) build -o $(BIN) ./cmd/perturb

# The real Fashion-MNIST, from Debian's dataset-fashion-mnist package.
data:
	@if [ ! -f $(DATA_DIR)/train-images-idx3-ubyte.gz ] && [ ! -f $(DATA_DIR)/train-images-idx3-ubyte ]; then \
		echo "installing dataset-fashion-mnist into $(DATA_DIR)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; \
	fi

# The quickstart: run (or resume) the sweep, then summarise it.
run: data build
	./$(BIN) run configs/quickstart.toml --out runs/quickstart
	./$(BIN) summarize runs/quickstart

vet: check-go
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# Fuzz each target briefly (their corpora live in testdata/fuzz).
FUZZTIME ?= 10s
fuzz: check-go
	$(GO) test ./nets/data/ -run '^$$' -fuzz '^FuzzReadIDXImages$$' -fuzztime $(FUZZTIME)
	$(GO) test ./nets/data/ -run '^$$' -fuzz '^FuzzReadIDXLabels$$' -fuzztime $(FUZZTIME)
	$(GO) test ./nets/data/ -run '^$$' -fuzz '^FuzzReadCIFARBatch$$' -fuzztime $(FUZZTIME)
	$(GO) test ./trials/config/ -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)

test: data vet
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) fuzz FUZZTIME=5s

# Speed measurements (not run by CI): full-pool loss and one SGD step.
bench: check-go
	$(GO) test ./graph/ -run '^$$' -bench . -benchtime 3x

clean:
	rm -rf bin
