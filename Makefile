# Two entry points for a fresh machine: `make demo` (main job on built-in demo data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install clean system

# Debian packages the tests need: a PostgreSQL server (the annotation store's suite runs on it too), Orthanc
# with its DICOMweb plugin (a real PACS for the DICOMweb tests) and Xvfb with the X libraries Qt needs (napari
# runs on a virtual screen in the tests)
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
DEBS := postgresql orthanc orthanc-dicomweb xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0 \
	libxcb-randr0 libxcb-shape0 libxcb-cursor0 libxkbcommon-x11-0 libgl1 libegl1 libfontconfig1 libdbus-1-3
system:
	@{ ls /usr/lib/postgresql/*/bin/initdb && command -v Xvfb && dpkg -s $(DEBS); } >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q \
		--no-install-recommends $(DEBS); }

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,segment,annotate]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ctcurate demo $(DEMO_DIR)

test: $(STAMP) system
	$(BIN)/ruff check curation annotator qa datacard tests bench
	$(BIN)/mypy curation annotator qa datacard
	$(BIN)/pytest

# the shared real DICOM the benchmarks read, as the tests find it: CTCURATE_SHARED_DATA, else ../shared/data beside
# the repository (passed to each benchmark that reads it; `make bench SHARED_DATA=PATH` also works)
SHARED_DATA ?= $(or $(CTCURATE_SHARED_DATA),$(abspath $(CURDIR)/../shared/data))

bench: $(STAMP)
	$(BIN)/python bench/bench_startup.py
	$(BIN)/python bench/bench_scan_convert.py --shared-data "$(SHARED_DATA)"
	$(BIN)/python bench/bench_convert_memory.py
	$(BIN)/python bench/bench_label_qa.py --shared-data "$(SHARED_DATA)"
	$(BIN)/python bench/bench_presegment.py --shared-data "$(SHARED_DATA)"
	$(BIN)/python bench/bench_annotator.py --shared-data "$(SHARED_DATA)"
	$(BIN)/python bench/bench_pull.py --shared-data "$(SHARED_DATA)"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
