# The README's two commands are `make run` and `make test`; CI runs .ci/run (lint + test).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
export LIEBIAN_TEST_DATABASE_URL ?= $(PG_URL)
STAMP := $(VENV)/.installed

.PHONY: install run test test-sqlite test-postgres lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml sdk/pyproject.toml package-lock.json
	@# Debian's chromium for the /schema browser test (driven by playwright, no browser download).
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (apt-get) for the /schema browser test"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
			|| echo "WARNING: chromium could not be installed: the /schema browser test will be skipped"; \
	fi
	@# Debian's Noto Color Emoji: posters draw emoji in nicknames in colour (posters/fonts.py).
	@if [ ! -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing fonts-noto-color-emoji (apt-get) for emoji on posters"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-color-emoji >/dev/null; } \
			|| echo "WARNING: fonts-noto-color-emoji could not be installed: posters draw emoji as a replacement glyph"; \
	fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]' -e ./sdk
	@# The console's browser assets (htmx, chart.js) from package-lock.json; served by the app.
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --silent; \
		else echo "WARNING: npm is missing: the console pages load without htmx and charts"; fi
	@touch $(STAMP)

## Serve the API on 127.0.0.1:8000 with a demo tenant (SQLite at ./var/liebian.db).
run: $(STAMP)
	@$(VENV)/bin/liebian serve --demo --host 127.0.0.1 --port 8000

## The whole suite on SQLite, then the database-backed tests on PostgreSQL.
test: $(STAMP)
	@$(MAKE) --no-print-directory test-sqlite
	@$(MAKE) --no-print-directory test-postgres

test-sqlite: $(STAMP)
	LIEBIAN_TEST_ENGINE=sqlite $(PY) -m pytest -q

test-postgres: $(STAMP)
	@if $(PY) -m server.dbcheck "$(LIEBIAN_TEST_DATABASE_URL)"; then \
		LIEBIAN_TEST_ENGINE=postgres $(PY) -m pytest -q tests/server tests/sdk tests/abuse; \
	elif [ "$$CI" = "true" ]; then \
		echo "ERROR: PostgreSQL at $(LIEBIAN_TEST_DATABASE_URL) is unreachable (required under CI)"; exit 1; \
	else \
		echo "WARNING: PostgreSQL at $(LIEBIAN_TEST_DATABASE_URL) is unreachable: the PostgreSQL pass was SKIPPED"; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check server rewards posters sdk tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy sdk/liebian_sdk

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var node_modules .pytest_cache .mypy_cache .ruff_cache
