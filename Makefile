# make lab: set up and open the course in JupyterLab.   make test: set up and run the tests.
PY := .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: lab test release check bench

$(PY): requirements.txt pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(PY)

lab: $(PY)
	$(PY) -m jupyter lab --notebook-dir=notebooks

test: $(PY)
	$(PY) -m pytest

release: $(PY)
	$(PY) -m grader release

check: $(PY)
	$(PY) -m grader release --check

bench: $(PY)
	for f in bench/*.py; do $(PY) $$f || exit 1; done
