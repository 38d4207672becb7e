# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_STAMP := $(VENV)/.apt-installed

.PHONY: run test test-sqlite lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[postgresql,redis,dev]"
	touch $@

# Debian packages the tests need: a PostgreSQL server and Chromium for the browser tests.
$(APT_STAMP): | $(BIN)/python
	@missing=""; \
	command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	touch $@

run: $(STAMP)
	$(BIN)/clientela migrate
	$(BIN)/clientela demo
	$(BIN)/clientela serve

test: $(STAMP) $(APT_STAMP)
	$(BIN)/pytest -q

test-sqlite: $(STAMP)
	CLIENTELA_TEST_DATABASES=sqlite $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src
	$(BIN)/clientela migrate
	$(BIN)/alembic check

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/import_orders.py
	$(BIN)/python bench/demo.py
	$(BIN)/python bench/clv.py
	$(BIN)/python bench/rfm.py
	$(BIN)/python bench/segments.py
	$(BIN)/python bench/send.py

clean:
	rm -rf $(VENV) var .pytest_cache
