# The 12345 hotline. `make run` sets everything up (idempotent) and starts it; `make test` runs the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements/*.txt 2>/dev/null | sha256sum | cut -c1-16)

.PHONY: help setup venv run edge test test-fast models bench clean-venv

help:
	@echo "make run    - set up everything (idempotent) and start the hotline in the foreground"
	@echo "make test   - set up, then run the whole test suite against real services"
	@echo "make edge   - 2 more Asterisk nodes behind the Kamailio SIP edge (sip:12345@127.0.0.1:5080); beside make run"
	@echo "make setup  - set-up only: virtualenvs, speech models, Rasa, Asterisk chroot, database, seed"
	@echo "make models - download the Mandarin Vosk model (needs internet)"
	@echo "make bench  - run the benchmarks (by hand; prints figures)"

$(STAMP): pyproject.toml $(wildcard requirements/*.txt)
	@echo "==> Python virtualenv ($(VENV))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --progress-bar off -e '.[dev]' | grep -vE '^(Requirement already|Obtaining|  )' || true
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

setup: venv
	@bash scripts/setup-all.sh

run: setup
	@$(VENV)/bin/hotline run

edge: setup
	@$(VENV)/bin/hotline edge --nodes $${NODES:-2}

test: setup
	@$(PY) -m pytest $(PYTEST_ARGS)

models:
	@bash scripts/download-vosk-model.sh

bench: setup
	@for b in benchmarks/*.py; do echo "==> $$b"; $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV) .venv-rasa
