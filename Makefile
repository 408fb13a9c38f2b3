# Workbench tasks. `make demo` and `make test` set everything up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
ARGS ?=
# pytest-xdist workers for make test (two cores here); the tests sharing a costly fixture stay on one worker
TEST_WORKERS ?= 2

# glibc returns large activations to the OS after every call unless told otherwise; these two settings
# made EfficientNet-B0 2-4x faster on CPU here (see docs/performance.md).
export MALLOC_MMAP_THRESHOLD_ ?= 4294967296
export MALLOC_TRIM_THRESHOLD_ ?= 17179869184

.PHONY: setup demo pipeline test lint bench urls docs clean

setup: $(VENV)/.installed

# Short lines of what is happening instead of pip's resolution log (pip -qq still prints errors).
$(VENV)/.installed: pyproject.toml
	@echo "setup: creating $(VENV) with $$($(PYTHON) --version)"
	@$(PYTHON) -m venv $(VENV)
	@echo "setup: installing the workbench with its [dev,onnx] extras (PyTorch is large: about 2 minutes the first time)"
	@$(PY) -m pip install -qq --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -qq --disable-pip-version-check -e '.[dev,onnx]'
	@$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	@touch $@
	@echo "setup: done ($$($(PY) -c 'import torch; print("torch", torch.__version__)'))"

demo: setup
	$(PY) -m deepfake_lib.pipeline --demo $(ARGS)

pipeline: setup
	$(PY) -m deepfake_lib.pipeline $(ARGS)

test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(ARGS)

lint: setup
	$(VENV)/bin/ruff check deepfake_lib tests
	$(VENV)/bin/ruff format --check deepfake_lib tests

bench: setup
	$(PY) -m deepfake_lib.bench $(ARGS)

urls: setup  # after changing [project.urls] Repository in pyproject.toml (a fork): update notebooks, README and docs
	$(PY) -m deepfake_lib.cli.repo_url

# The documentation site (mkdocs.yml, docs/) into site/; --strict turns a broken link, anchor or nav entry into an error.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

clean:
	rm -rf outputs data/demo .pytest_cache site
