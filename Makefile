# The two commands of a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export ETL_HOME ?= $(CURDIR)/.etl
export DAGSTER_HOME ?= $(ETL_HOME)/dagster
NVD_PORT ?= 8900

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

## Dagster UI on http://127.0.0.1:3000 with the NVD stand-in on loopback.
dev: setup $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m etl_platform.devservers nvd --port $(NVD_PORT) & \
	trap "kill $$!" EXIT; \
	NVD_API_URL=http://127.0.0.1:$(NVD_PORT)/rest/json/cves/2.0 $(VENV)/bin/dagster dev -w workspace.yaml

## The REST API on http://127.0.0.1:8000 (OpenAPI at /docs).
api: setup
	$(VENV)/bin/uvicorn etl_platform.api:app --port 8000

bench: setup
	$(PY) -m pip install --quiet -e ".[test,bench]"
	$(PY) benchmarks/upsert_cve.py

clean:
	rm -rf $(VENV) .etl
