# nbstack: `make demo` shows the whole flow against a local AWS emulator;
# `make test` runs every lint and test. Both create .venv on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit integration image molecule bench clean

$(STAMP): requirements.txt files/image/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e files/image
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python tests/demo.py

test: lint unit integration image molecule

lint: $(STAMP)
	$(BIN)/yamllint --strict .
	$(BIN)/cfn-lint files/cloudformation/*.yml
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/ansible-lint --offline --strict

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

image: $(STAMP)
	$(BIN)/pytest tests/image

molecule: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/molecule reset
	PATH=$(CURDIR)/$(BIN):$$PATH NBSTACK_EMULATOR_PORT=$$($(BIN)/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') $(BIN)/molecule test

bench: $(STAMP)
	$(BIN)/python bench/provision.py

clean:
	rm -rf $(VENV) .pytest_cache
