# aws2aliyun-vpc. On a fresh Debian 12 machine, `make test` installs everything it needs
# (Debian packages, the virtualenv, the lab's VM image) and runs every test, the lab too.
#
#   make test           every test: unit, mocks, golden files, lint, and the lab (both profiles)
#   make test-quick     the quick suite (skips the lab)
#   make test-pair      the gateway pair's lab test alone (about 21 min; not in make test's 60)
#   make lab            the end-to-end lab for the dev stack (modern) and the legacy profile
#   make lab-pair       the lab for a gateway pair behind a HaVip (three VMs, the hand-over checks)
#   make lab-bgp        the lab for dynamic routing (routing: bgp, FRR both sides; a VGW, then a TGW/ECMP)
#   make benchmarks     every lab stack, then BENCHMARKS.md and its failover plot
#   make plan STACK=dev the offline plan under mocks
#   make up STACK=dev   deploy for real (needs the Pulumi CLI and cloud credentials)
#   make status STACK=dev  the tunnels as AWS and the gateway see them

SHELL := /bin/bash
.DEFAULT_GOAL := help

STACK ?= dev
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PULUMI ?= pulumi
REPORTS := reports
APT_LISTS := packages.apt $(wildcard lab/requirements-apt.txt)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help deps venv test test-quick test-pair lab lab-dev lab-legacy lab-pair lab-bgp benchmarks plan preview up destroy golden status clean

help:
	@sed -n '1,13p' Makefile | sed 's/^# \{0,1\}//'

# Debian packages, installed only when missing (one `apt-get update` at most).
deps: $(VENV)/.deps-apt
$(VENV)/.deps-apt: $(APT_LISTS) | $(VENV)/.stamp
	@missing=$$(grep -hv '^\s*#' $(APT_LISTS) | xargs -n1 | sort -u | while read -r p; do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'ok installed' || echo "$$p"; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@touch $@

venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

test: deps venv
	$(PY) -m pytest

test-quick: deps venv
	$(PY) -m pytest -m "not lab"

# The gateway pair's lab run as a test (every check, every goal judged), alone: it does not fit
# make test's 60 minutes on two cores beside the other stacks (docs/lab-findings.md #41), so a
# CI with a second job or more cores runs this one too.
test-pair: deps venv
	AWS2ALIYUN_LAB_PAIR=1 $(PY) -m pytest tests/test_lab.py -k test_lab_pair_passes_every_check

# LAB_ARGS=--no-faults skips the fault and failover checks (about 12 minutes per profile).
LAB_ARGS ?=

lab: lab-dev lab-legacy

# A gateway pair behind a HaVip (gatewayCount 2): the world VM and a VM per gateway, the ha_* checks.
lab-pair: deps venv
	@mkdir -p $(REPORTS)
	$(PY) -m lab run --config-file lab/stacks/Pulumi.lab-pair.yaml --report $(REPORTS)/lab-pair.json $(LAB_ARGS)

# Dynamic routing (routing: bgp): FRR on the gateway, on both AWS-like ends and the AWS VPC router;
# behind a virtual private gateway (tunnel 1 preferred), then a Transit Gateway (ECMP).
lab-bgp: deps venv
	@mkdir -p $(REPORTS)
	$(PY) -m lab run --config-file lab/stacks/Pulumi.lab-bgp.yaml --report $(REPORTS)/lab-bgp.json $(LAB_ARGS)
	$(PY) -m lab run --config-file lab/stacks/Pulumi.lab-bgp-tgw.yaml --report $(REPORTS)/lab-bgp-tgw.json $(LAB_ARGS)

lab-dev: deps venv
	@mkdir -p $(REPORTS)
	$(PY) -m lab run --config-file Pulumi.dev.yaml --report $(REPORTS)/lab-dev.json $(LAB_ARGS)

lab-legacy: deps venv
	@mkdir -p $(REPORTS)
	$(PY) -m lab run --config-file lab/stacks/Pulumi.lab-legacy.yaml --report $(REPORTS)/lab-legacy.json $(LAB_ARGS)

# The lab runs one after the other (a failing check is still reported): both profiles, the
# gateway pair, both BGP stacks; then BENCHMARKS.md from their reports.
benchmarks: deps venv
	@mkdir -p $(REPORTS)
	-$(PY) -m lab run --config-file Pulumi.dev.yaml --report $(REPORTS)/lab-dev.json
	-$(PY) -m lab run --config-file lab/stacks/Pulumi.lab-legacy.yaml --report $(REPORTS)/lab-legacy.json
	-$(PY) -m lab run --config-file lab/stacks/Pulumi.lab-pair.yaml --report $(REPORTS)/lab-pair.json
	-$(PY) -m lab run --config-file lab/stacks/Pulumi.lab-bgp.yaml --report $(REPORTS)/lab-bgp.json
	-$(PY) -m lab run --config-file lab/stacks/Pulumi.lab-bgp-tgw.yaml --report $(REPORTS)/lab-bgp-tgw.json
	$(PY) -m lab benchmarks $(REPORTS)/lab-dev.json $(REPORTS)/lab-legacy.json $(REPORTS)/lab-pair.json \
	  $(REPORTS)/lab-bgp.json $(REPORTS)/lab-bgp-tgw.json --out BENCHMARKS.md --plot docs/failover-timeline.png

plan: venv
	$(PY) -m tools.plan --stack $(STACK)

# Regenerate the golden files of the rendered configuration (review the diff!).
golden: venv
	UPDATE_GOLDEN=1 $(PY) -m pytest -q tests/test_userdata.py tests/test_gateway_pair.py -k golden

# Real deployments. The local file backend and passphrase secrets unless the environment
# says otherwise (PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE[_FILE]).
define pulumi_login
	@command -v $(PULUMI) >/dev/null || { echo "the Pulumi CLI is required: https://www.pulumi.com/docs/install/"; exit 1; }
	$(PULUMI) login $${PULUMI_BACKEND_URL:-file://$(HOME)/.pulumi-aws2aliyun}
	$(PULUMI) stack select --create $(STACK) --secrets-provider $${PULUMI_SECRETS_PROVIDER:-passphrase}
endef

preview: venv
	$(pulumi_login)
	$(PULUMI) preview --stack $(STACK) --diff --policy-pack policy $(if $(filter legacy,$(shell grep -h 'cryptoProfile:' Pulumi.$(STACK).yaml 2>/dev/null | awk '{print $$2}')),--policy-pack-config policy/config.legacy.json)

up: venv
	$(pulumi_login)
	$(PULUMI) up --stack $(STACK) --policy-pack policy $(if $(filter legacy,$(shell grep -h 'cryptoProfile:' Pulumi.$(STACK).yaml 2>/dev/null | awk '{print $$2}')),--policy-pack-config policy/config.legacy.json)

destroy: venv
	$(pulumi_login)
	$(PULUMI) destroy --stack $(STACK)

# The link's state: stack outputs, AWS's tunnel telemetry, and the gateway's view over SSH.
status: venv
	$(PY) -m tools.status --stack $(STACK) $(if $(SSH),--ssh)

clean:
	rm -rf $(REPORTS) .pytest_cache
