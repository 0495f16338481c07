# Two entry points: `make run` (install, migrate, load demo data, serve) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test test-clock lint install install-test system-packages clean caller-model

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

# The whole suite on the embedded SQLite default (IVR_TEST_DATABASE_URL emptied for it: the tests
# read it to choose PostgreSQL); then the database tests again on PostgreSQL when
# IVR_TEST_DATABASE_URL points at one (CI sets it).
test: $(VENV)/.installed-test system-packages
	IVR_TEST_DATABASE_URL= $(BIN)/pytest -n auto --durations=15
	@if [ -n "$$IVR_TEST_DATABASE_URL" ]; then \
		echo "== again on PostgreSQL ($$IVR_TEST_DATABASE_URL): database tests =="; \
		$(BIN)/pytest -n auto -m "db and not speech and not browser"; \
	fi

# The tests that depend on the date and the time of day, again at pinned instants (Debian's faketime;
# the clock then runs on from there). In UTC; in Chisinau (the demo's and the factories' zone) they
# are: the 1st at 08:05, Thursday the 3rd at 15:00, the 31st at 23:30, 29 February at 12:00, and
# 30 s before the spring switch to summer time (02:00 -> 03:00 on 2027-03-28).
CLOCK_TESTS := tests/dialog tests/integration/test_voice_trust.py tests/integration/test_call_service.py \
	tests/console/test_console_trust.py tests/console/test_console_pages.py tests/sms tests/integration/test_readme_call.py tests/test_smoke_call.py \
	tests/store/test_service.py tests/store/test_supersedes.py tests/console/test_console_review.py \
	tests/store/test_intake.py tests/integration/test_intake_channels.py tests/integration/test_supersedes_channels.py \
	tests/integration/test_company_calls.py tests/integration/test_window_closed_calls.py
CLOCK_INSTANTS := 2026-12-01T06:05:00 2026-12-03T13:00:00 2026-12-31T21:30:00 2028-02-29T10:00:00 2027-03-27T23:59:30
test-clock: $(VENV)/.installed-test system-packages
	@for at in $(CLOCK_INSTANTS); do \
		echo "== clock-sensitive tests at $$at UTC =="; \
		TZ=UTC faketime -f "@$$(echo $$at | tr T ' ')" $(BIN)/pytest -n auto -q -p no:cacheprovider $(CLOCK_TESTS) || exit 1; \
	done

# Type checks of the dialog engine and the turn service, and the import contracts (.importlinter).
lint: $(VENV)/.installed-test
	$(BIN)/mypy
	$(BIN)/lint-imports

# The model of callers at length: CALLS calls (default 50000) with a random seed, or SEED to replay
# one; a failure prints its seed and the failing call's turns.
CALLS ?= 50000
caller-model: $(VENV)/.installed-test
	$(BIN)/python -m tests.caller_model --calls $(CALLS) $(if $(SEED),--seed $(SEED) --jobs 1)

clean:
	rm -rf $(VENV) var .pytest_cache test-artifacts
