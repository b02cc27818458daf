# The two set-up commands of the README: `make run` and `make test`.
# Both create .venv and install what they need, so they work on a fresh Debian machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
DEBIAN_TOOLS := openssl certutil pk12util chromium
DEBIAN_PACKAGES := openssl libnss3-tools chromium fonts-noto-cjk postgresql

.PHONY: run test lint bench debian-test-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(BIN)/certdesk serve

# Debian packages the test suite uses as judges: OpenSSL, the NSS tools, Chromium for the
# browser tests, and the Noto CJK fonts (without them Chinese renders as empty boxes in the
# screenshots and in the LINE rich menu the project draws); and the PostgreSQL server, which
# the suite starts itself on a free loopback port (tests/postgres.py): Debian keeps initdb and
# pg_ctl off the PATH, in /usr/lib/postgresql/<version>/bin, whatever the version.
debian-test-deps:
	@missing=""; for t in $(DEBIAN_TOOLS); do command -v $$t >/dev/null || missing=1; done; \
	test -d /usr/share/fonts/opentype/noto || missing=1; \
	ls /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing=1; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES); \
	fi

# Lint, formatting and types; mypy reads its files and strictness from pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP) debian-test-deps lint
	$(BIN)/python -m pytest -q

# `make bench` runs every benchmark; `make bench BENCHES=webhook` one of them (issuance, webhook,
# understanding, reminders),
# `make bench BENCH_ARGS=--quick` a smoke run. The load benchmark (`make bench BENCHES=load`:
# 1,000 LINE customers through whole journeys on SQLite and on one and two instances over
# PostgreSQL) takes about 16 minutes on 2 cores, so it is not in the default list. The OCSP comparison uses its own Python load
# generator (wrk, when it can be installed, adds a certdesk-only row); the webhook comparison
# needs wrk.
BENCHES ?= issuance webhook understanding reminders
bench: $(STAMP)
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) || echo "bench: wrk not installed"
	for b in $(BENCHES); do $(BIN)/python -m bench.$$b $(BENCH_ARGS) || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache
