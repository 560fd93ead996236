# goslim build and test entry points. `make test` is what CI runs (via .ci/run).
GO          ?= go
ORT_VERSION ?= 1.30.0
export GOSLIM_ORT_DIR ?= $(CURDIR)/.cache/ort

.PHONY: test deps vet unit noasm conformance build fixtures perf

## test: install test assets when missing, then vet and test with and without assembly
test: deps vet unit noasm

deps:
	@ORT_VERSION=$(ORT_VERSION) bash scripts/install-test-deps.sh

vet:
	$(GO) vet ./...
	$(GO) vet -tags noasm ./...

unit:
	$(GO) test -timeout 20m ./...

noasm:
	$(GO) test -timeout 20m -tags noasm ./...

## conformance: print the per-op table of the ONNX backend tests
conformance: deps
	GOSLIM_CONFORMANCE_REPORT=$(CURDIR)/.cache/conformance.md $(GO) test ./infer -run TestConformance -count=1
	@cat .cache/conformance.md

build:
	CGO_ENABLED=0 $(GO) build -o goslim ./cmd/goslim

## fixtures: regenerate the PyTorch reference models (needs Debian python3-torch, python3-onnx)
fixtures:
	/usr/bin/python3 testdata/models/gen_fixtures.py

## perf: time goslim (and ONNX Runtime when installed) on the reference models (1 and 2
## threads, batch 1 and 32; one-thread rows by CPU time, ORT's Node binding overhead
## measured on a 1-element Identity model and subtracted) and one-thread SGEMM, and add
## the table to the FP32 part of docs/performance.md; builds the models first when missing.
## Options go in PERF_FLAGS, e.g. make perf PERF_FLAGS='-threads 1 -rounds 9' (see bench/README.md)
BENCH_MODELS      ?= $(CURDIR)/.cache/bench-models
BENCH_MODEL_FILES := $(foreach m,lenet5 mlp resnet8 mobilenetv2,$(BENCH_MODELS)/$(m).onnx)
PERF_FLAGS        ?=

perf: $(BENCH_MODEL_FILES)
	$(GO) run ./bench/cmd/perftable -models $(BENCH_MODELS) -out docs/performance.md $(PERF_FLAGS)

# The reference models (needs Debian python3-torch, python3-onnx); rebuilt when
# missing or when the generator changes. Seeded, so a rebuild gives the same models.
$(BENCH_MODEL_FILES) &: bench/models/gen_models.py
	/usr/bin/python3 bench/models/gen_models.py --out $(BENCH_MODELS) --force
