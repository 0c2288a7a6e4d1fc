# runwire: `make dev` runs the local stack; `make test` runs every test. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
SAM := $(TOOLS)/sam/bin/sam
ORG ?= my-org
PORT ?= 8000

.PHONY: install tools js-clients lint dev test test-unit test-fast token template-check build deploy bench faults clean

$(VENV)/.installed: layers/common/pyproject.toml clients/python/pyproject.toml requirements-dev.txt
	@echo "==> creating $(VENV) and installing runwire, runwire-client (the SDK and CLI) + dev dependencies"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e layers/common -e clients/python -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

# The SAM CLI pins its own boto3 and friends: it lives in a venv of its own.
$(SAM):
	@echo "==> installing the AWS SAM CLI into $(TOOLS)/sam (once)"
	@$(PYTHON) -m venv $(TOOLS)/sam
	@$(TOOLS)/sam/bin/pip install -q --upgrade pip
	@$(TOOLS)/sam/bin/pip install -q aws-sam-cli

tools: $(SAM)

dev: install
	@$(PY) -m devstack --port $(PORT)

token: install
	@$(PY) -m devstack.token --org $(ORG)

template-check: install tools
	@SAM_CLI=$(SAM) $(PY) -m devstack.template_check

# sam build without Docker: finds the functions' Python (template.yaml's runtime) on PATH, in pyenv
# or among uv's Pythons, and says what to install when there is none. SAM_ARGS go to sam build.
build: install tools
	@SAM_CLI=$(SAM) $(PY) -m devstack.deploy build $(SAM_ARGS)

# Checks AWS credentials, builds, then `sam deploy --guided` the first time (it saves the answers in
# samconfig.toml) and `sam deploy` after. SAM_ARGS go to sam deploy. docs/deployment.md, "Steps".
deploy: install tools
	@SAM_CLI=$(SAM) $(PY) -m devstack.deploy deploy $(SAM_ARGS)

js-clients:
	@bash tests/js/install.sh

lint: install
	@echo "==> ruff and mypy"
	@$(PY) -m ruff check .
	@$(PY) -m mypy layers/common/runwire
	@$(PY) -m mypy clients/python/src/runwire_client

test: install tools js-clients lint
	@echo "==> running unit, contract, functional and integration tests"
	@SAM_CLI=$(SAM) $(PY) -m pytest

test-fast: install
	@$(PY) -m pytest tests/unit tests/contract -q

# What the pipeline adds (latency, requests, cost, cold start) beside a pipeline-less baseline;
# prints the table and writes bench/results/{latest.json,latest.md,lag.png}. Takes a few minutes.
bench: install
	@$(PY) -m bench

# Faults injected into the local stack (a killed worker, client disconnects, DynamoDB throttling
# and 5xx, model faults): prints lost / duplicated / hung per scenario, writes
# bench/results/{faults.json,faults.md}; exits non-zero when a target is missed. A few minutes.
faults: install
	@$(PY) -m bench.faults

clean:
	rm -rf .aws-sam .pytest_cache bench/results/latest.json bench/results/latest.md bench/results/*.png \
		bench/results/faults.json bench/results/faults.md
