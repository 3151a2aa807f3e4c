# The two quick-start commands: `make serve` and `make test`. Both build .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test lint install install-test

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

# The browser tests drive Debian's chromium (Playwright's own download needs the internet).
install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo -n ); \
		$$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| { $$SUDO apt-get update -qq >/dev/null && $$SUDO apt-get install -y -qq chromium >/dev/null; } \
		|| echo "could not install chromium: the browser tests (-m browser) will fail"; \
	fi

serve: install
	$(BIN)/cronwheel serve

# Most tests wait on sockets and subprocesses, so XDIST_WORKERS pytest-xdist processes run them
# side by side (3 on the 2-core machine: about 7 minutes, against 23 in one process; 0 runs
# them in one process). Then, in one process: the tests marked `timing` (real processes held to a
# deadline of about a second, which neighbours taking the CPU would make them miss) and those
# marked `serial` (they restart PostgreSQL under everyone else).
# PYTEST_ARGS (a selection, -k, ...) runs exactly that, in one process.
XDIST_WORKERS ?= 3

test: lint
ifeq ($(strip $(PYTEST_ARGS)),)
	$(BIN)/pytest -q -n $(XDIST_WORKERS) -m "not serial and not timing"
	$(BIN)/pytest -q -m "timing or serial"
else
	$(BIN)/pytest -q $(PYTEST_ARGS)
endif

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
