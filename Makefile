# Two entry points: `make run` (install, migrate, load demo data, serve) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test install install-test system-packages clean caller-model

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: $(VENV)/.installed
	$(BIN)/ivr db upgrade
	$(BIN)/ivr demo-data
	$(BIN)/ivr serve --host $(HOST) --port $(PORT)

system-packages:
	bash scripts/install-system-packages

# The whole suite on the embedded SQLite default; then the database tests again on PostgreSQL
# when IVR_TEST_DATABASE_URL points at one (CI sets it).
test: $(VENV)/.installed-test system-packages
	$(BIN)/pytest -n auto
	@if [ -n "$$IVR_TEST_DATABASE_URL" ]; then \
		echo "== again on PostgreSQL ($$IVR_TEST_DATABASE_URL): database tests =="; \
		$(BIN)/pytest -n auto -m "db and not speech and not browser"; \
	fi

# The model of callers at length: CALLS calls (default 50000) with a random seed, or SEED to replay
# one; a failure prints its seed and the failing call's turns.
CALLS ?= 50000
caller-model: $(VENV)/.installed-test
	$(BIN)/python -m tests.caller_model --calls $(CALLS) $(if $(SEED),--seed $(SEED) --jobs 1)

clean:
	rm -rf $(VENV) var .pytest_cache test-artifacts
