# The two commands a newcomer needs: `make demo` (audit the bundled lab, write HTML reports) and
# `make test` (the suite's self-tests). Both install what they need first; run them as root.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install demo test lint lab-up lab-down clean

install: $(VENV)/.installed
	@lab/install

$(VENV)/.installed: requirements.txt pyproject.toml
	@python3 -c 'import ensurepip, venv' 2>/dev/null || { \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null; }
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -r requirements.txt
	@$(PY) -m pip install -q --no-deps -e . 2>/dev/null || $(PY) -m pip install --no-deps -e .
	@touch $@

lab-up: install
	@lab/up

lab-down:
	@lab/down

demo: lab-up
	@lab/demo

lint: install
	@$(VENV)/bin/ruff check .

test: lab-up lint
	@$(PY) -m pytest selftests -p pytester --html=reports/selftests.html --self-contained-html -p no:cacheprovider

clean: lab-down
	rm -rf lab/run reports/*.html reports/*.json reports/*.log
