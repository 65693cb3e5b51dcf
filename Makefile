# `make demo` runs the main job; `make test` installs what is missing and runs every check CI runs.
SHELL   := bash
.SHELLFLAGS := -o pipefail -c
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# The Keras adapter's docs and tests run on Keras' torch backend; tests/test_keras_backends.py runs JAX and TensorFlow
export KERAS_BACKEND ?= torch

.PHONY: demo test install check-clean nbtest pytest bench docs chromium

demo: $(STAMP)
	$(BIN)/python -m fastai_multilabel demo

test: $(STAMP) check-clean nbtest docs chromium pytest

# CPU torch first (a plain `torch` pulls several GB of CUDA packages), then the rest with torch pinned, then remove
# torchvision: its only wheel here is a CUDA build that breaks `import torchmetrics` beside the CPU torch.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/python -m pip uninstall -q -y torchvision || true
	touch $(STAMP)

install: $(STAMP)

# Notebooks are committed clean and the exported modules equal what nbdev_export writes.
check-clean: $(STAMP)
	$(BIN)/nbdev-clean
	@git diff --exit-code --stat -- nbs || (echo "nbdev_clean changed nbs/: commit clean notebooks"; exit 1)
	$(BIN)/nbdev-export
	@git diff --exit-code --stat -- fastai_multilabel || (echo "nbdev_export changed fastai_multilabel/: commit the exported modules"; exit 1)
	@test -z "$$(git status --porcelain --untracked-files=all -- nbs fastai_multilabel)" || (git status --short -- nbs fastai_multilabel; echo "untracked notebooks or modules"; exit 1)

nbtest: $(STAMP)
	$(BIN)/nbdev-test --n-workers 2

pytest: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# One table of the speed targets (ratios against contenders measured in the same run, 1 and 2 threads); the detailed
# reports: benchmarks/metrics.py and benchmarks/thresholds.py.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

# The docs site, offline (Quarto, which nbdev_docs needs, cannot be installed here): scripts/build_docs.py does nbdev's
# notebook processing (nbs/ -> _proc/: show_doc tables, hidden cells tagged), then mkdocs-material + mkdocs-jupyter execute
# and render _proc/ into _site/. Open _site/index.html, or `$(BIN)/mkdocs serve` after the first step.
docs: $(STAMP)
	rm -rf _site
	$(BIN)/python scripts/build_docs.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build -q 2>&1 | { grep -v 'IPKernelApp' || true; }

# The docs test drives Debian's Chromium with playwright (no browser download).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || { echo "The docs test needs Debian's chromium: apt-get install chromium"; exit 1; }
