# The two commands of the README: `make demo` runs the embedded stack, `make test` runs every check.
# Both create the virtualenv and install what they need, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo dev test lint unit audit lock clean chart-files

# Dependencies come from the lock (pinned versions with hashes: a changed or substituted file fails the
# install), then the package itself, editable, resolving nothing more. `make lock` regenerates the locks.
# The lock is the whole closure, so pip installs it as it stands (--no-deps, as the image does) and
# `pip check` proves nothing is missing: resolving it again let a new release on PyPI of a dependency asked
# for with an extra (pip-audit's CacheControl[filecache], stripped from the lock) fail the install.
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shopstream demo

dev: $(STAMP)
	$(BIN)/shopstream dev

lint: $(STAMP)
	$(BIN)/ruff check .
	MYPY=$(BIN)/mypy scripts/typecheck

test: lint
	$(BIN)/pytest -ra $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest -ra tests/unit

# The locked dependencies against the advisory database (skips with a notice where it is unreachable).
audit: $(STAMP)
	scripts/audit

# Regenerate requirements.lock (runtime: the image) and requirements-dev.lock (+ dev: CI, make) from
# pyproject.toml, resolved against PyPI only (this machine's pip configuration left out), with hashes.
LOCK_TOOLS := $(VENV)-lock
lock:
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/pip install --quiet pip-tools
	PIP_CONFIG_FILE=/dev/null $(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes --no-emit-index-url \
	    --no-emit-find-links --strip-extras --allow-unsafe --all-build-deps -o requirements.lock pyproject.toml
	PIP_CONFIG_FILE=/dev/null $(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes --no-emit-index-url \
	    --no-emit-find-links --strip-extras --allow-unsafe --extra dev -o requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) $(VENV)-lock .shopstream .pytest_cache .mypy_cache .ruff_cache

# Helm reads files only inside the chart: refresh its copies of the topology files, alert rules and dashboard
# (tests/deploy/test_chart.py fails when they drift).
chart-files:
	cd helm/shopstream/files/topology && for f in $$(find . -name '*.yaml'); do cp ../../../../topology/$$f $$f; done
	cp deploy/alerts.yml helm/shopstream/files/alerts.yml
	cp deploy/grafana/dashboards/shopstream.json helm/shopstream/files/grafana/shopstream.json

