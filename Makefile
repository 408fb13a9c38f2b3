# Workbench tasks. `make demo` and `make test` set everything up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
ARGS ?=

# glibc returns large activations to the OS after every call unless told otherwise; these two settings
# made EfficientNet-B0 2-4x faster on CPU here (see README, Performance).
export MALLOC_MMAP_THRESHOLD_ ?= 4294967296
export MALLOC_TRIM_THRESHOLD_ ?= 17179869184

.PHONY: setup demo pipeline test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -e '.[dev,onnx]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	touch $@

demo: setup
	$(PY) -m deepfake_lib.pipeline --demo $(ARGS)

pipeline: setup
	$(PY) -m deepfake_lib.pipeline $(ARGS)

test: setup
	$(PY) -m pytest $(ARGS)

lint: setup
	$(VENV)/bin/ruff check deepfake_lib tests
	$(VENV)/bin/ruff format --check deepfake_lib tests

bench: setup
	$(PY) -m deepfake_lib.bench $(ARGS)

clean:
	rm -rf outputs data/demo .pytest_cache
