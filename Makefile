# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv when missing.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.phmx-installed

.PHONY: demo test test-fast test-cluster lint typecheck bench airflow portal browser oidc install clean jvm dist

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

# Reinstall only when the dependency set changes.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m phmx.demo

# The JVM engine routes' jars (Delta for Spark 4.2, hadoop-aws and its AWS SDK), pinned in jvm/pom.xml,
# resolved by Maven into .jvm/ (local repository .jvm/m2, jars .jvm/jars); redone only when the pom changes.
JVM_STAMP := .jvm/jars/.resolved
MVN ?= mvn
$(JVM_STAMP): jvm/pom.xml
	rm -rf .jvm/jars
	$(MVN) -B -q -Dstyle.color=never -f jvm/pom.xml dependency:copy-dependencies \
		-Dmaven.repo.local=$(CURDIR)/.jvm/m2 -DoutputDirectory=$(CURDIR)/.jvm/jars -DincludeScope=runtime
	touch $(JVM_STAMP)

jvm: $(JVM_STAMP)

# The job bundle the cluster runners ship (docs/scaling.md section 6): dist/phmx-<version>-py3-none-any.whl,
# dist/phmx-venv.tar.gz (a packed environment: the wheel and its runtime dependencies at constraints.txt's
# versions, copied from this install, so no download) and dist/submit.py (the driver).
dist: $(STAMP)
	$(BIN)/python -m phmx.dist

# The browser the portal's and the LHJ report's tests drive: Debian's chromium (Playwright never downloads one here),
# and Debian's pango, which WeasyPrint needs to render the portal's member statement as PDF.
browser:
	@{ test -x /usr/bin/chromium && ldconfig -p | grep -q libpangoft2-1.0; } || { \
		echo 'installing Debian chromium and pango for the portal tests'; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y chromium libpango-1.0-0 libpangoft2-1.0-0; \
		else sudo apt-get update -q && sudo apt-get install -y chromium libpango-1.0-0 libpangoft2-1.0-0; fi; }

# The OpenID Provider the portal's single sign-on tests run on 127.0.0.1: panva's oidc-provider from npm,
# pinned by its package-lock.json, installed under tests/portal/oidc/node_modules; redone only when the lock changes.
OIDC_DIR := tests/portal/oidc
OIDC_STAMP := $(OIDC_DIR)/node_modules/.installed
$(OIDC_STAMP): $(OIDC_DIR)/package-lock.json
	npm ci --prefix $(OIDC_DIR) --ignore-scripts --no-audit --no-fund
	touch $(OIDC_STAMP)

oidc: $(OIDC_STAMP)

# The whole suite, as CI runs it: lint, type check, then every test with a coverage figure.
# TEST_WORKERS test processes (pytest-xdist), each taking one test module at a time, longest first.
TEST_WORKERS ?= 2
test: $(STAMP) $(JVM_STAMP) browser $(OIDC_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	bash scripts/run_tests.sh -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder --cov --cov-report=term:skip-covered

# The development lane: lint, then the tests not marked slow (no type check, no coverage).
test-fast: $(STAMP) $(JVM_STAMP) browser $(OIDC_STAMP)
	$(BIN)/ruff check .
	bash scripts/run_tests.sh -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder -m "not slow"

# The cluster lane: the same-results test (tests/engines/test_same_results.py) with the whole DAG under
# PHMX_RUNNER=spark_submit from the make dist bundle, on local JVM Spark with every zone on S3, as its
# classic route (make test runs that route in one process: the DAG costs about twice its CPU).
test-cluster: $(STAMP) $(JVM_STAMP)
	PHMX_ENGINES_CLASSIC=dag bash scripts/run_tests.sh tests/engines/test_same_results.py

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,bench]' --config-settings editable_mode=compat
	$(BIN)/python -m benchmarks

airflow: $(STAMP)
	$(BIN)/python -m phmx.airflow_ui

# The web portal and API on 127.0.0.1:8470 (organisations: $$PHMX_HOME/portal/organisations.yaml;
# accounts: phmx portal add-user). See docs/portal-guide.md.
portal: $(STAMP)
	$(BIN)/phmx serve

clean:
	rm -rf var .pytest_cache .mypy_cache .coverage .coverage.*
