# Two entry points: `make demo` runs the main job, `make test` the test suite.
# Both create .venv on first use and install the CPU build of torch before the
# package, so pip never resolves a (multi-GB) CUDA build.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= runs/demo

.PHONY: setup demo test test-fast lint bench bench-scale bench-setup bench-quality bench-peers clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dcnrank demo --out $(OUT)

# The suite on TEST_JOBS worker processes (pytest-xdist), a test file per worker at a time, so a
# file's module fixtures are built once; conftest.py gives each worker one torch thread.
TEST_JOBS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy src

# Speed of the seed's whole protocol (fp32 and bf16) against the machine's matmul
# peak; with the Keras-RS reference beside it when `make bench-setup` was run; then the
# streamed tables and the step time from 10^4 to 10^7 embedding rows (dense vs sparse updates).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py --out bench.json
	$(BIN)/python benchmarks/bench_scale.py --out bench_scale.json
	$(BIN)/python benchmarks/vocab_curve.py --json vocab_curve.json

# Streamed training on 1M- and 10M-row Criteo-layout tables (1 and 2 processes) beside the
# in-memory path: rows/s and peak RSS (part of `make bench`).
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/bench_scale.py --out bench_scale.json

# Rating quality on GroupLens' folds u1…u5: configs/movielens_100k.toml beside the seed's
# protocol and Surprise's SVD++, KNNBaseline, SVD and BaselineOnly (the `quality` extra).
bench-quality: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,quality]'
	$(BIN)/python benchmarks/bench_quality.py

# The same DCN-V2 trained in dcnrank, Keras-RS, TorchRec, DeepCTR-Torch and FuxiCTR on one
# 1M-row Criteo-layout table, one table of rows/s, AUC and memory (docs/benchmarks.md). Each
# peer's venv is made in .peers/<library>/ on first use; PEERS_ARGS adds options, e.g.
# PEERS_ARGS="--rows 20000 --seeds 0" for a smoke test.
PEERS_ARGS ?=
bench-peers: $(STAMP)
	$(BIN)/python benchmarks/peers/bench_peers.py --json .peers/bench_peers.json $(PEERS_ARGS)

bench-setup: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
