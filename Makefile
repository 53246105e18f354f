# The two commands of the README: `make demo` runs the embedded stack, `make test` runs every check.
# Both create the virtualenv and install what they need, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo dev test lint unit clean chart-files lock

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
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

# The image installs from requirements.lock with --require-hashes (runtime deps + the build backend).
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --all-build-deps --strip-extras \
	  --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .shopstream .pytest_cache .mypy_cache .ruff_cache

# Helm reads files only inside the chart: refresh its copies of the topology files, alert rules and dashboard
# (tests/deploy/test_chart.py fails when they drift).
chart-files:
	cd helm/shopstream/files/topology && for f in $$(find . -name '*.yaml'); do cp ../../../../topology/$$f $$f; done
	cp deploy/alerts.yml helm/shopstream/files/alerts.yml
	cp deploy/grafana/dashboards/shopstream.json helm/shopstream/files/grafana/shopstream.json
