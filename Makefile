# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench test-spark install clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3 ...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip uv

$(STAMP): $(PY) pyproject.toml
	$(VENV)/bin/uv pip install -q --compile-bytecode -p $(PY) -e '.[dev]' || $(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/forensics demo --out demo_out

# the Spark parity tests (tests/spark) run when pyspark and Java are present (`make test-spark`
# installs the spark extra) and skip with their reason otherwise; one JVM, so outside xdist
test: $(STAMP)
	$(PY) -m pytest -n 2 -q -m "not spark"
	$(PY) -m pytest -q -p no:xdist -m spark tests/spark

test-fast: $(STAMP)
	$(PY) -m pytest -q -x -m "not slow and not browser"

bench: $(STAMP)
	$(PY) -m bench --spans 1000000,10000000  # ~2 h on 2 cores, ~35 GB of data under bench/data

.PHONY: bench-scale
bench-scale: $(STAMP)  # bounded memory at scale: 50 MB..5 GB OTLP loads, 100M-span case under 4GB (long; needs ~25 GB of disk)
	$(PY) -m bench.scale

test-spark: $(STAMP)
	$(VENV)/bin/uv pip install -q --compile-bytecode -p $(PY) -e '.[dev,spark]'
	$(PY) -m pytest -q -m spark tests/spark

clean:
	rm -rf $(VENV) demo_out .pytest_cache
