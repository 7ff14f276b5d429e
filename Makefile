# The two commands a newcomer runs: `make deploy` and `make test`.
# Both create .venv at the repo root and install what they need.

VENV    := .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
export PATH := $(abspath $(VENV))/bin:$(PATH)
# The lbcore.fleet collection is installed inside the repo, never into ~/.ansible.
COLLECTIONS := $(abspath $(VENV))/collections
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
LAB_INVENTORY := inventories/lab

# Debian packages the project needs: reference peers (haproxy, keepalived, nginx, wrk),
# the lab (iproute2, openssh-server), and tools the tests drive.
DEB_PACKAGES := haproxy haproxy-doc keepalived nginx-light wrk openssh-server openssh-client strace \
                iproute2 socat tcpdump curl chromium

# The machine is shared and noisy: a test that measures wall-clock time may lose a race
# once; it must pass on a rerun to count (a real failure fails three times).
PYTEST_RERUNS ?= --reruns 2 --reruns-delay 2
# CI must stay under 30 minutes: every run lists its slowest tests, to see what to trim.
PYTEST_DURATIONS ?= --durations=25

.PHONY: deps venv native test lint unit deploy lab-up lab-down collection bench clean

deps: .deps.stamp
.deps.stamp:
	scripts/install-debs.sh $(DEB_PACKAGES)
	@touch $@

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip 'setuptools>=77' wheel 'mypy==2.4.1'
	LBCORE_PURE=1 $(PIP) install -q --no-build-isolation -e '.[dev]'
	@touch $@

# The hot modules (native-modules.txt) compiled in place with mypyc, again whenever a
# source changes; lbcore/_native.py sets compiled code aside if it is older than its source.
NATIVE_SOURCES := $(shell sed -e '/^\#/d' -e '/^$$/d' native-modules.txt)
native: .native.stamp
.native.stamp: $(VENV)/.installed setup.py native-modules.txt $(NATIVE_SOURCES)
	$(PY) setup.py -q build_ext --inplace -j 2 >/dev/null
	$(PY) -c 'import os, lbcore._native as n; assert (n.ACTIVE or os.environ.get("LBCORE_PURE") == "1") and not n.STALE, n.STALE; print(f"native: {len(n.ACTIVE)} modules compiled")'
	@touch $@

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check lbcore tests
	$(VENV)/bin/mypy

test: deps venv native lint
	$(PY) -m pytest tests -p no:cacheprovider $(PYTEST_RERUNS) $(PYTEST_DURATIONS) $(PYTEST_ARGS)

unit: venv
	$(PY) -m pytest tests/unit -q

# The site on the lab, then requests through the VIP (`scripts/deploy.py --local`: no lab).
deploy: deps venv native collection lab-up
	$(PY) scripts/deploy.py

# Build the collection from collection/ + roles/ and install it into $(COLLECTIONS).
collection: venv
	PYTHON=$(abspath $(PY)) scripts/build-collection.sh $(COLLECTIONS)

# The lab: namespace hosts lb1, lb2, web1..web3 on this machine (see inventories/lab/).
lab-up: deps venv collection
	$(VENV)/bin/ansible-playbook -i $(LAB_INVENTORY) lbcore.fleet.lab -e lab_state=present

lab-down: venv collection
	$(VENV)/bin/ansible-playbook -i $(LAB_INVENTORY) lbcore.fleet.lab -e lab_state=absent

bench: deps venv native
	$(PY) -m tests.bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .deps.stamp .native.stamp build dist *.egg-info lbcore/_native.json
	find lbcore -name '*.so' -delete
