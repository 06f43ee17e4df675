# Verdict: every target creates the virtual environment it needs (and installs the system Chromium that
# tests/test_report_browser.py drives, when the machine has none).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The UI listens on this machine only unless told otherwise (make ui UI_HOST=0.0.0.0).
UI_HOST ?= 127.0.0.1
UI_PORT ?= 3000
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test test-slow ui bench install install-spark prepare clean

$(INSTALLED): pyproject.toml
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(INSTALLED)

install: $(INSTALLED)

# Spark for tests/test_spark.py and `verdict spark`: the spark extra, and a Java 17 runtime when the machine has none.
SPARK_INSTALLED := $(VENV)/.installed-spark
$(SPARK_INSTALLED): $(INSTALLED)
	command -v java >/dev/null || (apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless)
	$(BIN)/python -m pip install --quiet -e ".[test,spark]"
	touch $(SPARK_INSTALLED)

install-spark: $(SPARK_INSTALLED)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

prepare: $(INSTALLED)
	$(BIN)/verdict prepare

## demo: simulate a warehouse, run the nightly analysis DAG, print the results
demo: $(INSTALLED) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/verdict demo

## test: run the test suite (all but the slow end-to-end runs)
test: prepare
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-slow: the end-to-end runs of two minutes or more (two launches, a killed run, broken metric models, own tables, Spark, ...)
test-slow: prepare $(SPARK_INSTALLED)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

## ui: the Dagster UI on http://$(UI_HOST):$(UI_PORT) (default 127.0.0.1:3000) with a persistent home in .dagster_home/
ui: prepare $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev --host $(UI_HOST) --port $(UI_PORT) -m pipelines.definitions

## bench: a night at scale (10M users, ~100M events, 20 experiments, 10 metrics); BENCH_ARGS="--units 1000000" for less
bench: prepare
	$(BIN)/verdict bench nightly $(BENCH_ARGS)

clean:
	rm -rf $(VENV) warehouse $(DAGSTER_HOME) demo/.verdict
