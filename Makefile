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
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# Tools installed in the venv (ansible-playbook, molecule, moto_server) come first.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv demo demo-stop test lint sanity checkov molecule pytest test-aws test-aws-sweep screenshot bench clean

$(STAMP): requirements.txt devkit/pyproject.toml files/image/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e devkit -e files/image
	touch $@

venv: $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# IDLE=N: the demo's server stops after N minutes without use (default 60).
demo: $(STAMP)
	$(BIN)/python -m nbstack_devkit.demo $(if $(IDLE),--idle-minutes $(IDLE))

demo-stop: $(STAMP)
	$(BIN)/python -m nbstack_devkit.demo stop

# pytest runs last so that its summary closes the output.
test: lint molecule pytest

lint: $(STAMP) sanity checkov
	$(BIN)/yamllint --strict .
	$(BIN)/cfn-lint files/cloudformation/*.yml
	$(BIN)/hadolint files/image/Dockerfile
	shellcheck .ci/run files/image/before-notebook.d/* devkit/nbstack_devkit/start.sh
	$(BIN)/ruff check .
	$(BIN)/mypy
	cd files/image && $(CURDIR)/$(BIN)/ruff format --check && $(CURDIR)/$(BIN)/mypy
	$(BIN)/ansible-lint --offline --strict

# ansible-test sanity on the nbstack.cloud collection, and its build.
# ansible-test wants the collection at ansible_collections/<namespace>/<name>
# outside a git work tree (inside one it tests only files git tracks), with
# the collections its documentation refers to beside it, so it runs on a copy
# with links to the bundled amazon.aws and community.aws. Each test's virtual
# environment gets pip from devkit/ansible_test_get_pip.py instead of a
# download from ansible's CI file server, which these machines cannot reach
# (put in ansible-test's cache only where no real copy is cached already).
SANITY_DIR := $(or $(TMPDIR),/tmp)/nbstack-sanity-$(shell printf %s '$(CURDIR)' | cksum | cut -d' ' -f1)
SANITY_COLLECTION := $(SANITY_DIR)/ansible_collections/nbstack/cloud
# The pip version ansible-test (ansible-core 2.19) bootstraps.
GET_PIP := $(HOME)/.ansible/test/cache/get_pip_24_2.py

sanity: $(STAMP)
	test -e $(GET_PIP) || install -D -m 0644 devkit/ansible_test_get_pip.py $(GET_PIP)
	rm -rf $(SANITY_DIR) && mkdir -p $(dir $(SANITY_COLLECTION))
	cp -r collections/ansible_collections/nbstack/cloud $(SANITY_COLLECTION)
	find $(SANITY_COLLECTION) -name __pycache__ -prune -exec rm -rf {} +
	bundled=$$($(BIN)/python -c 'import ansible_collections.amazon.aws as m, pathlib; print(pathlib.Path(list(m.__path__)[0]).parents[1])') && \
		ln -s $$bundled/amazon $$bundled/community $(SANITY_DIR)/ansible_collections/
	cd $(SANITY_COLLECTION) && $(CURDIR)/$(BIN)/ansible-test sanity --python $$($(CURDIR)/$(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	$(BIN)/ansible-galaxy collection build --force --output-path $(SANITY_DIR) collections/ansible_collections/nbstack/cloud

# checkov on the templates, offline (--skip-download: no Prisma Cloud
# guidelines). A finding is fixed, or skipped in the resource's Metadata with
# the reason it does not apply.
checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -d files/cloudformation

molecule: $(STAMP)
	$(BIN)/molecule reset
	NBSTACK_EMULATOR_PORT=$$($(BIN)/python -c 'from nbstack_devkit.waits import free_port; print(free_port())') \
		$(BIN)/molecule test

# -n: modules run in parallel, a whole module in one worker (its fixtures are
# module-scoped), each worker a process with its own emulator; --durations
# names the slowest steps, to keep the suite well inside CI's time.
pytest: $(STAMP)
	$(BIN)/pytest tests -n auto --maxprocesses 4 --dist loadfile --durations=25

# The opt-in suite against a real AWS account (README, "Testing on a real
# account"): AWS_PROFILE=sandbox make test-aws [K=two_prefixes]. About an hour
# and a few dollars; never part of `make test` (tests/pytest.ini does not
# collect tests/aws). Without AWS_PROFILE it is skipped with a line saying why.
# -s: the suite prints a line per playbook it runs.
test-aws: $(STAMP)
	$(BIN)/pytest tests/aws -s -v $(if $(K),-k '$(K)')

# What a killed `make test-aws` left: make test-aws-sweep APP=nbt-1a2b3c [REGION=eu-west-1]
test-aws-sweep: $(STAMP)
	$(BIN)/python tests/aws/sandbox.py sweep '$(APP)' $(REGION)

# The README's picture, taken by the browser tests (the picture shows the notebook they ran).
screenshot: $(STAMP)
	NBSTACK_SCREENSHOT=$(CURDIR)/devkit/demo/jupyterlab.png $(BIN)/pytest tests/browser

bench: $(STAMP)
	$(BIN)/python bench/provision.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/idle.py
	$(BIN)/python bench/time_to_notebook.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache .cache $(SANITY_DIR) devkit/*.egg-info files/image/*.egg-info
