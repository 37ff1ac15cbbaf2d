# The two commands a new user needs are `make dev` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Build the Go tools with the machine's Go; never download another toolchain.
export GOTOOLCHAIN ?= local

.PHONY: krew dev test lint unit e2e down status crds chart venv image

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/.installed

## Set up and run the registry locally: control plane on loopback, CRDs installed.
dev: venv
	$(BIN)/gl-dev build
	$(BIN)/gl-dev up

## Run the whole test suite: the layer contracts and lint, unit tests, then e2e against a real control plane.
test: lint
	$(BIN)/gl-dev build
	$(BIN)/pytest

## Components never import each other (import-linter, contracts in pyproject.toml); no undefined names.
lint: venv
	$(BIN)/lint-imports
	$(BIN)/ruff check --no-cache --select F,E9 crds operator webhooks policies cli devenv runtime e2e tests bench examples helm

unit: venv
	$(BIN)/pytest tests

e2e: venv
	$(BIN)/gl-dev build
	$(BIN)/pytest e2e

down: venv
	$(BIN)/gl-dev down

status: venv
	$(BIN)/gl-dev status

## Regenerate crds/*.yaml from the resource models, then the chart's copies of crds/ and policies/ (helm/chartgen.py).
crds: venv
	$(BIN)/python -m gl_api.crdgen
	$(BIN)/python helm/chartgen.py

HELM = $$($(BIN)/python -c 'from gl_devenv import build; print(build.binary("helm"))')

## Lint the Helm chart and package it into dist/ (helm is built from its Go module on first use).
chart: crds
	$(BIN)/python -m gl_devenv.build helm
	$(HELM) lint helm/greenlang-registry --namespace greenlang-system
	$(HELM) package helm/greenlang-registry --destination dist

## Build the registry's images as OCI archives, without a daemon: registry (gl-operator, gl-webhooks,
## gl-mirror) and opa (the webhooks' sidecar); prints each reference, digest and archive (docs/images.md).
image: venv
	$(BIN)/gl-dev build opa
	$(BIN)/python -m gl_devenv.images

## The kubectl gl krew plugin: dist/kubectl-gl-<version>.tar.gz and its manifest cli/krew/gl.yaml.
krew: venv
	$(BIN)/python -m gl_devenv.krew
