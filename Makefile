# trialsite: `make run` for a local demo, `make test` for the whole suite. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/trialsite
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install run test bench fuzz lint typecheck format lock check-python system-packages

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "trialsite needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'

$(VENV)/.installed: requirements.lock pyproject.toml | check-python
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $@

install: $(VENV)/.installed

run: install
	PY=$(PY) PORT=$(PORT) bash bin/run

# Debian packages the tests need (chromium, gettext): installed when root with apt, else named before any test runs.
system-packages:
	bash bin/system-packages

# The accessibility checker the browser tests inject (axe-core, pinned in package-lock.json).
node_modules/.installed: package.json package-lock.json | system-packages
	npm ci --no-audit --no-fund
	@touch $@

# Tests run against PostgreSQL and Redis (DATABASE_URL, REDIS_URL); bin/preflight.py names any that is down.
test: install system-packages node_modules/.installed
	DEBUG=true DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$${REDIS_URL:-$(TEST_REDIS_URL)}} EMAIL_URL=locmem:// \
		DATABASE_CONN_MAX_AGE=0 \
		bash -c '$(PY) bin/preflight.py && $(PY) -m pytest -n $${PYTEST_WORKERS:-2} $(PYTEST_ARGS)'

bench: install
	DEBUG=true DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		bash -c '$(PY) bin/preflight.py && $(PY) bench/run.py'

# The API against its OpenAPI schema as two roles, on a fresh database and a production-configured server (about two
# minutes): no 5xx, every status code and body as documented. bin/api_fuzz.py says what it does and its knobs.
fuzz: install
	$(PY) bin/api_fuzz.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy with the Django and DRF stubs; strict on services, selectors, access and the pure engines (pyproject.toml).
typecheck: install
	DEBUG=true $(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Regenerate the lock from pyproject.toml's pinned direct dependencies.
lock:
	rm -rf /tmp/trialsite-lock && $(PYTHON) -m venv /tmp/trialsite-lock
	/tmp/trialsite-lock/bin/pip install --quiet ".[dev]"
	/tmp/trialsite-lock/bin/pip freeze --exclude trialsite > requirements.lock
