# The two set-up commands of the README (`make run`, `make test`) and the benchmarks.
SHELL := /bin/bash
PROVISION := scripts/provision.sh
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: run test test-fast bench provision clean

provision:
	@$(PROVISION) all

# The shipper in the foreground against the local Docker engine and a local Elasticsearch it starts (and stops on exit).
run: provision
	@trap '$(PROVISION) es-stop' EXIT; \
	 LOGSHIP_ES_URL=$$($(PROVISION) es-url) LOGSHIP_STATE_DIR=$${LOGSHIP_STATE_DIR:-$(CURDIR)/.state/shipper} \
	 $(VENV)/logship run

# Provisions everything, runs the whole suite against the real dockerd, Elasticsearch and kernel, then stops ES.
test: provision
	@$(PROVISION) debian-image
	@trap '$(PROVISION) es-stop' EXIT; \
	 LOGSHIP_ES_URL=$$($(PROVISION) es-url) $(VENV)/python -m pytest $(PYTEST_ARGS)

test-fast: provision
	@trap '$(PROVISION) es-stop' EXIT; \
	 LOGSHIP_ES_URL=$$($(PROVISION) es-url) $(VENV)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: provision
	@trap '$(PROVISION) es-stop' EXIT; set -e; \
	 export LOGSHIP_ES_URL=$$($(PROVISION) es-url); \
	 for b in bench/*.py; do echo "== $$b"; $(VENV)/python $$b; done

clean:
	rm -rf .venv .state build *.egg-info
