# The set-up commands of the README (`make run`, `make test`, `make test-unit`, `make lint`) and the benchmarks.
SHELL := /bin/bash
PROVISION := scripts/provision.sh
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: run test test-fast test-unit lint venv bench provision clean

LINT_PATHS := shipper parsers tests bench setup.py

provision:
	@$(PROVISION) all

# The project virtualenv alone (with the Debian packages it builds against): enough for lint and the unit tests.
venv:
	@$(PROVISION) packages venv

# The shipper in the foreground against the local Docker engine and a local Elasticsearch it starts (and stops on exit).
run: provision
	@trap '$(PROVISION) es-stop' EXIT; \
	 LOGSHIP_ES_URL=$$($(PROVISION) es-url) LOGSHIP_STATE_DIR=$${LOGSHIP_STATE_DIR:-$(CURDIR)/.state/shipper} \
	 $(VENV)/logship run

# ruff and mypy, configured in pyproject.toml (installed by the `test` extra).
lint: venv
	$(VENV)/python -m ruff check --output-format concise $(LINT_PATHS)
	$(VENV)/python -m mypy

# The pure-logic tests only (tests/unit: no dockerd, Elasticsearch or kernel), after the lint; about a minute.
# Hypothesis runs its `dev` profile unless CI=true (tests/sizing.py).
test-unit: lint
	$(VENV)/python -m pytest tests/unit $(PYTEST_ARGS)

# Provisions everything, runs the whole suite against the real dockerd, Elasticsearch and kernel, then stops ES.
test: provision lint
	@$(PROVISION) debian-image
	@trap '$(PROVISION) es-stop' EXIT; \
	 LOGSHIP_ES_URL=$$($(PROVISION) es-url) $(VENV)/python -m pytest $(PYTEST_ARGS)

test-fast: provision lint
	@trap '$(PROVISION) es-stop' EXIT; \
	 LOGSHIP_ES_URL=$$($(PROVISION) es-url) $(VENV)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: provision
	@$(PROVISION) bench-tools
	@trap '$(PROVISION) es-stop' EXIT; set -e; \
	 export LOGSHIP_ES_URL=$$($(PROVISION) es-url); \
	 for b in bench/*.py; do echo "== $$b"; $(VENV)/python $$b; done

clean:
	rm -rf .venv .state build *.egg-info
