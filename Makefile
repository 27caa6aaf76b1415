# One task runner for the whole platform. Every target installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
STACK := infra/local/stack.sh
export UV_PYTHON_DOWNLOADS := never
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?=

.PHONY: help install up down status logs demo test test-fast lint format bench chaos asyncapi verify

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: ## Install every tool and the Python workspace (idempotent)
	@bash $(STACK) install

up: ## Start PostgreSQL, Redis, Kafka, FerretDB, Mailpit, localstripe and every service
	@bash $(STACK) up

down: ## Stop everything `make up` started (by recorded PID)
	@bash $(STACK) down

status: ## What runs where
	@bash $(STACK) status

logs: ## Tail one component's log: make logs SERVICE=orders
	@bash $(STACK) logs $(SERVICE)

demo: up ## Bring the stack up, seed it and run a checkout end to end
	@.venv/bin/shop demo

test: up ## Run the whole test suite against the real stack (the long chaos run excluded)
	@.venv/bin/pytest -m "not chaos" $(PYTEST_ARGS)

SOURCE_TREES := contracts/src kit/src gateway/src cli/src $(wildcard services/*/src)

lint: ## ruff, ruff format --check, mypy strict, bandit, pip-audit of the locked dependencies
	@bash $(STACK) install-python
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy contracts/src kit/src gateway/src cli/src services/*/src
	.venv/bin/bandit -c pyproject.toml --quiet --recursive $(SOURCE_TREES)
	.venv/bin/python tests/security/audit_dependencies.py

format: ## Apply ruff fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench: up ## Benchmarks: figures printed and written to bench/results/
	@.venv/bin/python -m bench.run

chaos: up ## Long fault-injection run (kill -9 services, restart Kafka) then verify invariants
	@.venv/bin/pytest tests/chaos -m chaos -s $(PYTEST_ARGS)

asyncapi: ## Regenerate the event JSON Schema snapshots and the AsyncAPI document
	@bash $(STACK) install-python
	@.venv/bin/python contracts/scripts/generate.py

verify: ## Check the platform's invariants on the running stack
	@.venv/bin/shop verify
