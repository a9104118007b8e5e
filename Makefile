# The two set-up commands of the quick start: `make demo` and `make test`.
# Both create the virtual environment on first use (also alone: `make install`) and are
# idempotent: the environment is rebuilt only when pyproject.toml or requirements.lock change.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Extras installed: ONNX Runtime from exactly one of cpu / gpu (they share the module name).
# A GPU machine: make gpu-check EXTRAS=test,gpu (TensorRT's wheels come from NVIDIA's index).
EXTRAS ?= test,cpu
comma := ,
STAMP := $(VENV)/.anomask-installed-$(subst $(comma),-,$(EXTRAS))
NVIDIA_INDEX := $(if $(findstring gpu,$(EXTRAS)),--extra-index-url https://pypi.nvidia.com)
OTHER_ORT := $(if $(findstring gpu,$(EXTRAS)),onnxruntime,onnxruntime-gpu)
# One pytest worker per core of the 2-core CI machine (pytest-xdist): most tests use one core.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?= --numprocesses $(PYTEST_WORKERS)

.PHONY: install lint test demo gpu-check lock clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip uninstall --quiet --yes $(OTHER_ORT)
	$(PY) -m pip install --quiet $(NVIDIA_INDEX) --constraint requirements.lock --editable '.[$(EXTRAS)]'
	touch $(STAMP)

# Lint and format check (ruff), then the layer contracts (import-linter), both configured in
# pyproject.toml. lint-imports runs inside build/import-graph, a tree of links laid out as
# the modules are imported (tests/lint/import_graph.py says why it needs one).
IMPORT_GRAPH := build/import-graph

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) tests/lint/import_graph.py $(IMPORT_GRAPH)
	cd $(IMPORT_GRAPH) && $(CURDIR)/$(VENV)/bin/lint-imports $(CURDIR)/pyproject.toml --no-cache --no-logo

# pytest exits 5 when it collected no test: that is a failure too, said plainly.
test: install lint
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5)" >&2; fi; \
	exit $$rc

demo: install
	$(VENV)/bin/anomask demo --out demo_out

# The whole GPU path in one run (anomask/bench/gpu_check.py): stages in their own processes,
# PASS/FAIL/SKIP each, one JSON. On a CPU-only machine: environment and legality run, the
# rest SKIP with the reason. GPU machines install the gpu extra instead of cpu first
# (docs/deployment.md).
gpu-check: install
	$(PY) -m anomask.bench.gpu_check --out build/gpu-check.json

# Re-pin the whole resolved set after changing a direct dependency in pyproject.toml.
lock: install
	$(PY) -m pip freeze --exclude-editable | grep -v '^anomask' > requirements.lock

clean:
	rm -rf $(VENV) demo_out build *.egg-info
