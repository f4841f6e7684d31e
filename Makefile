# xunjian — every install step lives here, so a clean Debian machine (and CI) needs nothing else.
SHELL := /bin/bash
PY311 ?= $(shell ls -d $$HOME/.pyenv/versions/3.11*/bin/python3.11 2>/dev/null | tail -1 || command -v python3.11)
PY39  ?= $(shell ls -d $$HOME/.pyenv/versions/3.9*/bin/python3.9 2>/dev/null | tail -1 || command -v python3.9)
PY311 := $(or $(PY311),$(shell command -v python3.11),python3)
VENV := .venv
VENV39 := .venv39
DEB_PACKAGES := postgresql openssh-server openssh-client busybox dash chromium poppler-utils \
	fonts-noto-cjk sysstat libpango-1.0-0 libpangoft2-1.0-0 procps sudo
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck pytest pytest39 system-deps bundle bench clean

$(VENV)/.stamp: pyproject.toml
	$(PY311) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[collector,dev]'
	touch $@

# checks/ and agent/ must also run on the Python 3.9 of old customer hosts.
$(VENV39)/.stamp: pyproject.toml
	@if [ -z "$(PY39)" ]; then echo "python3.9 not found (set PY39=)"; exit 1; fi
	$(PY39) -m venv $(VENV39)
	$(VENV39)/bin/pip install -q --upgrade pip
	$(VENV39)/bin/pip install -q -e . pytest pytest-timeout hypothesis
	touch $@

# Real services for the tests (PostgreSQL, sshd, Chromium, poppler, CJK fonts), where we may apt.
system-deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages (tests needing them will skip): $$missing"; fi; \
	fi

lint: $(VENV)/.stamp
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.stamp
	$(VENV)/bin/mypy agent checks collector

pytest: $(VENV)/.stamp system-deps
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

pytest39: $(VENV39)/.stamp
	$(VENV39)/bin/pytest -q -p no:cacheprovider tests/checks tests/agent -m 'not py311' \
		--ignore=tests/agent/test_daemon_collector.py  # the agent against the real collector: 3.11 leg

test: system-deps $(VENV)/.stamp $(VENV39)/.stamp
	$(MAKE) lint typecheck
	$(MAKE) pytest39
	$(MAKE) pytest

demo: $(VENV)/.stamp
	$(VENV)/bin/python -m collector.demo

bundle: $(VENV)/.stamp
	$(VENV)/bin/python -m agent.bundle

clean:
	rm -rf $(VENV) $(VENV39) .mypy_cache .ruff_cache .pytest_cache var demo-out dist
