# make lab: set up and open the course in JupyterLab.   make test: set up and run the tests.
# make site: the reading version (site/).   make execute: re-run solutions/, storing outputs.
PY := .venv/bin/python
# the venv is set up when this stamp is newer than the requirements (not .venv/bin/python: a
# symlink to the system interpreter, which `touch` would follow)
VENV := .venv/.installed
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: lab test release check bench site execute

# TORCH=cpu: PyTorch's CPU-only build (on Linux PyPI's wheel pulls over 1.4 GB of CUDA
# libraries), e.g. `make lab TORCH=cpu` on a fresh clone (or after `rm -r .venv`)
TORCH ?=
PIP_TORCH := $(if $(filter cpu,$(TORCH)),--extra-index-url https://download.pytorch.org/whl/cpu)

$(VENV): requirements.txt pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PIP_TORCH) -r requirements.txt
	touch $(VENV)

# The one way the course starts, for students and for tests/test_browser.py:
#   make lab LAB_ARGS="--no-browser --port=8899"    JupyterLab options (headless, port, token...)
#   make lab LAB_DIR=solutions                      another folder (authors edit solutions/)
LAB_DIR ?= notebooks
LAB_ARGS ?=
# JupyterLab refuses to start as root (containers, CI images) unless told to
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
# students (LAB_DIR=notebooks) get the student tools only: lab/student/labconfig hides the
# instructor's (Formgrader, Create Assignment, the Nbgrader menu) and JupyterLab's news prompt
LAB_CONFIG := $(if $(filter notebooks,$(LAB_DIR)),JUPYTER_CONFIG_PATH="$(CURDIR)/lab/student")
lab: $(VENV)
	$(LAB_CONFIG) $(PY) -m jupyter lab --notebook-dir="$(LAB_DIR)" $(LAB_ROOT) $(LAB_ARGS)

test: $(VENV)
	scripts/system-packages
	$(PY) -m pytest

release: $(VENV)
	$(PY) -m grader release

check: $(VENV)
	$(PY) -m grader release --check

bench: $(VENV)
	for f in bench/stage*.py bench/policy.py bench/class_grading.py bench/cluster.py; do $(PY) $$f || exit 1; done

# the reading version: a Sphinx book (grader/book/) of the solutions with their stored
# outputs, built offline (no execution)
site: $(VENV)
	$(PY) -m grader site --out site

# re-run every solution notebook, storing its outputs (after changing a solution)
execute: $(VENV)
	$(PY) -m grader execute
