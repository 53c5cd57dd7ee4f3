# Two entry points on a fresh machine: `make demo` and `make test`. Each installs what is
# missing (the .venv, Debian packages, the UI build) and skips what is already there.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is pinned in the same pip command as everything that depends on it (else pip
# pulls a multi-GB CUDA build); users with other torch versions install the package normally.
TORCH := torch==2.13.0
STATIC := src/embedding_explorer/static/index.html
FRONTEND_SRC := $(shell find frontend/src frontend/index.html frontend/vite.config.ts frontend/tsconfig*.json -type f 2>/dev/null)
DEBIAN_DEMO := dataset-fashion-mnist wordnet-base
DEBIAN_TEST := $(DEBIAN_DEMO) chromium
PORT ?= 8031

.PHONY: demo test venv ui lint typecheck pytest frontend-test api-types bench clean

demo: venv ui
	@scripts/ensure-debian-packages.sh $(DEBIAN_DEMO)
	$(VENV)/bin/embedding-explorer demo --port $(PORT)

test: venv ui
	@scripts/ensure-debian-packages.sh $(DEBIAN_TEST)
	$(MAKE) --no-print-directory lint typecheck frontend-test pytest

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV) || { scripts/ensure-debian-packages.sh python3-venv && python3 -m venv $(VENV); }
	$(PIP) install -q --disable-pip-version-check $(TORCH) -e '.[dev]'
	@# animal-mnist (out-of-distribution images for the data-set comparison demo) declares
	@# tensorflow as a dependency it does not need for its data files: installed without deps
	$(PIP) install -q --disable-pip-version-check --no-deps animal-mnist==0.4
	@touch $@

ui: $(STATIC)

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(STATIC): frontend/node_modules/.installed $(FRONTEND_SRC)
	cd frontend && npm run build --silent

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: venv
	$(VENV)/bin/mypy

frontend-test: frontend/node_modules/.installed
	cd frontend && npm test --silent

# The UI's API contract: the server's OpenAPI schema, then the TypeScript types made from it.
# Run after changing a route or a schema in src/embedding_explorer/server/, and commit both files;
# tests/test_openapi_contract.py and frontend/src/api/contract.test.ts fail while they are stale.
api-types: venv frontend/node_modules/.installed
	$(PY) scripts/openapi.py
	cd frontend && npm run --silent api:types

pytest: venv
	$(PY) -m pytest -q

bench: venv
	$(PY) benchmarks/bench_pca.py
	$(PY) benchmarks/bench_extraction.py
	$(PY) benchmarks/bench_resnet.py
	$(PY) benchmarks/bench_fingerprint.py
	$(PY) benchmarks/bench_image_folder.py
	$(PY) benchmarks/bench_render.py
	$(PY) benchmarks/bench_moments.py
	$(PY) benchmarks/bench_server.py
	$(PY) benchmarks/bench_scatter.py
	$(PY) benchmarks/bench_scale.py
	$(PY) benchmarks/bench_dask.py

clean:
	rm -rf $(VENV) frontend/node_modules src/embedding_explorer/static test-artifacts
