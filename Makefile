# Two entry points for a fresh machine: `make demo` (main job on built-in demo data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install clean system

# Debian packages the tests need: a PostgreSQL server (the annotation store's suite runs on it too)
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
system:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends postgresql; }

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,segment]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ctcurate demo $(DEMO_DIR)

test: $(STAMP) system
	$(BIN)/ruff check curation annotator qa datacard tests bench
	$(BIN)/mypy curation annotator qa datacard
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_scan_convert.py
	$(BIN)/python bench/bench_convert_memory.py
	$(BIN)/python bench/bench_label_qa.py
	$(BIN)/python bench/bench_presegment.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
