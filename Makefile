# nbstack
#   make demo   the whole flow against a local AWS emulator (no AWS account needed)
#   make test   every lint and test
# Both create .venv from requirements.txt on first use, with the project's two
# local packages installed editable: devkit (the local rehearsal and the test
# harness, nbstack_devkit) and files/image (the container runtime, nbstack_runtime).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tools installed in the venv (ansible-playbook, molecule, moto_server) come first.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv demo demo-stop test lint molecule pytest bench clean

$(STAMP): requirements.txt devkit/pyproject.toml files/image/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e devkit -e files/image
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m nbstack_devkit.demo

demo-stop: $(STAMP)
	$(BIN)/python -m nbstack_devkit.demo stop

# pytest runs last so that its summary closes the output.
test: lint molecule pytest

lint: $(STAMP)
	$(BIN)/yamllint --strict .
	$(BIN)/cfn-lint files/cloudformation/*.yml
	$(BIN)/hadolint files/image/Dockerfile
	$(BIN)/ansible-lint --offline --strict

molecule: $(STAMP)
	$(BIN)/molecule reset
	NBSTACK_EMULATOR_PORT=$$($(BIN)/python -c 'from nbstack_devkit.waits import free_port; print(free_port())') \
		$(BIN)/molecule test

pytest: $(STAMP)
	$(BIN)/pytest tests

bench: $(STAMP)
	$(BIN)/python bench/provision.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/idle.py

clean:
	rm -rf $(VENV) .pytest_cache .cache devkit/*.egg-info files/image/*.egg-info
