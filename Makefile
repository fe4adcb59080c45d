# wanotify: `make run` starts the product on its embedded defaults, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The PostgreSQL pass of `make test` uses this database (created if missing; a server
# that cannot be reached is reported and that pass skipped).
WANOTIFY_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/wanotify_test

.PHONY: run test lint typecheck pytest pytest-sqlite pytest-postgres pytest-later-date bench \
	bench-postgres fuzz \
	install clean messages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Refresh the translation catalogues after adding or changing a _("...") string:
# extract every marked string, merge it into each language's .po, then translate the
# new entries (msgstr "") and the ones marked fuzzy. tests/core/test_i18n_catalogue.py
# fails until every string has its translation.
messages: $(STAMP)
	$(BIN)/pybabel --quiet extract -F babel.cfg --no-location --sort-output \
		--add-comments=Translators: --project=wanotify -o $(VENV)/wanotify.pot core dashboard
	$(BIN)/pybabel --quiet update -D wanotify -i $(VENV)/wanotify.pot -d core/locale --ignore-obsolete

run: $(STAMP)
	$(BIN)/wanotify run

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy core $(wildcard dashboard) webhook_app.py benchmarks

pytest: pytest-sqlite pytest-postgres pytest-later-date

# -rfEs lists why each test failed or was skipped. pytest exits 5 when it collected no
# tests (e.g. PYTEST_ARGS selected none): say so, and pass.
define run_pytest
$(BIN)/pytest -q -rfEs --durations=15 -p no:cacheprovider $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest: no tests collected"; status=0; fi; exit $$status
endef

pytest-sqlite: $(STAMP)
	@echo "== pytest on SQLite"
	WANOTIFY_TEST_DATABASE_URL= $(run_pytest)

pytest-postgres: $(STAMP)
	@echo "== pytest on PostgreSQL ($(WANOTIFY_TEST_DATABASE_URL))"
	@$(BIN)/python .ci/test_database.py '$(WANOTIFY_TEST_DATABASE_URL)'; status=$$?; \
	if [ $$status -eq 3 ]; then \
	  echo "*** SKIPPED the PostgreSQL pass: PostgreSQL is not reachable (see above) ***"; \
	  exit 0; \
	elif [ $$status -ne 0 ]; then exit $$status; fi; \
	WANOTIFY_TEST_DATABASE_URL='$(WANOTIFY_TEST_DATABASE_URL)' $(run_pytest)

# The tests marked `clock` (their code decides by dates or ages) once more with the wall
# clock moved by LATER_DATE, through Debian's libfaketime, so a test that mixes fixed dates
# with the wall clock fails here rather than weeks later. Only the wall clock moves
# (FAKETIME_DONT_FAKE_MONOTONIC=1: timeouts and rate limits keep real time), child
# processes included; on SQLite, as PostgreSQL's own now() is not faked.
# .ci/later_date/sitecustomize.py works around libfaketime 0.9.10's time.sleep bug.
# Without faketime the pass is skipped, visibly; a clock that did not move fails it.
LATER_DATE ?= +365 days
pytest-later-date: $(STAMP)
	@echo "== pytest -m clock with the clock moved $(LATER_DATE) (libfaketime, SQLite)"
	@if ! command -v faketime >/dev/null 2>&1; then \
	  echo "*** SKIPPED the later-date pass: faketime is not installed (apt-get install faketime) ***"; \
	  exit 0; \
	fi; \
	export WANOTIFY_TEST_DATABASE_URL= FAKETIME_DONT_FAKE_MONOTONIC=1 PYTHONPATH=.ci/later_date; \
	seen=$$(faketime '$(LATER_DATE)' $(BIN)/python -c 'import time; print(int(time.time()))'); \
	off=$$(( $${seen:-0} - $$(date -d '$(LATER_DATE)' +%s) )); \
	if [ $${off#-} -gt 600 ]; then \
	  echo "faketime '$(LATER_DATE)' did not move Python's clock there (it read $${seen:-nothing})"; \
	  exit 1; \
	fi; \
	faketime '$(LATER_DATE)' $(BIN)/pytest -q -rfEs -p no:cacheprovider -m clock $(PYTEST_ARGS); \
	status=$$?; if [ $$status -eq 5 ]; then echo "pytest: no tests collected"; status=0; fi; \
	exit $$status

# The full fuzz run (tests/fuzz): 10,000 webhook bodies and 10,000 ERP events against the
# real webhook app on a SQLite file; prints its figures. `make test` runs a small profile.
fuzz: $(STAMP)
	WANOTIFY_TEST_DATABASE_URL= WANOTIFY_FUZZ_PROFILE=full $(BIN)/pytest -q -s -p no:cacheprovider \
	  -o timeout=7200 tests/fuzz/test_fuzz_app.py

# Every benchmark runs, whatever the one before said; a benchmark that missed its goal (or
# failed) exits non-zero, and they are named at the end, which then fails.
bench: $(STAMP)
	@missed=""; \
	for module in $(sort $(basename $(notdir $(filter-out benchmarks/_%,$(wildcard benchmarks/*.py))))); do \
	  echo "== benchmarks.$$module"; $(BIN)/python -m benchmarks.$$module || missed="$$missed $$module"; \
	done; \
	if [ -n "$$missed" ]; then echo "*** missed a goal or failed:$$missed ***"; exit 1; fi

# The PostgreSQL figures: send throughput and webhook load with 2 worker processes on
# BENCH_DATABASE_URL (emptied of earlier benchmark rows: give it a database of its own),
# analytics over 1 M messages in BENCH_DATABASE_URL_analytics (seeded once, then reused),
# bulk uploads in a tenant of their own on BENCH_DATABASE_URL. As `bench`: all run, and
# those that missed a goal are named at the end.
BENCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/wanotify_bench

bench-postgres: $(STAMP)
	$(BIN)/python .ci/test_database.py '$(BENCH_DATABASE_URL)'
	$(BIN)/python .ci/test_database.py '$(BENCH_DATABASE_URL)_analytics'
	@missed=""; \
	echo "== benchmarks.send_throughput on PostgreSQL, 2 workers"; \
	$(BIN)/python -m benchmarks.send_throughput --database-url '$(BENCH_DATABASE_URL)' --workers 2 \
	  || missed="$$missed send_throughput"; \
	echo "== benchmarks.webhook_load on PostgreSQL, 2 workers"; \
	$(BIN)/python -m benchmarks.webhook_load --database-url '$(BENCH_DATABASE_URL)' --workers 2 \
	  || missed="$$missed webhook_load"; \
	echo "== benchmarks.analytics on PostgreSQL"; \
	$(BIN)/python -m benchmarks.analytics --database-url '$(BENCH_DATABASE_URL)_analytics' \
	  || missed="$$missed analytics"; \
	echo "== benchmarks.bulk_import on PostgreSQL"; \
	$(BIN)/python -m benchmarks.bulk_import --database-url '$(BENCH_DATABASE_URL)' \
	  || missed="$$missed bulk_import"; \
	if [ -n "$$missed" ]; then echo "*** missed a goal or failed:$$missed ***"; exit 1; fi

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache .pytest_cache
