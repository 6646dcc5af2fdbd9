# One command to run the gateway locally, one to run every test. Both install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install install-dev browser run test lint infra-check bench console-screenshots clean

# `make run` installs what running needs (requirements.txt); the test and benchmark tools
# (requirements-dev.txt) only come with `make test` and `make bench`.
install: $(VENV)/.installed node_modules/.installed
install-dev: install $(VENV)/.installed-dev browser

# The console's browser tests drive Debian's Chromium (apt, when it is not on PATH): see scripts/install-browser.
browser:
	bash scripts/install-browser

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

run: install
	$(PY) -m sms.dev.localrun --host 127.0.0.1 --port 7071

test: install-dev lint infra-check
	$(PY) -m pytest
	# The integration suite once more on the SDK's own request path (SMS_STORAGE_REQUESTS=sdk, the way out).
	SMS_STORAGE_REQUESTS=sdk $(PY) -m pytest tests/integration -q
	# The storage writes once more with the hand-written requests through the SDK pipelines (=direct: why it stays, docs/scaling.md).
	SMS_STORAGE_REQUESTS=direct $(PY) -m pytest -q tests/integration/test_queue_put.py tests/integration/test_batch.py \
		tests/integration/test_table_store.py tests/integration/test_faults.py

lint: install-dev
	$(VENV)/bin/ruff check sms tests bench function_app.py

# Parses and checks infra/ with the dev tools (pycep-parser, PyYAML), so it needs them installed first.
infra-check: install-dev
	bash infra/check.sh

bench: install-dev
	$(PY) -m bench.run

# The console's pictures in docs/console.md, taken by its browser tests (tests/browser/test_console_pages.py).
console-screenshots: install-dev
	SMS_CONSOLE_SCREENSHOTS=docs/console $(PY) -m pytest -q tests/browser/test_console_pages.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache
