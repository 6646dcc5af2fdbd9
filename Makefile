# One command to run the gateway locally, one to run every test. Both install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install run test lint infra-check bench clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

run: install
	$(PY) -m sms.localrun --host 127.0.0.1 --port 7071

test: install lint infra-check
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check sms tests bench function_app.py

infra-check:
	bash infra/check.sh

bench: install
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) node_modules .pytest_cache
