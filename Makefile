# backpack-edit — build, test, benchmark and demo.
# `make test` and `make demo` install the Debian packages they need on a fresh machine.

SWIFT          ?= swift
DEBIAN_PACKAGES = libhdf5-dev libopenblas-dev pkg-config
RELEASE         = -c release -Xswiftc -target-cpu -Xswiftc native
BIN_RELEASE     = .build/release/backpack
BENCH_DIR       = bench-out
BENCH_MODEL     = $(BENCH_DIR)/backpack-gpt2-random
BLAS_VENV       = .venv-blas
SCIPY_OPENBLAS  = scipy-openblas32==0.3.34.481.3

.PHONY: deps build release test bench demo clean

deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build $(RELEASE)

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Full-size random Backpack-GPT2 (170M parameters, published config). Prints throughput,
# opening time and peak memory with Debian's OpenBLAS and, when PyPI is reachable, with the
# newer OpenBLAS of the scipy-openblas32 wheel (BACKPACK_BLAS).
bench: release
	@[ -f $(BENCH_MODEL)/model.safetensors ] || $(BIN_RELEASE) init --config backpack-gpt2 --seed 0 --out $(BENCH_MODEL)
	@echo "== Debian OpenBLAS"
	@$(BIN_RELEASE) bench --model $(BENCH_MODEL)
	@[ -d $(BLAS_VENV) ] || (python3 -m venv $(BLAS_VENV) && $(BLAS_VENV)/bin/pip install -q $(SCIPY_OPENBLAS)) || true
	@lib=$$(ls $(BLAS_VENV)/lib/python3*/site-packages/scipy_openblas32/lib/libscipy_openblas*.so 2>/dev/null | head -1); \
	if [ -n "$$lib" ]; then echo "== $(SCIPY_OPENBLAS)"; BACKPACK_BLAS=$$lib $(BIN_RELEASE) bench --model $(BENCH_MODEL); \
	else echo "(scipy-openblas32 not available: skipped the faster BLAS)"; fi

clean:
	rm -rf .build $(BENCH_DIR)
