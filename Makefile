# Two commands do everything from a clean clone:  `make demo`  (end-to-end job)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel of this version is available locally; an unpinned torch would pull CUDA packages.
TORCH_VERSION ?= 2.13.0
EXTRAS ?= cpu,serve,bench,ray,test

.PHONY: install test test-fast demo clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[$(EXTRAS)]"
	touch $@

test: install
	$(BIN)/python -m pytest

# The main job end to end: synthetic corpus -> train tiny model -> export -> serve on the bundled
# tritonserver -> query over HTTP and gRPC; prints triples, parity and latency (runs/demo/).
demo: install
	$(BIN)/paee-demo

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
