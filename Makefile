# Every target installs what it needs first, so each works on a fresh clone.
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
UV := $(PYTHON) -m uv
export UV_PROJECT_ENVIRONMENT := $(VENV)

# Debian packages the tests and benchmarks drive: Chromium (the picker page's browser
# tests, through Playwright), wrk (the API load benchmark) and PostgreSQL (throwaway
# clusters on a loopback port; the packaged service itself is never started).
DEBIAN_PACKAGES := chromium wrk postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install system-packages node-packages demo test lint bench fuzz reliability serve serve-stop clean

install: $(VENV)/.installed

system-packages:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Node packages the tests start as services (Azurite), pinned by tests/services' lock file.
node-packages: tests/services/node_modules/.package-lock.json

tests/services/node_modules/.package-lock.json: tests/services/package-lock.json tests/services/package.json
	@command -v npm >/dev/null || { echo "installing Debian packages: nodejs npm"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	npm ci --prefix tests/services --no-audit --no-fund
	touch $@

$(VENV)/.installed: pyproject.toml uv.lock
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "uv==$(UV_VERSION)"
	$(UV) sync --frozen --all-extras --compile-bytecode --python $(PYTHON) --quiet
	$(BIN)/python -m compileall -q mediamill
	touch $@

demo: install
	$(BIN)/mediamill demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint system-packages node-packages
	$(BIN)/pytest

# The hardening suite alone, its outcomes as one table (also run, without the table, by `make test`).
reliability: install system-packages node-packages
	$(BIN)/pytest tests/hardening -p tests.hardening.report --reliability-report=reliability.md -q

# A longer fuzzing session than the 30 s one `make test` runs (tests/hardening/test_fuzz.py).
FUZZ_SECONDS ?= 300
fuzz: install
	$(BIN)/python -m tests.hardening.fuzz_sniffer -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=65536 -timeout=20 -print_final_stats=1

bench: install system-packages
	$(BIN)/python -m bench

serve: install
	$(BIN)/mediamill serve

serve-stop: install
	$(BIN)/mediamill server stop

clean:
	rm -rf $(VENV) .mediamill .pytest_cache .mypy_cache .ruff_cache
