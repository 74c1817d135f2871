# The two commands of a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export ETL_HOME ?= $(CURDIR)/.etl
export DAGSTER_HOME ?= $(ETL_HOME)/dagster
NVD_PORT ?= 8900
STORE_PORT ?= 8901
ECB_PORT ?= 8902
SALES_PORT ?= 8903
DAGSTER_PORT ?= 3000
API_PORT ?= 8000

.PHONY: setup demo test dev api nvd-standin bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

## Run the main job (one day of NVD CVEs) on embedded defaults: SQLite, local files, stand-in NVD.
demo: setup $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m etl_platform.demo

## The whole test suite (needs Postgres on 127.0.0.1:5432).
test: setup
	$(PY) -m pytest -q

## Dagster UI on http://127.0.0.1:$(DAGSTER_PORT) (default 3000) with every API stand-in on loopback.
dev: setup $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m etl_platform.devservers nvd --port $(NVD_PORT) & pids=$$!; \
	$(PY) -m etl_platform.devservers fake-store --port $(STORE_PORT) --assign-category Shoes=162,163,166,169,170 & pids="$$pids $$!"; \
	$(PY) -m etl_platform.devservers ecb --port $(ECB_PORT) & pids="$$pids $$!"; \
	$(PY) -m etl_platform.devservers hotmart --port $(SALES_PORT) & pids="$$pids $$!"; \
	trap "kill $$pids" EXIT; \
	NVD_API_URL=http://127.0.0.1:$(NVD_PORT)/rest/json/cves/2.0 \
	STORE_API_URL=http://127.0.0.1:$(STORE_PORT)/api/v1 \
	ECB_API_URL=http://127.0.0.1:$(ECB_PORT)/service/data \
	ECB_HISTORY_URL=http://127.0.0.1:$(ECB_PORT)/stats/eurofxref/eurofxref-hist.zip \
	SALES_API_URL=http://127.0.0.1:$(SALES_PORT)/payments/api/v1 \
	SALES_AUTH_URL=http://127.0.0.1:$(SALES_PORT)/security/oauth/token \
	SALES_CLIENT_ID=standin-client SALES_CLIENT_SECRET=standin-secret SALES_START_DATE=2021-01-01 \
	$(VENV)/bin/dagster dev -w workspace.yaml --host 127.0.0.1 --port $(DAGSTER_PORT)

## The REST API on http://127.0.0.1:$(API_PORT) (default 8000; OpenAPI at /docs). Writes need ETL_API_TOKEN.
api: setup
	@if [ -z "$$ETL_API_TOKEN" ]; then \
	  echo "ETL_API_TOKEN is not set: writes are disabled (POST answers 401); reads work."; \
	  echo "  To enable them: ETL_API_TOKEN=<token> make api, then send 'Authorization: Bearer <token>'."; \
	else echo "Writes enabled: POST with 'Authorization: Bearer \$$ETL_API_TOKEN'."; fi
	$(VENV)/bin/uvicorn etl_platform.api:app --host 127.0.0.1 --port $(API_PORT)

bench: setup
	$(PY) -m pip install --quiet -e ".[test,bench]"
	$(PY) benchmarks/upsert_cve.py

clean:
	rm -rf $(VENV) .etl
