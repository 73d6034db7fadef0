# drift — build, test and reproduce. `make reproduce` and `make test` are all a newcomer needs;
# both install what they use (Rust crates, a Python venv in .venv, Debian's Fashion-MNIST, and
# for the tests Debian's Slurm).
SHELL   := /bin/bash
CARGO   ?= cargo
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
DRIFT   := target/release/drift
PROFILE ?= quick
OUT     ?= results/$(PROFILE)
FASHION := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# Where the tests record what they could not run here (scripts/skips.sh sums it up).
SKIP_LOG := $(CURDIR)/target/skipped.log

FUZZ_SECONDS ?= 20

.PHONY: all setup build venv datasets slurm test aarch64 fuzz reproduce bench clean

all: build

## setup: everything the tests and the reproduction need
setup: build venv datasets

build:
	$(CARGO) build --release --locked -p drift-cli

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

## datasets: Fashion-MNIST from Debian's dataset-fashion-mnist when apt-get can install it
datasets:
	@if [ -f $(FASHION) ]; then \
	  echo "fashion-mnist: $(dir $(FASHION))"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "fashion-mnist: installing the Debian package dataset-fashion-mnist"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else \
	  echo "fashion-mnist: NOT INSTALLED and apt-get is not usable here (install dataset-fashion-mnist as root);"; \
	  echo "               tests that need it will report themselves as skipped"; \
	fi

## slurm: Debian's slurm-wlm and munge when apt-get can install them, for the test that runs
## the README's job array on a one-node cluster of this machine
slurm:
	@if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
	    && command -v sbatch >/dev/null 2>&1 && command -v munged >/dev/null 2>&1; then \
	  echo "slurm: $$(slurmctld -V)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "slurm: installing the Debian packages slurm-wlm and munge"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; \
	else \
	  echo "slurm: NOT INSTALLED and apt-get is not usable here (install slurm-wlm and munge as root);"; \
	  echo "       the Slurm test will report itself as skipped"; \
	fi

## test: Rust unit and integration tests, the Python tests (NumPy reference, DuckDB, Polars,
## crashes, Slurm), then a short run of each fuzz target; at the end, what could not run here
## (a test that lacks a capability records `capability: reason` in $(SKIP_LOG); with
## DRIFT_REQUIRE="root avx512 ..." such a test fails instead)
test: export DRIFT_SKIP_LOG := $(SKIP_LOG)
test: setup slurm
	@mkdir -p $(dir $(SKIP_LOG)) && : > $(SKIP_LOG)
	@status=0; \
	( set -x; $(CARGO) test --profile release-test --locked --workspace \
	  && DRIFT_BIN=$(CURDIR)/$(DRIFT) $(PY) -m pytest -q tests/python \
	  && $(MAKE) --no-print-directory aarch64 \
	  && $(MAKE) --no-print-directory fuzz ) || status=$$?; \
	echo; scripts/skips.sh summary; exit $$status

## aarch64: the whole workspace, tests and benches included, type-checks for 64-bit ARM Linux (the
## portable and matrixmultiply kernels; Apple silicon compiles the same cfg(target_arch) paths);
## adds the Rust target and Debian's cross C compiler (a benchmark dependency builds C) if it can
AARCH64 := aarch64-unknown-linux-gnu
aarch64:
	@if ! rustup target list --installed 2>/dev/null | grep -qx $(AARCH64) \
	    && ! rustup target add $(AARCH64); then \
	  scripts/skips.sh record aarch64 "the Rust target $(AARCH64) cannot be added here (rustup target add $(AARCH64))"; \
	  exit; \
	fi; \
	if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "aarch64: installing the Debian package gcc-aarch64-linux-gnu"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu >/dev/null; \
	  else \
	    scripts/skips.sh record aarch64 "no aarch64-linux-gnu-gcc here (install gcc-aarch64-linux-gnu as root)"; \
	    exit; \
	  fi; \
	fi; \
	set -x; CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
	  $(CARGO) check --locked --workspace --all-targets --target $(AARCH64)

## fuzz: each cargo-fuzz target for FUZZ_SECONDS from the committed seeds (new finds go to a
## temporary folder); needs a nightly toolchain, installs cargo-fuzz
fuzz:
	@if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then \
	  scripts/skips.sh record nightly "no nightly Rust toolchain here for make fuzz (rustup toolchain install nightly)"; \
	  exit; \
	fi; \
	command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz || exit 1; \
	for target in idx_reader idx_gz config; do \
	  found=$$(mktemp -d); \
	  (cd fuzz && $(CARGO) +nightly fuzz run $$target $$found corpus/$$target -- -max_total_time=$(FUZZ_SECONDS)) || exit 1; \
	  rm -rf $$found; \
	done

## reproduce: the sweep of results/profiles/$(PROFILE).toml (resumed if interrupted), the figures
## and REPORT.md into results/$(PROFILE)/
reproduce: build datasets
	$(DRIFT) reproduce --profile $(PROFILE) --out $(OUT)

## bench: criterion benchmarks and the NumPy baseline -> results/bench/summary.{csv,md} (QUICK=1: minutes)
bench: venv
	mkdir -p results/bench && rm -f results/bench/numpy.jsonl results/bench/interleaved.jsonl results/bench/sweep.json
	touch results/bench/started
	DRIFT_BENCH_QUICK=$(QUICK) DRIFT_BENCH_INTERLEAVED=$(CURDIR)/results/bench/interleaved.jsonl \
	  DRIFT_BENCH_SWEEP=$(CURDIR)/results/bench/sweep.json $(CARGO) bench --locked -p drift-benches
	# OpenBLAS at 1 and 2 threads; OPENBLAS_CORETYPE/L2_SIZE (set on some machines) would slow it.
	for t in 1 2; do \
	  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=$$t DRIFT_BENCH_QUICK=$(QUICK) \
	    $(PY) benches/numpy_baseline.py $$( [ $$t = 2 ] && echo --epochs ) >> results/bench/numpy.jsonl || exit 1; \
	done
	$(PY) scripts/bench_summary.py

clean:
	$(CARGO) clean
	rm -rf $(VENV)
