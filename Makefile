# Everything a fresh machine needs: Python >= 3.11 with venv, and g++ (for C simulation).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test demo check-tools

check-tools:
	@command -v python3 >/dev/null || { echo "error: python3 (>= 3.11) is required"; exit 1; }
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: python3 >= 3.11 is required"; exit 1; }
	@command -v g++ >/dev/null || { echo "error: g++ is required for C simulation (apt-get install g++)"; exit 1; }

$(VENV)/.installed: pyproject.toml | check-tools
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest -q

demo: setup
	TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/spx demo --out out/demo
