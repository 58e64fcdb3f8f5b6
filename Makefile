# Quickstart targets. The first one run creates the virtualenv (.venv) from the lock (uv.lock).
#
# Installs are reproducible: `make install` installs exactly the versions in uv.lock (the set the
# suite passed with) and refuses a lock that no longer matches pyproject.toml. `make test-latest`
# installs the newest releases pyproject.toml allows into .venv-latest and runs the same suite,
# so a new msgspec, Starlette, redis-py or uvicorn that breaks us is seen at once.
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_STAMP := $(TOOLS)/.uv-$(UV_VERSION)
LATEST := .venv-latest
LOWEST := .venv-lowest

# uv uses this interpreter and never downloads one of its own.
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never

.PHONY: install test test-latest test-lowest lock lock-upgrade lint bench serve soak reliability

# uv itself, pinned, in a virtualenv of its own (so syncing .venv never removes it); a new
# UV_VERSION reinstalls it.
$(UV_STAMP):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q uv==$(UV_VERSION)
	rm -f $(TOOLS)/.uv-* && touch $@

install: $(UV_STAMP)
	@$(UV) sync --locked --all-extras --quiet || { \
		echo "make install: uv.lock does not match pyproject.toml: run 'make lock', then commit uv.lock" >&2; \
		exit 1; }

test: install
	$(BIN)/python -m pytest -q

# The newest allowed versions of everything (no lock), in a virtualenv of their own.
test-latest: $(UV_STAMP)
	rm -rf $(LATEST)
	$(UV) venv --quiet $(LATEST)
	$(UV) pip install --quiet --python $(LATEST)/bin/python --refresh --all-extras -r pyproject.toml -e .
	$(LATEST)/bin/python scripts/lock_drift.py
	$(LATEST)/bin/python -m pytest -q -p no:cacheprovider

# The library's runtime dependencies at the lowest versions pyproject.toml allows (test tools at
# their newest): the ranges we declare are ones we have run. The FastAPI peer's tests need the
# benchmark extra's versions, so they run on the lock and on latest only.
test-lowest: $(UV_STAMP)
	rm -rf $(LOWEST)
	$(UV) venv --quiet $(LOWEST)
	$(PYTHON) scripts/lower_bounds.py > $(LOWEST)/lower-bounds.txt
	$(UV) pip install --quiet --python $(LOWEST)/bin/python --all-extras -r pyproject.toml -e . \
		--override $(LOWEST)/lower-bounds.txt
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider --ignore=tests/test_parity.py --ignore=tests/test_benchmarks.py \
		--ignore=tests/test_benchmarks_scaling.py

# After changing dependencies in pyproject.toml: re-resolve (keeping locked versions where they
# still fit), then `make test`.
lock: $(UV_STAMP)
	$(UV) lock

# Move the lock to the newest releases pyproject.toml allows (what `make test-latest` tested).
lock-upgrade: $(UV_STAMP)
	$(UV) lock --upgrade

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict toolkit tests/typing

bench: install
	$(BIN)/python -m benchmarks

serve: install
	SHOP_DEVELOPMENT=1 $(BIN)/toolkit dev apps.shop.main:app --port 8000

soak: install
	$(BIN)/python -m benchmarks.soak

# Runs the adversarial suite and the soak, publishes their figures to benchmarks/published/
# and regenerates README's Reliability section from there.
# Abuse-resistance tests that live next to the modules they cover; counted in the Reliability figures.
ABUSE_TESTS = tests/test_ratelimit_abuse.py tests/test_memory_store.py tests/test_security_abuse.py \
	tests/test_metrics_abuse.py tests/test_shop_abuse.py tests/test_cache_safety.py tests/test_body_limit.py

reliability: install
	REQUIRE_REDIS=1 $(BIN)/python -m pytest -q tests/adversarial $(ABUSE_TESTS) --junitxml=benchmarks/results/adversarial.xml
	$(BIN)/python -m benchmarks.soak
	$(BIN)/python tests/adversarial/summary.py benchmarks/results/adversarial.xml --publish
