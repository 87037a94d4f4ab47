# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv when missing.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.phmx-installed

.PHONY: demo test lint bench airflow install clean jvm

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

test: $(STAMP) $(JVM_STAMP)
	$(BIN)/ruff check .
	bash scripts/run_tests.sh

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,bench]' --config-settings editable_mode=compat
	$(BIN)/python -m benchmarks

airflow: $(STAMP)
	$(BIN)/python -m phmx.airflow_ui

clean:
	rm -rf var .pytest_cache
