# lagduel: `make demo` runs the main job, `make test` the test suite. Both set themselves up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install demo test bench lint clean controlplane

help:  ## Show the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(STAMP)  ## Create .venv and install lagduel with its test tools

demo: $(STAMP)  ## Duel Knative and OpenFaaS twice each on a burst (embedded Kafka); prints the report's path
	@# Exit 3 (an SLO failed) or 4 (instrument-bound) still wrote a full report: the demo shows it, not a make error.
	$(BIN)/lagduel duel --profile burst --backends knative,openfaas --repeat 2 --settle 30 || [ $$? -ge 3 ]

test: $(STAMP)  ## Run the import contracts and the test suite (starts a real Kafka broker)
	$(BIN)/lint-imports
	$(BIN)/pytest

controlplane:  ## Build the cluster tests' etcd, kube-apiserver, controller-manager, KWOK (once per machine)
	controlplane/build.sh

bench: $(STAMP)  ## Run the benchmark suite; writes BENCHMARKS.md and bench/results.json
	$(BIN)/python -m bench

clean:  ## Remove the virtualenv and caches (not the Kafka jar cache)
	rm -rf $(VENV) .pytest_cache .hypothesis
