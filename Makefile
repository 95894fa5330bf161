# Every target installs what it needs first, so each works on a fresh clone.
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
UV := $(PYTHON) -m uv
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install demo test lint bench serve serve-stop clean

install: $(VENV)/.installed

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

test: lint
	$(BIN)/pytest

bench: install
	$(BIN)/python -m bench

serve: install
	$(BIN)/mediamill serve

serve-stop: install
	$(BIN)/mediamill server stop

clean:
	rm -rf $(VENV) .mediamill .pytest_cache .mypy_cache .ruff_cache
